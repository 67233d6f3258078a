"""Phase 02's routes csr and edge-request against the seed-incident lab over the real pypsrp
client (lab daemon): the request, the certificate the lab's CA issues for it, the plan and its
apply, and bad inputs refused."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgebook import certs
from edgebook.certs import CertificateError
from edgebook.change.journal import Journal
from edgebook.errors import ConfigError
from edgebook.evidence import layout
from edgebook.exchange.command import Command
from edgebook.exchange.connect import resolve_credentials, shell_factory
from edgebook.lab import control
from edgebook.lab.org import certstore, pki
from edgebook.lab.org.model import CertEntry
from edgebook.lab.org.store import LabStore
from edgebook.phases import prepare
from edgebook.phases.prepare_certificate import PrepareRefused
from tests.test_prepare_lab import CHANGE, ex01_thumbprints, start

PASSPHRASE = "key passphrase for the test"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    directory = tmp_path / "lab"
    control.create(directory, "seed-incident")
    yield directory
    control.stop(directory)


def sign(directory: Path, request: x509.CertificateSigningRequest, path: Path) -> Path:
    """The lab's issuing CA (DigiCert Global G2 TLS RSA SHA256 2020 CA1) signs the request;
    the issued certificate and its issuing CA are written as PEM, as a CA hands them out."""
    org = LabStore(directory).read()
    ca = next(c for c in org.cas if c.id == "digicert-tls-2020")
    ca_cert, ca_key = pki.load(ca.der_b64), pki.unseal(org.secret, ca.key_sealed)
    now = dt.datetime.now(dt.UTC)
    builder = pki.certificate_builder(
        request.subject,
        ca_cert.subject,
        request.public_key(),
        now - dt.timedelta(hours=1),
        now + dt.timedelta(days=365),
        ca_key,
    ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    issued = builder.add_extension(san.value, critical=False).sign(ca_key, hashes.SHA256())
    path.write_bytes(pki.pem(issued) + pki.pem(ca_cert))
    return path


def csr_names(request: x509.CertificateSigningRequest) -> list[str]:
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return san.value.get_values_for_type(x509.DNSName)


def test_csr_makes_an_encrypted_key_and_a_request_then_stages_the_issued_certificate(
    lab, tmp_path, monkeypatch
):
    monkeypatch.setenv("KEY_PW", PASSPHRASE)
    inventory = start(lab)
    before = ex01_thumbprints(lab)
    first = prepare.prepare(inventory, "EDGE01", CHANGE, route="csr", pfx_password="env:KEY_PW")
    assert first.candidate is None and first.plan.steps == ()
    assert "certificate=<the issued file>" in first.waiting
    assert any(n.startswith("waiting: ") for n in first.plan.notes)
    key_path, csr_path = Path(first.files["key"]), Path(first.files["csr"])
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key_text = key_path.read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key_text  # PKCS#8, encrypted
    with pytest.raises(CertificateError):
        certs.load_private_key(key_path, "not the passphrase")
    key = certs.load_private_key(key_path, PASSPHRASE)
    request = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert request.is_signature_valid and certs.key_matches(key, _self_signed(request, key))
    edge_fqdn = inventory.edge("EDGE01").fqdn
    assert set(csr_names(request)) == {*inventory.change.expected_fqdns, edge_fqdn}
    assert "CN=hybrid.contoso.com" in certs.subject_name(_self_signed(request, key))
    assert ex01_thumbprints(lab) == before

    # the key is never overwritten: a second run keeps the same key and request
    again = prepare.prepare(inventory, "EDGE01", CHANGE, route="csr", pfx_password="env:KEY_PW")
    assert key_path.read_bytes() == key_text and again.files == first.files

    issued = sign(lab, request, tmp_path / "issued.pem")
    planned = prepare.prepare(
        inventory,
        "EDGE01",
        CHANGE,
        route="csr",
        pfx_password="env:KEY_PW",
        certificate=str(issued),
    )
    leaf = certs.load_certificates(issued).leaf
    new = certs.thumbprint(leaf)
    assert planned.waiting == "" and planned.candidate.thumbprint == new
    pfx_path = Path(planned.files["pfx"])
    assert stat.S_IMODE(pfx_path.stat().st_mode) == 0o600
    bundle = certs.load_certificates(pfx_path, PASSPHRASE)
    assert certs.key_matches(bundle.private_key, leaf) and bundle.chain  # key + issuing CA
    assert planned.assessment.phase03 == "certificate-only"
    assert [s.id for s in planned.plan.steps] == ["stage-ex01"]
    assert PASSPHRASE not in planned.plan_path.read_text()
    assert ex01_thumbprints(lab) == before  # planning changes nothing

    result = prepare.apply(planned, planned.plan.sha256)
    assert result.completed, result.error
    staged = LabStore(lab).read().server("EX01").certificate(new)
    assert staged is not None and staged.services == 0 and staged.key_sealed is not None
    assert PASSPHRASE not in layout.journal_path(CHANGE, "EDGE01").read_text()
    assert prepare.rollback_change(planned).completed
    assert ex01_thumbprints(lab) == before


def _self_signed(request: x509.CertificateSigningRequest, key) -> x509.Certificate:
    """The request's subject and public key in a certificate, to read them with edgebook.certs."""
    now = dt.datetime.now(dt.UTC)
    return pki.certificate_builder(
        request.subject, request.subject, request.public_key(), now, now, key
    ).sign(key, hashes.SHA256())


def test_csr_refuses_a_wrong_passphrase_and_a_certificate_of_another_key(
    lab, tmp_path, monkeypatch
):
    monkeypatch.setenv("KEY_PW", PASSPHRASE)
    inventory = start(lab)
    with pytest.raises(ConfigError, match="pfx_password"):
        prepare.prepare(inventory, "EDGE01", CHANGE, route="csr")
    first = prepare.prepare(inventory, "EDGE01", CHANGE, route="csr", pfx_password="env:KEY_PW")
    request = x509.load_pem_x509_csr(Path(first.files["csr"]).read_bytes())
    issued = sign(lab, request, tmp_path / "issued.pem")
    monkeypatch.setenv("KEY_PW", "not the passphrase")
    with pytest.raises(PrepareRefused, match=r"wrong password for the private key.*pfx_password"):
        prepare.prepare(
            inventory, "EDGE01", CHANGE, route="csr", pfx_password="env:KEY_PW", certificate=issued
        )
    monkeypatch.setenv("KEY_PW", PASSPHRASE)
    other = certs.generate_csr("CN=hybrid.contoso.com", ["hybrid.contoso.com"])[0]
    foreign = sign(lab, other, tmp_path / "foreign.pem")
    with pytest.raises(PrepareRefused, match="does not belong to the certificate"):
        prepare.prepare(
            inventory, "EDGE01", CHANGE, route="csr", pfx_password="env:KEY_PW", certificate=foreign
        )
    assert "pfx" not in first.files and not list(Path(first.files["key"]).parent.glob("*.pfx"))
    assert not layout.journal_path(CHANGE, "EDGE01").exists()


def pending(directory: Path, edge: str = "EDGE01") -> list:
    return [c for c in LabStore(directory).read().server(edge).certificates if c.pending_request]


def planned_request(inventory):
    planned = prepare.prepare(inventory, "EDGE01", CHANGE, route="edge-request")
    (step,) = planned.plan.steps
    return planned, step


def request_on_edge01(inventory, params: dict) -> x509.CertificateSigningRequest:
    """The plan's New-ExchangeCertificate -GenerateRequest, run by hand on EDGE01."""
    factory = shell_factory(resolve_credentials([inventory.server("EDGE01")]))
    with factory(inventory, "EDGE01") as shell:
        shell.run("New-ExchangeCertificate", **params)
    (entry,) = pending(inventory.path.parent)
    return x509.load_pem_x509_csr(entry.request_pem.encode())


def test_edge_request_plans_the_request_on_the_edge_with_the_f5_consequence(lab):
    inventory = start(lab)
    planned, step = planned_request(inventory)
    assert planned.candidate is None and "certificate=<the issued file>" in planned.waiting
    assert step.server == "EDGE01" and step.id == "request-edge01"
    (call,) = step.calls
    assert call.cmdlet == "New-ExchangeCertificate" and call.params["GenerateRequest"] is True
    assert call.params["PrivateKeyExportable"] is True and "Force" not in call.params
    assert call.params["SubjectName"].startswith("CN=hybrid.contoso.com, O=Contoso Ltd")
    edge_fqdn = inventory.edge("EDGE01").fqdn
    assert set(call.params["DomainName"]) == {*inventory.change.expected_fqdns, edge_fqdn}
    assert any("(F5)" in n and "never leaves" in n for n in planned.plan.notes)
    assert pending(lab) == []  # planning changes nothing


def key_of(directory: Path, entry: CertEntry) -> rsa.RSAPrivateNumbers:
    """The private numbers of a lab store entry's key (sealed anew on every save)."""
    key = certstore.key_of(LabStore(directory).read(), entry)
    assert key is not None, f"{entry.thumbprint} has no private key"
    return key.private_numbers()


def journalled(step: str) -> list[dict]:
    return [
        r
        for r in Journal(layout.journal_path(CHANGE, "EDGE01")).read().records
        if r.get("step") == step
    ]


def test_edge_request_apply_leaves_a_pending_request_on_the_edge(lab):
    inventory = start(lab)
    planned, step = planned_request(inventory)
    result = prepare.apply(planned, planned.plan.sha256)
    assert result.completed, result.error
    (entry,) = pending(lab)
    assert entry.exportable and entry.request_subject == step.calls[0].params["SubjectName"]
    (done,) = [r for r in journalled("request-edge01") if r["event"] == "step-done"]
    (text,) = done["text"]  # the cmdlet's output: the request as Base64 text, journalled
    assert text.startswith("-----BEGIN NEW CERTIFICATE REQUEST-----")
    made = x509.load_pem_x509_csr(entry.request_pem.encode())
    assert x509.load_pem_x509_csr(text.encode()) == made
    assert done["undo"][0]["params"] == {"Thumbprint": entry.thumbprint}  # read back (Appeared)
    kept = Path(planned.files["request"])  # a file for the CA, and the records say where
    assert kept.parent == layout.edge_dir(CHANGE, "EDGE01") / "certificate"
    assert x509.load_pem_x509_csr(kept.read_bytes()) == made
    assert planned.records()["edge_request"]["text"] == text
    again = prepare.prepare(inventory, "EDGE01", CHANGE, route="edge-request")
    assert again.files["request"] == str(kept) and kept.name in again.waiting
    assert prepare.rollback_change(planned).completed and pending(lab) == []
    assert prepare.prepare(inventory, "EDGE01", CHANGE, route="edge-request").request is None


def test_edge_request_completed_on_the_edge_then_staged_and_rolled_back(lab, tmp_path):
    inventory = start(lab)
    planned, _ = planned_request(inventory)
    assert prepare.apply(planned, planned.plan.sha256).completed
    (entry,) = pending(lab)
    request = x509.load_pem_x509_csr(Path(planned.files["request"]).read_bytes())
    issued = sign(lab, request, tmp_path / "issued.pem")
    before = ex01_thumbprints(lab)
    staged = prepare.prepare(
        inventory, "EDGE01", CHANGE, route="edge-request", certificate=str(issued)
    )
    leaf = certs.load_certificates(issued).leaf
    new = certs.thumbprint(leaf)
    assert staged.candidate.thumbprint == new and not staged.waiting
    assert staged.candidate.password is None  # the bare certificate: the key stays on the Edge
    complete, stage = staged.plan.steps
    assert (complete.id, stage.id) == ("complete-edge01", "stage-ex01")
    (call,) = complete.calls
    assert call.cmdlet == "Import-ExchangeCertificate" and set(call.params) == {"FileData"}
    assert complete.server == "EDGE01" and not complete.reversible
    assert "destroy" in complete.no_undo and entry.thumbprint in complete.pre[0].says
    assert any("completes the pending request" in n for n in staged.plan.notes)
    assert not any(entry.thumbprint in n and "F2" in n for n in staged.plan.notes)
    p7b = Path(staged.files["certificate"]).read_bytes()  # PKCS#7: Import-ExchangeCertificate
    assert leaf in pkcs7.load_der_pkcs7_certificates(p7b)  # with its chain; no key in it
    assert ex01_thumbprints(lab) == before and len(pending(lab)) == 1  # planning changes nothing
    result = prepare.apply(staged, staged.plan.sha256)
    assert result.completed, result.error
    on_edge = LabStore(lab).read().server("EDGE01").certificate(new)
    assert pending(lab) == [] and on_edge is not None and on_edge.services == 0
    assert key_of(lab, on_edge) == key_of(lab, entry) and on_edge.exportable  # the request's
    factory = shell_factory(resolve_credentials([inventory.server("EDGE01")]))
    with factory(inventory, "EDGE01") as shell:
        select = Command("Select-Object", {"Property": ["Status", "HasPrivateKey"]})
        (seen,) = shell.run_batch(
            [Command("Get-ExchangeCertificate", {"Thumbprint": new}, (select,))]
        )
    assert str(seen["Status"]) == "Valid" and seen["HasPrivateKey"] is True
    on_ex01 = LabStore(lab).read().server("EX01").certificate(new)
    assert on_ex01 is not None and on_ex01.services == 0 and on_ex01.key_sealed is None
    (settled,) = [r for r in journalled("request-edge01") if r["event"] == "rollback-skipped"]
    assert settled["superseded_by"] == "complete-edge01"
    rolled = prepare.rollback_change(staged)
    assert rolled.completed, rolled.error
    outcomes = {o.step: o.status for o in rolled.outcomes}
    assert outcomes == {"stage-ex01": "rolled-back", "complete-edge01": "not-reversible"}
    assert ex01_thumbprints(lab) == before
    kept = LabStore(lab).read().server("EDGE01").certificate(new)
    assert kept is not None and key_of(lab, kept) == key_of(lab, entry)  # the key is not lost


def test_edge_request_refuses_a_certificate_not_issued_for_the_pending_request(lab, tmp_path):
    inventory = start(lab)
    _, step = planned_request(inventory)
    request_on_edge01(inventory, dict(step.calls[0].params))
    other = certs.generate_csr("CN=hybrid.contoso.com", ["hybrid.contoso.com"])[0]
    foreign = sign(lab, other, tmp_path / "foreign.pem")
    before = ex01_thumbprints(lab)
    with pytest.raises(PrepareRefused, match="no pending request on EDGE01"):
        prepare.prepare(inventory, "EDGE01", CHANGE, route="edge-request", certificate=str(foreign))
    assert ex01_thumbprints(lab) == before
    assert not layout.journal_path(CHANGE, "EDGE01").exists()
