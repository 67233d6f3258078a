"""CREATE_PIPELINE messages written by edgebook are byte for byte what pypsrp 0.9 writes, and
the pypsrp internals pipeline_message relies on behave as it expects."""

from __future__ import annotations

import base64
import datetime as dt
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pypsrp.complex_objects import (
    ApartmentState,
    HostInfo,
    Pipeline,
    PSThreadOptions,
    RemoteStreamOptions,
)
from pypsrp.messages import (
    CreatePipeline,
    Destination,
    InitRunspacePool,
    Message,
    SessionCapability,
)
from pypsrp.powershell import Fragmenter, PowerShell
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan

from edgebook.exchange.command import Command, add_statements
from edgebook.exchange.host import HostedRunspacePool, QuestionHost
from edgebook.exchange.normalize import tolerate_references
from edgebook.exchange.pipeline_message import (
    PipelineFragmenter,
    create_pipeline_xml,
    write_pipelines,
)
from edgebook.exchange.secure import SecureText
from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.exchange.wire_values import NULL
from edgebook.phases.inspect import MAILBOX_COMMANDS, edge_commands

PID = "0B6E1C52-1D0C-4F4B-9E2A-6F1D2C3B4A59"
TEXTS = ["", "plain", "a & b <c> \"d\" 'e'", "_x0041_ and _X", "tab\there\r\nline", "\x01\x7f\x9f"]
TEXTS += ["café ∑", "emoji 😀", "]]>"]
VALUES: dict[str, Any] = {
    **{f"Text{index}": text for index, text in enumerate(TEXTS)},
    "On": True,
    "Off": False,
    "Count": 42,
    "Negative": -(2**31),
    "Big": 2**40,
    "Cleared": NULL,
    "After": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
    "Day": dt.date(2024, 5, 1),
    "Names": ["EDGE01", "", "x & y"],
    "Nested": [["a"], [1, True]],
    "Empty": [],
    "Table": {"Add": ["smtp.contoso.com"], "Remove": NULL},
    "Path": Path("/tmp/cert.pfx"),
    "Bytes": b"\x00\x01raw",
    "Password": SecureText("pässword & <secret>"),
}


def pool(protocol_version: str = "2.3") -> HostedRunspacePool:
    """A runspace pool as ExchangeShell makes it, never opened, with a session key."""
    wsman = WSMan("edge01.contoso.com", auth="basic", username="u", password="p")
    made = HostedRunspacePool(wsman, host=QuestionHost("EDGE01"), min_runspaces=1, max_runspaces=1)
    tolerate_references(made._serializer)
    made.protocol_version = protocol_version
    made._serializer.cipher = Cipher(algorithms.AES(bytes(range(32))), modes.CBC(bytes(16)))
    return made


def create_pipeline(
    made: HostedRunspacePool, build: Callable[[PowerShell], None], **options: Any
) -> CreatePipeline:
    """The CREATE_PIPELINE message PowerShell.begin_invoke makes of a pipeline."""
    ps = PowerShell(made)
    build(ps)
    pipeline = Pipeline(
        is_nested=False, cmds=ps.commands, history=options.get("history"), redirect_err_to_out=False
    )
    return CreatePipeline(
        options.get("no_input", True),
        ApartmentState(value=made.apartment_state),
        RemoteStreamOptions(value=RemoteStreamOptions.ADD_INVOCATION_INFO),
        False,
        HostInfo(host=made.host),
        pipeline,
        False,
    )


def statements(commands: Sequence[Command]) -> Callable[[PowerShell], None]:
    """Add edgebook Commands as ExchangeShell._invoke does."""
    return lambda ps: add_statements(ps, list(commands))


def pypsrp_xml(message: CreatePipeline, serializer: Serializer) -> bytes:
    element = serializer.serialize(message)
    assert element is not None
    return ET.tostring(element, encoding="utf-8", method="xml")


def script_and_arguments(ps: PowerShell) -> None:
    """A script in the local scope with an argument, then a cmdlet with a $null argument."""
    ps.add_script("param($a) $a", use_local_scope=True).add_argument("x<y>").add_statement()
    ps.add_cmdlet("Get-Item", use_local_scope=False).add_argument(None)


EDGE = types.SimpleNamespace(name="EDGE01")
SNAPIN = Command("Add-PSSnapin", {"Name": EXCHANGE_SNAPIN})
SHAPES: dict[str, Callable[[PowerShell], None]] = {
    "edge inspect": statements([SNAPIN, *edge_commands(EDGE, dt.datetime(2024, 5, 1))]),  # type: ignore[arg-type]
    "mailbox inspect": statements(MAILBOX_COMMANDS),
    "one bare cmdlet": statements([Command("Get-Date")]),
    "every value kind": statements([Command("Set-Thing", VALUES)]),
    "piped and batched": statements(
        [
            Command("Get-EventLog", {"LogName": "Application"}, then=(Command("Select-Object"),)),
            Command("Get-Date"),
        ]
    ),
    "script, scope and positional argument": script_and_arguments,
}


@pytest.mark.parametrize("protocol_version", ["2.1", "2.2", "2.3"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_message_is_what_pypsrp_writes(shape: str, protocol_version: str) -> None:
    made = pool(protocol_version)
    expected = pypsrp_xml(create_pipeline(made, SHAPES[shape]), made._serializer)
    written = create_pipeline_xml(create_pipeline(made, SHAPES[shape]), made._serializer)
    assert written == expected


def test_history_and_input_are_written_as_pypsrp_writes_them() -> None:
    made = pool()
    build = statements([Command("Get-Date")])
    options = {"history": "Get-Date & more", "no_input": False}
    expected = pypsrp_xml(create_pipeline(made, build, **options), made._serializer)
    assert (
        create_pipeline_xml(create_pipeline(made, build, **options), made._serializer) == expected
    )


@pytest.mark.parametrize("max_size", [32768, 700, 100])
def test_fragments_are_pypsrp_fragments(max_size: int) -> None:
    """Same fragments and numbering as pypsrp's Fragmenter, one message or several."""
    made = pool()
    ours = PipelineFragmenter(max_size, made._serializer)
    theirs = Fragmenter(max_size, made._serializer)
    build = SHAPES["edge inspect"]
    for _ in range(2):
        expected = theirs.fragment(create_pipeline(made, build), made.id, PID)
        assert ours.fragment(create_pipeline(made, build), made.id, PID) == expected
        assert (len(expected) > 1) == (max_size < 10000)
    other = SessionCapability(
        protocol_version="2.3", ps_version="2.0", serialization_version="1.1.0.1"
    )
    assert ours.fragment(other, made.id) == theirs.fragment(other, made.id)
    assert ours.outgoing_counter == theirs.outgoing_counter == 4


def test_the_message_header_is_pypsrps() -> None:
    made = pool()
    message = create_pipeline(made, statements([Command("Get-Date")]))
    fragment = PipelineFragmenter(32768, made._serializer).fragment(message, made.id, PID)[0]
    packed = Message(Destination.SERVER, made.id, PID, message, made._serializer).pack()
    assert fragment[21:] == packed


class RecordingShell:
    """The pool's WinRS: records the Command request begin_invoke sends."""

    def __init__(self) -> None:
        self.arguments: list[str] = []

    def command(self, executable: str, arguments: list[str], command_id: str) -> ET.Element:
        self.arguments += arguments
        return ET.Element("CommandResponse")


def test_begin_invoke_sends_through_the_pools_fragmenter() -> None:
    """pypsrp's PowerShell sends CREATE_PIPELINE through RunspacePool._fragmenter, which
    write_pipelines turns into a PipelineFragmenter keeping its state."""
    made = pool()
    made._fragmenter.outgoing_counter = 7
    made._fragmenter.max_size = 5000
    write_pipelines(made)
    assert isinstance(made._fragmenter, PipelineFragmenter)
    assert (made._fragmenter.outgoing_counter, made._fragmenter.max_size) == (7, 5000)
    shell = RecordingShell()
    made.shell = shell  # type: ignore[assignment]
    ps = PowerShell(made)
    statements([Command("Get-Date")])(ps)
    ps.begin_invoke()
    reference = Fragmenter(5021, pool()._serializer)
    reference.outgoing_counter = 7
    expected = reference.fragment(
        create_pipeline(made, statements([Command("Get-Date")])), made.id, ps.id
    )
    assert [base64.b64decode(a) for a in shell.arguments] == expected
    assert made._fragmenter.outgoing_counter == 8


def test_other_messages_are_left_to_pypsrp() -> None:
    made = pool()
    write_pipelines(made)
    message = InitRunspacePool(
        1, 1, PSThreadOptions(value=0), ApartmentState(value=2), HostInfo(host=made.host), None
    )
    expected = Fragmenter(made.connection.max_payload_size, made._serializer).fragment(
        message, made.id
    )
    made._fragmenter.outgoing_counter = 1
    assert made._fragmenter.fragment(message, made.id) == expected
