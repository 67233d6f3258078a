"""Control messages read by clixml give what pypsrp's own parse gives (control_messages.py)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psrpcore
import pytest
from psrpcore import types as ps
from pypsrp.messages import (
    ApplicationPrivateData,
    ErrorRecordMessage,
    PipelineState,
    RunspacePoolStateMessage,
    SessionCapability,
)
from pypsrp.serializer import ObjectMeta, Serializer

from edgebook.config import load_inventory
from edgebook.exchange import control_messages
from edgebook.exchange.command import Command
from edgebook.exchange.connect import resolve_credentials, shell_factory
from edgebook.exchange.normalize import ReferenceTolerantSerializer, command_error, normalize
from edgebook.exchange.record import PSRecord

CIPHER = psrpcore.PSRemotingCrypto()
OBJECT = "System.Object"
FIXTURES = Path(__file__).parent / "fixtures" / "clixml"
KINDS = (
    SessionCapability,
    ApplicationPrivateData,
    RunspacePoolStateMessage,
    PipelineState,
    ErrorRecordMessage,
)


def clixml(value: Any) -> str:
    return ET.tostring(ps.serialize(value, CIPHER), encoding="unicode")


def pypsrp_read(text: str, kind: type) -> Any:
    """What pypsrp's own Serializer makes of the message."""
    return Serializer().deserialize(text, ObjectMeta("Obj", object=kind))


def fast_read(text: str, kind: type) -> Any:
    return control_messages.read(ET.fromstring(text), kind)


def assert_same(fast: Any, slow: Any, kind: type) -> None:
    """The fast message carries what edgebook and pypsrp read from pypsrp's."""
    if kind is ErrorRecordMessage:
        assert isinstance(fast, PSRecord)
        assert command_error(fast, "EDGE01", terminating=False) == command_error(
            slow, "EDGE01", terminating=False
        )
        return
    assert type(fast) is kind
    if kind is SessionCapability:
        for name in ("protocol_version", "ps_version", "serialization_version", "time_zone"):
            assert getattr(fast, name) == getattr(slow, name), name
    elif kind is ApplicationPrivateData:
        assert isinstance(fast, ApplicationPrivateData)
        assert fast.data == normalize(slow.data)
    else:
        assert isinstance(fast, RunspacePoolStateMessage | PipelineState)
        assert (fast.state, fast.error_record) == (slow.state, None)


def exception(message: str = "boom", *names: str) -> ps.NETException:
    made = ps.NETException(Message=message)
    made.PSObject.type_names = [*(names or ("Foo.BarException",)), "System.Exception", OBJECT]
    return made


def error_message(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "Exception": exception(),
        "CategoryInfo": ps.ErrorCategoryInfo(
            Category=ps.ErrorCategory.ObjectNotFound,
            Activity="Get-ExchangeCertificate",
            Reason="BarException",
            TargetName="target",
            TargetType="String",
        ),
        "TargetObject": "target",
        "FullyQualifiedErrorId": "NotFound,Microsoft.Exchange.Get",
    }
    fields.update(overrides)
    return clixml(ps.ErrorRecordMsg(**fields))


def with_exception(replacement: str) -> str:
    """An error record whose Exception element is replaced."""
    element = ET.fromstring(error_message())
    properties = element.find("MS")
    assert properties is not None
    found = next(e for e in properties if e.get("N") == "Exception")
    properties.insert(list(properties).index(found), ET.fromstring(replacement))
    properties.remove(found)
    return ET.tostring(element, encoding="unicode")


@pytest.mark.parametrize(
    "text",
    [
        error_message(),
        with_exception('<Nil N="Exception" />'),
        error_message(Exception=exception("")),  # no message: the record's ToString()
        error_message(TargetObject=None),
        error_message(TargetObject=42),
        error_message(TargetObject="line\nbreak _x000A_ escaped"),
        error_message(FullyQualifiedErrorId="[Server=EDGE01] Id,Cmdlet"),
        (FIXTURES / "error_record.xml").read_text(),
    ],
)
def test_error_records_give_the_same_command_error(text: str):
    assert_same(
        fast_read(text, ErrorRecordMessage),
        pypsrp_read(text, ErrorRecordMessage),
        ErrorRecordMessage,
    )


@pytest.mark.parametrize(
    "text",
    [
        error_message(TargetObject=dt.datetime(2026, 1, 1)),  # pypsrp prints the wire text
        error_message(TargetObject=["a", "b"]),
        with_exception('<S N="Exception">a string, not an object</S>'),
        with_exception(  # an object without properties: pypsrp still reads its type
            '<Obj N="Exception" RefId="9"><TN RefId="9"><T>Foo.BarException</T><T>System.Object'
            "</T></TN><ToString>Foo.BarException: boom</ToString></Obj>"
        ),
        with_exception(  # no type pypsrp knows: it keeps the text
            '<Obj N="Exception" RefId="9"><TN RefId="9"><T>Foo.BarException</T></TN>'
            '<Props><S N="Message">boom</S></Props></Obj>'
        ),
    ],
)
def test_error_records_printed_differently_are_left_to_pypsrp(text: str):
    assert fast_read(text, ErrorRecordMessage) is None
    received = ReferenceTolerantSerializer().deserialize(
        text, ObjectMeta("Obj", object=ErrorRecordMessage)
    )
    assert isinstance(received, ErrorRecordMessage)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (
            SessionCapability,
            ps.SessionCapability(
                PSVersion=ps.PSVersion("2.0"),
                protocolversion=ps.PSVersion("2.3"),
                SerializationVersion=ps.PSVersion("1.1.0.1"),
            ),
        ),
        (
            SessionCapability,
            ps.SessionCapability(
                PSVersion=ps.PSVersion("2.0"),
                protocolversion=ps.PSVersion("2.2"),
                SerializationVersion=ps.PSVersion("1.1.0.1"),
                TimeZone=b"\x00\x01binary",
            ),
        ),
        (
            RunspacePoolStateMessage,
            ps.RunspacePoolStateMsg(RunspaceState=ps.RunspacePoolState.Opened),
        ),
        (PipelineState, ps.PipelineState(PipelineState=ps.PSInvocationState.Completed)),
        (PipelineState, ps.PipelineState(PipelineState=ps.PSInvocationState.Stopped)),
        (
            ApplicationPrivateData,
            ps.ApplicationPrivateData(
                ApplicationPrivateData={"PSVersionTable": {"PSVersion": "5.1", "Build": 17763}}
            ),
        ),
    ],
)
def test_control_messages_carry_pypsrps_values(kind: type, value: Any):
    text = clixml(value)
    assert_same(fast_read(text, kind), pypsrp_read(text, kind), kind)


def test_a_failed_state_with_its_reason_is_left_to_pypsrp():
    record = ps.ErrorRecord(
        Exception=exception("the pipeline failed"),
        CategoryInfo=ps.ErrorCategoryInfo(),
        FullyQualifiedErrorId="Failed",
    )
    text = clixml(
        ps.PipelineState(PipelineState=ps.PSInvocationState.Failed, ExceptionAsErrorRecord=record)
    )
    assert fast_read(text, PipelineState) is None
    state = ReferenceTolerantSerializer().deserialize(text, ObjectMeta("Obj", object=PipelineState))
    assert isinstance(state, PipelineState)
    assert state.state == ps.PSInvocationState.Failed.value and state.error_record is not None


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (PipelineState, '<Obj RefId="0"><MS><S N="PipelineState">4</S></MS></Obj>'),
        (PipelineState, '<Obj RefId="0"><MS><I32 N="State">4</I32></MS></Obj>'),
        (RunspacePoolStateMessage, '<Obj RefId="0"><MS><Nil N="RunspaceState" /></MS></Obj>'),
        (SessionCapability, '<Obj RefId="0"><MS><Version N="PSVersion">2.0</Version></MS></Obj>'),
        (
            ApplicationPrivateData,
            '<Obj RefId="0"><MS><S N="ApplicationPrivateData">x</S></MS></Obj>',
        ),
        (PipelineState, '<Obj RefId="0"><MS><Unknown N="PipelineState">4</Unknown></MS></Obj>'),
        (PipelineState, "<S>not an object</S>"),
    ],
)
def test_unexpected_shapes_are_left_to_pypsrp(kind: type, text: str):
    assert fast_read(text, kind) is None


def test_other_messages_are_left_to_pypsrp():
    assert fast_read('<Obj RefId="0"><MS><I32 N="x">1</I32></MS></Obj>', Serializer) is None
    assert control_messages.read(ET.fromstring("<Obj />"), None) is None


def test_a_lab_session_reads_every_control_message_as_pypsrp_does(start_lab, monkeypatch):
    """Against the lab: every control message the client received, read both ways."""
    received: list[tuple[str, type]] = []
    original = ReferenceTolerantSerializer.deserialize

    def spy(self: Any, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        if clear and isinstance(element, str) and metadata is not None:
            received.append((element, metadata.object))
        return original(self, element, metadata, clear)

    monkeypatch.setattr(ReferenceTolerantSerializer, "deserialize", spy)
    directory = start_lab("healthy")
    inventory = load_inventory(directory / "inventory.yaml")
    edge = inventory.edges[0].name
    with shell_factory(resolve_credentials(inventory.servers))(inventory, edge) as shell:
        result = shell.run_batch(
            [
                Command("Get-Date"),
                Command("Get-ExchangeCertificate", {"Thumbprint": "0" * 40}),
            ],
            errors="return",
        )
    assert [error.category for error in result.errors] == ["ObjectNotFound"]
    kinds = {kind for _, kind in received}
    assert kinds >= set(KINDS), kinds
    for text, kind in received:
        if kind in KINDS:
            assert_same(fast_read(text, kind), pypsrp_read(text, kind), kind)


def test_an_error_without_message_or_text_names_its_error_id():
    text = error_message(Exception=exception(""))  # psrpcore then writes no ToString
    assert "<ToString>" not in text
    for record in (fast_read(text, ErrorRecordMessage), pypsrp_read(text, ErrorRecordMessage)):
        error = command_error(record, "EDGE01", terminating=False)
        assert error.message == "NotFound,Microsoft.Exchange.Get"
