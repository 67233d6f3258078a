"""A CREATE_PIPELINE message read straight from its CLIXML into what the lab runs.

psrpcore deserialises the whole message into PSObjects (a hundred or so, most of them the
commands' merge enums), converts them to its PowerShell class, and the lab then converts each
parameter value to plain Python (edgebook.lab.winrm.wire.from_wire). The lab needs only the
commands, NoInput and the host flags: `read_create_pipeline` reads those from the first
fragment of a WSMan Command, each parameter value exactly as from_wire gives it from psrpcore.

It follows psrpcore 0.3's reading (_Serializer.deserialize, then PowerShell, Command and
HostInfo.FromPSObjectForRemoting): properties in its order (an object's value, then Props, then
MS), RefIds and TN RefIds resolved as it resolves them, the fields it requires required, enums
of the types it registers checked as it checks them. Scalars other than strings, booleans, $null
and integers (a SecureString, a DateTime, bytes, ...) are given to psrpcore's own deserialiser
one by one. Anything else it does not read exactly as psrpcore would (a fragmented message, an
unknown tag, a type psrpcore rehydrates into a class of its own, a <Ref> to a part of the
pipeline) raises Unreadable: the caller then hands the message to psrpcore.
tests/test_lab_pipeline_reader.py compares the two on the messages edgebook sends.
"""

from __future__ import annotations

import enum
import functools
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from psrpcore.types import (
    PSCryptoProvider,
    PSCustomObject,
    PSDict,
    PSIEnumerable,
    PSList,
    PSStack,
    deserialize,
)
from psrpcore.types._base import TypeRegistry
from psrpcore.types._serializer import _deserialize_string

from edgebook.lab.winrm.wire import from_wire

CREATE_PIPELINE = 0x00021006
_FRAGMENT = struct.Struct(">QQBI")  # object id, fragment id, start/end flags, length
_MESSAGE = struct.Struct("<II16s16s")  # destination, message type, pool id, pipeline id
_START_END = 0x3
_BOM = b"\xef\xbb\xbf"
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
# Scalars psrpcore's deserialiser reads for us (their from_wire value needs no context).
DELEGATED = frozenset(
    {"BA", "C", "D", "DT", "Db", "G", "SBK", "SS", "Sg", "TS", "URI", "Version", "XD"}
)
LISTS = frozenset({"LST", "IE", "STK"})
# Dictionary keys equal in psrpcore exactly when equal in plain Python.
KEY_TAGS = frozenset({"S", "B", "Nil", "Db", "Sg", *INTEGERS})
# Registered classes psrpcore builds as a plain PSObject, a list or a dict.
_PLAIN_CLASSES: frozenset[type] = frozenset({PSCustomObject})
_CONTAINER_CLASSES: frozenset[type] = frozenset({PSList, PSIEnumerable, PSStack, PSDict})
_REGISTERED = TypeRegistry().type_registry  # psrpcore's live registry of rehydrated types
_ENVELOPE = object()  # the RefId of a part of the pipeline: a <Ref> to it is not read
_OPEN = object()  # the RefId of an object being read: a <Ref> to it is not read either
_GROUPS = frozenset({"Props", "MS"})
_TOP = (
    *("NoInput", "ApartmentState", "RemoteStreamOptions", "AddToHistory"),
    *("HostInfo", "PowerShell", "IsNested"),
)
_COMMAND = (
    *("Cmd", "IsScript", "UseLocalScope", "Args"),
    *("MergeMyResult", "MergeToResult", "MergePreviousResults"),
)
_HOST = ("_isHostNull", "_isHostUINull", "_isHostRawUINull", "_useRunspaceHost")


class Unreadable(Exception):
    """A message this reader (or pool_reader) leaves to psrpcore."""


@dataclass(frozen=True)
class WireCommand:
    """One command as the client sent it: parameters in order, a None name for a positional
    value, each value plain Python (as from_wire gives it)."""

    name: str
    is_script: bool
    parameters: tuple[tuple[str | None, Any], ...]
    end_of_statement: bool


@dataclass(frozen=True)
class HostFlags:
    """The pipeline's HostInfo: whether it has no host, no host UI, or uses the pool's host."""

    is_host_null: bool
    is_host_ui_null: bool
    use_runspace_host: bool


@dataclass(frozen=True)
class PipelineRequest:
    """What the lab runs of a CreatePipeline: its commands, whether input follows, its host."""

    commands: tuple[WireCommand, ...]
    no_input: bool
    host: HostFlags | None


def read_create_pipeline(
    fragment: bytes, pipeline_id: uuid.UUID, cipher: PSCryptoProvider
) -> PipelineRequest:
    """The request of a CreatePipeline for pipeline_id sent whole in this one fragment."""
    xml = _message(fragment, pipeline_id)
    try:
        return _Reader(cipher).request(ET.fromstring(xml))
    except Unreadable:
        raise
    except Exception as error:  # whatever psrpcore would make of it, it decides
        raise Unreadable(f"{type(error).__name__}: {error}") from error


def _message(fragment: bytes, pipeline_id: uuid.UUID) -> bytes:
    """The CLIXML of a single-fragment CreatePipeline message for pipeline_id."""
    if len(fragment) < _FRAGMENT.size + _MESSAGE.size:
        raise Unreadable("not a whole CreatePipeline fragment")
    _object, number, flags, length = _FRAGMENT.unpack_from(fragment)
    if number != 0 or flags & _START_END != _START_END or len(fragment) != _FRAGMENT.size + length:
        raise Unreadable("a message in several fragments, or several messages")
    _destination, kind, _pool, pipeline = _MESSAGE.unpack_from(fragment, _FRAGMENT.size)
    if kind != CREATE_PIPELINE or uuid.UUID(bytes_le=pipeline) != pipeline_id:
        raise Unreadable(f"message type {kind:#x} for pipeline {uuid.UUID(bytes_le=pipeline)}")
    xml = fragment[_FRAGMENT.size + _MESSAGE.size :]
    return xml[len(_BOM) :] if xml.startswith(_BOM) else xml


def _string(raw: str | None) -> str:
    """A CLIXML string with its _xHHHH_ escapes decoded, as psrpcore decodes them."""
    text = raw or ""
    # psrpcore matches the escapes on UTF-16 bytes: a match needs "_x", or U+5F00 to straddle
    return _deserialize_string(text) if "_x" in text or "\u5f00" in text else text


def _integer(tag: str, raw: str | None) -> int:
    low, high = INTEGERS[tag]
    number = 0 if raw is None else int(raw)  # psrpcore reads an empty integer as 0
    if not low <= number <= high:
        raise Unreadable(f"{tag} {number}")
    return number


class _Reader:
    """One message's reading: RefIds and TN RefIds as psrpcore's one _Serializer keeps them."""

    def __init__(self, cipher: PSCryptoProvider) -> None:
        self.cipher = cipher
        self.objects: dict[str, Any] = {}  # RefId -> plain value (or _ENVELOPE, _OPEN)
        self.types: dict[str, str] = {}  # TN RefId -> first type name

    def request(self, root: ET.Element) -> PipelineRequest:
        """The top object: NoInput, HostInfo and PowerShell read, the other fields checked."""
        top = self.fields(root, {"HostInfo": self.host, "PowerShell": self.powershell}, _TOP)
        no_input, host = top["NoInput"], top["HostInfo"]
        if type(no_input) is not bool:
            raise Unreadable(f"NoInput {no_input!r}")
        return PipelineRequest(top["PowerShell"], no_input, host)

    def powershell(self, element: ET.Element) -> tuple[WireCommand, ...]:
        """The commands: of ExtraCmds (one Cmds per statement) when given, else of Cmds."""
        readers = {"Cmds": self.commands, "ExtraCmds": self.extra_commands}
        found = self.fields(element, readers, ("History", "RedirectShellErrorOutputPipe"))
        extra = found.get("ExtraCmds")
        if extra is not None:
            statements = extra
        elif "Cmds" in found:
            statements = [found["Cmds"]]
        else:
            raise Unreadable("a pipeline without Cmds")
        commands: list[WireCommand] = []
        for statement in statements:
            commands += statement
            if not commands:
                raise Unreadable("an empty first statement")  # psrpcore: IndexError
            last = commands[-1]
            commands[-1] = WireCommand(last.name, last.is_script, last.parameters, True)
        return tuple(commands)

    def extra_commands(self, element: ET.Element) -> list[list[WireCommand]] | None:
        """ExtraCmds: $null, or a list of statements each with its Cmds."""
        if element.tag == "Nil":
            return None
        return self.items(
            element, lambda item: self.fields(item, {"Cmds": self.commands}, ("Cmds",))["Cmds"]
        )

    def commands(self, element: ET.Element) -> list[WireCommand]:
        """Cmds: a list of commands."""
        return self.items(element, self.command)

    def command(self, element: ET.Element) -> WireCommand:
        """One command: its text, whether it is a script, its arguments."""
        found = self.fields(element, {"Args": lambda e: self.items(e, self.argument)}, _COMMAND)
        name, is_script = found["Cmd"], found["IsScript"]
        if type(name) is not str or type(is_script) is not bool:
            raise Unreadable(f"command {name!r} with IsScript {is_script!r}")
        return WireCommand(name, is_script, tuple(found["Args"]), False)

    def argument(self, element: ET.Element) -> tuple[str | None, Any]:
        """One argument: its parameter name (None: positional) and its value."""
        found = self.fields(element, {}, ("N", "V"))
        name = found["N"]
        if name is not None and type(name) is not str:
            raise Unreadable(f"parameter name {name!r}")
        return name, found["V"]

    def host(self, element: ET.Element) -> HostFlags:
        """HostInfo's flags (host default data is left to psrpcore)."""
        found = self.fields(element, {}, _HOST)
        if found.get("_hostDefaultData") is not None:
            raise Unreadable("host default data")
        flags = [found[name] for name in _HOST]
        if any(type(flag) is not bool for flag in flags):
            raise Unreadable(f"host flags {flags!r}")
        return HostFlags(flags[0], flags[1], flags[3])

    def fields(
        self,
        element: ET.Element,
        readers: Mapping[str, Callable[[ET.Element], Any]],
        required: tuple[str, ...],
    ) -> dict[str, Any]:
        """An object that is part of the pipeline: each property read in psrpcore's order (Props,
        then MS) by its reader or as a value; those FromPSObjectForRemoting uses must be given."""
        children = self.part(element)
        if not children.keys() <= _GROUPS:
            raise Unreadable(f"{', '.join(children)} in {element.get('N')}")
        found: dict[str, Any] = {}
        for group in (children.get("Props"), children.get("MS")):
            for prop in () if group is None else group:
                name = _string(prop.attrib["N"])
                if name in found:
                    raise Unreadable(f"property {name} given twice")
                reader = readers.get(name)
                found[name] = self.value(prop) if reader is None else reader(prop)
        missing = [name for name in required if name not in found]
        if missing:
            raise Unreadable(f"no {', '.join(missing)}")
        return found

    def items(self, element: ET.Element, read: Callable[[ET.Element], Any]) -> list[Any]:
        """A list that is part of the pipeline (Cmds, Args, ExtraCmds), each item read."""
        children = self.part(element)
        if len(children) != 1 or not children.keys() <= LISTS:
            raise Unreadable(f"{', '.join(children)} in {element.get('N')}")
        (values,) = children.values()
        return [read(item) for item in values]

    def part(self, element: ET.Element) -> dict[str, ET.Element]:
        """An <Obj> that is part of the pipeline (no <Ref> may read it), by its children's tags."""
        if element.tag != "Obj":
            raise Unreadable(f"{element.tag} where psrpcore needs an object")
        self.define(element.get("RefId"), _ENVELOPE)
        cls, children = self.children(element)
        if cls is not None and cls not in _PLAIN_CLASSES and cls not in _CONTAINER_CLASSES:
            raise Unreadable(f"a {cls.__name__} as part of the pipeline")
        return children

    def define(self, ref: str | None, value: Any) -> None:
        if ref is None:
            return
        if ref in self.objects:
            raise Unreadable(f"RefId {ref} defined twice")
        self.objects[ref] = value

    def children(self, element: ET.Element) -> tuple[type | None, dict[str, ET.Element]]:
        """An <Obj>'s class in psrpcore's registry, by its first type name (of its TN, which is
        remembered by RefId, else of its TNRef), and its other children by tag, each once."""
        names: list[str] = []
        first = reference = None
        children: dict[str, ET.Element] = {}
        for child in element:
            tag = child.tag
            if tag == "TN":
                first = child if first is None else first
                names += [t.text or "" for t in child if t.tag == "T"]
            elif tag == "TNRef":
                reference = child if reference is None else reference
            elif tag in children:
                raise Unreadable(f"two {tag}")
            elif tag != "ToString":
                children[tag] = child
        if names and first is not None:
            name = self.types[first.attrib["RefId"]] = names[0]
        elif reference is not None:
            name = self.types[reference.attrib["RefId"]]
        else:
            return None, children
        return _REGISTERED.get(name), children

    def value(self, element: ET.Element) -> Any:
        """A parameter value (or a field the lab does not use) as from_wire gives it."""
        tag = element.tag
        if tag == "Obj":  # (most of a message: the commands' merge settings)
            return self.object(element)
        if tag == "S":
            return _string(element.text)
        if tag == "B":
            return (element.text or "").lower() == "true"
        if tag == "Nil":
            return None
        if tag in INTEGERS:
            return _integer(tag, element.text)
        if tag == "Ref":
            return _copy(self.reference(element.attrib["RefId"]))
        if tag in DELEGATED:
            return from_wire(deserialize(element, self.cipher))
        raise Unreadable(f"element {tag}")

    def reference(self, ref: str) -> Any:
        found = self.objects[ref]
        if found is _ENVELOPE or found is _OPEN:
            raise Unreadable(f"a Ref to {ref}, not a finished value")
        return found

    def object(self, element: ET.Element) -> Any:
        """An <Obj> value: a list, a dict, an enum's number, or a dict of its properties."""
        ref = element.get("RefId")
        self.define(ref, _OPEN)
        cls, children = self.children(element)
        props, ms = children.pop("Props", None), children.pop("MS", None)  # psrpcore's order
        if len(children) > 1:
            raise Unreadable(f"an object of {', '.join(children)}")
        found: Any = _NOTHING
        for tag, child in children.items():
            if tag == "DCT":
                found = self.dictionary(child)
            elif tag in LISTS:
                found = [self.value(item) for item in child]
            elif tag in INTEGERS:
                found = _integer(tag, child.text)
            else:
                raise Unreadable(f"{tag} in an object")
        has_properties = props is not None or ms is not None
        found = _registered(cls, found, has_properties)
        if has_properties:
            properties = {
                _string(prop.attrib["N"]): self.value(prop)
                for group in (props, ms)
                if group is not None
                for prop in group
            }
            found = properties if found is _NOTHING else found
        elif found is _NOTHING:
            found = {}
        if ref is not None:
            self.objects[ref] = found
        return found

    def dictionary(self, element: ET.Element) -> dict[Any, Any]:
        """A <DCT>: each entry's Value read, then its Key (psrpcore's order)."""
        table: dict[Any, Any] = {}
        for entry in element:
            key = _named(entry, "Key")
            item = self.value(_named(entry, "Value"))
            if key.tag not in KEY_TAGS:
                raise Unreadable(f"a {key.tag} key")
            table[self.value(key)] = item  # an equal key: its first form, the last value
        return table


_NOTHING: Any = object()  # an object with no value of its own (only properties)


def _registered(cls: type | None, found: Any, has_properties: bool) -> Any:
    """The object's value as psrpcore's class for its type would make it."""
    if cls is None or cls in _PLAIN_CLASSES:
        return found
    if issubclass(cls, enum.Enum):
        if type(found) is not int or has_properties:
            raise Unreadable(f"{cls.__name__} {found!r}")
        return _enum_value(cls, found)
    if cls in _CONTAINER_CLASSES and isinstance(found, list | dict):
        return found
    raise Unreadable(f"an object psrpcore rehydrates as {cls.__name__}")


@functools.lru_cache(maxsize=1024)
def _enum_value(cls: type[enum.Enum], number: int) -> int:
    """A registered enum's number as from_wire gives it, psrpcore's class checking it (a merge
    setting in each command: remembered, as psrpcore's check is slow)."""
    return int(cls(number).value)


def _named(entry: ET.Element, name: str) -> ET.Element:
    """A dictionary entry's first child named name (psrpcore's find('*/[@N="..."]'))."""
    for child in entry:
        if child.get("N") == name:
            return child
    raise Unreadable(f"a dictionary entry without {name}")


def _copy(value: Any) -> Any:
    """A referenced value afresh, as from_wire makes a new one each time it meets the object."""
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return value
