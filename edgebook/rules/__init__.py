"""The finding rules of the inspect phase: facts in, findings out (pure logic, no I/O)."""

from __future__ import annotations

from edgebook.facts import EdgeFacts, OrgFacts
from edgebook.findings import Finding, sort_findings
from edgebook.rules.certificates import certificate_rules
from edgebook.rules.connectors import connector_rules
from edgebook.rules.edgesync import edgesync_rules
from edgebook.rules.hybrid import hybrid_rules
from edgebook.rules.smtp import smtp_rules
from edgebook.rules.transport import transport_rules

RULES = (
    certificate_rules,
    connector_rules,
    smtp_rules,
    hybrid_rules,
    edgesync_rules,
    transport_rules,
)


def evaluate(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Every finding for the organisation and the Edges, errors first."""
    findings: list[Finding] = []
    for rule in RULES:
        findings += rule(org, edges)
    return sort_findings(findings)


__all__ = ["RULES", "evaluate"]
