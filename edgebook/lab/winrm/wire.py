"""Conversion between the lab's Exchange-shaped values and psrpcore objects on the wire.

Outgoing: ExObject/ExEnum/ExList and plain Python values become psrpcore objects that
serialise with Exchange's real type names (no `Deserialized.` prefix: the client adds it).
Incoming: parameter values deserialised by psrpcore become plain Python values.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import functools
import uuid
from typing import Any

from psrpcore.types import (
    PSByteArray,
    PSChar,
    PSDateTime,
    PSDict,
    PSDouble,
    PSDuration,
    PSGuid,
    PSInt,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSSecureString,
    PSString,
    PSVersion,
)

from edgebook.exchange.secure import SecureText
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject, ExPrimitive, Int64

ARRAY_TYPE_NAMES = ["System.Object[]", "System.Array", "System.Object"]
MVP_PREFIX = "Microsoft.Exchange.Data.MultiValuedProperty`1"
MVP_BASE = "Microsoft.Exchange.Data.MultiValuedPropertyBase"
INT32 = range(-(2**31), 2**31)
# psrpcore's class for each primitive an ExPrimitive wraps (an int: PSInt, or PSInt64 outside INT32)
_WRAPPERS: dict[type, type[PSObject]] = {
    str: PSString,
    Int64: PSInt64,
    float: PSDouble,
    bytes: PSByteArray,
    uuid.UUID: PSGuid,
    datetime.datetime: PSDateTime,
    datetime.timedelta: PSDuration,
}


def to_wire(value: Any) -> Any:
    """Turn a lab value into an object psrpcore serialises with Exchange's wire type names."""
    if value is None or isinstance(value, bool | str | bytes | uuid.UUID):
        return value
    if isinstance(value, ExEnum):
        return enum_member(value.type_name, value.text, value.value)
    if isinstance(value, ExObject):
        return _complex(value)
    if isinstance(value, ExList):
        return _collection(value.items, collection_type_names(value.type_name))
    if isinstance(value, ExPrimitive):
        return _primitive(value)
    if isinstance(value, Int64):
        return PSInt64(value)
    if isinstance(value, int):
        # psrpcore writes an int as <I32> unless above Int32's range: one below it must be an Int64
        return value if value >= INT32.start else PSInt64(value)
    if isinstance(value, float):
        return PSDouble(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise TypeError(
                f"naive datetime {value.isoformat()} cannot go on the wire; make it aware"
            )
        return value
    if isinstance(value, datetime.timedelta):
        return value
    if isinstance(value, list | tuple):
        return _collection(value, ARRAY_TYPE_NAMES)
    if isinstance(value, dict):
        table = PSDict()
        for key, item in value.items():
            table[to_wire(key)] = to_wire(item)
        return table
    raise TypeError(f"cannot send a {type(value).__name__} on the wire: {value!r}")


def collection_type_names(type_name: str) -> list[str]:
    """The .NET type hierarchy of a collection type, as PowerShell writes it in <TN>."""
    if type_name.startswith(MVP_PREFIX):
        return [type_name, MVP_BASE, "System.Object"]
    if type_name.endswith("[]"):
        return [type_name, "System.Array", "System.Object"]
    return [type_name, "System.Object"]


def from_wire(value: Any) -> Any:
    """Turn a psrpcore-deserialised parameter value into plain Python."""
    if value is None or type(value) in (bool, str, int, float, bytes):
        return value
    if isinstance(value, PSSecureString):
        return SecureText(str(value.decrypt()))
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, PSChar):
        return chr(int(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float | decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return datetime.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
        )
    if isinstance(value, datetime.timedelta):
        return datetime.timedelta(
            days=value.days, seconds=value.seconds, microseconds=value.microseconds
        )
    if isinstance(value, uuid.UUID | PSVersion):
        return str(value)
    if isinstance(value, dict):
        return {from_wire(key): from_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    if isinstance(value, PSObject):
        meta = value.PSObject
        return {
            prop.name: from_wire(prop.get_value(value))
            for prop in [*meta.adapted_properties, *meta.extended_properties]
        }
    return str(value)


def _complex(value: ExObject) -> PSObject:
    obj = PSObject()
    obj.PSObject.type_names = list(value.type_names)
    adapted, notes = value.wire_properties()
    for name, item in adapted.items():
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, to_wire(item)))
    for name, item in notes.items():
        obj.PSObject.extended_properties.append(PSNoteProperty(name, to_wire(item)))
    if value.to_string is not None:
        obj.PSObject.to_string = value.to_string
    return obj


def _primitive(value: ExPrimitive) -> Any:
    """psrpcore's wrapper class of the primitive with the notes as extended properties, which it
    writes as <Obj> with the primitive's element and <MS>; without notes, the primitive itself."""
    plain = to_wire(value.value)  # refuses a naive datetime
    if not value.notes:
        return plain
    kind = type(value.value)
    if kind is int:
        wrapper: type[PSObject] = PSInt if value.value in INT32 else PSInt64
    else:
        wrapper = _WRAPPERS[kind]
    wrapped = wrapper(value.value)
    for name, item in value.notes.items():
        wrapped.PSObject.extended_properties.append(PSNoteProperty(name, to_wire(item)))
    return wrapped


def _collection(items: Any, type_names: list[str]) -> PSList:
    collection = PSList(to_wire(item) for item in items)
    collection.PSObject.type_names = list(type_names)
    return collection


@functools.lru_cache(maxsize=1024)
def enum_member(type_name: str, text: str, value: int) -> enum.Enum:
    """A one-member Python enum whose module/name spell the .NET enum type (psrpcore uses them)."""
    namespace, _, name = type_name.rpartition(".")
    if not namespace or not name:
        raise TypeError(f"enum type name {type_name!r} must be namespace-qualified")
    # The type is named at run time; mypy only understands literal names in the functional API.
    cls = enum.Enum(name, [(text, value)], module=namespace, qualname=name)  # type: ignore[misc]
    return cls[text]
