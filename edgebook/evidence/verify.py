"""Check a change folder's evidence: every hash recomputed, no file changed, missing or extra;
and prove that no given secret value appears in any file."""

from __future__ import annotations

import html
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebook.errors import EdgebookError
from edgebook.evidence.layout import REPORT_JSON
from edgebook.evidence.manifest import SUFFIX, read_manifest, sha256_file

MIN_SECRET_LENGTH = 6


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the evidence: the file (relative to the change folder) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Verification:
    """The result of verifying a change folder."""

    folder: Path
    manifests: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)  # Edge -> sha256 of its last manifest

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems


def evidence_files(folder: Path) -> list[str]:
    """Every file under the change folder, relative, sorted."""
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise EdgebookError(f"{folder} {what}; give a change folder (outputs/<change>)")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def verify_change(folder: Path) -> Verification:
    """Recompute every hash the manifests (and report.json) record under folder."""
    files = evidence_files(folder)
    manifests = [name for name in files if name.endswith(SUFFIX)]
    if not manifests:
        raise EdgebookError(f"{folder}: no run manifests (*{SUFFIX}) here; is it a change folder?")
    result = Verification(folder, manifests=len(manifests))
    covered: set[str] = set(manifests)
    latest: dict[str, tuple[str, str]] = {}
    for name in manifests:
        try:
            manifest = read_manifest(folder / name)
        except EdgebookError as exc:
            result.problems.append(Problem(name, str(exc).split(": ", 1)[-1]))
            continue
        checked = _check_manifest(folder, name, manifest, result.problems)
        covered |= checked
        edge = str(manifest.get("edge", "?"))
        ended = str(manifest.get("ended", ""))
        if edge not in latest or ended > latest[edge][0]:
            latest[edge] = (ended, name)
    if REPORT_JSON in files:
        covered |= _check_report(folder, result.problems)
    for name in files:
        if name not in covered:
            result.problems.append(Problem(name, "not covered by any manifest (added?)"))
    result.files = len(covered)
    result.heads = {edge: sha256_file(folder / name) for edge, (_, name) in latest.items()}
    return result


def _check_manifest(
    folder: Path, name: str, manifest: dict[str, Any], problems: list[Problem]
) -> set[str]:
    """Check one manifest's files; the paths it covers."""
    covered: set[str] = set()
    entries = [manifest.get("notebook"), manifest.get("html"), *(manifest.get("files") or [])]
    for entry in entries:
        if entry is None:
            continue
        path = _entry_path(folder, name, entry, problems)
        if path is None:
            continue
        covered.add(entry["path"])
        if not path.is_file():
            problems.append(Problem(entry["path"], f"missing (recorded by {name})"))
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(Problem(entry["path"], f"changed since {name} recorded it"))
    journal = manifest.get("journal")
    if journal:
        path = _entry_path(folder, name, journal, problems)
        if path is not None:
            covered.add(journal["path"])
            problems.extend(_check_journal(path, journal, name))
    previous = manifest.get("previous")
    if previous:
        path = _entry_path(folder, name, previous, problems)
        if path is not None and not path.is_file():
            problems.append(Problem(name, f"the run before it ({previous['path']}) is missing"))
        elif path is not None and sha256_file(path) != previous.get("sha256"):
            problems.append(Problem(previous["path"], f"changed since {name} chained to it"))
    return covered


def _entry_path(folder: Path, name: str, entry: Any, problems: list[Problem]) -> Path | None:
    relative = entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(relative, str) or relative.startswith("/") or ".." in relative.split("/"):
        problems.append(Problem(name, f"a recorded path is malformed: {relative!r}"))
        return None
    return folder / relative


def _check_journal(path: Path, journal: dict[str, Any], name: str) -> list[Problem]:
    """A journal may have grown since the run; the bytes the run saw must be unchanged."""
    relative, length = journal["path"], journal.get("bytes")
    if not path.is_file():
        return [Problem(relative, f"missing (recorded by {name})")]
    if not isinstance(length, int) or path.stat().st_size < length:
        return [Problem(relative, f"shorter than when {name} recorded it (truncated)")]
    if sha256_file(path, length) != journal.get("sha256"):
        return [Problem(relative, f"its first {length} bytes changed since {name}")]
    return []


def _check_report(folder: Path, problems: list[Problem]) -> set[str]:
    """report.json hashes report.html and the manifests it was built from."""
    try:
        report = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
        html_entry, manifests = report["html"], report["manifests"]
    except (OSError, ValueError, KeyError, TypeError):
        problems.append(Problem(REPORT_JSON, "not a readable report record"))
        return {REPORT_JSON}
    covered = {REPORT_JSON}
    for entry in [html_entry, *manifests]:
        path = _entry_path(folder, REPORT_JSON, entry, problems)
        if path is None:
            continue
        covered.add(entry["path"])
        if not path.is_file():
            problems.append(Problem(entry["path"], f"missing (listed in {REPORT_JSON})"))
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(Problem(entry["path"], f"changed since {REPORT_JSON} recorded it"))
    return covered


def secret_forms(secret: str) -> set[bytes]:
    """The ways a value can be written into a notebook, HTML or JSON file."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
    }
    encoded = {form.encode("utf-8") for form in forms}
    encoded.add(secret.encode("utf-16-le"))
    return encoded


def scan_secrets(folder: Path, secrets: dict[str, str]) -> list[Problem]:
    """Every file under folder that holds one of the secrets (by label; values never shown)."""
    for label, value in secrets.items():
        if len(value) < MIN_SECRET_LENGTH:
            raise EdgebookError(
                f"secret {label}: shorter than {MIN_SECRET_LENGTH} characters; too short to "
                "scan for without false alarms"
            )
    needles = {label: secret_forms(value) for label, value in secrets.items()}
    problems = []
    for name in evidence_files(folder):
        content = (folder / name).read_bytes()
        for label, forms in needles.items():
            if any(form in content for form in forms):
                problems.append(Problem(name, f"contains the secret {label}"))
    return problems
