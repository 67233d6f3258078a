"""edgebook.lab.wire: lab values to psrpcore objects with Exchange's wire type names, and back."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from typing import Any

import psrpcore
import pytest
from psrpcore.types import PSDateTime, PSList, deserialize, serialize

from edgebook.exchange.wire_types import EXCHANGE_CERTIFICATE
from edgebook.lab.winrm.objects import MVP_STRING, ExEnum, ExList, ExObject, ExPrimitive, Int64
from edgebook.lab.winrm.wire import collection_type_names, from_wire, to_wire
from tests.support.fake_backend import NOT_AFTER, SERVICES_TYPE, certificate

CRYPTO = psrpcore.PSRemotingCrypto()


def wire_xml(value: object) -> str:
    return ET.tostring(serialize(to_wire(value), CRYPTO), encoding="unicode")


def round_trip(value: object) -> Any:
    """What a PowerShell client deserialises from what the lab puts on the wire.

    Any: deserialised objects expose their PowerShell properties as dynamic attributes.
    """
    return deserialize(ET.fromstring(wire_xml(value)), CRYPTO)


def test_exchange_object_keeps_real_type_names_without_deserialized_prefix() -> None:
    xml = wire_xml(certificate())
    assert "Deserialized." not in xml
    assert f"<T>{EXCHANGE_CERTIFICATE}</T>" in xml
    assert "<Props>" in xml  # adapted properties, as .NET objects have


def test_client_sees_exchange_shapes_after_deserialisation() -> None:
    cert = round_trip(certificate(raw=b"\x00\x01\x02"))
    assert cert.PSTypeNames[0] == f"Deserialized.{EXCHANGE_CERTIFICATE}"
    assert cert.Thumbprint == "A1B2C3"
    assert isinstance(cert.NotAfter, PSDateTime) and cert.NotAfter == NOT_AFTER
    assert cert.RawData == b"\x00\x01\x02" and isinstance(cert.RawData, bytes)
    assert cert.Lifetime == datetime.timedelta(days=365)
    assert cert.IsSelfSigned is False
    assert str(cert).startswith("[Subject]")
    assert str(cert.Issuer) == "CN=Lab CA" and cert.Issuer.Name == "CN=Lab CA"


def test_enum_is_an_enum_with_text_and_value() -> None:
    xml = wire_xml(ExEnum(SERVICES_TYPE, "IMAP, POP, IIS, SMTP", 27))
    assert f"<T>{SERVICES_TYPE}</T><T>System.Enum</T>" in xml
    assert "<I32>27</I32>" in xml and "<ToString>IMAP, POP, IIS, SMTP</ToString>" in xml
    value = round_trip(ExEnum(SERVICES_TYPE, "IMAP, POP, IIS, SMTP", 27))
    assert str(value) == "IMAP, POP, IIS, SMTP" and int(value) == 27
    assert value.PSTypeNames[0] == f"Deserialized.{SERVICES_TYPE}"


def test_multivalued_property_is_a_list_with_exchange_collection_type() -> None:
    xml = wire_xml(ExList(MVP_STRING, ["a.contoso.com", "b.contoso.com"]))
    assert f"<T>{MVP_STRING}</T><T>Microsoft.Exchange.Data.MultiValuedPropertyBase</T>" in xml
    assert "<LST><S>a.contoso.com</S><S>b.contoso.com</S></LST>" in xml
    value = round_trip(ExList(MVP_STRING, ["a.contoso.com", "b.contoso.com"]))
    assert isinstance(value, PSList) and list(value) == ["a.contoso.com", "b.contoso.com"]
    assert value.PSTypeNames[0] == f"Deserialized.{MVP_STRING}"


def test_plain_values_use_their_powershell_tags() -> None:
    assert wire_xml(b"\x01\x02") == "<BA>AQI=</BA>"
    assert wire_xml(datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)) == (
        "<DT>2027-01-01T00:00:00Z</DT>"
    )
    assert wire_xml(datetime.timedelta(minutes=90)) == "<TS>PT1H30M</TS>"
    assert wire_xml(1.5) == "<Db>1.5</Db>"
    assert wire_xml(2**40) == f"<I64>{2**40}</I64>"
    assert wire_xml(-(2**31)) == f"<I32>{-(2**31)}</I32>"
    assert wire_xml(-(2**31) - 1) == f"<I64>{-(2**31) - 1}</I64>"  # not <I32>, which .NET refuses
    assert wire_xml(7) == "<I32>7</I32>"
    assert wire_xml(None) == "<Nil />"
    assert "<T>System.Object[]</T>" in wire_xml(["x", 1])
    assert "<T>System.Collections.Hashtable</T>" in wire_xml({"k": "v"})


def test_nested_lists_and_objects_convert_recursively() -> None:
    outer = ExObject(["Lab.Outer"], {"Items": [ExObject(["Lab.Inner"], {"N": 1})]})
    value = round_trip(outer)
    assert value.Items[0].N == 1
    assert value.Items[0].PSTypeNames == ["Deserialized.Lab.Inner"]


HINT_TYPE = "Microsoft.PowerShell.Commands.DisplayHintType"
WHEN = datetime.datetime(2027, 1, 1, 8, 30, tzinfo=datetime.UTC)


def test_a_primitive_with_notes_is_the_primitive_for_the_client() -> None:
    """Get-Date's DateTime with its DisplayHint note: <Obj> with the <DT> and <MS>, no <TN>,
    which psrpcore rehydrates as the DateTime carrying the note."""
    noted = ExPrimitive(WHEN, {"DisplayHint": ExEnum(HINT_TYPE, "Time", 1)})
    xml = wire_xml(noted)
    assert xml.startswith('<Obj RefId="0"><DT>2027-01-01T08:30:00Z</DT><MS><Obj RefId="1" N=')
    assert "<TN" not in xml.split("<MS>")[0] and "<ToString>" not in xml.split("<MS>")[0]
    value = round_trip(noted)
    assert isinstance(value, PSDateTime) and value == WHEN
    assert str(value.DisplayHint) == "Time" and int(value.DisplayHint) == 1
    assert str(noted) == str(WHEN)


@pytest.mark.parametrize(
    ("value", "element"),
    [
        ("_x0041_", "<S>_x005F_x0041_</S>"),
        (7, "<I32>7</I32>"),
        (-(2**40), f"<I64>{-(2**40)}</I64>"),  # an Int32 cannot hold it
        (Int64(7), "<I64>7</I64>"),
        (1.5, "<Db>1.5</Db>"),
        (b"\x01", "<BA>AQ==</BA>"),
        (datetime.timedelta(minutes=90), "<TS>PT1H30M</TS>"),
    ],
)
def test_each_primitive_keeps_its_element_with_notes(value: object, element: str) -> None:
    assert wire_xml(ExPrimitive(value, {"N": "n"})) == (
        f'<Obj RefId="0">{element}<MS><S N="N">n</S></MS></Obj>'
    )
    assert wire_xml(ExPrimitive(value, {})) == element  # without notes: the primitive alone


@pytest.mark.parametrize("value", [True, None, ["list"], ExEnum(HINT_TYPE, "Date", 0)])
def test_a_primitive_with_notes_wraps_only_what_psrpcore_can(value: object) -> None:
    with pytest.raises(TypeError, match="an ExPrimitive wraps one of str, int"):
        ExPrimitive(value, {"N": 1})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime.datetime(2027, 1, 1), "naive datetime"),
        (ExPrimitive(datetime.datetime(2027, 1, 1), {"N": 1}), "naive datetime"),
        (object(), "cannot send a object"),
        (ExEnum("NoNamespace", "A", 1), "namespace-qualified"),
    ],
)
def test_values_the_wire_cannot_carry_are_refused(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        to_wire(value)


def test_collection_type_names_follow_dotnet_hierarchy() -> None:
    assert collection_type_names("System.String[]") == [
        "System.String[]",
        "System.Array",
        "System.Object",
    ]
    assert collection_type_names("System.Collections.Generic.List`1[[System.String]]")[-1] == (
        "System.Object"
    )


def parameter(value: object) -> object:
    """A parameter value as psrpcore hands it to the server after deserialisation."""
    return from_wire(deserialize(serialize(value, CRYPTO), CRYPTO))


def test_parameters_become_plain_python() -> None:
    cases: list[tuple[object, object]] = [
        ("text", "text"),
        (True, True),
        (12, 12),
        (2**40, 2**40),
        (b"\x00\xff", b"\x00\xff"),
        (None, None),
        (["a", 1], ["a", 1]),
        ({"k": [1, 2]}, {"k": [1, 2]}),
    ]
    for sent, expected in cases:
        got = parameter(sent)
        assert got == expected
        assert type(got) is type(expected)


def test_float_datetime_and_complex_parameters() -> None:
    assert parameter(1.25) == pytest.approx(1.25)
    when = parameter(datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC))
    assert type(when) is datetime.datetime and when.year == 2027
    obj = psrpcore.types.PSCustomObject(UserName="u", Count=2)
    assert parameter(obj) == {"UserName": "u", "Count": 2}


def test_live_properties_beyond_the_serialised_ones_stay_in_the_process() -> None:
    obj = ExObject(
        ["Contoso.Thing", "System.Object"],
        {"RawData": b"\x01", "Secret": "live only", "SerializationData": b"\x02"},
        adapted=("RawData",),
        notes=("SerializationData",),
    )
    xml = wire_xml(obj)
    assert '<Props><BA N="RawData">AQ==</BA></Props>' in xml
    assert '<MS><BA N="SerializationData">Ag==</BA></MS>' in xml
    assert "Secret" not in xml and obj["Secret"] == "live only"
