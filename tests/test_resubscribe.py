"""Phase 03 against the seed-incident lab (pypsrp in process, no sockets): both Edges one after
the other, the certificate-only and the resubscribe routes, round trips against the lab's
counters, rolling refusals and bad inputs refused before any change."""

from __future__ import annotations

import pytest

from edgebook.change.approval import NotApproved
from edgebook.change.journal import Journal
from edgebook.change.lock import EdgeLock, LockHeld
from edgebook.change.reads import round_trips
from edgebook.config import load_inventory
from edgebook.evidence import layout
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import resubscribe
from edgebook.phases.resubscribe import Options, ResubscribeRefused
from tests.support.resubscribe import CHANGE, FAST, InProcessLab

EDGES = ("EDGE01", "EDGE02")
HYBRID = "Outbound to Office 365"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    return InProcessLab(tmp_path / "lab")


def plan(lab: InProcessLab, edge: str, options: Options = FAST) -> resubscribe.Planned:
    return resubscribe.plan(lab.inventory, edge, CHANGE, options, shell_factory=lab.factory)


def apply(lab: InProcessLab, planned: resubscribe.Planned, sha: str | None = None, **kw):
    return resubscribe.apply(
        planned,
        planned.plan.sha256 if sha is None else sha,
        shell_factory=lab.factory,
        probe=lab.probe,
        **kw,
    )


def findings(lab: InProcessLab) -> list[str]:
    result = inspect_phase.inspect(lab.inventory, shell_factory=lab.factory)
    return [
        f"{f.severity.name} {f.slug}: {f.message}"
        for f in result.findings
        if f.severity.name in ("ERROR", "WARNING") and f.slug != "probe-failed"
    ]


def step_ids(planned: resubscribe.Planned) -> list[str]:
    return [s.id for s in planned.plan.steps]


def test_both_edges_certificate_only_route_end_healthy(lab):
    for edge in EDGES:
        lab.prepare(edge)
    first = plan(lab, "EDGE01")
    assert first.route == "certificate-only"
    ids = step_ids(first)
    assert ids[:4] == [
        "drain-edge01",
        "stop-transport-edge01",
        "import-edge01",
        "enable-smtp-edge01",
    ]
    assert not any(i.startswith(("subscribe", "restart-adam", "subscription-file")) for i in ids)
    assert ids.index("tls-name-outbound-to-office-365") < ids.index("sync-edge01")
    assert ids.index("sync-edge01") < next(
        i for i, s in enumerate(ids) if s.startswith("remove-old")
    )
    assert ids[-2:] == ["start-transport-edge01", "resume-edge01"]
    assert "plan sha256: " + first.plan.sha256 in first.plan.text()
    with pytest.raises(NotApproved):
        apply(lab, first, "")
    new = first.certificate.thumbprint
    for edge in EDGES:
        planned = plan(lab, edge)
        before = lab.pipelines()
        result = apply(lab, planned)
        assert result.completed, result.error
        used = {k: v - before.get(k, 0) for k, v in lab.pipelines().items()}
        skipped = {o.step for o in result.outcomes if o.status == "skipped"}
        expected = round_trips(planned.plan, skipped)
        assert sum(round_trips(planned.plan).values()) >= sum(expected.values())
        # the lock (3 on the Edge), the rolling check (1 per other Edge) and the snapshot (1)
        assert used[edge] == expected[edge] + 3
        assert used["EX01"] == expected.get("EX01", 0) + 1
        assert used["EDGE02" if edge == "EDGE01" else "EDGE01"] == 1
        assert lab.probe(edge, "smtp") == new
        answers = [a.answer for a in result.answers]
        assert "No" in answers  # F12: the default question answered No
    assert findings(lab) == [], "\n".join(findings(lab))
    org = lab.store.read()
    for edge in EDGES:
        assert org.server(edge).services["MSExchangeTransport"] == "Running"
        assert [c.name for c in org.send_connectors if edge in c.source_transport_servers]
    journal = layout.journal_path(CHANGE, "EDGE01").read_text()
    assert lab.password not in journal


def test_resubscribe_route_replacing_the_default_ends_healthy_and_keeps_connectors(lab):
    lab.prepare("EDGE01")
    options = Options(
        replace_default_certificate=True,
        remove_subscription_first=False,
        drain_timeout=30,
        sync_timeout=30,
        poll_every=0.2,
    )
    planned = plan(lab, "EDGE01", options)
    assert planned.route == "resubscribe"
    # said before approval: the new default stays staged on EX01, so edge-hub-clash will warn
    (said,) = [n for n in planned.plan.notes if n.startswith("replace_default_certificate:")]
    assert "edge-hub-clash" in said and planned.certificate.staging in said
    ids = step_ids(planned)
    assert ids.index("restart-adam-edge01") < ids.index("subscription-file-edge01")
    assert ids.index("subscribe-edge01") < ids.index("tls-name-outbound-to-office-365")
    sources = {c.name: list(c.source_transport_servers) for c in lab.store.read().send_connectors}
    result = apply(lab, planned)
    assert result.completed, result.error
    new = planned.certificate.thumbprint
    assert lab.probe("EDGE01", "ldaps") == new == lab.probe("EDGE01", "smtp")
    after = {c.name: list(c.source_transport_servers) for c in lab.store.read().send_connectors}
    assert {k: sorted(v) for k, v in after.items()} == {k: sorted(v) for k, v in sources.items()}
    text = layout.journal_path(CHANGE, "EDGE01").read_text()
    assert "ESRAPassword" not in text and "EdgeSubscriptionData" not in text
    files = lab.store.read().server("EDGE01").files
    assert not [f for f in files if f.endswith(".xml")]  # the file was deleted from the Edge
    (warned,) = [f for f in findings(lab) if "edge-hub-clash" in f]  # as the plan said
    assert warned.startswith("WARNING edge-hub-clash: EDGE01's default certificate " + new)


def test_a_rerun_after_completion_skips_every_step(lab):
    lab.prepare("EDGE01")
    planned = plan(lab, "EDGE01")
    assert apply(lab, planned).completed
    again = apply(lab, plan(lab, "EDGE01"), planned.plan.sha256)
    assert again.completed, again.error
    assert {o.status for o in again.outcomes} == {"skipped"}


def test_the_next_edge_waits_while_another_is_drained(lab):
    for edge in EDGES:
        lab.prepare(edge)
    planned = plan(lab, "EDGE02")
    lab.ok("EDGE01", "Suspend-Service", Name="MSExchangeTransport")
    with pytest.raises(ResubscribeRefused, match="never two Edges drained at once"):
        apply(lab, planned)
    assert lab.store.read().server("EDGE02").services["MSExchangeTransport"] == "Running"
    assert not list(Journal(layout.journal_path(CHANGE, "EDGE02")).read().events("step-started"))


def test_phase_03_needs_phase_02_of_the_same_change(lab):
    with pytest.raises(Exception, match="no completed phase 02 for EDGE01"):
        plan(lab, "EDGE01")


def test_no_mailbox_server_holding_the_certificate_is_refused(lab):
    prepared = lab.prepare("EDGE01")
    thumb = prepared.candidate.thumbprint
    lab.ok("EX01", "Remove-ExchangeCertificate", Thumbprint=thumb, Server="EX01", Confirm=False)
    with pytest.raises(ResubscribeRefused, match="F9: EX01 holds no certificate"):
        plan(lab, "EDGE01")


def test_remove_subscription_first_refused_when_it_would_delete_a_connector(lab):
    lab.prepare("EDGE01")
    lab.ok(
        "EX01",
        "Set-SendConnector",
        Identity=HYBRID,
        SourceTransportServers={"Remove": ["EDGE02"]},
    )
    options = Options(replace_default_certificate=True, remove_subscription_first=True)
    with pytest.raises(ResubscribeRefused, match="only source of Outbound to Office 365"):
        plan(lab, "EDGE01", options)


def test_a_subscription_file_older_than_its_lifetime_is_not_imported_then_a_rerun_makes_one(lab):
    lab.prepare("EDGE01")
    options = Options(replace_default_certificate=True, drain_timeout=30, poll_every=0.2)
    planned = plan(lab, "EDGE01", options)
    before = {s.edge: s.create_utc for s in lab.store.read().subscriptions}
    ticks = iter([0.0])  # the file is read at 0 s, then 1441 minutes seem to pass (F8)
    result = apply(lab, planned, clock=lambda: next(ticks, 1441 * 60.0))
    assert not result.completed
    assert result.error.startswith("step subscribe-edge01 on EX01 failed: F8:")
    assert {s.edge: s.create_utc for s in lab.store.read().subscriptions} == before
    again = apply(lab, planned)
    assert again.completed, again.error
    done = {o.step: o.status for o in again.outcomes}
    assert done["subscription-file-edge01"] == "done" and done["drain-edge01"] == "skipped"
    assert lab.probe("EDGE01", "ldaps") == planned.certificate.thumbprint


def test_a_wrong_site_is_refused_before_any_change(lab):
    lab.prepare("EDGE01")
    path = lab.directory / "inventory.yaml"
    path.write_text(path.read_text().replace("Default-First-Site-Name", "Branch-Site"))
    lab.inventory = load_inventory(path)
    with pytest.raises(ResubscribeRefused, match="subscribed in AD site 'Default-First-Site-Name'"):
        plan(lab, "EDGE01")


def test_a_certificate_for_another_fqdn_is_refused(lab):
    lab.prepare("EDGE01")
    path = lab.directory / "inventory.yaml"
    text = path.read_text()
    assert "hybrid.contoso.com" in text
    path.write_text(text.replace("- hybrid.contoso.com", "- mail.fabrikam.com"))
    lab.inventory = load_inventory(path)
    with pytest.raises(ResubscribeRefused, match=r"mail\.fabrikam\.com"):
        plan(lab, "EDGE01")


def test_an_edge_locked_by_someone_else_is_refused(lab, tmp_path):
    lab.prepare("EDGE01")
    planned = plan(lab, "EDGE01")
    other = Journal(tmp_path / "other.jsonl", who="bob@elsewhere")
    with lab.factory(lab.inventory, "EDGE01") as shell:
        EdgeLock(shell, "CHG-OTHER", other).acquire()
    with pytest.raises(LockHeld, match="held by bob@elsewhere"):
        apply(lab, planned)
    assert lab.store.read().server("EDGE01").services["MSExchangeTransport"] == "Running"
