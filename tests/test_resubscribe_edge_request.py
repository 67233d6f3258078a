"""Phase 03 on a certificate phase 02 prepared by route edge-request (seed-incident, pypsrp in
process): the request made on the Edge, the lab's CA issues the certificate, phase 02 completes
it there and stages it on EX01; phase 03 imports nothing, checks it is on the Edge with its key,
and puts it into service answering No to the default question (F12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from edgebook.evidence import layout
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import prepare, resubscribe
from edgebook.phases.resubscribe import ResubscribeRefused
from tests.support.resubscribe import CHANGE, FAST, InProcessLab
from tests.test_prepare_routes import sign


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    return InProcessLab(tmp_path / "lab")


def prepared_on_edge(lab: InProcessLab, folder: Path) -> str:
    """Phase 02, route edge-request, both applies: the request, then the issued certificate
    completed on EDGE01 and staged on EX01. Returns its thumbprint."""
    factory = lab.factory
    asked = prepare.prepare(
        lab.inventory, "EDGE01", CHANGE, route="edge-request", shell_factory=factory
    )
    assert prepare.apply(asked, asked.plan.sha256, shell_factory=factory).completed
    request = x509.load_pem_x509_csr(Path(asked.files["request"]).read_bytes())
    issued = sign(lab.directory, request, folder / "issued.pem")
    staged = prepare.prepare(
        lab.inventory,
        "EDGE01",
        CHANGE,
        route="edge-request",
        certificate=str(issued),
        shell_factory=factory,
    )
    result = prepare.apply(staged, staged.plan.sha256, shell_factory=factory)
    assert result.completed, result.error
    assert staged.candidate is not None
    return staged.candidate.thumbprint


def edge01_problems(lab: InProcessLab) -> list[str]:
    result = inspect_phase.inspect(lab.inventory, shell_factory=lab.factory)
    return [
        f"{f.severity.name} {f.slug}: {f.message}"
        for f in result.findings
        if f.severity.name == "ERROR" and f.server == "EDGE01" and f.slug != "probe-failed"
    ]


def test_certificate_only_route_puts_the_completed_certificate_into_service(lab, tmp_path):
    new = prepared_on_edge(lab, tmp_path)
    planned = resubscribe.plan(lab.inventory, "EDGE01", CHANGE, FAST, shell_factory=lab.factory)
    assert planned.route == "certificate-only"
    assert planned.certificate.key_on_edge and planned.certificate.pfx is None
    ids = [s.id for s in planned.plan.steps]
    assert ids[:3] == ["drain-edge01", "stop-transport-edge01", "enable-smtp-edge01"]
    assert not any(i.startswith(("import-", "subscribe", "restart-adam")) for i in ids)
    assert ids[-2:] == ["start-transport-edge01", "resume-edge01"]
    enable = planned.plan.steps[2]
    assert any(new in c.says and "private key" in c.says for c in enable.pre)
    assert [q.answer for q in enable.questions] == ["No"]  # F12: the default stays
    result = resubscribe.apply(
        planned, planned.plan.sha256, shell_factory=lab.factory, probe=lab.probe
    )
    assert result.completed, result.error
    assert "No" in [a.answer for a in result.answers]
    assert lab.probe("EDGE01", "smtp") == new
    edge = lab.store.read().server("EDGE01")
    assert edge.services["MSExchangeTransport"] == "Running"
    hybrid = next(
        c for c in lab.store.read().send_connectors if "EDGE01" in c.source_transport_servers
    )
    assert hybrid.tls_certificate_name == planned.certificate.tls_name
    assert edge01_problems(lab) == [], "\n".join(edge01_problems(lab))


def test_refused_before_any_change_when_the_certificate_left_the_edge(lab, tmp_path):
    new = prepared_on_edge(lab, tmp_path)
    lab.ok("EDGE01", "Remove-ExchangeCertificate", Thumbprint=new, Confirm=False)  # by hand
    before = lab.store.read().server("EDGE01")
    with pytest.raises(ResubscribeRefused, match=f"{new} is not on EDGE01: phase 02"):
        resubscribe.plan(lab.inventory, "EDGE01", CHANGE, FAST, shell_factory=lab.factory)
    after = lab.store.read().server("EDGE01")
    assert after.services == before.services
    assert [c.thumbprint for c in after.certificates] == [c.thumbprint for c in before.certificates]
