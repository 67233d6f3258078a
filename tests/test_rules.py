"""evaluate(): the clean organisation is clean, findings come sorted, and rules stay silent on
what was not gathered."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from edgebook.facts import OrgFacts
from edgebook.findings import CATALOGUE, Severity
from edgebook.rules import evaluate
from tests.support.certs import NOW
from tests.support.orgs import EDGES, clean_world, of, pki, problems, thumb


def test_clean_hybrid_organisation_has_no_errors_or_warnings():
    findings = clean_world().evaluate()
    assert problems(findings) == []


def test_findings_come_errors_first():
    world = clean_world()
    world.edges["EDGE1"]["queues"][1]["MessageCount"] = 500  # warning
    world.edges["EDGE2"]["services"][0]["Status"] = "Stopped"  # error
    world.edges["EDGE1"]["certificates"].append(  # info: expired, unused
        {
            "Thumbprint": "AA" * 20,
            "Subject": "CN=old",
            "Issuer": "CN=old",
            "NotAfter": NOW - dt.timedelta(days=3),
            "Services": "None",
            "Status": "DateInvalid",
        }
    )
    severities = [f.severity for f in world.evaluate()]
    assert severities == sorted(severities, reverse=True)
    assert set(severities) == {Severity.ERROR, Severity.WARNING, Severity.INFO}


def test_edge_only_inspection_reports_no_organisation_findings():
    world = clean_world()
    world.subscriptions.clear()  # would be edgesync-failing if the org had been read
    world.edgesync.clear()
    _, edges = world.facts()
    org = OrgFacts(settings=clean_world().facts()[0].settings)
    findings = evaluate(org, edges)
    assert of(findings, "edgesync-failing") == []
    assert problems(findings) == []


def test_each_problem_is_reported_once_per_certificate():
    world = clean_world()
    # An expired default certificate: one cert-expired, even though it is both the default
    # and enabled for SMTP and the LDAPS probe serves it.
    expired = pki().defaults["EDGE1"]
    record = world.edges["EDGE1"]["certificates"][0]
    record["NotAfter"] = NOW - dt.timedelta(days=1)
    record["Status"] = "DateInvalid"
    record["RawData"] = None
    findings = of(world.evaluate(), "cert-expired", "EDGE1")
    assert [f.evidence["thumbprint"] for f in findings] == [thumb(expired)]
    assert [e for e in EDGES if of(world.evaluate(), "cert-expired", e)] == ["EDGE1"]


def _emitted_slugs() -> set[str]:
    """Slugs written as the first argument of a Finding in the rules and certificate checks."""
    root = Path(__file__).resolve().parent.parent / "edgebook"
    sources = [*root.joinpath("rules").glob("*.py"), root / "certs" / "checks.py"]
    pattern = re.compile(r"(?:Finding|_finding)\(\s*\"([a-z0-9]+(?:-[a-z0-9]+)+)\"")
    return {slug for path in sources for slug in pattern.findall(path.read_text())}


def test_every_emitted_slug_is_catalogued_and_documented():
    emitted = _emitted_slugs()
    assert {"tls-name-stale", "cert-warning-events", "weak-key"} <= emitted
    assert emitted <= set(CATALOGUE)
    docs = (Path(__file__).resolve().parent.parent / "docs" / "findings.md").read_text()
    assert [slug for slug in CATALOGUE if f"`{slug}`" not in docs] == []
