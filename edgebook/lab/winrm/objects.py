"""Exchange-shaped values as the lab's cmdlets return them, before they go on the wire.

The cmdlets know nothing of PSRP: they return ExObject/ExEnum/ExList and plain Python values
(None, bool, int, str, bytes, aware datetime, timedelta). edgebook.lab.winrm.wire turns these into
psrpcore objects with Exchange's real wire type names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MVP_STRING = (
    "Microsoft.Exchange.Data.MultiValuedProperty`1[[System.String, mscorlib, Version=4.0.0.0, "
    "Culture=neutral, PublicKeyToken=b77a5c561934e089]]"
)


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


@dataclass
class ExObject:
    """A .NET object: type names (most derived first), properties in order, ToString()."""

    type_names: list[str]
    properties: dict[str, Any]
    to_string: str | None = None

    def __getitem__(self, name: str) -> Any:
        return self.properties[name]
