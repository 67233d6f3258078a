"""The certificate cmdlets against Microsoft's pages, second review: what a consultant tries from
the documented examples, as an independent client (raw pypsrp) sees it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell

from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from tests.support.lab import lab_copy
from tests.test_lab_certificate_audit import Client, secure


@pytest.fixture
def lab(tmp_path: Path) -> LabStore:
    return lab_copy("healthy", tmp_path / "lab")


@pytest.fixture
def client(lab: LabStore) -> Iterator[Client]:
    client = Client(LabBackend(lab))
    yield client
    client.close()


def test_a_request_has_the_documented_default_friendly_name(client):
    """Microsoft (-FriendlyName): "a friendly name for the certificate request or self-signed
    certificate ... The default value is Microsoft Exchange"."""
    before = client.thumbprints("EX01")
    client.ok(
        "EX01", "New-ExchangeCertificate", GenerateRequest=None, SubjectName="CN=r.contoso.com"
    )
    (thumb,) = client.thumbprints("EX01") - before
    assert client.certificate("EX01", thumb, "FriendlyName", "Status") == {
        "FriendlyName": "Microsoft Exchange",
        "Status": "PendingRequest",
    }


def test_export_without_password_is_the_certificate_alone(client):
    """Microsoft: "you need to export the certificate by using the Password parameter to include
    the private key or chain of trust in the certificate file": without it the file is the
    certificate, which imports elsewhere without a key (and can't be enabled there)."""
    thumb = client.new_unused("EX01", PrivateKeyExportable=True)
    (exported,) = client.ok(
        "EX01", "Export-ExchangeCertificate", Thumbprint=thumb, BinaryEncoded=None
    )
    data = bytes(exported.adapted_properties["FileData"])
    assert hashlib.sha1(data).hexdigest().upper() == thumb  # the certificate's DER, no PKCS#12
    (text,) = client.ok("EX01", "Export-ExchangeCertificate", Thumbprint=thumb)
    assert text.startswith("-----BEGIN CERTIFICATE-----\r\n")
    client.ok("EDGE01", "Import-ExchangeCertificate", FileData=data)
    assert client.certificate("EDGE01", thumb, "HasPrivateKey") == {"HasPrivateKey": False}
    message = client.fails(
        "EDGE01", "Enable-ExchangeCertificate", Thumbprint=thumb, Services="SMTP"
    )
    assert "doesn't have a private key" in message


def test_export_with_password_still_carries_the_key(client):
    thumb = client.new_unused("EX01", PrivateKeyExportable=True)
    data = client.export_pfx("EX01", thumb)
    client.ok("EDGE01", "Import-ExchangeCertificate", FileData=data, Password=secure("pw"))
    assert client.certificate("EDGE01", thumb, "HasPrivateKey") == {"HasPrivateKey": True}


def test_export_without_password_still_needs_an_exportable_key(client):
    """Microsoft: "To export a certificate from an Exchange server, the certificate's
    PrivateKeyExportable property needs to have the value True" (F5), password or not."""
    thumb = client.new_unused("EX01")
    message = client.fails(
        "EX01", "Export-ExchangeCertificate", Thumbprint=thumb, BinaryEncoded=None
    )
    assert "PrivateKeyExportable is False" in message


def test_a_subject_name_that_is_no_x500_name_is_a_binding_error(client):
    """-SubjectName is an X500DistinguishedName: PowerShell converts the text when it binds, so
    text .NET can't read fails binding (CannotConvertArgumentNoMessage) before the cmdlet runs."""
    before = client.thumbprints("EX01")
    ps_errors = client.run(
        "EX01", "New-ExchangeCertificate", Services="None", SubjectName="mail.contoso.com"
    )[1]
    assert ps_errors == [
        "Cannot bind parameter 'SubjectName'. Cannot convert value \"mail.contoso.com\" to type "
        '"System.Security.Cryptography.X509Certificates.X500DistinguishedName". Error: "The '
        'string contains an invalid X500 name attribute key, oid, value or delimiter."'
    ]
    ps = PowerShell(client.pools["EX01"])
    ps.add_cmdlet("New-ExchangeCertificate").add_parameter("SubjectName", "mail.contoso.com")
    ps.invoke()
    assert ps.streams.error[0].fq_error.startswith("CannotConvertArgumentNoMessage,")
    assert client.thumbprints("EX01") == before


def test_domain_name_lists_first_the_certificate_exchange_can_select(lab, client):
    """Microsoft (Get-ExchangeCertificate, Example 4): "The first certificate returned is the
    certificate that Exchange selects". A newer pending request for the same name can't be
    selected (no certificate yet), so it does not come first."""
    usable = client.new_unused("EDGE01", DomainName="relay.contoso.com")
    lab.advance(60)  # the request is an hour newer
    before = client.thumbprints("EDGE01")
    client.ok(
        "EDGE01",
        "New-ExchangeCertificate",
        GenerateRequest=None,
        SubjectName="CN=relay.contoso.com",
    )
    (pending,) = client.thumbprints("EDGE01") - before
    ps = PowerShell(client.pools["EDGE01"])
    ps.add_cmdlet("Get-ExchangeCertificate").add_parameter("DomainName", "relay.contoso.com")
    ps.add_cmdlet("Select-Object").add_parameter("Property", ["Thumbprint"])
    listed = [o.extended_properties["Thumbprint"] for o in ps.invoke()]
    assert listed == [usable, pending]


def test_a_key_size_that_is_no_number_gets_dotnets_text(client):
    """-KeySize is an Int32: text that is no number fails binding with .NET's own words."""
    message = client.fails("EX01", "New-ExchangeCertificate", KeySize="abc")
    assert 'Cannot convert value "abc" to type "System.Int32"' in message
    assert "Input string was not in a correct format." in message


def test_root_ca_type_follows_the_root_store(client):
    """Microsoft's table of the default certificates: setup's self-signed "Microsoft Exchange"
    shows RootCAType Registry (it is in the Trusted Root store); a self-signed certificate made
    later shows None, one from a CA ThirdParty, a pending request Unknown."""
    ps = PowerShell(client.pools["EX01"])
    ps.add_cmdlet("Get-ExchangeCertificate")
    ps.add_cmdlet("Select-Object").add_parameter(
        "Property", ["Thumbprint", "IsSelfSigned", "Status", "RootCAType"]
    )
    rows = [o.extended_properties for o in ps.invoke()]
    setup = [r for r in rows if r["IsSelfSigned"]]
    assert setup and {str(r["RootCAType"]) for r in setup} == {"Registry"}
    assert {str(r["RootCAType"]) for r in rows if not r["IsSelfSigned"]} == {"ThirdParty"}
    made = client.new_unused("EX01")
    assert str(client.certificate("EX01", made, "RootCAType")["RootCAType"]) == "None"
    before = client.thumbprints("EX01")
    client.ok("EX01", "New-ExchangeCertificate", GenerateRequest=None, SubjectName="CN=r.x")
    (pending,) = client.thumbprints("EX01") - before
    assert str(client.certificate("EX01", pending, "RootCAType")["RootCAType"]) == "Unknown"
