"""Normalisation of Exchange-shaped CLIXML, parsed the way pypsrp 0.9.1 parses it."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.messages import ErrorRecordMessage
from pypsrp.serializer import Serializer

from edgebook.exchange.normalize import (
    PSRecord,
    ReceivedObject,
    ReferenceTolerantSerializer,
    command_error,
    normalize,
    split_flags,
)
from edgebook.exchange.wire_types import EXCHANGE_CERTIFICATE, SEND_CONNECTOR

FIXTURES = Path(__file__).parent / "fixtures" / "clixml"


def pypsrp_parse(name_or_xml: str):
    """What pypsrp hands us for one output object (Serializer().deserialize on the element)."""
    text = name_or_xml if name_or_xml.startswith("<") else (FIXTURES / name_or_xml).read_text()
    return Serializer().deserialize(ET.fromstring(text))


def test_pypsrp_keeps_the_raw_xml_we_depend_on():
    """pypsrp's private `_xml` (pinned >=0.9,<0.10) and its half-parsed shapes."""
    major, minor = (int(part) for part in version("pypsrp").split(".")[:2])
    assert (major, minor) >= (0, 9) and (major, minor) < (0, 10)
    raw = pypsrp_parse("exchange_certificate.xml")
    assert isinstance(raw, GenericComplexObject)
    assert ET.fromstring(raw._xml).tag == "Obj"
    # Without re-parsing, MultiValuedProperty is raw XML and DateTime is text.
    domains = raw.adapted_properties["CertificateDomains"]
    assert domains.property_sets[0].startswith("<LST>")
    assert isinstance(raw.adapted_properties["NotAfter"], str)


@pytest.fixture(scope="module")
def certificate() -> PSRecord:
    record = normalize(pypsrp_parse("exchange_certificate.xml"))
    assert isinstance(record, PSRecord)
    return record


def test_type_names_are_wire_names(certificate: PSRecord):
    assert certificate.type_names[0] == EXCHANGE_CERTIFICATE
    assert certificate.is_type("System.Security.Cryptography.X509Certificates.X509Certificate2")
    assert not any(name.startswith("Deserialized.") for name in certificate.type_names)
    assert certificate.to_string is not None
    assert certificate.to_string.startswith("[Subject]")


def test_multivalued_property_becomes_a_list(certificate: PSRecord):
    assert certificate["CertificateDomains"] == [
        "mail.contoso.com",
        "edge01.contoso.com",
        "autodiscover.contoso.com",
    ]
    assert type(certificate["CertificateDomains"]) is list
    assert certificate["AccessRules"][0] == "NT AUTHORITY\\SYSTEM FullControl Allow"
    assert certificate["Extensions"][1].endswith("X509EnhancedKeyUsageExtension")


def test_datetime_is_aware(certificate: PSRecord):
    not_after = certificate["NotAfter"]
    assert type(not_after) is dt.datetime
    assert not_after == dt.datetime(2027, 1, 1, 11, 30, 0, 123456, tzinfo=dt.UTC)
    assert not_after.utcoffset() == dt.timedelta(hours=1)
    # .NET "Unspecified" kind (no offset on the wire) is taken as UTC.
    assert certificate["NotBefore"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_enums_become_their_names(certificate: PSRecord):
    assert certificate["Services"] == "IMAP, POP, SMTP"
    assert split_flags(certificate["Services"]) == ["IMAP", "POP", "SMTP"]
    assert certificate["Status"] == "Valid"
    assert certificate["RootCAType"] == "ThirdParty"
    assert certificate["ServicesStringForm"] == "IMAP, POP, SMTP"  # TNRef in <MS>


def test_scalars_are_plain_python(certificate: PSRecord):
    assert type(certificate["RawData"]) is bytes
    assert certificate["RawData"].startswith(b"0\x82\x01\x92")
    assert certificate["Lifetime"] == dt.timedelta(days=365, hours=12, minutes=30, seconds=0.5)
    assert type(certificate["Lifetime"]) is dt.timedelta
    assert certificate["ProductVersion"] == "15.2.1544.4"
    assert certificate["Fraction"] == "12.50"
    assert certificate["Guid"] == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert certificate["PublicKeySize"] == 2048 and type(certificate["PublicKeySize"]) is int
    assert certificate["HasPrivateKey"] is True
    assert certificate["PrivateKey"] is None
    assert type(certificate["Thumbprint"]) is str
    assert certificate.Thumbprint == certificate["Thumbprint"]
    with pytest.raises(AttributeError):
        _ = certificate.NoSuchProperty


def test_send_connector(tmp_path: Path):
    connector = normalize(pypsrp_parse("send_connector.xml"))
    assert connector.type_names[0] == SEND_CONNECTOR
    assert connector["SourceTransportServers"] == ["EDGE01", "EDGE02"]
    assert connector["SmartHosts"] == []  # TNRef to the AddressSpaces collection type
    assert connector["TlsAuthLevel"] == "DomainValidation"
    assert connector["TlsCertificateName"].startswith("<I>CN=Contoso Issuing CA 01")
    assert connector["Identity"] == "Outbound to Office 365"  # depth-limited object → ToString
    assert connector["MaxMessageSize"] == "35 MB (36,700,160 bytes)"
    assert connector["WhenChanged"].tzinfo is not None


def test_error_record_fixture():
    record = pypsrp_parse("error_record.xml")
    assert isinstance(record, ErrorRecordMessage)
    error = command_error(record, "EDGE01", terminating=False)
    assert error.cmdlet == "Get-ExchangeCertificate"
    assert error.message.startswith("The certificate with thumbprint 0000")
    assert error.category == "ObjectNotFound"
    assert error.fully_qualified_error_id.endswith("GetExchangeCertificate")
    assert error.target == "0" * 40
    assert error.exception_type.endswith("ExchangeCertificateNotFoundException")
    assert "EDGE01 Get-ExchangeCertificate" in str(error)


def test_top_level_list_with_type_name_references_across_items():
    raw = pypsrp_parse(
        '<Obj RefId="0"><TN RefId="0"><T>System.Object[]</T><T>System.Array</T>'
        "<T>System.Object</T></TN><LST>"
        '<Obj RefId="1"><TN RefId="1"><T>Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo'
        '</T><T>System.Object</T></TN><Props><I32 N="MessageCount">3</I32></Props></Obj>'
        '<Obj RefId="2"><TNRef RefId="1" /><Props><I32 N="MessageCount">0</I32></Props></Obj>'
        "</LST></Obj>"
    )
    queues = normalize(raw)
    assert [queue["MessageCount"] for queue in queues] == [3, 0]
    assert queues[1].type_names[0].endswith("ExtensibleQueueInfo")


def test_fallback_when_psrpcore_cannot_reparse():
    """A boxed Boolean with a type name trips psrpcore; pypsrp's parse is used instead."""
    raw = pypsrp_parse(
        '<Obj RefId="0"><TN RefId="0"><T>Contoso.Thing</T><T>System.Object</T></TN><Props>'
        '<Obj N="Flag" RefId="1"><TN RefId="1"><T>System.Boolean</T><T>System.Object</T></TN>'
        "<ToString>True</ToString><B>true</B></Obj>"
        '<Obj N="Names" RefId="2"><TN RefId="2"><T>Microsoft.Exchange.Data.MultiValuedProperty`1'
        "</T><T>System.Object</T></TN><LST><S>a</S><S>b</S></LST></Obj>"
        "</Props></Obj>"
    )
    thing = normalize(raw)
    assert thing.type_names == ("Contoso.Thing", "System.Object")
    assert thing["Names"] == ["a", "b"]
    assert thing["Flag"] == "True"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("IMAP, POP, IIS, SMTP", ["IMAP", "POP", "IIS", "SMTP"]),
        ("None", []),
        ("", []),
        ("SMTP", ["SMTP"]),
    ],
)
def test_split_flags(text: str, names: list[str]):
    assert split_flags(text) == names


def test_primitives_pass_through():
    assert normalize("text") == "text"
    assert normalize(5) == 5
    assert normalize(None) is None
    assert normalize([1, "a"]) == [1, "a"]


def test_a_nested_object_prints_as_its_to_string():
    record = PSRecord(
        {"Name": "EDGE01", "Depth": 9}, ("Microsoft.Exchange.Data.Directory.ADObjectId",), "EDGE01"
    )
    assert str(record) == "EDGE01" and f"{record}" == "EDGE01"
    assert str(PSRecord({"a": 1})) == "{'a': 1}"


def test_an_output_object_is_parsed_once_by_psrpcore(monkeypatch):
    """The shell's serializer hands pipeline output to psrpcore only: pypsrp's own object parse
    (as costly, and thrown away) never runs, and the result is what the re-parse gave."""
    text = (FIXTURES / "exchange_certificate.xml").read_text()
    expected = normalize(pypsrp_parse("exchange_certificate.xml"))

    def refuse(*_args, **_kwargs):
        raise AssertionError("pypsrp parsed the output object")

    monkeypatch.setattr(Serializer, "_deserialize_obj", refuse)
    monkeypatch.setattr(Serializer, "_deserialize_dynamic_obj", refuse)
    received = ReferenceTolerantSerializer().deserialize(text)
    assert isinstance(received, ReceivedObject)
    assert normalize(received) == expected
    assert normalize(received).type_names == expected.type_names


def test_an_output_psrpcore_cannot_parse_goes_through_pypsrp():
    text = (
        '<Obj RefId="0"><TN RefId="0"><T>Contoso.Thing</T><T>System.Object</T></TN><Props>'
        '<Obj N="Flag" RefId="1"><TN RefId="1"><T>System.Boolean</T><T>System.Object</T></TN>'
        "<ToString>True</ToString><B>true</B></Obj></Props></Obj>"
    )
    received = ReferenceTolerantSerializer().deserialize(text)
    assert not isinstance(received, ReceivedObject)
    assert normalize(received)["Flag"] == "True"
