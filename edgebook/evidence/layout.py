"""Where a change's evidence lives: outputs/<change>/<edge>/{journal.jsonl, NN-phase/…}.

The runner and the notebooks agree on one outputs root: ``EDGEBOOK_OUTPUTS`` when set (the
runner sets it for the kernels it starts), else ``outputs/`` of the checkout the current folder
is in, else ``outputs/`` of the current folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgebook.errors import ConfigError

OUTPUTS_ENV = "EDGEBOOK_OUTPUTS"
PHASES = {
    "inspect": "01-inspect",
    "prepare": "02-prepare-certificate",
    "resubscribe": "03-resubscribe",
    "verify": "04-verify-hybrid",
}
_CHANGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def outputs_root() -> Path:
    """The evidence root (see the module docstring)."""
    if os.environ.get(OUTPUTS_ENV):
        return Path(os.environ[OUTPUTS_ENV]).resolve()
    here = Path.cwd().resolve()
    for parent in (here, *here.parents):
        if (parent / "pyproject.toml").is_file() and (parent / "edgebook").is_dir():
            return parent / "outputs"
    return here / "outputs"


def check_change_id(change: str) -> str:
    """A change id usable as one folder name, or a ConfigError saying what is allowed."""
    if not isinstance(change, str) or not _CHANGE_ID.match(change) or ".." in change:
        raise ConfigError(
            f"change {change!r}: a change id is 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit (e.g. CHG-2026-0042)"
        )
    return change


def change_dir(change: str, root: Path | None = None) -> Path:
    """outputs/<change>/."""
    return (root or outputs_root()) / check_change_id(change)


def edge_dir(change: str, edge: str, root: Path | None = None) -> Path:
    """outputs/<change>/<edge>/."""
    return change_dir(change, root) / edge.upper()


def journal_path(change: str, edge: str, root: Path | None = None) -> Path:
    """The append-only journal of one Edge's change."""
    return edge_dir(change, edge, root) / "journal.jsonl"


def phase_dir(change: str, edge: str, phase: str, root: Path | None = None) -> Path:
    """outputs/<change>/<edge>/<NN-phase>/ for a phase name (inspect, prepare, ...)."""
    if phase not in PHASES:
        raise ConfigError(f"phase {phase!r}: one of {', '.join(PHASES)}")
    return edge_dir(change, edge, root) / PHASES[phase]
