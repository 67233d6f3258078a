"""CLIXML of the lab's output values written directly, byte for byte as psrpcore writes it.

psrpcore serialises a value by building a PSObject tree (edgebook.lab.winrm.wire.to_wire) and
an ElementTree from it, about 20 times the work of writing the text. This writer produces the
bytes of ElementTree.tostring(serialize(to_wire(value)), encoding="utf-8") from the lab's
values themselves: RefIds in psrpcore's order (every <Obj> takes the next one; an enum value
met again in the same message is a <Ref>: psrpcore refers to the same Python enum member; so is
an ExPrimitive with notes whose value equals an earlier one's, for the kinds in REFERRED),
<TN>/<TNRef> per first type name, psrpcore's string escaping, dates and durations, then
ElementTree's XML escaping and UTF-8 encoding. It dispatches on exact types: any other value
(a subclass, a naive datetime) is Unsupported and goes to psrpcore.
tests/test_lab_clixml_writer.py checks the bytes against psrpcore's.
"""

from __future__ import annotations

import base64
import datetime
import enum
import functools
import re
import uuid
from collections.abc import Callable
from typing import Any

from psrpcore.types import PSDict
from psrpcore.types._enum import PSEnumBase
from psrpcore.types._serializer import (
    _serialize_datetime,
    _serialize_duration,
    _serialize_string,
)

from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject, ExPrimitive, Int64
from edgebook.lab.winrm.wire import ARRAY_TYPE_NAMES, INT32, collection_type_names, enum_member

ENUM_BASES = tuple(PSEnumBase.PSObject.type_names)
DICT_TYPE_NAMES = tuple(PSDict.PSObject.type_names)

# Kinds of ExPrimitive value psrpcore refers to again: it keys its objects in a WeakKeyDictionary,
# which finds an equal wrapper (a str, float, Guid or DateTime: 0.0 and -0.0, one instant in two
# offsets); it cannot weakly refer to PSInt, PSInt64 or PSByteArray nor hash PSDuration.
REFERRED = frozenset({str, float, uuid.UUID, datetime.datetime})

# Characters psrpcore escapes as _xHHHH_ ("_" for "_x"), or ElementTree as an entity.
_SPECIAL = re.compile("[_&<>\u0000-\u001f\u007f-\u009f\ud800-\udfff\U00010000-\U0010ffff]")


class Unsupported(Exception):
    """A value this writer does not write as psrpcore would: serialise it with psrpcore."""


def clixml(value: Any) -> bytes:
    """The CLIXML of one output value as psrpcore serialises to_wire(value) in its own message."""
    writer = _Writer()
    writer.write(value, "")
    return "".join(writer.parts).encode("utf-8", "xmlcharrefreplace")


@functools.lru_cache(maxsize=8192)
def text(value: str) -> str:
    """A string as psrpcore escapes it, then ElementTree in element text."""
    if _SPECIAL.search(value) is None:
        return value
    return _escape_xml(_serialize_string(value))


@functools.lru_cache(maxsize=8192)
def plain_text(value: str) -> str:
    """Element text psrpcore writes unescaped (type names, ToString): ElementTree's escaping."""
    return _escape_xml(value)


@functools.lru_cache(maxsize=4096)
def name_attribute(name: str) -> str:
    """The N="..." attribute of a property, as psrpcore escapes it, then ElementTree."""
    escaped = _escape_xml(_serialize_string(name)).replace('"', "&quot;")
    escaped = escaped.replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#09;")
    return f' N="{escaped}"'


def _escape_xml(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _element(tag: str, content: str, attributes: str) -> str:
    """<tag attributes>content</tag>, or <tag attributes /> as ElementTree writes no content."""
    if content:
        return f"<{tag}{attributes}>{content}</{tag}>"
    return f"<{tag}{attributes} />"


def _integer(value: int, attributes: str) -> str:
    tag = "I32" if value in INT32 else "I64"  # to_wire makes an int below Int32's an Int64
    return f"<{tag}{attributes}>{value}</{tag}>"


def _float(value: float, attributes: str) -> str:
    return f"<Db{attributes}>{str(value).upper()}</Db>"


_PRIMITIVES: dict[type, Callable[[Any, str], str]] = {
    type(None): lambda v, a: f"<Nil{a} />",
    bool: lambda v, a: f"<B{a}>{'true' if v else 'false'}</B>",
    str: lambda v, a: _element("S", text(v), a),
    bytes: lambda v, a: _element("BA", base64.b64encode(v).decode(), a),
    uuid.UUID: lambda v, a: f"<G{a}>{v}</G>",
    int: _integer,
    Int64: lambda v, a: f"<I64{a}>{int(v)}</I64>",
    float: _float,
    datetime.timedelta: lambda v, a: f"<TS{a}>{_serialize_duration(v)}</TS>",
}


class _Writer:
    """One message's CLIXML: its parts, RefId counter, enum values and type names so far."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._ref_id = 0
        self._enum_refs: dict[enum.Enum, int] = {}
        self._primitive_refs: dict[Any, int] = {}  # ExPrimitive values by equality, as psrpcore
        self._type_refs: dict[str, int] = {}

    def write(self, value: Any, attributes: str) -> None:
        """Append one value's element; attributes is its N="..." (or "")."""
        kind = type(value)
        primitive = _PRIMITIVES.get(kind)
        if primitive is not None:
            self.parts.append(primitive(value, attributes))
        elif kind is ExObject:
            self._object(value, attributes)
        elif kind is ExList:
            self._list(value.items, collection_type_names(value.type_name), attributes)
        elif kind is list or kind is tuple:
            self._list(value, ARRAY_TYPE_NAMES, attributes)
        elif kind is ExEnum:
            self._enum(value, attributes)
        elif kind is ExPrimitive:
            self._primitive(value, attributes)
        elif kind is datetime.datetime and value.tzinfo is not None:
            self.parts.append(f"<DT{attributes}>{_serialize_datetime(value)}</DT>")
        elif kind is dict:
            self._dict(value, attributes)
        else:
            raise Unsupported(kind.__name__)

    def _open(self, type_names: Any, attributes: str) -> None:
        """<Obj RefId=...> with the next RefId, then <TN> or <TNRef> if there are type names."""
        self.parts.append(f'<Obj RefId="{self._ref_id}"{attributes}>')
        self._ref_id += 1
        if type_names:
            self._type_names(type_names)

    def _type_names(self, type_names: Any) -> None:
        main = type_names[0]
        known = self._type_refs.get(main)
        if known is not None:
            self.parts.append(f'<TNRef RefId="{known}" />')
            return
        known = self._type_refs[main] = len(self._type_refs)
        names = "".join(f"<T>{plain_text(name)}</T>" for name in type_names)
        self.parts.append(f'<TN RefId="{known}">{names}</TN>')

    def _object(self, value: ExObject, attributes: str) -> None:
        self._open(value.type_names, attributes)
        for tag, properties in zip(("Props", "MS"), value.wire_properties(), strict=True):
            if properties:
                self.parts.append(f"<{tag}>")
                for name, item in properties.items():
                    self.write(item, name_attribute(name))
                self.parts.append(f"</{tag}>")
        if value.to_string:
            self.parts.append(f"<ToString>{plain_text(value.to_string)}</ToString>")
        self.parts.append("</Obj>")

    def _list(self, items: Any, type_names: Any, attributes: str) -> None:
        self._open(type_names, attributes)
        if items:
            self.parts.append("<LST>")
            for item in items:
                self.write(item, "")
            self.parts.append("</LST></Obj>")
        else:
            self.parts.append("<LST /></Obj>")

    def _dict(self, value: dict[Any, Any], attributes: str) -> None:
        self._open(DICT_TYPE_NAMES, attributes)
        if value:
            self.parts.append("<DCT>")
            for key, item in value.items():
                self.parts.append("<En>")
                self.write(key, ' N="Key"')
                self.write(item, ' N="Value"')
                self.parts.append("</En>")
            self.parts.append("</DCT></Obj>")
        else:
            self.parts.append("<DCT /></Obj>")

    def _enum(self, value: ExEnum, attributes: str) -> None:
        member = enum_member(value.type_name, value.text, value.value)
        known = self._enum_refs.get(member)
        if known is not None:
            self.parts.append(f'<Ref RefId="{known}"{attributes} />')
            return
        self._enum_refs[member] = self._ref_id
        self._open((), attributes)
        self.write(member.value, "")
        self._type_names((f"{type(member).__module__}.{type(member).__name__}", *ENUM_BASES))
        if member.name:
            self.parts.append(f"<ToString>{plain_text(member.name)}</ToString>")
        self.parts.append("</Obj>")

    def _primitive(self, value: ExPrimitive, attributes: str) -> None:
        """<Obj> with the primitive's element and <MS>, as psrpcore writes its wrapper class of
        the primitive with extended properties: no <TN>, no <ToString>; a <Ref> to an earlier
        equal one of a kind in REFERRED (NaN equals nothing)."""
        plain = value.value
        if not value.notes:
            self.write(plain, attributes)
            return
        kind = type(plain)
        if kind is datetime.datetime and plain.tzinfo is None:
            raise Unsupported("naive datetime")
        if kind in REFERRED:
            known = self._primitive_refs.get(plain)
            if known is not None:
                self.parts.append(f'<Ref RefId="{known}"{attributes} />')
                return
            if plain == plain:
                self._primitive_refs[plain] = self._ref_id
        self._open((), attributes)
        self.write(plain, "")
        self.parts.append("<MS>")
        for name, item in value.notes.items():
            self.write(item, name_attribute(name))
        self.parts.append("</MS></Obj>")
