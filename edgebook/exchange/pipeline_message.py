"""CREATE_PIPELINE messages written as text: the bytes pypsrp 0.9 sends, at a fraction of the cost.

pypsrp serialises a CREATE_PIPELINE by deep-copying every command twice
(``Pipeline._get_statements``) and building an ElementTree of some fifteen objects per command:
about 13 ms for an Edge's inspect pipeline, a quarter of a fleet inspect's client CPU.
PipelineFragmenter writes the same CLIXML straight from the same objects, with the pool's
Serializer numbering RefIds and type names (TN/TNRef) as pypsrp does, and fragments it as
pypsrp does. Strings, booleans, Int32, $null, lists and PSRP objects are written here; any other
value (a SecureString, an Int64, a hashtable, an XML element) goes through pypsrp's Serializer.
Relies on pypsrp internals (`Fragmenter.max_size`/`outgoing_counter`, `Serializer._create_obj`,
`_serialize_string`, `tn`, `tn_id`, `RunspacePool._fragmenter`), pinned by
tests/test_pipeline_message.py, which compares the bytes with pypsrp's own.
"""

from __future__ import annotations

import struct
import uuid
import xml.etree.ElementTree as ET
from copy import copy
from typing import Any
from xml.sax.saxutils import escape

from pypsrp.complex_objects import (
    ComplexObject,
    GenericComplexObject,
    ListMeta,
    ObjectMeta,
    Pipeline,
)
from pypsrp.messages import CreatePipeline, Destination, MessageType
from pypsrp.powershell import Fragment, Fragmenter, RunspacePool
from pypsrp.serializer import Serializer

_HEADER = struct.pack("<II", Destination.SERVER, MessageType.CREATE_PIPELINE)
# pypsrp's tag for a value of exactly this type (Serializer._get_tag_from_value)
_INFERRED = {str: "S", bool: "B", int: "I32", list: "LST"}
_NO_ID = bytes(16)


class PipelineFragmenter(Fragmenter):
    """pypsrp's Fragmenter, writing CREATE_PIPELINE messages itself (other messages: pypsrp)."""

    def fragment(
        self,
        data: ComplexObject,
        rpid: str,
        pid: str | None = None,
        remaining_size: int | None = None,
    ) -> list[bytes]:
        """The fragments of one message, numbered as pypsrp numbers them."""
        if not isinstance(data, CreatePipeline) or remaining_size is not None:
            return super().fragment(data, rpid, pid, remaining_size)
        ids = uuid.UUID(rpid).bytes_le + (uuid.UUID(pid).bytes_le if pid else _NO_ID)
        message = _HEADER + ids + create_pipeline_xml(data, self.serializer)
        size = self.max_size
        last = (len(message) - 1) // size
        fragments = [
            Fragment(
                self.outgoing_counter,
                index,
                message[start : start + size],
                index == 0,
                index == last,
            ).pack()
            for index, start in enumerate(range(0, len(message), size))
        ]
        self.outgoing_counter += 1
        return fragments


def write_pipelines(pool: RunspacePool) -> None:
    """Make a pool's Fragmenter a PipelineFragmenter (same instance, same state)."""
    pool._fragmenter.__class__ = PipelineFragmenter


def create_pipeline_xml(message: CreatePipeline, serializer: Serializer) -> bytes:
    """The CLIXML of a CREATE_PIPELINE message, as ET.tostring(serializer.serialize(message))."""
    serializer._clear()
    return _Writer(serializer).obj(message, None).encode("utf-8", "xmlcharrefreplace")


class _Writer:
    """Serializer's walk over ComplexObjects and their ObjectMeta, writing text."""

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer
        self._texts: dict[str, str] = {}  # a message repeats its strings ("None" ten per command)

    def text(self, value: str) -> str:
        """A string with PSRP's escapes (_xHHHH_), then XML's."""
        text = self._texts.get(value)
        if text is None:
            text = self._texts[value] = escape(self.serializer._serialize_string(value) or "")
        return text

    def value(self, value: Any, meta: ObjectMeta, *, listed: bool = False) -> str:
        """A value as Serializer.serialize writes it (listed) or _create_obj (a property)."""
        if value is None:
            return "" if meta.optional else _element("Nil", meta.name, "")
        tag = _INFERRED.get(type(value), "") if meta.tag == "*" else meta.tag
        if tag == "S" and type(value) is str:
            return _element("S", meta.name, self.text(value))
        if tag == "B" and type(value) is bool:
            return _element("B", meta.name, "true" if value else "false")
        if tag == "I32" and type(value) is int:
            return _element("I32", meta.name, str(value))
        if tag == "LST" and type(value) is list:
            if not isinstance(meta, ListMeta):
                meta = ListMeta(name=meta.name, optional=meta.optional)
            return self.lst(value, meta)
        if (
            (tag == "Obj" or meta.tag == "*")
            and _plain_object(value)
            and (listed or not self._known(value))
        ):
            return self.obj(value, meta.name)
        return self.delegated(value, meta, listed)

    def obj(self, value: ComplexObject, name: str | None) -> str:
        """A PSRP object: RefId, type names, ToString, property sets, MS and Props."""
        start, parts = self._open(name, value._types)
        if value._to_string is not None:
            parts.append(_element("ToString", None, self.text(value._to_string)))
        for attr, meta in value._property_sets:
            parts.append(self.value(getattr(value, attr), meta))
        statements = _statements(value) if isinstance(value, Pipeline) else {}
        for tag, properties in (
            ("MS", value._extended_properties),
            ("Props", value._adapted_properties),
        ):
            if properties:
                members = "".join(
                    self.value(
                        statements[attr] if attr in statements else getattr(value, attr), meta
                    )
                    for attr, meta in properties
                )
                parts.append(_element(tag, None, members))
        return _obj(start, parts)

    def lst(self, values: list[Any], meta: ListMeta) -> str:
        """A list (LST) of values with the list's type names."""
        start, parts = self._open(meta.name, meta.list_types)
        entries = "".join(self.value(item, meta.list_value_meta, listed=True) for item in values)
        return _obj(start, [*parts, _element("LST", None, entries)])

    def _known(self, value: ComplexObject) -> bool:
        """Whether pypsrp's _create_obj would write a Ref to an object it serialised before."""
        return any(known == value for known in self.serializer.obj.values())

    def delegated(self, value: Any, meta: ObjectMeta, listed: bool) -> str:
        """A value only pypsrp's Serializer writes, numbered in sequence with the rest."""
        holder = ET.Element("holder")
        if listed:
            self.serializer.serialize(value, copy(meta), parent=holder, clear=False)
        else:
            self.serializer._create_obj(holder, value, meta=copy(meta))
        return "".join(ET.tostring(child, encoding="unicode") for child in holder)

    def _open(self, name: str | None, types: list[str]) -> tuple[str, list[str]]:
        """An Obj's start tag (its RefId and N) and its type names (TN, or TNRef when known)."""
        serializer = self.serializer
        start = f'<Obj RefId="{serializer._get_obj_id()}"' + _name(name)
        if not types:
            return start, []
        known = serializer.tn.get(types[0])
        if known is not None:
            return start, [f'<TNRef RefId="{known}" />']
        ref_id = serializer.tn[types[0]] = serializer.tn_id
        serializer.tn_id += 1
        names = "".join(f"<T>{escape(type_name)}</T>" for type_name in types)
        return start, [f'<TN RefId="{ref_id}">{names}</TN>']


def _plain_object(value: Any) -> bool:
    """A PSRP object pypsrp serialises from its metadata (not a dynamic PSObject)."""
    return isinstance(value, ComplexObject) and not isinstance(value, GenericComplexObject)


def _statements(pipeline: Pipeline) -> dict[str, Any]:
    """Pipeline's Cmds and ExtraCmds, as its properties give them but without their deep copies."""
    commands: list[Any] = pipeline.commands or []
    commands[-1].end_of_statement = True
    statements: list[list[Any]] = [[]]
    for command in commands:
        statements[-1].append(command)
        if command.end_of_statement:
            statements.append([])
    statements.pop()
    extra = [Pipeline._ExtraCmds(cmds=statement) for statement in statements]
    return {"_cmds": statements[0], "_extra_cmds": extra if len(statements) > 1 else None}


def _name(name: str | None) -> str:
    return "" if name is None else f' N="{name}"'


def _element(tag: str, name: str | None, text: str) -> str:
    return f"<{tag}{_name(name)}>{text}</{tag}>" if text else f"<{tag}{_name(name)} />"


def _obj(start: str, parts: list[str]) -> str:
    content = "".join(parts)
    return f"{start}>{content}</Obj>" if content else f"{start} />"
