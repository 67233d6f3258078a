"""A WSMan Create's SESSION_CAPABILITY and INIT_RUNSPACEPOOL read straight from their CLIXML.

psrpcore deserialises both messages into PSObjects, then reads a few properties of them (most of
the CPU a pool's opening costs). `read_opening` reads the creationXml clients send (pypsrp's and
psrpcore's: the two messages, each in one whole fragment, every property given once in the form
they write it) and `open_pool` hands what it read to psrpcore's own handlers
(_process_SessionCapability, _process_InitRunspacePool) as the events psrpcore would make, so
the pool's state and its replies are psrpcore's.

The framing is read by psrpcore's unpack_fragment and unpack_message, as next_event() reads it;
the versions, runspace counts and host flags are built as psrpcore's deserialiser builds them
(PSVersion, PSInt, the text "true"); PSThreadOptions, ApartmentState and ApplicationArguments are
given to psrpcore's deserialiser one by one. Anything else (another message, a fragmented one,
a property more or less, another tag, type names where the clients write none) raises
Unreadable: the caller then hands the bytes to psrpcore, which opens the pool or raises.
tests/test_lab_runspace_open.py compares the two.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from psrpcore import InitRunspacePoolEvent, ServerRunspacePool, SessionCapabilityEvent
from psrpcore._payload import unpack_fragment, unpack_message
from psrpcore.types import (
    PSCryptoProvider,
    PSInt,
    PSRPMessageType,
    PSVersion,
    RunspacePoolState,
    deserialize,
)

from edgebook.lab.winrm.pipeline_reader import Unreadable

_FRAGMENT_HEADER = 21  # object id, fragment id, start/end flags, length
_OPENING = [PSRPMessageType.SessionCapability, PSRPMessageType.InitRunspacePool]
# Each message's properties and their tag (None: any, the value is psrpcore's deserialiser's).
_CAPABILITY = {
    "PSVersion": "Version",
    "protocolversion": "Version",
    "SerializationVersion": "Version",
}
_INIT = {
    **{"MinRunspaces": "I32", "MaxRunspaces": "I32", "HostInfo": "Obj"},
    **{"PSThreadOptions": None, "ApartmentState": None, "ApplicationArguments": None},
}
_HOST = dict.fromkeys(("_isHostNull", "_isHostUINull", "_isHostRawUINull", "_useRunspaceHost"), "B")


@dataclass(frozen=True)
class Message:
    """One message read: its RunspacePool id and its properties, as psrpcore's event reads them
    (by attribute)."""

    runspace_pool_id: uuid.UUID
    properties: SimpleNamespace


@dataclass(frozen=True)
class Opening:
    """The two messages that open a runspace pool."""

    capability: Message
    init: Message


def read_opening(creation_xml: bytes, cipher: PSCryptoProvider) -> Opening:
    """The SessionCapability and InitRunspacePool of a WSMan Create's creationXml."""
    try:
        capability, init = _messages(creation_xml)
        versions = _members(ET.fromstring(capability[1]), _CAPABILITY)
        found = _members(ET.fromstring(init[1]), _INIT)
        flags = _members(found["HostInfo"], _HOST)
        init_properties = SimpleNamespace(
            MinRunspaces=PSInt(_text(found["MinRunspaces"])),
            MaxRunspaces=PSInt(_text(found["MaxRunspaces"])),
            PSThreadOptions=deserialize(found["PSThreadOptions"], cipher),
            ApartmentState=deserialize(found["ApartmentState"], cipher),
            HostInfo=SimpleNamespace(
                **{name: (flag.text or "").lower() == "true" for name, flag in flags.items()}
            ),
            ApplicationArguments=deserialize(found["ApplicationArguments"], cipher),
        )
        return Opening(
            Message(
                capability[0],
                SimpleNamespace(**{name: PSVersion(v.text) for name, v in versions.items()}),
            ),
            Message(init[0], init_properties),
        )
    except Unreadable:
        raise
    except Exception as error:  # whatever psrpcore would make of it, it decides
        raise Unreadable(f"{type(error).__name__}: {error}") from error


def open_pool(pool: ServerRunspacePool, opening: Opening) -> None:
    """Open a new pool as psrpcore does on receiving these messages: its handlers, given the
    events it would make (their replies queued)."""
    pool._change_state(RunspacePoolState.Opening, emit=False)  # as receive_data() does
    capability, init = opening.capability, opening.init
    pool._process_SessionCapability(
        SessionCapabilityEvent(
            PSRPMessageType.SessionCapability,
            cast(Any, capability.properties),  # (the event reads its properties by name)
            capability.runspace_pool_id,
            None,
        )
    )
    pool._process_InitRunspacePool(
        InitRunspacePoolEvent(
            PSRPMessageType.InitRunspacePool,
            cast(Any, init.properties),
            init.runspace_pool_id,
            None,
        )
    )


def _messages(creation_xml: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """The pool id and CLIXML of the SessionCapability and InitRunspacePool, in this order, each
    in one whole fragment of its own (psrpcore keeps one message per object id)."""
    data = bytearray(creation_xml)
    messages = []
    objects: set[int] = set()
    while data:
        fragment = unpack_fragment(data)
        data = data[_FRAGMENT_HEADER + len(fragment.data) :]  # as next_event() moves on
        if fragment.fragment_id != 0 or not (fragment.start and fragment.end):
            raise Unreadable("a message in several fragments")
        if fragment.object_id in objects:
            raise Unreadable(f"two messages of object {fragment.object_id}")
        objects.add(fragment.object_id)
        messages.append(unpack_message(fragment.data))
    kinds = [message.message_type for message in messages]
    if kinds != _OPENING or any(message.pid is not None for message in messages):
        raise Unreadable(f"messages {', '.join(kind.name for kind in kinds)}")
    return [(message.rpid, bytes(message.data)) for message in messages]


def _members(element: ET.Element, tags: Mapping[str, str | None]) -> dict[str, ET.Element]:
    """An <Obj> of extended properties only: each of these names once, of its tag, no other."""
    if element.tag != "Obj" or [child.tag for child in element] != ["MS"]:
        raise Unreadable(f"{element.get('N') or 'the message'} is not an object of members")
    found: dict[str, ET.Element] = {}
    for member in element[0]:
        name = member.get("N", "")
        if name not in tags or name in found or tags[name] not in (None, member.tag):
            raise Unreadable(f"member {name!r} ({member.tag})")
        found[name] = member
    if len(found) != len(tags):
        raise Unreadable(f"no {', '.join(tags.keys() - found.keys())}")
    return found


def _text(element: ET.Element) -> str:
    """An integer's text (an empty one, which psrpcore reads as 0, is left to it)."""
    if element.text is None:
        raise Unreadable(f"an empty {element.tag}")
    return element.text
