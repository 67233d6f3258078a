"""Read CLIXML straight into plain Python, without building psrpcore's PSObjects.

`read(element)` gives what `normalize.plain(psrpcore.types.deserialize(element))` gives: objects
→ PSRecord (type names as on the wire), collections → list or dict, enums → their ToString(),
DateTime → aware datetime, and so on (normalize.py lists the conversions). It follows psrpcore's
reading order, so Ref and TNRef resolve to the same objects and type names. What it does not
read as psrpcore would (an unknown tag, a type psrpcore rehydrates into a class of its own, an
enum without its text, a malformed value) raises Unreadable: the caller then asks psrpcore.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

from psrpcore.types._base import TypeRegistry

from edgebook.exchange.record import PSRecord

ENUM_TYPE = "System.Enum"
SECURE_STRING = "<SecureString>"  # what normalize makes of a SecureString (never decrypted)
CONTAINERS = frozenset({"LST", "IE", "STK", "QUE", "DCT"})
INTEGERS = {
    "By": (0, 2**8 - 1),
    "SB": (-(2**7), 2**7 - 1),
    "U16": (0, 2**16 - 1),
    "I16": (-(2**15), 2**15 - 1),
    "U32": (0, 2**32 - 1),
    "I32": (-(2**31), 2**31 - 1),
    "U64": (0, 2**64 - 1),
    "I64": (-(2**63), 2**63 - 1),
}

# _xHHHH_ escapes (lowercase x), matched on the UTF-16 code units as psrpcore matches them.
_ESCAPE = re.compile(rb"\x00_\x00x((?:\x00[0-9A-Fa-f]){4})\x00_")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,7}))?(Z|[+-][0-9]{1,2}:[0-9]{1,2})?"
)
_DURATION = re.compile(
    r"(-?)P(?=.)(?:([0-9]+)D)?"
    r"(?:T(?=.)(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]*)(?:\.([0-9]{1,7}))?S)?)?"
)
_VERSION = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?)?"
)


class Unreadable(Exception):
    """CLIXML this reader leaves to psrpcore."""


def read(element: ET.Element) -> Any:
    """One CLIXML element (a pipeline output object) as plain Python."""
    return _read(element, _REGISTERED)


def read_message(element: ET.Element) -> Any:
    """A PSRP message's CLIXML as plain Python: as read(), but an object of a type psrpcore has
    a class for (an ErrorRecord, an exception) is read as its properties like any other."""
    return _read(element, frozenset())


def _read(element: ET.Element, registered: Collection[str]) -> Any:
    try:
        return _Reader(registered).value(element)
    except (LookupError, ValueError, TypeError, ArithmeticError, RecursionError) as error:
        raise Unreadable(f"{type(error).__name__}: {error}") from error


def unescape(raw: str) -> str:
    """A CLIXML string with its _xHHHH_ escapes decoded (surrogate pairs joined)."""
    # A match can also straddle UTF-16 code units (U+5F00 holds the bytes of "_"): rare enough
    # to take the slow path whenever that character appears.
    if "_x" not in raw and "\u5f00" not in raw:
        return raw
    data = _ESCAPE.sub(_code_unit, raw.encode("utf-16-be", "surrogatepass"))
    return data.decode("utf-16-be", errors="surrogatepass")


def _code_unit(found: re.Match[bytes]) -> bytes:
    return bytes.fromhex(found.group(1).decode("utf-16-be"))


def _datetime(raw: str | None) -> dt.datetime:
    found = _DATETIME.fullmatch(raw or "")
    if found is None:
        raise Unreadable(f"DateTime {raw!r}")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    microsecond = int(fraction[:6].ljust(6, "0")) if fraction else 0
    tz = dt.UTC  # as normalize reads a DateTime without an offset
    if zone and zone != "Z":
        hours, minutes = zone[1:].split(":")
        if int(minutes) > 59:
            raise Unreadable(f"DateTime offset {zone!r}")
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
        tz = dt.timezone(-offset if zone[0] == "-" else offset)
    date = dt.date(int(year), int(month), int(day))
    time = dt.time(int(hour), int(minute), int(second), microsecond, tzinfo=tz)
    return dt.datetime.combine(date, time)


def _duration(raw: str | None) -> dt.timedelta:
    found = _DURATION.fullmatch(raw or "")
    if found is None:
        raise Unreadable(f"TimeSpan {raw!r}")
    negative, days, hours, minutes, seconds, fraction = found.groups()
    whole = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
    whole += int(seconds or 0)
    nanoseconds = whole * 1_000_000_000 + int((fraction or "").ljust(7, "0")) * 100
    return dt.timedelta(microseconds=(-nanoseconds if negative else nanoseconds) // 1000)


def _version(raw: str | None) -> str:
    found = _VERSION.fullmatch(raw or "")
    if found is None:
        raise Unreadable(f"Version {raw!r}")
    return ".".join(str(int(part)) for part in found.groups() if part is not None)


def _char(raw: str | None) -> str:
    code = int(raw or "")
    if not 0 <= code <= 0xFFFF:
        raise Unreadable(f"Char {code}")
    return chr(code)


def _string(raw: str | None) -> str:
    return unescape(raw or "")


def _required(convert: Callable[[str], Any]) -> Callable[[str | None], Any]:
    """convert for an element that must have text (psrpcore fails on an empty one)."""

    def checked(raw: str | None) -> Any:
        if raw is None:
            raise Unreadable("an empty value")
        return convert(raw)

    return checked


def _integer(tag: str) -> Callable[[str | None], int]:
    low, high = INTEGERS[tag]

    def convert(raw: str | None) -> int:
        number = 0 if raw is None else int(raw)  # psrpcore reads an empty integer as 0
        if not low <= number <= high:
            raise Unreadable(f"{tag} {number}")
        return number

    return convert


_SCALARS: dict[str, Callable[[str | None], Any]] = {
    "S": _string,
    "URI": _string,
    "XD": _string,
    "SBK": _string,
    "SS": lambda _raw: SECURE_STRING,
    "BA": lambda raw: base64.b64decode(raw or ""),
    "C": _char,
    "DT": _datetime,
    "TS": _duration,
    "D": _required(lambda raw: str(Decimal(raw))),
    "Db": _required(float),
    "Sg": _required(float),
    "G": _required(lambda raw: str(uuid.UUID(raw))),
    "Version": _version,
    **{tag: _integer(tag) for tag in INTEGERS},
}
_REGISTERED = TypeRegistry().type_registry  # types psrpcore rehydrates into classes of its own


class _Reader:
    """One element's reading: objects by RefId and type names by TN RefId, as psrpcore keeps."""

    def __init__(self, registered: Collection[str]) -> None:
        self.registered = registered  # types whose objects are left to psrpcore
        self.objects: dict[str, Any] = {}
        self.defined: set[str] = set()
        self.types: dict[str, list[str]] = {}

    def value(self, element: ET.Element) -> Any:
        tag = element.tag
        scalar = _SCALARS.get(tag)
        if scalar is not None:
            return scalar(element.text)
        if tag == "Obj":
            return self.object(element)
        if tag == "Ref":
            return _copy(self.objects[element.attrib["RefId"]])
        if tag == "Nil":
            return None
        if tag == "B":
            return (element.text or "").lower() == "true"
        if tag == "ToString":
            return _string(element.text)
        raise Unreadable(f"element {tag}")

    def object(self, element: ET.Element) -> Any:
        """An <Obj>: its value (a collection, a primitive, an enum's text) or its properties."""
        ref = element.get("RefId")
        if ref is not None:
            if ref in self.defined:  # psrpcore's table would then depend on its reading order
                raise Unreadable(f"RefId {ref} defined twice")
            self.defined.add(ref)
        type_names = self.type_names(element)
        registered = bool(type_names) and type_names[0] in self.registered
        values: list[tuple[str, Any]] = []
        to_string = None
        groups: dict[str, ET.Element] = {}
        for child in element:
            tag = child.tag
            if tag in ("Props", "MS"):
                groups[tag] = child  # psrpcore keeps the last of each
            elif tag == "ToString":
                to_string = _string(child.text)
            elif tag == "DCT":
                values.append((tag, self.dictionary(child)))
            elif tag in CONTAINERS:
                values.append((tag, [self.value(item) for item in child]))
            elif tag in _SCALARS and not registered:
                values.append((tag, _SCALARS[tag](child.text)))
            elif tag not in ("TN", "TNRef"):
                raise Unreadable(f"{tag} in an object")
        if len(values) > 1 or (registered and not values):
            raise Unreadable(f"an object of {values and values[0][0]} {type_names[:1]}")
        properties: dict[str, Any] = {}
        for group in (groups.get("Props"), groups.get("MS")):
            for prop in group if group is not None else ():
                properties[_string(prop.attrib["N"])] = self.value(prop)
        result = _result(type_names, values, properties, to_string)
        if ref is not None:
            self.objects[ref] = result
        return result

    def type_names(self, element: ET.Element) -> list[str]:
        """The object's type names: its TN (remembered by RefId) or the TN its TNRef names."""
        names: list[str] = []
        first = reference = None
        for child in element:
            if child.tag == "TN":
                first = child if first is None else first
                names.extend(t.text or "" for t in child if t.tag == "T")
            elif child.tag == "TNRef" and reference is None:
                reference = child
        if names and first is not None:
            self.types[first.attrib["RefId"]] = names
            return names
        return [] if reference is None else self.types[reference.attrib["RefId"]]

    def dictionary(self, element: ET.Element) -> dict[Any, Any]:
        """A <DCT>: each <En>'s Key and Value (psrpcore reads the value first)."""
        table: dict[Any, Any] = {}
        for entry in element:
            key = _named(entry, "Key")
            item = self.value(_named(entry, "Value"))
            table[self.value(key)] = item
        if len(table) != len(element):
            raise Unreadable("keys that are equal in plain Python")
        return table


def _result(
    type_names: list[str],
    values: list[tuple[str, Any]],
    properties: dict[str, Any],
    to_string: str | None,
) -> Any:
    """What normalize.plain() makes of the object psrpcore would have built."""
    if ENUM_TYPE in type_names:
        if to_string:
            return to_string
        if values and values[0][0] in INTEGERS:
            return str(values[0][1])
        raise Unreadable("an enum without its text")
    if values:
        return values[0][1]
    if not properties:
        return to_string
    return PSRecord(properties, tuple(type_names), to_string)


def _named(entry: ET.Element, name: str) -> ET.Element:
    for child in entry:
        if child.get("N") == name:
            return child
    raise Unreadable(f"dictionary entry without {name}")


def _copy(value: Any) -> Any:
    """A referenced object afresh, as psrpcore's conversion makes a new one for each Ref."""
    if isinstance(value, PSRecord):
        return PSRecord({k: _copy(v) for k, v in value.items()}, value.type_names, value.to_string)
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return value
