"""The key behaviours of issue #10 item 3 as an independent client sees them: the raw pypsrp
PowerShell over the lab's WSMan endpoints (no edgebook shell in between)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from pypsrp.powershell import PowerShell

from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.lab.backend import LabBackend
from edgebook.lab.cmdlets.binding import AMBIGUOUS_SET, INPUT_NOT_BOUND
from edgebook.lab.org.store import LabStore
from tests.support.lab import PASSWORD, lab_copy
from tests.support.pypsrp_pools import close_pools, open_pools

HYBRID = "Outbound to Office 365"


class Client:
    """Runspace pools on EDGE01 (Microsoft.PowerShell + the Exchange snap-in) and EX01
    (Microsoft.Exchange), as any PSRP client opens them."""

    def __init__(self, backend: LabBackend) -> None:
        self.endpoints, self.pools = open_pools(backend)
        ps = PowerShell(self.pools["EDGE01"])
        ps.add_cmdlet("Add-PSSnapin").add_parameter("Name", EXCHANGE_SNAPIN).invoke()
        assert not ps.had_errors

    def close(self) -> None:
        close_pools(self.endpoints, self.pools)

    def run(self, server: str, *commands: tuple[str, dict[str, Any]], input: Any = None) -> Any:
        """One pipeline of commands (a value of None sends the parameter as a bare switch)."""
        ps = PowerShell(self.pools[server])
        for name, params in commands:
            ps.add_cmdlet(name)
            for key, value in params.items():
                ps.add_parameter(key, value)
        output = ps.invoke(input=input)
        return ps, output


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    store = lab_copy("healthy", tmp_path / "lab")
    client = Client(LabBackend(store))
    yield client
    client.close()


def prop(obj: Any, name: str) -> Any:
    """A property of a deserialised object (pypsrp keeps adapted and note properties apart)."""
    for table in (obj.adapted_properties, obj.extended_properties):
        if name in table:
            return table[name]
    raise KeyError(name)


def items(obj: Any) -> list[str]:
    """The items (as text) of a deserialised collection: pypsrp keeps the <LST> of a type it
    does not know as CLIXML text, which a client reads itself."""
    if isinstance(obj, list):
        return [str(item) for item in obj]
    (lst,) = obj.property_sets
    return [
        child.text or "" if child.tag == "S" else child.findtext("ToString") or ""
        for child in ET.fromstring(lst)
    ]


def errors(ps: PowerShell) -> list[tuple[str, str]]:
    return [(str(e), e.fq_error) for e in ps.streams.error]


def hybrid(client: Client, server: str = "EDGE01") -> str:
    _, output = client.run(
        server,
        ("Get-ExchangeCertificate", {"DomainName": "hybrid.contoso.com"}),
        ("Select-Object", {"Property": ["Thumbprint", "IsSelfSigned"]}),
    )
    return next(prop(o, "Thumbprint") for o in output if not prop(o, "IsSelfSigned"))


def test_parameter_set_conflict_is_powershells_error(client):
    ps, output = client.run(
        "EDGE01", ("New-ExchangeCertificate", {"GenerateRequest": None, "Services": "SMTP"})
    )
    assert output == [] and ps.had_errors
    ((message, fqid),) = errors(ps)
    assert message == AMBIGUOUS_SET and fqid.startswith("AmbiguousParameterSet,")


def test_enum_value_is_checked(client):
    ps, _ = client.run("EX01", ("Set-SendConnector", {"Identity": HYBRID, "TlsAuthLevel": "x"}))
    ((message, fqid),) = errors(ps)
    assert message.startswith("Cannot bind parameter 'TlsAuthLevel'. Cannot convert value \"x\"")
    assert fqid.startswith("CannotConvertArgumentNoMessage,")


def test_get_certificate_piped_into_new_request_renews_it(client):
    thumb = hybrid(client)
    ps, output = client.run(
        "EDGE01",
        ("Get-ExchangeCertificate", {"Thumbprint": thumb}),
        ("New-ExchangeCertificate", {"GenerateRequest": None}),
    )
    assert not ps.had_errors
    (request,) = output
    csr = x509.load_pem_x509_csr(str(request).encode())
    assert csr.subject.rfc4514_string() == (  # the renewed certificate's subject, not CN=EDGE01
        "CN=hybrid.contoso.com,O=Contoso Ltd,L=Hoevelhof,ST=North Rhine-Westphalia,C=DE"
    )
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "hybrid.contoso.com",
        "edge01.contoso.com",
        "edge02.contoso.com",
    ]


def test_client_input_that_binds_to_nothing_is_an_error(client):
    ps, output = client.run("EDGE01", ("Get-Date", {}), input=["some input"])
    assert output == []
    ((message, fqid),) = errors(ps)
    assert message == INPUT_NOT_BOUND and fqid.startswith("InputObjectNotBound,")


def test_include_switches_and_subject_defaults(client):
    ps, output = client.run(
        "EDGE01",
        (
            "New-ExchangeCertificate",
            {"Services": "None", "SubjectName": "CN=mail.contoso.com", "IncludeServerFQDN": None},
        ),
        ("Select-Object", {"Property": ["CertificateDomains"]}),
    )
    assert not ps.had_errors
    assert items(prop(output[0], "CertificateDomains")) == [
        "mail.contoso.com",
        "edge01.contoso.com",
    ]


def test_unsimulated_parameter_is_refused(client):
    ps, _ = client.run(
        "EX01", ("Test-EdgeSynchronization", {"VerifyRecipient": "someone@contoso.com"})
    )
    ((message, fqid),) = errors(ps)
    assert "does not simulate the VerifyRecipient parameter" in message
    assert fqid.startswith("LabParameterNotSimulated,")


def test_certificate_properties_through_select_object(client):
    thumb = hybrid(client)
    ps, output = client.run(
        "EDGE01",
        ("Get-ExchangeCertificate", {"Thumbprint": thumb}),
        (
            "Select-Object",
            {
                "Property": [
                    "SerialNumber",
                    "EnhancedKeyUsageList",
                    "DnsNameList",
                    "SubjectName",
                    "KeyIdentifier",
                    "RawData",
                ]
            },
        ),
    )
    assert not ps.had_errors
    (cert,) = output
    parsed = x509.load_der_x509_certificate(bytes(prop(cert, "RawData")))
    serial = parsed.serial_number.to_bytes((parsed.serial_number.bit_length() + 8) // 8, "big")
    assert prop(cert, "SerialNumber") == serial.hex().upper()
    assert items(prop(cert, "EnhancedKeyUsageList")) == [
        "Server Authentication (1.3.6.1.5.5.7.3.1)",
        "Client Authentication (1.3.6.1.5.5.7.3.2)",
    ]
    assert "hybrid.contoso.com" in items(prop(cert, "DnsNameList"))
    # Remoting writes a selected property's object at depth 0: as its ToString(), which an
    # X500DistinguishedName does not override (a runbook wanting the name selects Subject).
    assert (
        prop(cert, "SubjectName")
        == "System.Security.Cryptography.X509Certificates.X500DistinguishedName"
    )
    ski = parsed.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert prop(cert, "KeyIdentifier") == ski.hex().upper()


def test_send_connector_properties_and_queue_cmdlets(tmp_path):
    LabStore.create(tmp_path / "lab", "duplicate-subject", PASSWORD)  # afresh: no backlog yet
    client = Client(LabBackend(LabStore(tmp_path / "lab")))
    try:
        _, (connector,) = client.run(
            "EDGE01",
            ("Get-SendConnector", {"Identity": HYBRID}),
            ("Select-Object", {"Property": ["Guid", "SmartHostAuthMechanism", "IgnoreSTARTTLS"]}),
        )
        assert str(prop(connector, "SmartHostAuthMechanism")) == "None"
        assert prop(connector, "IgnoreSTARTTLS") is False
        ps, _ = client.run(
            "EDGE01",
            ("Suspend-Queue", {"Filter": "Status -eq 'Retry' -and LastError -contains '4.4.395'"}),
        )
        assert not ps.had_errors
        ps, queues = client.run(
            "EDGE01",
            ("Get-Queue", {"Filter": "Status -eq 'Suspended'", "Include": ["External"]}),
            ("Select-Object", {"Property": ["NextHopConnector", "Status"]}),
        )
        assert not ps.had_errors
        assert [str(prop(q, "NextHopConnector")) for q in queues] == [str(prop(connector, "Guid"))]
    finally:
        client.close()


def test_f21_remove_refused_while_a_connector_names_it(client):
    thumb = hybrid(client)
    ps, _ = client.run(
        "EDGE01", ("Remove-ExchangeCertificate", {"Thumbprint": thumb, "Confirm": False})
    )
    ((message, _),) = errors(ps)
    assert message.startswith(  # Microsoft's text, with the server's RPC prefix
        "A special Rpc error occurs on server EDGE01: These certificates are tagged with "
        f"following Send Connectors : {HYBRID}."
    )
    assert hybrid(client) == thumb


def test_f22_failure_detail(client):
    client.run("EX01", ("New-ExchangeCertificate", {"SubjectName": "CN=EX01", "Force": None}))
    _, output = client.run(
        "EX01",
        ("Test-EdgeSynchronization", {"TargetServer": "EDGE01"}),
        ("Select-Object", {"Property": ["SyncStatus", "FailureDetail"]}),
    )
    (status,) = output
    assert str(prop(status, "SyncStatus")) == "Failed"
    assert prop(status, "FailureDetail").startswith(
        "EdgeSync failed to decrypt the credential for Edge Transport server edge01.contoso.com"
    )
