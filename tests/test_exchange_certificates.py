"""edgebook.exchange.certificates: the certificate reader every phase shares."""

from __future__ import annotations

import pytest

from edgebook.exchange.certificates import (
    PROJECTED,
    CertificateReadError,
    ExchangeView,
    parse_certificate,
    read_certificates,
)
from edgebook.lab.winrm.protocol import CommandCall
from tests.support.lab import Lab, lab_copy
from tests.support.orgs import cert_record, pki, thumb


def test_the_command_projects_exchange_view_on_the_server():
    command = read_certificates("ab" * 20)
    assert [c.name for c in command.chain()] == ["Get-ExchangeCertificate", "Select-Object"]
    assert command.parameters == {"Thumbprint": "AB" * 20}
    assert command.then[0].parameters == {"Property": list(PROJECTED)}
    assert read_certificates().parameters == {}
    with pytest.raises(CertificateReadError, match="40 hex digits"):
        read_certificates("not-a-thumbprint")


@pytest.mark.parametrize("server", ["EX01", "EDGE01"])
def test_both_endpoints_run_the_projection(tmp_path, server):
    """Select-Object is offered by the Edge's and the Mailbox's (NoLanguage) endpoints."""
    lab = Lab(lab_copy("healthy", tmp_path / "lab"))
    command = read_certificates()
    statement = [CommandCall(c.name, dict(c.parameters)) for c in command.chain()]
    result = lab.pipeline(server, statement)
    assert result.terminating is None and not result.errors
    remote = [parse_certificate(obj.properties) for obj in result.output]
    assert remote and all(r.view.missing() == () for r in remote)
    assert any("SMTP" in (r.view.services or ()) for r in remote)


def test_identity_comes_from_raw_data_and_absent_view_stays_unknown():
    public = pki().public
    remote = parse_certificate({"RawData": cert_record(public)["RawData"]})
    assert remote.thumbprint == thumb(public)
    assert remote.subject == "CN=mail.contoso.com, O=Contoso, C=US"
    assert remote.dns_names == ("mail.contoso.com", "smtp.contoso.com")
    assert remote.view == ExchangeView() and len(remote.view.missing()) == 6
    full = parse_certificate(cert_record(public, Services=16, RootCAType="ThirdParty"))
    assert full.view.services == ("SMTP",) and full.view.root_ca_type == "ThirdParty"
    assert full.view.friendly_name == "" and full.view.missing() == ()


def test_bad_records_are_named():
    with pytest.raises(CertificateReadError, match="no RawData"):
        parse_certificate({"Thumbprint": "AB"})
    der = cert_record(pki().public)["RawData"]
    with pytest.raises(CertificateReadError, match="inconsistent"):
        parse_certificate({"Thumbprint": "00" * 20, "RawData": der})
    with pytest.raises(CertificateReadError, match="not a DER certificate"):
        parse_certificate({"RawData": b"garbage"})
