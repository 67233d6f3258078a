"""The manifest of one run: what ran, how it ended, who ran it, and the sha256 of every file
the run wrote, so `edgebook evidence verify` can tell any later change.

A manifest lives beside its notebook as ``<utc>_<run>.manifest.json``. Paths in it are relative
to the change folder (the folder can be moved or archived whole). Coverage rules:

* the notebook, its HTML and every other file the run created or changed in the Edge's folder
  (the change engine's plan files, ...) are hashed whole: they must never change again;
* the Edge's ``journal.jsonl`` only grows across runs: a manifest records its length up to the
  last whole line and the sha256 of those bytes, so growth (and the engine dropping a line cut
  by a crash) is accepted while any edit of earlier bytes is caught;
* ``previous`` is the manifest of the Edge's preceding run (length-free sha256), so a run
  deleted from the middle of the history, or an edited manifest, breaks the chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgebook import __version__
from edgebook.errors import EdgebookError
from edgebook.evidence.runner import PhaseRun, refuse_secrets, reserve

SCHEMA = "edgebook.manifest/1"
SUFFIX = ".manifest.json"
JOURNAL = "journal.jsonl"
_CHUNK = 1 << 20

Snapshot = dict[str, tuple[int, int]]


def sha256_file(path: Path, length: int | None = None) -> str:
    """The sha256 of a file, or of its first `length` bytes."""
    digest = hashlib.sha256()
    remaining = length
    with path.open("rb") as handle:
        while remaining is None or remaining > 0:
            chunk = handle.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest.hexdigest()


def operator() -> str:
    """user@host of whoever runs the change."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without passwd entry)
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


@functools.cache
def git_revision() -> dict[str, Any] | None:
    """The git commit of the edgebook checkout that runs, and whether it has local changes."""
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return None
    try:
        head = _git(checkout, "rev-parse", "HEAD")
        dirty = bool(_git(checkout, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": dirty}


def _git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def snapshot(folder: Path) -> Snapshot:
    """Size and mtime of every file under folder, to tell what a run wrote."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def written_since(folder: Path, before: Snapshot, exclude: set[Path]) -> list[Path]:
    """Files under folder created or changed since the snapshot (the journal aside)."""
    after = snapshot(folder)
    return [
        folder / name
        for name, state in sorted(after.items())
        if before.get(name) != state
        and name != JOURNAL
        and (folder / name) not in exclude
        and not name.endswith(SUFFIX)
    ]


def latest_manifest(edge_folder: Path) -> Path | None:
    """The Edge's most recent manifest (by its end time), the one a new run chains to."""
    best: tuple[str, Path] | None = None
    for path in edge_folder.glob(f"*/*{SUFFIX}"):
        try:
            ended = str(read_manifest(path).get("ended", ""))
        except EdgebookError:
            continue  # verify reports it; the chain goes on from the last readable one
        if best is None or (ended, path.name) > (best[0], best[1].name):
            best = (ended, path)
    return best[1] if best else None


def build_manifest(
    run: PhaseRun,
    *,
    change: str,
    edge: str,
    phase: str,
    change_folder: Path,
    written: list[Path],
    previous: Path | None,
    journal: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest of a finished run (see the module docstring); journal as journal_entry
    read it when the run ended."""
    refuse_secrets(run.parameters)

    def entry(path: Path) -> dict[str, str]:
        return {"path": _relative(path, change_folder), "sha256": sha256_file(path)}

    return {
        "schema": SCHEMA,
        "change": change,
        "edge": edge,
        "phase": phase,
        "run_id": run.notebook.stem.partition("_")[2],
        "verdict": run.verdict,
        "error": run.error,
        "started": _iso(run.started),
        "ended": _iso(run.ended),
        "duration_s": run.duration_s,
        "template": {
            "name": run.template.name if run.template else None,
            "sha256": sha256_file(run.template) if run.template else None,
        },
        "notebook": entry(run.notebook),
        "html": entry(run.html) if run.html else None,
        "files": [entry(path) for path in written],
        "journal": journal,
        "previous": entry(previous) if previous else None,
        "parameters": run.parameters,
        "operator": operator(),
        "edgebook": {"version": __version__, "git": git_revision()},
        "versions": _versions(),
        "records": run.records,
    }


def journal_entry(change_folder: Path, edge: str) -> dict[str, Any] | None:
    """The Edge's journal as a manifest holds it: its whole lines' length and their sha256."""
    journal = change_folder / edge.upper() / JOURNAL
    if not journal.is_file():
        return None
    size = _whole_lines(journal)
    return {
        "path": _relative(journal, change_folder),
        "bytes": size,
        "sha256": sha256_file(journal, size),
    }


def write_manifest(run: PhaseRun, manifest: dict[str, Any]) -> Path:
    """Write the manifest beside the notebook, exclusively."""
    path = reserve(run.notebook.with_name(run.notebook.stem + SUFFIX))
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest as a dict; EdgebookError when it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgebookError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise EdgebookError(f"{path}: not an edgebook manifest (schema {SCHEMA} expected)")
    return document


def _whole_lines(journal: Path) -> int:
    """The length of the journal up to its last newline: the engine drops a cut last line
    (left by a crash) before its next append, so only whole lines are held to."""
    data = journal.read_bytes()
    return data.rfind(b"\n") + 1


def _relative(path: Path, folder: Path) -> str:
    return path.resolve().relative_to(folder.resolve()).as_posix()


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _versions() -> dict[str, str]:
    import nbconvert
    import nbformat
    import papermill

    return {
        "python": sys.version.split()[0],
        "papermill": papermill.__version__,
        "nbformat": nbformat.__version__,
        "nbconvert": nbconvert.__version__,
    }
