"""A plan: the ordered steps of one change on one Edge, the facts they were computed from, and
the sha256 of its canonical JSON (what a consultant approves)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from edgebook.change import values
from edgebook.change.step import Step

PLAN_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """The ordered steps plus the facts (JSON) they were computed from."""

    change: str
    edge: str
    phase: str
    facts: Mapping[str, Any]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()  # what the plan says besides its steps (route, consequences)

    def __post_init__(self) -> None:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"step ids must be unique in a plan: {ids}")

    @property
    def facts_sha256(self) -> str:
        """The digest of the facts the steps were computed from."""
        return values.sha256_of(self.facts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the hash covers all of it."""
        return {
            "version": PLAN_VERSION,
            "change": self.change,
            "edge": self.edge,
            "phase": self.phase,
            "facts": values.to_json(dict(self.facts)),
            "facts_sha256": self.facts_sha256,
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The inverse of to_dict."""
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {data.get('version')!r}, expected {PLAN_VERSION}")
        return cls(
            change=data["change"],
            edge=data["edge"],
            phase=data["phase"],
            facts=data["facts"],
            steps=tuple(Step.from_dict(s) for s in data["steps"]),
            notes=tuple(data["notes"]),
        )

    def canonical_json(self) -> bytes:
        """Sorted keys, no whitespace, UTF-8."""
        return values.canonical(self.to_dict())

    @cached_property
    def sha256(self) -> str:
        """The plan hash: sha256 of the canonical JSON."""
        return values.sha256_of(self.to_dict())

    def rows(self) -> list[dict[str, Any]]:
        """One row per step: server, what it does, the cmdlets, conditions, undo, questions."""
        return [
            {
                "step": s.id,
                "server": s.server,
                "does": s.does,
                "runs": "\n".join(c.text() for c in s.calls),
                "before": "; ".join(c.says for c in s.pre),
                "after": "; ".join(c.says for c in s.post),
                "undo": "\n".join(c.text() for c in s.undo) or f"none: {s.no_undo}",
                "questions": "; ".join(f"{q.match!r} -> {q.answer} ({q.why})" for q in s.questions),
            }
            for s in self.steps
        ]

    def text(self) -> str:
        """The plan as text for the command line."""
        lines = [f"plan for change {self.change}, {self.edge}, phase {self.phase}"]
        lines += [f"  note: {note}" for note in self.notes]
        if not self.steps:
            lines.append("  (no steps: nothing to change)")
        for number, row in enumerate(self.rows(), 1):
            lines.append(f"  {number}. [{row['server']}] {row['step']}: {row['does']}")
            lines += [f"       runs:  {line}" for line in row["runs"].splitlines()]
            if row["before"]:
                lines.append(f"       needs: {row['before']}")
            lines.append(f"       then:  {row['after']}")
            lines += [f"       undo:  {line}" for line in row["undo"].splitlines()]
            if row["questions"]:
                lines.append(f"       asks:  {row['questions']}")
        lines.append(f"plan sha256: {self.sha256}")
        return "\n".join(lines)

    def differences(self, other: Plan) -> list[str]:
        """What differs from another plan: facts first, then steps and notes (one line each)."""
        found = [
            f"facts {path}: {_short(old)} -> {_short(new)}"
            for path, old, new in _diff(self.to_dict()["facts"], other.to_dict()["facts"])
        ]
        mine = {s.id: s.to_dict() for s in self.steps}
        theirs = {s.id: s.to_dict() for s in other.steps}
        found += [f"step {i} is new" for i in theirs if i not in mine]
        found += [f"step {i} is gone" for i in mine if i not in theirs]
        found += [f"step {i} changed" for i in mine if i in theirs and mine[i] != theirs[i]]
        if [s.id for s in self.steps if s.id in theirs] != [
            s.id for s in other.steps if s.id in mine
        ]:
            found.append("the steps are in another order")
        if self.notes != other.notes:
            found.append("the notes changed")
        for key in ("change", "edge", "phase"):
            if getattr(self, key) != getattr(other, key):
                found.append(f"{key}: {getattr(self, key)} -> {getattr(other, key)}")
        return found


def _diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            child = f"{path}.{key}" if path else str(key)
            out += _diff(old.get(key), new.get(key), child)
        return out
    return [] if old == new else [(path, old, new)]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."
