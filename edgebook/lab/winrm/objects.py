"""Exchange-shaped values as the lab's cmdlets return them, before they go on the wire.

The cmdlets know nothing of PSRP: they return ExObject/ExEnum/ExList/ExPrimitive and plain
Python values (None, bool, int, str, bytes, aware datetime, timedelta). edgebook.lab.winrm.wire
turns these into psrpcore objects with Exchange's real wire type names.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

MVP_STRING = (
    "Microsoft.Exchange.Data.MultiValuedProperty`1[[System.String, mscorlib, Version=4.0.0.0, "
    "Culture=neutral, PublicKeyToken=b77a5c561934e089]]"
)


class Int64(int):
    """An integer .NET types as Int64 (<I64>) whatever its size (IPAddress.Address)."""

    def __repr__(self) -> str:
        return f"Int64({int(self)})"  # not an int's, so that repr() tells the two apart


@dataclass
class ExEnum:
    """A .NET enum value: its type name, ToString() text and underlying integer."""

    type_name: str
    text: str
    value: int

    def __str__(self) -> str:
        return self.text


@dataclass
class ExList:
    """A collection with its .NET type name (MultiValuedProperty`1[...], Object[], ...)."""

    type_name: str
    items: list[Any] = field(default_factory=list)


# The values an ExPrimitive can wrap: those psrpcore can write with note properties (it has no
# wrapper for bool or None).
PRIMITIVE_KINDS = (str, int, Int64, float, bytes, uuid.UUID, datetime.datetime, datetime.timedelta)


@dataclass(frozen=True)
class ExPrimitive:
    """A primitive .NET value wrapped in a PSObject with note properties, as Get-Date writes its
    DateTime with a DisplayHint note. PowerShell serialises it as <Obj> holding the primitive's
    element then <MS> with the notes, without <TN> or <ToString> (serialization.cs,
    WritePrimitiveTypePSObjectWithNotes); without notes, as the primitive alone.
    """

    value: Any
    notes: dict[str, Any]

    def __post_init__(self) -> None:
        if type(self.value) not in PRIMITIVE_KINDS:
            kinds = ", ".join(k.__name__ for k in PRIMITIVE_KINDS)
            raise TypeError(
                f"an ExPrimitive wraps one of {kinds}, not a {type(self.value).__name__}: "
                f"{self.value!r}"
            )

    def __str__(self) -> str:
        return str(self.value)  # PSObject.ToString() of a wrapped primitive is the primitive's


@dataclass
class ExObject:
    """A .NET object: type names (most derived first), properties in order, ToString().

    `properties` are what the object holds in the server's process (what Select-Object and
    pipeline binding see). What goes on the wire can be less, as with Exchange: `adapted`
    names the properties serialised in <Props> (None: every property not in `notes`), `notes`
    those serialised in <MS> (note properties: a PSCustomObject's, Exchange's SerializationData).
    """

    type_names: list[str]
    properties: dict[str, Any]
    to_string: str | None = None
    adapted: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Any:
        return self.properties[name]

    def __str__(self) -> str:
        return self.to_string if self.to_string is not None else self.type_names[0]

    def wire_properties(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(adapted, note) properties as they are serialised: <Props>, then <MS>."""
        names = self.properties if self.adapted is None else self.adapted
        adapted = {n: self.properties[n] for n in names if n not in self.notes}
        return adapted, {n: self.properties[n] for n in self.notes}


# What a BinaryFormatter stream starts with (SerializedStreamHeader record, root id 1, version 1.0).
_BINARY_FORMATTER_HEADER = bytes.fromhex("0001000000ffffffff01000000000000000c02000000")


def serialization_data(type_name: str) -> bytes:
    """An opaque SerializationData blob as Exchange attaches one to each of its objects.

    Real Exchange sends a .NET BinaryFormatter stream that only Exchange's own binaries read;
    the lab sends a stream header and the type name, which no client can read either.
    """
    return _BINARY_FORMATTER_HEADER + f"edgebook lab: {type_name}".encode()


def exchange_object(
    type_names: list[str], properties: dict[str, Any], to_string: str | None = None
) -> ExObject:
    """An Exchange data object as Exchange serialises it: its properties in <Props> and the
    opaque SerializationData in <MS>."""
    return ExObject(
        type_names,
        {**properties, SERIALIZATION_DATA: serialization_data(type_names[0])},
        to_string,
        notes=(SERIALIZATION_DATA,),
    )


SERIALIZATION_DATA = "SerializationData"
