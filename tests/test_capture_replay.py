"""Captured CLIXML of real Exchange objects through edgebook: pypsrp's parse (with the
reference-tolerant serializer the shell installs), normalisation, certificates and facts."""

from __future__ import annotations

import copy
import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pypsrp.serializer import Serializer

from edgebook.config import WinRMEndpoint
from edgebook.exchange.certificates import ExchangeView, parse_certificate
from edgebook.exchange.command import Command
from edgebook.exchange.normalize import PSRecord, normalize, tolerate_references
from edgebook.exchange.shell import ExchangeShell
from edgebook.exchange.wire_types import EDGE_SHAPE, SERVICE_CONTROLLER
from edgebook.facts import CertificateFact, EdgeFacts, ReceiveConnectorFact, SendConnectorFact
from edgebook.lab.backend import LabBackend
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.wsman import WSManEndpoint
from edgebook.secrets import Credential
from tests.support.clixml import CLIENT_NOTES
from tests.support.lab import PASSWORD, lab_copy

CAPTURES = Path(__file__).parent / "fixtures" / "clixml" / "css-exchange"
NS = "{http://schemas.microsoft.com/powershell/2004/04}"


def wire_objects(name: str) -> list[str]:
    """Each top-level object of a capture as it would arrive in its own PSRP message: no
    namespace, and the type names and objects it references from earlier ones inlined."""
    root = ET.fromstring((CAPTURES / name).read_text(encoding="utf-8-sig"))
    for element in root.iter():
        element.tag = element.tag.removeprefix(NS)
    types = {e.get("RefId"): e for e in root.iter("TN")}
    objects = {e.get("RefId"): e for e in root.iter("Obj") if e.get("RefId") is not None}
    found = []
    for obj in root.findall("Obj"):
        standalone = copy.deepcopy(obj)
        _inline(standalone, types, objects)
        found.append(ET.tostring(standalone, encoding="unicode"))
    return found


def _inline(obj: ET.Element, types: dict, objects: dict) -> None:
    defined_types = {e.get("RefId") for e in obj.iter("TN")}
    defined_objects = {e.get("RefId") for e in obj.iter("Obj")}
    for parent in list(obj.iter()):
        for index, child in enumerate(list(parent)):
            if child.tag == "TNRef" and child.get("RefId") not in defined_types:
                parent[index] = copy.deepcopy(types[child.get("RefId")])
                defined_types.add(child.get("RefId"))
            elif child.tag == "Ref" and child.get("RefId") not in defined_objects:
                replacement = copy.deepcopy(objects[child.get("RefId")])
                replacement.set("N", child.get("N", ""))
                parent[index] = replacement


def received(name: str) -> list[PSRecord]:
    """What the shell hands to the facts: pypsrp's parse, then normalize()."""
    serializer = Serializer()
    tolerate_references(serializer)
    return [normalize(serializer.deserialize(text)) for text in wire_objects(name)]


def test_plain_pypsrp_loses_a_send_connector_that_references_into_a_collection():
    """Why the shell installs the tolerant serializer: SourceIPAddress refers to the IPAddress
    defined inside SmartHosts, an <LST> pypsrp 0.9.1 leaves unparsed."""
    (text,) = wire_objects("GetSendConnector.xml")
    with pytest.raises(KeyError):
        Serializer().deserialize(text)


def test_certificates_from_raw_data_alone():
    records = received("E19-GetExchangeCertificate.xml")
    # (PSComputerName, RunspaceId, PSShowComputerName: added by the client that captured them)
    assert [sorted(set(r) - CLIENT_NOTES) for r in records] == [
        ["RawData", "SerializationData"]
    ] * 3
    assert all(isinstance(r["RawData"], bytes) for r in records)
    remote = [parse_certificate(r) for r in records]
    for record, cert in zip(records, remote, strict=True):
        # the thumbprint Exchange printed in ToString is the SHA-1 of RawData
        assert f"[Thumbprint]\n  {cert.thumbprint}" in record.to_string.replace("\r\n", "\n")
        assert cert.view == ExchangeView()  # nothing of Exchange's view came
    auth = remote[0]
    assert auth.subject == auth.issuer == "CN=Microsoft Exchange Server Auth Certificate"
    assert auth.thumbprint == "C3EDCF181EF4F9B53D01768ECA99564014BCA6E7"
    assert auth.not_before == dt.datetime(2019, 12, 3, 22, 47, 32, tzinfo=dt.UTC)
    assert auth.not_after == dt.datetime(2024, 11, 6, 22, 47, 32, tzinfo=dt.UTC)
    assert auth.eku == ("serverAuth",) and auth.key == "RSA 2048"
    assert auth.signature_hash == "sha1" and auth.is_self_signed
    assert remote[1].subject == "CN=Solo-E19A"


def test_certificate_facts_say_what_is_unknown():
    facts = [CertificateFact.from_record(r) for r in received("E19-GetExchangeCertificate.xml")]
    assert [f.thumbprint for f in facts] == [
        "C3EDCF181EF4F9B53D01768ECA99564014BCA6E7",
        "6C7DE09FB39A40144F57EFEBC3DF0148E3A9AB28",
        "38247AD2B76244411748274C508D13446311830B",
    ]
    assert facts[2].subject == "CN=WMSvc-WIN-K300A9DA9VA"
    assert facts[2].not_after == dt.datetime(2029, 11, 30, 20, 53, 13, tzinfo=dt.UTC)
    for fact in facts:
        assert fact.services is None and fact.status is None and not fact.smtp
        assert fact.unknown() == ("Services", "Status", "HasPrivateKey", "PrivateKeyExportable")


def test_send_connector_facts():
    (record,) = received("GetSendConnector.xml")
    assert record.type_names[0].endswith("SmtpSendConnectorConfig")
    fact = SendConnectorFact.from_record(record)
    assert fact.identity == fact.name == "Mail to O365"
    assert fact.tls_certificate_name == "<I>CN=localhost<S>CN=localhost"
    assert fact.source_transport_servers == ("WIN-CTD3L0RGEN4",)
    assert fact.address_spaces == ("SMTP:*;1",) and fact.domains == ("*",)
    assert fact.smart_hosts == ("microsoft-com.mail.protection.outlook.com",)
    assert fact.cloud_services_mail_enabled is True and fact.require_tls is False
    assert fact.fqdn == "" and fact.tls_domain == "" and fact.enabled


def test_receive_connector_facts():
    facts = [ReceiveConnectorFact.from_record(r) for r in received("GetReceiveConnector.xml")]
    assert facts[0].identity == "WIN-CTD3L0RGEN4\\Default WIN-CTD3L0RGEN4"
    named = [f for f in facts if f.tls_certificate_name]
    assert [f.tls_certificate_name for f in named] == ["<I>CN=WIN-CTD3L0RGEN4<S>CN=WIN-CTD3L0RGEN4"]
    assert named[0].tls_domain_capabilities == ("fabrikam.com:AcceptCloudServicesMail",)
    default = facts[0]
    assert default.bindings == ("0.0.0.0:2525", "[::]:2525") and default.listens_on(2525)
    assert default.fqdn == "WIN-CTD3L0RGEN4.exlab.dom"


def test_service_facts_from_captured_service_controllers():
    records = received("E19-GetService-excerpt.xml")
    assert [r.to_string for r in records] == ["MSExchangeADTopology", "MSExchangeTransport"]
    assert EdgeFacts.from_records("E19", services=records).services == {
        "MSExchangeADTopology": "Running",
        "MSExchangeTransport": "Running",
    }
    transport = records[1]
    assert [str(s["Name"]) for s in transport["RequiredServices"]] == [
        "FMS",
        "MSExchangeADTopology",
    ]
    assert transport["ServicesDependedOn"][1]["DependentServices"][1] == "MSExchangeTransport"


def test_lab_services_read_by_edgebook_over_pypsrp(tmp_path: Path):
    """The lab's ServiceControllers through pypsrp and the shell: Name (a note property) and
    Status reach the facts, plain and through Select-Object as phase 03 reads them."""
    store = lab_copy("healthy", tmp_path / "lab")
    with store.transaction() as org:
        org.server("EDGE01").services["MSExchangeTransport"] = "Paused"
    path, configuration = EDGE_SHAPE
    endpoint = WSManEndpoint(
        LabBackend(store), "EDGE01", path=path, configuration_names={configuration}
    )
    user = "EDGE01\\Administrator"
    winrm = WinRMEndpoint("127.0.0.1", 5985, path, "http", "basic", configuration)
    shell = ExchangeShell(
        "EDGE01",
        winrm,
        Credential(user, PASSWORD),
        role="Edge",
        lab=True,
        wsman=connect_in_process(endpoint, user, PASSWORD),
    )
    with shell:
        records = shell.run("Get-Service", Name=["MSExchangeTransport", "ADAM_MSExchange"])
        selected = shell.run_batch(
            [
                Command(
                    "Get-Service",
                    {"Name": "MSExchangeTransport"},
                    (Command("Select-Object", {"Property": ["Name", "Status"]}),),
                )
            ]
        )
    endpoint.close()
    assert all(r.type_names[0] == SERVICE_CONTROLLER for r in records)
    assert EdgeFacts.from_records("EDGE01", services=records).services == {
        "MSExchangeTransport": "Paused",
        "ADAM_MSExchange": "Running",
    }
    # sorted by service name, as PowerShell 5.1's MatchingServices writes them
    assert [r.to_string for r in records] == ["ADAM_MSExchange", "MSExchangeTransport"]
    (adam,) = records[1]["RequiredServices"]
    assert (adam["Name"], adam["Status"], adam["DependentServices"]) == (
        "ADAM_MSExchange",
        "Running",
        ["MSExchangeTransport"],
    )
    assert [(str(r["Name"]), str(r["Status"])) for r in selected] == [
        ("MSExchangeTransport", "Paused")
    ]
