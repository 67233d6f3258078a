"""Approval: every computed plan is kept by its hash; applying needs the approved hash, and a
plan that differs from the approved one runs nothing and says what differs.

Plans live in outputs/<change>/<EDGE>/plans/<sha256>.json. A plan whose application has
started (the journal has its `apply-started`) is the one a rerun resumes, even though the
facts have moved on since (they moved because of its own steps): the stored plan is run
again, and its steps whose postcondition holds are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from edgebook.change.journal import Journal
from edgebook.change.plan import Plan
from edgebook.errors import ConfigError, EdgebookError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class NotApproved(EdgebookError):
    """apply was asked without an approval that matches the plan; nothing ran."""


@dataclass(frozen=True)
class Approved:
    """The plan to apply and whether it resumes an application already started."""

    plan: Plan
    resumed: bool


def plans_dir(edge_dir: Path) -> Path:
    """Where the computed plans of one Edge's change are kept."""
    return edge_dir / "plans"


def save_plan(plan: Plan, edge_dir: Path) -> Path:
    """Keep a computed plan under its hash (an identical plan is already there: kept as is)."""
    directory = plans_dir(edge_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{plan.sha256}.json"
    if not path.exists():
        text = json.dumps(plan.to_dict(), indent=1, sort_keys=True, ensure_ascii=False)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


def load_plan(edge_dir: Path, sha256: str) -> Plan | None:
    """A kept plan by its hash, None when there is none; a damaged file is an error."""
    path = plans_dir(edge_dir) / f"{sha256}.json"
    if not path.is_file():
        return None
    plan = Plan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    if plan.sha256 != sha256:
        raise EdgebookError(f"{path}: its content no longer has the hash its name says")
    return plan


def check_sha256(value: str) -> str:
    """A plan hash as given by the operator: 64 hex characters (case and spaces ignored)."""
    text = (value or "").strip().lower()
    if text and not _SHA256.match(text):
        raise ConfigError(
            f"approved_plan_sha256 {value!r}: expected the 64 hex characters printed as "
            "'plan sha256: ...' by the run that computed the plan"
        )
    return text


def approve(fresh: Plan, approved_sha256: str, edge_dir: Path, journal: Journal) -> Approved:
    """The plan apply may run: the fresh one when its hash is the approved one, or the approved
    one whose application already started (resume); otherwise NotApproved."""
    approved = check_sha256(approved_sha256)
    if not approved:
        raise NotApproved(
            "apply needs approved_plan_sha256: run once with apply=False, review the plan, then "
            f"pass its hash (this plan's is {fresh.sha256}); nothing was changed"
        )
    if approved == fresh.sha256:
        return Approved(fresh, resumed=False)
    started = any(journal.read().events("apply-started", plan=approved))
    stored = load_plan(edge_dir, approved)
    if started and stored is not None:
        return Approved(stored, resumed=True)
    if stored is None:
        raise NotApproved(
            f"no plan with hash {approved} was computed for change {fresh.change} on "
            f"{fresh.edge} (plans are kept in {plans_dir(edge_dir)}); the current plan is "
            f"{fresh.sha256}: review it and approve that one. Nothing was changed"
        )
    differences = stored.differences(fresh)
    listed = "\n  ".join(differences) or "(no difference found in facts or steps)"
    raise NotApproved(
        f"the world changed since plan {approved[:12]}… was approved; nothing was changed. "
        f"The current plan is {fresh.sha256}. What differs:\n  {listed}"
    )
