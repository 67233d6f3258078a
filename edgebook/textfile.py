"""Reading the files edgebook is given: regular files only, bounded in size, text as UTF-8.

Every problem is an error of the caller's class naming the file and what to do: a missing
file, a folder, a pipe or device (read without waiting for a writer), a file over its size
limit, bytes that are not UTF-8 (with the byte offset) or a NUL byte (a binary file).
Dependency-free apart from edgebook.errors, so the lab may import it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edgebook.errors import EdgebookError

KIB = 1024
MIB = 1024 * KIB
TEXT_LIMIT = MIB  # parameters and scenario files
CERTIFICATE_LIMIT = 4 * MIB  # certificate, key and CA bundle files
SECRET_LIMIT = 64 * KIB  # a file: secret reference


def read_bytes(
    path: str | Path,
    *,
    what: str,
    limit: int = TEXT_LIMIT,
    error: type[EdgebookError] = EdgebookError,
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; `what` names it in errors."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{path}: the {what} does not exist; check the path") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {what}; give the path of the file") from None
    except OSError as exc:
        raise error(
            f"{path}: the {what} cannot be read ({exc.strerror or exc}); check its permissions"
        ) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{path}: is a folder, not a {what}; give the path of the file")
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{path}: is not a regular file (a pipe, socket or device); "
                f"give the path of a {what}"
            )
        if info.st_size > limit:
            raise error(_too_large(path, what, info.st_size, limit))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(
            f"{path}: the {what} cannot be read ({exc.strerror or exc}); check its permissions"
        ) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(_too_large(path, what, len(data), limit))
    return data


def _too_large(path: Path, what: str, size: int, limit: int) -> str:
    return (
        f"{path}: the {what} is {_size(size)}, more than the {_size(limit)} it may have; "
        "check that this is the right file"
    )


def _size(count: int) -> str:
    if count >= MIB:
        return f"{count / MIB:.1f} MiB"
    return f"{count / KIB:.0f} KiB" if count >= KIB else f"{count} bytes"


def decode(data: bytes, path: str | Path, *, what: str, error: type[EdgebookError]) -> str:
    """UTF-8 text (a leading BOM dropped); an error names the first bad byte's offset."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        raise error(
            f"{path}: the {what} is not UTF-8 text (byte {offset} is 0x{data[offset]:02x}); "
            "save it as UTF-8"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        raise error(
            f"{path}: the {what} holds a NUL character (at character {nul}), so it is a "
            f"binary file, not a {what}; give the right file"
        )
    return text


def read_text(
    path: str | Path,
    *,
    what: str,
    limit: int = TEXT_LIMIT,
    error: type[EdgebookError] = EdgebookError,
) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes."""
    data = read_bytes(path, what=what, limit=limit, error=error)
    return decode(data, path, what=what, error=error)
