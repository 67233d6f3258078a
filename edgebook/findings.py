"""Findings: what is wrong (or worth knowing), where, what to do, and the evidence compared."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that max() gives the worst."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One result of a check, with a stable kebab-case slug."""

    slug: str
    severity: Severity
    message: str
    server: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: slug, severity (lower-case name), server, message, evidence."""
        return {
            "slug": self.slug,
            "severity": str(self.severity),
            "server": self.server,
            "message": self.message,
            "evidence": self.evidence,
        }


def worst(findings: list[Finding]) -> Severity | None:
    """The highest severity among findings, or None when there are none."""
    return max((f.severity for f in findings), default=None)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: -f.severity)
