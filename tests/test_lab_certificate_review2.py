"""The certificate cmdlets against what real servers show, third review (Import, Enable, Remove):
as an independent client (raw pypsrp) sees them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import PowerShell

from edgebook.certs import thumbprint
from edgebook.lab.backend import LabBackend
from edgebook.lab.org import pki
from tests.support.lab import lab_copy
from tests.test_lab_certificate_audit import ARE_YOU_SURE, Client, secure

INVALID_ARGUMENT = 5  # System.Management.Automation.ErrorCategory.InvalidArgument


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(LabBackend(lab_copy("healthy", tmp_path / "lab")))
    yield client
    client.close()


def errors_of(client: Client, server: str, cmdlet: str, **params: Any) -> list[Any]:
    """The ErrorRecords of one cmdlet (pypsrp's objects: message, category, reason)."""
    ps = PowerShell(client.pools[server])
    ps.add_cmdlet(cmdlet)
    for key, value in params.items():
        ps.add_parameter(key, value)
    ps.invoke()
    return list(ps.streams.error)


def default_smtp(client: Client, server: str) -> str:
    ps = PowerShell(client.pools[server])
    ps.add_cmdlet("Get-TransportService")
    ps.add_cmdlet("Select-Object").add_parameter(
        "Property", ["InternalTransportCertificateThumbprint"]
    )
    (row,) = ps.invoke()
    return str(row.extended_properties["InternalTransportCertificateThumbprint"])


def pfx_of(not_before: dt.datetime, not_after: dt.datetime, name: str = "") -> tuple[str, bytes]:
    """(thumbprint, PKCS#12 file protected by "pw") of a new self-signed certificate."""
    cert, key = pki.issue(pki.parse_name("CN=relay.contoso.com"), [], not_before, not_after)
    return thumbprint(cert), pki.pfx(cert, key, [], "pw", name)


def test_remove_asks_in_exchanges_words(client):
    """A server's prompt (somoit.net, "Cannot remove exchange certificate"): "Remove certificate
    with thumbprint <x> from the computer's certificate store?"."""
    thumb = client.new_unused("EDGE01")
    client.ui.answers = [0]
    client.ok("EDGE01", "Remove-ExchangeCertificate", Thumbprint=thumb)
    assert client.ui.questions == [
        f"{ARE_YOU_SURE}\nRemove certificate with thumbprint {thumb} from the computer's "
        "certificate store?"
    ]
    assert thumb not in client.thumbprints("EDGE01")


def test_removing_the_internal_transport_certificate_asks_first_then_refuses(client):
    """The same capture: Exchange asks, then answers "The internal transport certificate cannot
    be removed ..." as an InvalidOperationException in category InvalidArgument. No: nothing."""
    default = default_smtp(client, "EDGE01")
    client.ui.answers = [0]
    (error,) = errors_of(client, "EDGE01", "Remove-ExchangeCertificate", Thumbprint=default)
    assert len(client.ui.questions) == 1 and default in client.ui.questions[0]
    assert str(error).startswith(
        "A special Rpc error occurs on server EDGE01: The internal transport certificate cannot "
        "be removed because that would cause the Microsoft Exchange Transport service to stop."
    )
    assert (error.reason, error.category) == ("InvalidOperationException", INVALID_ARGUMENT)
    client.ui.answers = [2]  # No
    assert errors_of(client, "EDGE01", "Remove-ExchangeCertificate", Thumbprint=default) == []
    assert default in client.thumbprints("EDGE01")


def test_a_pfx_keeps_its_friendly_name(client):
    """Windows keeps a PKCS#12 file's friendlyName as the certificate's FriendlyName; Microsoft
    documents no default for Import's -FriendlyName, which replaces it when given."""
    now = dt.datetime.now(dt.UTC)
    thumb, data = pfx_of(now - dt.timedelta(days=1), now + dt.timedelta(days=300), "Relay 2027")
    client.ok("EDGE01", "Import-ExchangeCertificate", FileData=data, Password=secure("pw"))
    assert client.certificate("EDGE01", thumb, "FriendlyName") == {"FriendlyName": "Relay 2027"}
    client.ok(
        "EX01",
        "Import-ExchangeCertificate",
        FileData=data,
        Password=secure("pw"),
        FriendlyName="Relay copy",
    )
    assert client.certificate("EX01", thumb, "FriendlyName") == {"FriendlyName": "Relay copy"}


def test_an_export_imported_elsewhere_keeps_the_name(client):
    """Export with -Password writes the FriendlyName into the file; the import reads it back."""
    thumb = client.new_unused("EDGE01", PrivateKeyExportable=True, FriendlyName="Edge SMTP")
    data = client.export_pfx("EDGE01", thumb)
    client.ok("EX01", "Import-ExchangeCertificate", FileData=data, Password=secure("pw"))
    assert client.certificate("EX01", thumb, "FriendlyName") == {"FriendlyName": "Edge SMTP"}


def test_enabling_an_expired_certificate_is_exchanges_cryptographic_error(client):
    """Exchange's enabling code answers an expired certificate with CryptographicException "The
    certificate is expired." (setup's Install-ExchangeCertificate, rmilne.ca); the import itself
    works and shows Status DateInvalid."""
    now = dt.datetime.now(dt.UTC)
    thumb, data = pfx_of(now - dt.timedelta(days=400), now - dt.timedelta(days=1))
    client.ok("EDGE01", "Import-ExchangeCertificate", FileData=data, Password=secure("pw"))
    assert str(client.certificate("EDGE01", thumb, "Status")["Status"]) == "DateInvalid"
    (error,) = errors_of(
        client, "EDGE01", "Enable-ExchangeCertificate", Thumbprint=thumb, Services="SMTP"
    )
    assert (str(error), error.reason) == ("The certificate is expired.", "CryptographicException")
    assert str(client.certificate("EDGE01", thumb, "Services")["Services"]) == "None"


def test_a_certificate_not_yet_valid_keeps_the_labs_words(client):
    now = dt.datetime.now(dt.UTC)
    thumb, data = pfx_of(now + dt.timedelta(days=2), now + dt.timedelta(days=300))
    client.ok("EDGE01", "Import-ExchangeCertificate", FileData=data, Password=secure("pw"))
    message = client.fails(
        "EDGE01", "Enable-ExchangeCertificate", Thumbprint=thumb, Services="SMTP"
    )
    assert message == (
        f"The certificate with thumbprint {thumb} is not yet valid and can't be enabled."
    )


def test_f21_carries_the_rpc_prefix_microsoft_documents(client):
    """Microsoft ("Can't remove a certificate that's installed in Exchange Server"): "A special
    Rpc error occurs on server <server name>: These certificates are tagged with following Send
    Connectors : <Send connector names>. ...": a runbook matching the bare text must not pass."""
    ps = PowerShell(client.pools["EX01"])
    ps.add_cmdlet("Get-ExchangeCertificate").add_parameter("DomainName", "hybrid.contoso.com")
    ps.add_cmdlet("Select-Object").add_parameter("Property", ["Thumbprint", "IsSelfSigned"])
    (thumb,) = [
        o.extended_properties["Thumbprint"]
        for o in ps.invoke()
        if not o.extended_properties["IsSelfSigned"]
    ]
    message = client.fails("EX01", "Remove-ExchangeCertificate", Thumbprint=thumb, Confirm=False)
    assert message.startswith(
        "A special Rpc error occurs on server EX01: These certificates are tagged with following "
        "Send Connectors : Outbound to Office 365. Removing and replacing certificates"
    )
    assert thumb in client.thumbprints("EX01")
