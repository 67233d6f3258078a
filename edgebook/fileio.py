"""The two ways edgebook writes files: create-never-overwrite, and replace atomically.

`write_new` is for what must never be overwritten (private keys, requests, PFX files,
evidence); `write_atomic` for state that is replaced as a whole (a reader sees the old file
or the new one, never half of one). Both fsync and leave nothing behind on failure.
Dependency-free apart from edgebook.errors, so the lab may import it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgebook.errors import EdgebookError


def write_new(
    path: str | Path, data: bytes, mode: int = 0o644, *, error: type[EdgebookError] = EdgebookError
) -> Path:
    """Create path with data and mode; an existing file (or symlink) there is an error."""
    path = Path(path)
    if not path.parent.is_dir():
        raise error(f"{path}: the folder {path.parent} does not exist; create it first")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise error(
            f"{path}: already exists and is never overwritten: choose another file name"
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot be created ({exc.strerror or exc})") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: str | Path, data: bytes, mode: int = 0o644) -> Path:
    """Replace path with data and mode via a fsync'd temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
