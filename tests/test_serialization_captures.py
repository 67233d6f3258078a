"""The lab serialises Exchange's objects as real Exchange does: the same property names and
CLIXML element types as captures of Exchange 2016/2019 (tests/fixtures/clixml/css-exchange)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import psrpcore
import pytest
from psrpcore.types import serialize

from edgebook.exchange import wire_types as T
from edgebook.lab.winrm.wire import to_wire
from tests.support.clixml import Shape, shapes
from tests.support.lab import Lab, lab_copy

CAPTURES = Path(__file__).parent / "fixtures" / "clixml" / "css-exchange"
CRYPTO = psrpcore.PSRemotingCrypto()


def lab_shape(value: object) -> Shape:
    """The shape of what the lab puts on the wire for one output object."""
    (found,) = shapes(ET.tostring(serialize(to_wire(value), CRYPTO), encoding="unicode"))
    return found


def merged(captured: list[Shape]) -> Shape:
    """One shape for all captured objects of a type: every element type a property took."""
    union = Shape(captured[0].type_names)
    for shape in captured:
        for name, kind in shape.adapted.items():
            if union.adapted.get(name, "Nil") == "Nil":
                union.adapted[name] = kind
                if name in shape.nested:
                    union.nested[name] = shape.nested[name]
        union.notes |= shape.notes
    return union


def assert_like(lab: Shape, real: Shape, where: str) -> None:
    """Every property the lab sends exists in the capture with the same element type, nested
    objects and collection items alike; the type-name chains are equal."""
    assert lab.type_names == real.type_names, where
    assert lab.notes == real.notes, f"{where}: <MS> {lab.notes} != {real.notes}"
    for name, kind in lab.adapted.items():
        assert name in real.adapted, f"{where}.{name} is not a property Exchange sends"
        if kind == "Nil" or real.adapted[name] == "Nil":
            continue  # no value here or in the capture: docs/serialization.md says why
        assert kind == real.adapted[name], f"{where}.{name}: {kind} != {real.adapted[name]}"
        if name in lab.nested and name in real.nested:
            ours, theirs = lab.nested[name], real.nested[name]
            if ours.items and theirs.items:
                assert_like(ours.items[0], theirs.items[0], f"{where}.{name}[0]")
            elif ours.adapted or theirs.adapted:
                assert_like(ours, theirs, f"{where}.{name}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    return Lab(lab_copy("healthy", tmp_path_factory.mktemp("serialization") / "lab"))


def test_certificate_is_raw_data_and_serialization_data_only(lab: Lab) -> None:
    (real, *_) = shapes(CAPTURES / "E19-GetExchangeCertificate.xml")
    for server in ("EDGE01", "EX01"):
        for cert in lab.ok(server, "Get-ExchangeCertificate"):
            ours = lab_shape(cert)
            assert ours.type_names == real.type_names
            assert ours.adapted == real.adapted == {"RawData": "BA"}
            assert ours.notes == real.notes == {"SerializationData": "BA"}
            assert labels(ours.to_string) == labels(real.to_string)


def labels(to_string: str | None) -> list[str]:
    """The section labels of X509Certificate2.ToString() ("[Subject]", ...)."""
    text = (to_string or "").replace("_x000D__x000A_", "\n").replace("\r\n", "\n")
    return [line for line in text.split("\n") if line.startswith("[")]


def test_send_connector_like_exchange(lab: Lab) -> None:
    real = merged(shapes(CAPTURES / "GetSendConnector.xml"))
    connectors = lab.ok("EX01", "Get-SendConnector") + lab.ok("EDGE01", "Get-SendConnector")
    hybrid = next(c for c in connectors if c["TlsCertificateName"] is not None)
    for connector in connectors:
        assert_like(lab_shape(connector), real, connector["Name"])
    shape = lab_shape(hybrid)
    nested = shape.nested
    assert nested["TlsCertificateName"].adapted == {
        "CertificateSubject": "S",
        "CertificateIssuer": "S",
        "SubjectCommonName": "S",
    }
    assert nested["SourceTransportServers"].items[0].type_names[0] == T.AD_OBJECT_ID
    assert nested["SourceTransportServers"].items[0].to_string == "EDGE01"
    assert nested["AddressSpaces"].items[0].type_names[0] == T.ADDRESS_SPACE
    assert nested["SmartHosts"].items[0].type_names[0] == T.SMART_HOST


def test_receive_connector_like_exchange(lab: Lab) -> None:
    real = merged(shapes(CAPTURES / "GetReceiveConnector.xml"))
    for connector in lab.ok("EDGE01", "Get-ReceiveConnector"):
        assert_like(lab_shape(connector), real, connector["Name"])
    shapes_with_name = [
        lab_shape(c)
        for c in lab.ok("EDGE01", "Get-ReceiveConnector")
        if c["TlsCertificateName"] is not None
    ]
    assert shapes_with_name, "the healthy Edge has a receive connector with a TlsCertificateName"


def test_comparison_catches_a_wrong_shape(lab: Lab) -> None:
    real = merged(shapes(CAPTURES / "GetSendConnector.xml"))
    (connector, *_) = lab.ok("EX01", "Get-SendConnector")
    connector.properties["Port"] = "25"  # a string where Exchange sends I32
    with pytest.raises(AssertionError, match="Port: S != I32"):
        assert_like(lab_shape(connector), real, "connector")
    connector.properties["Port"] = 25
    connector.properties["Colour"] = "red"
    with pytest.raises(AssertionError, match="Colour is not a property Exchange sends"):
        assert_like(lab_shape(connector), real, "connector")


def test_service_controller_like_windows(lab: Lab) -> None:
    captured = shapes(CAPTURES / "E19-GetService-excerpt.xml")
    assert [c.to_string for c in captured] == ["MSExchangeADTopology", "MSExchangeTransport"]
    real = merged(captured)
    for service in lab.ok("EDGE01", "Get-Service"):
        ours = lab_shape(service)
        assert_like(ours, real, str(service))
        assert ours.to_string == service["ServiceName"] == service["Name"]
        assert ours.notes == {"Name": "S", "RequiredServices": f"Obj:{T.SERVICE_CONTROLLER}[]"}
        assert ours.adapted["Status"] == f"Obj:{T.SERVICE_CONTROLLER_STATUS}"
    (transport,) = lab.ok("EDGE01", "Get-Service", "MSExchangeTransport")
    (adam,) = lab_shape(transport).nested["ServicesDependedOn"].items
    assert adam.to_string == "ADAM_MSExchange" and adam.adapted["Status"] == "S"
    assert adam.nested["DependentServices"].items == [Shape(("S",))]
