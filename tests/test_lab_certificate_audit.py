"""The certificate cmdlets against Microsoft's documentation, as an independent client sees
them: raw pypsrp pools over the lab's WSMan endpoints (no edgebook shell in between)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import PowerShell
from pypsrp.serializer import TaggedValue

from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.lab.backend import LabBackend
from tests.support.lab import lab_copy
from tests.support.pypsrp_pools import close_pools, open_pools

ARE_YOU_SURE = "Are you sure you want to perform this action?"


class AnsweringUI(PSHostUserInterface):
    """A host UI that records each question and answers it with the next scripted index."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[int] = []
        self.questions: list[str] = []

    def PromptForChoice(
        self,
        runspace: Any,
        pipeline: Any,
        caption: str,
        message: str,
        choices: Any,
        default_choice: int,
    ) -> int:
        self.questions.append(message)
        return self.answers.pop(0)


class Client:
    """EDGE01 (Microsoft.PowerShell + the Exchange snap-in) and EX01 (Microsoft.Exchange), each
    with a host UI that answers questions."""

    def __init__(self, backend: LabBackend) -> None:
        self.ui = AnsweringUI()
        host = PSHost(None, None, False, "audit", None, self.ui, "1.0")
        # SecureString parameters need the session key
        self.endpoints, self.pools = open_pools(backend, host, exchange_keys=True)
        self.run("EDGE01", "Add-PSSnapin", Name=EXCHANGE_SNAPIN)

    def close(self) -> None:
        close_pools(self.endpoints, self.pools)

    def run(self, server: str, cmdlet: str, **params: Any) -> tuple[list[Any], list[str]]:
        """(output, error messages) of one cmdlet; a value of None sends a bare switch."""
        ps = PowerShell(self.pools[server])
        ps.add_cmdlet(cmdlet)
        for key, value in params.items():
            ps.add_parameter(key, value)
        output = ps.invoke()
        return output, [str(e) for e in ps.streams.error]

    def ok(self, server: str, cmdlet: str, **params: Any) -> list[Any]:
        output, errors = self.run(server, cmdlet, **params)
        assert errors == [], errors
        return output

    def fails(self, server: str, cmdlet: str, **params: Any) -> str:
        output, errors = self.run(server, cmdlet, **params)
        assert output == [] and len(errors) == 1, (output, errors)
        return errors[0]

    def certificate(self, server: str, thumb: str, *names: str) -> dict[str, Any]:
        """Selected properties of one certificate (pypsrp keeps no more of the bare object)."""
        ps = PowerShell(self.pools[server])
        ps.add_cmdlet("Get-ExchangeCertificate").add_parameter("Thumbprint", thumb)
        ps.add_cmdlet("Select-Object").add_parameter("Property", list(names))
        (obj,) = ps.invoke()
        return {n: obj.adapted_properties.get(n, obj.extended_properties.get(n)) for n in names}

    def thumbprints(self, server: str) -> set[str]:
        ps = PowerShell(self.pools[server])
        ps.add_cmdlet("Get-ExchangeCertificate")
        ps.add_cmdlet("Select-Object").add_parameter("Property", ["Thumbprint"])
        return {o.extended_properties["Thumbprint"] for o in ps.invoke()}

    def export_pfx(self, server: str, thumb: str, password: str = "pw") -> bytes:
        """Export-ExchangeCertificate -BinaryEncoded -Password: the PKCS#12 bytes."""
        (exported,) = self.ok(
            server,
            "Export-ExchangeCertificate",
            Thumbprint=thumb,
            BinaryEncoded=None,
            Password=secure(password),
        )
        return bytes(exported.adapted_properties["FileData"])

    def new_unused(self, server: str = "EDGE01", **params: Any) -> str:
        """A new self-signed certificate enabled for no service: its thumbprint."""
        before = self.thumbprints(server)
        self.ok(server, "New-ExchangeCertificate", Services="None", **params)
        (thumb,) = self.thumbprints(server) - before
        return thumb


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(LabBackend(lab_copy("healthy", tmp_path / "lab")))
    yield client
    client.close()


def secure(text: str) -> TaggedValue:
    """A SecureString parameter value, as pypsrp sends one."""
    return TaggedValue("SS", text)


def pending_request(client: Client, server: str = "EDGE01") -> tuple[str, str]:
    """(thumbprint, request text) of a new pending request."""
    before = client.thumbprints(server)
    (text,) = client.ok(
        server, "New-ExchangeCertificate", GenerateRequest=None, SubjectName="CN=req.contoso.com"
    )
    (thumb,) = client.thumbprints(server) - before
    return thumb, text


# --- Export-ExchangeCertificate -------------------------------------------------------------


def test_export_of_a_pending_request_is_its_pkcs10_request(client):
    """Microsoft: "When you export a certificate request, the command creates a PKCS #10 file"
    (Example 4: $txtcert, text). The request's key is not exportable: that concerns no export."""
    thumb, text = pending_request(client)
    (exported,) = client.ok("EDGE01", "Export-ExchangeCertificate", Thumbprint=thumb)
    assert isinstance(exported, str)
    assert exported.startswith("-----BEGIN NEW CERTIFICATE REQUEST-----\r\n")
    csr = x509.load_pem_x509_csr(exported.encode())
    assert csr == x509.load_pem_x509_csr(text.encode())
    (binary,) = client.ok(
        "EDGE01", "Export-ExchangeCertificate", Thumbprint=thumb, BinaryEncoded=None
    )
    assert x509.load_der_x509_csr(bytes(binary.adapted_properties["FileData"])) == csr


def test_export_without_binary_encoded_is_base64_text_that_imports(client):
    """Example 4's pattern ([Text.Encoding]::Unicode.GetBytes($txtcert)) needs text, not an
    object; the text imports on another server."""
    thumb = client.new_unused("EX01", PrivateKeyExportable=True)
    (text,) = client.ok(
        "EX01", "Export-ExchangeCertificate", Thumbprint=thumb, Password=secure("pw")
    )
    assert isinstance(text, str) and text.startswith("-----BEGIN CERTIFICATE-----\r\n")
    client.ok(
        "EDGE01",
        "Import-ExchangeCertificate",
        FileData=text.encode(),
        Password=secure("pw"),
    )
    assert client.certificate("EDGE01", thumb, "HasPrivateKey") == {"HasPrivateKey": True}


def test_whatif_exports_nothing(client):
    thumb = client.new_unused("EX01", PrivateKeyExportable=True)
    output = client.ok(
        "EX01",
        "Export-ExchangeCertificate",
        Thumbprint=thumb,
        BinaryEncoded=None,
        Password=secure("pw"),
        WhatIf=None,
    )
    assert output == []


# --- Import-ExchangeCertificate -------------------------------------------------------------


def test_import_takes_a_base64_certificate_file_and_a_der_certificate(client):
    """Microsoft: FileData takes text files with -----BEGIN CERTIFICATE-----; a .cer/.der file
    is one DER certificate. Without a key and a matching request: a certificate without key."""
    first, second = client.new_unused(), client.new_unused()
    for thumb, encoding in ((first, serialization.Encoding.PEM), (second, "DER")):
        raw = bytes(client.certificate("EDGE01", thumb, "RawData")["RawData"])
        cert = x509.load_der_x509_certificate(raw)
        data = raw if encoding == "DER" else cert.public_bytes(serialization.Encoding.PEM)
        client.ok("EX01", "Import-ExchangeCertificate", FileData=data)
        got = client.certificate("EX01", thumb, "HasPrivateKey", "Services")
        assert got == {"HasPrivateKey": False, "Services": "None"}


def test_import_refuses_a_friendly_name_of_64_characters(client):
    thumb = client.new_unused("EX01", PrivateKeyExportable=True)
    data = client.export_pfx("EX01", thumb)
    message = client.fails(
        "EDGE01",
        "Import-ExchangeCertificate",
        FileData=data,
        Password=secure("pw"),
        FriendlyName="x" * 64,
    )
    assert "must be less than 64 characters" in message
    assert thumb not in client.thumbprints("EDGE01")


# --- New-ExchangeCertificate ----------------------------------------------------------------


def test_friendly_name_must_be_less_than_64_characters(client):
    before = client.thumbprints("EDGE01")
    message = client.fails(
        "EDGE01", "New-ExchangeCertificate", Services="None", FriendlyName="x" * 64
    )
    assert message == (
        "The FriendlyName value is 64 characters long. It must be less than 64 characters."
    )
    assert client.thumbprints("EDGE01") == before
    thumb = client.new_unused(FriendlyName="y" * 63)
    assert client.certificate("EDGE01", thumb, "FriendlyName") == {"FriendlyName": "y" * 63}


def test_domain_names_are_checked(client):
    """Microsoft: letters a-z, digits 0-9 and hyphens, at most 255 characters; a wildcard name
    and a server name stay valid."""
    before = client.thumbprints("EDGE01")
    for name in ("mail contoso.com", "mail_contoso.com", "a" * 252 + ".com"):
        message = client.fails(
            "EDGE01", "New-ExchangeCertificate", Services="None", DomainName=name
        )
        assert message.startswith(f"The DomainName value '{name}' isn't a valid domain name")
    assert client.thumbprints("EDGE01") == before
    thumb = client.new_unused(DomainName=["*.contoso.com", "EDGE01"])
    ps = PowerShell(client.pools["EDGE01"])
    ps.add_cmdlet("Get-ExchangeCertificate").add_parameter("Thumbprint", thumb)
    raw = bytes(ps.invoke()[0].adapted_properties["RawData"])
    san = x509.load_der_x509_certificate(raw).extensions
    names = san.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["EDGE01", "*.contoso.com"]


def test_key_size_zero_is_refused_not_taken_as_the_default(client):
    message = client.fails("EDGE01", "New-ExchangeCertificate", Services="None", KeySize=0)
    assert message == "The key size 0 isn't supported. Use 1024, 2048 or 4096."


def test_binary_encoded_without_generate_request_is_refused(client):
    """Microsoft: "This switch is available only when you use the GenerateRequest switch";
    the lab made a self-signed certificate instead (and asked to replace the default)."""
    before = client.thumbprints("EDGE01")
    message = client.fails("EDGE01", "New-ExchangeCertificate", BinaryEncoded=None, Force=None)
    assert message == "The BinaryEncoded switch can be used only with the GenerateRequest switch."
    assert client.thumbprints("EDGE01") == before


def test_new_certificate_for_a_service_the_edge_lacks_is_refused(client):
    before = client.thumbprints("EDGE01")
    message = client.fails("EDGE01", "New-ExchangeCertificate", Services="IIS")
    assert message.startswith("IMAP, POP and IIS can't be enabled on an Edge Transport server")
    assert client.thumbprints("EDGE01") == before


# --- Enable-ExchangeCertificate -------------------------------------------------------------


@pytest.mark.parametrize(("server", "services"), [("EX01", "UM"), ("EDGE01", "SMTP, UMCallRouter")])
def test_unified_messaging_services_are_refused(client, server, services):
    """The lab plays Exchange 2019 (15.2), which has no UM services to enable a certificate for."""
    thumb = client.new_unused(server)
    message = client.fails(
        server, "Enable-ExchangeCertificate", Thumbprint=thumb, Services=services
    )
    assert message.startswith("UM and UMCallRouter can't be enabled on this server")
    assert client.certificate(server, thumb, "Services") == {"Services": "None"}


def test_confirm_asks_before_enabling_through_the_host(client):
    """-Confirm: PowerShell's ShouldProcess question over the PSRP host; No changes nothing,
    Yes enables (the SMTP overwrite question is -Force's, answered separately)."""
    thumb = client.new_unused("EX01")
    client.ui.answers = [2]  # No
    client.ok("EX01", "Enable-ExchangeCertificate", Thumbprint=thumb, Services="IIS", Confirm=None)
    (question,) = client.ui.questions
    assert question.startswith(f"{ARE_YOU_SURE}\n") and thumb in question
    assert client.certificate("EX01", thumb, "Services") == {"Services": "None"}
    client.ui.answers = [0]  # Yes
    client.ok("EX01", "Enable-ExchangeCertificate", Thumbprint=thumb, Services="IIS", Confirm=None)
    assert client.certificate("EX01", thumb, "Services") == {"Services": "IIS"}


def test_confirm_asks_before_creating_a_certificate(client):
    before = client.thumbprints("EDGE01")
    client.ui.answers = [2]  # No
    client.ok("EDGE01", "New-ExchangeCertificate", Services="None", Confirm=None)
    (question,) = client.ui.questions
    assert question.startswith(f"{ARE_YOU_SURE}\n")
    assert client.thumbprints("EDGE01") == before
