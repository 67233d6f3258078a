"""Plans approved up front for both Edges of seed-incident still apply in order: the first Edge's
org-wide effects (the certificate staged on EX01, the hybrid connector's TlsCertificateName) are
this change's own, so the second Edge's plans keep their hashes; anyone else's change to the same
objects still changes the hash, and the apply is refused saying what differs."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from edgebook.change.approval import NotApproved
from edgebook.change.journal import Journal
from edgebook.evidence import layout
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import prepare, resubscribe, verify
from edgebook.phases.own_effects import read_own_effects
from tests.support import certs
from tests.support.resubscribe import CHANGE, FAST, InProcessLab

EDGES = ("EDGE01", "EDGE02")
HYBRID = "Outbound to Office 365"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    return InProcessLab(tmp_path / "lab")


def plan_02(lab: InProcessLab, edge: str) -> prepare.Prepared:
    return prepare.prepare(lab.inventory, edge, CHANGE, shell_factory=lab.factory)


def plan_03(lab: InProcessLab, edge: str) -> resubscribe.Planned:
    return resubscribe.plan(lab.inventory, edge, CHANGE, FAST, shell_factory=lab.factory)


def plan_04(lab: InProcessLab, edge: str) -> verify.Verification:
    return verify.plan_verification(lab.inventory, edge, CHANGE, shell_factory=lab.factory)


def apply_02(lab: InProcessLab, edge: str, sha: str):
    return prepare.apply(plan_02(lab, edge), sha, shell_factory=lab.factory)


def apply_03(lab: InProcessLab, edge: str, sha: str):
    planned = plan_03(lab, edge)
    return resubscribe.apply(planned, sha, shell_factory=lab.factory, probe=lab.probe)


def apply_04(lab: InProcessLab, edge: str, sha: str):
    return verify.apply(plan_04(lab, edge), sha, shell_factory=lab.factory)


def events(edge: str, name: str, sha: str) -> list[str]:
    journal = Journal(layout.journal_path(CHANGE, edge)).read()
    return [r["step"] for r in journal.events(name, plan=sha)]


def connector_name(lab: InProcessLab) -> str | None:
    org = inspect_phase.inspect(lab.inventory, shell_factory=lab.factory).org
    return next(c.tls_certificate_name for c in org.send_connectors if c.name == HYBRID)


def test_phase_02_approved_up_front_applies_after_the_first_edge_changed_fully(lab):
    computed = {edge: plan_02(lab, edge) for edge in EDGES}
    up_front = {edge: planned.plan.sha256 for edge, planned in computed.items()}
    # F18 (EDGE01 still uses the old issuer) is advice about another Edge, outside the hash
    assert any(line.startswith("F18: EDGE01") for line in computed["EDGE02"].advice)
    assert not any("F18" in note for note in computed["EDGE02"].plan.notes)
    assert apply_02(lab, "EDGE01", up_front["EDGE01"]).completed
    first = plan_03(lab, "EDGE01")
    assert apply_03(lab, "EDGE01", first.plan.sha256).completed
    assert apply_04(lab, "EDGE01", plan_04(lab, "EDGE01").plan.sha256).completed
    old = first.plan.facts["organisation"]["send_connectors"]
    assert connector_name(lab) == first.certificate.tls_name  # EDGE01's phase 03 renamed it

    again = plan_02(lab, "EDGE02")
    assert again.plan.sha256 == up_front["EDGE02"]
    assert again.plan.facts["organisation"]["send_connectors"] == old  # as before the change
    result = prepare.apply(again, up_front["EDGE02"], shell_factory=lab.factory)
    assert result.completed, result.error
    # both Edges carry one certificate: EDGE01 staged it on EX01 already
    assert events("EDGE02", "step-skipped", up_front["EDGE02"]) == ["stage-ex01"]


def test_every_phase_approved_up_front_for_both_edges_applies_in_rolling_order(lab):
    for make, run in ((plan_02, apply_02), (plan_03, apply_03), (plan_04, apply_04)):
        approved = {edge: make(lab, edge).plan.sha256 for edge in EDGES}
        for edge in EDGES:
            result = run(lab, edge, approved[edge])
            assert result.completed, f"{make.__name__} {edge}: {result.error}"
    resubscribed = [
        r["plan_sha256"]
        for r in Journal(layout.journal_path(CHANGE, "EDGE02")).read().events("apply-completed")
    ]
    # EDGE02's phase 03 plan renames the connector too; EDGE01 had done it: skipped as done
    skipped = [s for sha in resubscribed for s in events("EDGE02", "step-skipped", sha)]
    assert "tls-name-outbound-to-office-365" in skipped
    assert connector_name(lab) == plan_03(lab, "EDGE02").certificate.tls_name


def test_a_foreign_tls_certificate_name_is_refused_saying_what_differs(lab):
    for edge in EDGES:
        lab.prepare(edge, CHANGE)
    approved = {edge: plan_03(lab, edge).plan.sha256 for edge in EDGES}
    assert apply_03(lab, "EDGE01", approved["EDGE01"]).completed
    ex01 = next(
        m
        for m in inspect_phase.inspect(lab.inventory, shell_factory=lab.factory).org.mailbox_servers
        if m.name == "EX01"
    )
    default = next(c for c in ex01.certificates if c.thumbprint == ex01.internal_thumbprint)
    foreign = default.tls_certificate_name  # a certificate on EX01: Set-SendConnector takes it
    lab.ok("EX01", "Set-SendConnector", Identity=HYBRID, TlsCertificateName=foreign)
    with pytest.raises(NotApproved, match="world changed") as refused:
        apply_03(lab, "EDGE02", approved["EDGE02"])
    assert "facts organisation.send_connectors" in str(refused.value)
    assert not events("EDGE02", "apply-started", approved["EDGE02"])


def test_a_foreign_certificate_on_the_staging_server_is_refused(lab, tmp_path):
    approved = {edge: plan_02(lab, edge).plan.sha256 for edge in EDGES}
    assert apply_02(lab, "EDGE01", approved["EDGE01"]).completed
    ca = certs.make_ca([(NameOID.COMMON_NAME, "Someone Else CA")])
    cn = [(NameOID.COMMON_NAME, "intranet.contoso.com")]
    leaf = certs.make_leaf(ca, cn, ["intranet.contoso.com"]).cert
    lab.ok(
        "EX01",
        "Import-ExchangeCertificate",
        FileData=pkcs7.serialize_certificates([leaf], serialization.Encoding.DER),
        Server="EX01",
    )
    with pytest.raises(NotApproved) as refused:
        apply_02(lab, "EDGE02", approved["EDGE02"])
    assert "facts organisation.staging_certificates" in str(refused.value)


def test_own_effects_follow_the_journal_and_its_rollbacks(lab):
    planned = lab.prepare("EDGE01", CHANGE)
    own = read_own_effects(CHANGE, EDGES)
    thumb = planned.candidate.thumbprint
    assert own.staged_here("ex01", thumb.lower())
    assert not own.staged_here("EX02", thumb)
    assert own.before_change(HYBRID, "TlsCertificateName", "x") == "x"  # not set by the change
    rolled = prepare.rollback_change(planned, shell_factory=lab.factory)
    assert rolled.completed, rolled.error
    assert not read_own_effects(CHANGE, EDGES).staged_here("EX01", thumb)
