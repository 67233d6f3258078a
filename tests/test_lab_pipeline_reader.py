"""The lab reads a CREATE_PIPELINE message directly exactly as through psrpcore (deserialize,
PowerShell.FromPSObjectForRemoting, from_wire): on every message edgebook's phases send the lab,
and on edge cases written by edgebook's writer, by pypsrp and by psrpcore's client. What the
reader refuses (a fragmented message, shapes it does not read) goes to psrpcore, with psrpcore's
result."""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any, cast

import psrpcore
import pytest
from psrpcore import ClientPowerShell, ClientRunspacePool, Command, ServerRunspacePool
from psrpcore._payload import create_fragment, create_message, unpack_fragment, unpack_message
from psrpcore.types import (
    PSCryptoProvider,
    PSInvocationState,
    PSObject,
    PSRPMessageType,
    PSThreadOptions,
    deserialize,
)
from pypsrp.complex_objects import (
    ApartmentState,
    Coordinates,
    GenericComplexObject,
    HostInfo,
    Pipeline,
    RemoteStreamOptions,
)
from pypsrp.complex_objects import PSThreadOptions as PypsrpThreadOptions
from pypsrp.messages import CreatePipeline
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer, TaggedValue

from edgebook.exchange.command import Command as EdgebookCommand
from edgebook.exchange.pipeline_message import create_pipeline_xml
from edgebook.exchange.secure import SecureText
from edgebook.exchange.wire_values import NULL
from edgebook.lab.winrm import runspace
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.pipeline_reader import PipelineRequest, Unreadable, read_create_pipeline
from edgebook.lab.winrm.wire import from_wire
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.fake_backend import PASSWORD, USERNAME, FakeBackend
from tests.support.pipeline_corpus import Received, canonical, form, phase_messages
from tests.test_pipeline_message import SHAPES, pool, pypsrp_xml, statements

PID = uuid.UUID("0b6e1c52-1d0c-4f4b-9e2a-6f1d2c3b4a59")
RPID = uuid.UUID("5b7f3a10-9c2e-4d61-8e0f-2a4b6c8d0e1f")
CIPHER = psrpcore.PSRemotingCrypto()
CIPHER.register_key(bytes(range(32)))  # the key test_pipeline_message's pool encrypts with
Build = Callable[[PowerShell], None]


def clixml(fragment: bytes) -> bytes:
    """The CLIXML of the message a whole fragment carries."""
    return bytes(unpack_message(bytearray(unpack_fragment(bytearray(fragment)).data)).data)


def through_psrpcore(fragment: bytes, cipher: PSCryptoProvider = CIPHER) -> Any:
    """What the lab makes of a whole CreatePipeline fragment through psrpcore."""
    element = ET.fromstring(clixml(fragment))
    message_object = cast(PSObject, deserialize(element, cipher))
    pipeline = psrpcore.PowerShell.FromPSObjectForRemoting(message_object)
    return form(runspace.psrpcore_request(pipeline))


def directly(fragment: bytes, cipher: PSCryptoProvider = CIPHER) -> Any:
    return form(read_create_pipeline(fragment, PID, cipher))


def fragments(
    xml: bytes, *, size: int = 1 << 20, kind: PSRPMessageType = PSRPMessageType.CreatePipeline
) -> list[bytes]:
    """A message for PID in fragments of at most size bytes, numbered as clients number them."""
    message = create_message(True, kind, xml, RPID, PID)
    chunks = [message[start : start + size] for start in range(0, len(message), size)]
    return [
        create_fragment(7, index, chunk, end=index == len(chunks) - 1)
        for index, chunk in enumerate(chunks)
    ]


def whole(xml: bytes) -> bytes:
    (fragment,) = fragments(xml)
    return fragment


# --- the messages edgebook's phases send the lab --------------------------------------------


@pytest.fixture(scope="module")
def phase_traffic(tmp_path_factory: pytest.TempPathFactory) -> list[Received]:
    return phase_messages(tmp_path_factory.mktemp("traffic"))


def test_every_message_the_phases_send_reads_as_through_psrpcore(phase_traffic):
    kinds: set[str] = set()
    for fragment, pipeline_id, cipher in phase_traffic:
        read = form(read_create_pipeline(fragment, pipeline_id, cipher))
        assert read == through_psrpcore(fragment, cipher)
        kinds |= {value[0] for command in read[0] for _name, value in command[2]}
    assert len(phase_traffic) > 30
    assert {"str", "bool", "list", "bytes", "SecureText"} <= kinds


# --- edge cases written by edgebook, pypsrp and psrpcore -------------------------------------

TEXTS = ["", "plain", "a & b <c> \"d\" 'e'", "_x0041_ and _X", "tab\there\r\nline", "\x01\x7f"]
TEXTS += ["café ∑", "emoji 😀", "]]>", "\u5f00x0041_", "_x005F_x0041_"]
EDGEBOOK_VALUES: dict[str, Any] = {
    **{f"Text{index}": text for index, text in enumerate(TEXTS)},
    "Switch": True,
    "Off": False,
    "Widths": [0, -(2**31), 2**31 - 1, 2**31, -(2**63), 2**63 - 1],
    "When": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
    "Nested": [["a", ""], [1, True, []], {"k": ["v"]}],
    "Table": {"Add": ["smtp.contoso.com"], "Remove": NULL, "Count": 2, "Deep": {"x": {"y": 1}}},
    "Bytes": b"\x00\x01raw\xff",
    "Empty": b"",
    "Password": SecureText("pässword & <secret>"),
}
EDGEBOOK_CASES: dict[str, list[EdgebookCommand]] = {
    "every value kind": [EdgebookCommand("Set-Thing", EDGEBOOK_VALUES)],
    "piped, batched, repeated": [
        EdgebookCommand("Get-A", {"Name": "x"}, then=(EdgebookCommand("Select-Object"),)),
        EdgebookCommand("Get-A", {"Name": "x"}),
        EdgebookCommand("Get-A", {"Name": "x"}),
    ],
}


def element(xml: str) -> ET.Element:
    """A raw CLIXML value pypsrp writes as it is (RefIds above those pypsrp numbers)."""
    return ET.fromstring(xml)


def tn(ref: int, *names: str) -> str:
    return f'<TN RefId="{ref}">' + "".join(f"<T>{n}</T>" for n in names) + "</TN>"


def generic(types: list[str], adapted: dict[str, Any], extended: dict[str, Any]) -> Any:
    obj = GenericComplexObject()
    obj.types = types
    obj.adapted_properties = adapted
    obj.extended_properties = extended
    obj.to_string = "shown"
    return obj


def every_tag(ps: PowerShell) -> None:
    """One parameter per CLIXML scalar tag pypsrp writes."""
    ps.add_cmdlet("Set-Scalars")
    for tag, value in [
        ("By", 255), ("SB", -128), ("U16", 65535), ("I16", -32768), ("U32", 2**32 - 1),
        ("I32", 7), ("U64", 2**64 - 1), ("I64", -(2**63)), ("Sg", 1.5), ("Db", 0.1),
        ("D", "12.50"), ("C", "é"), ("G", uuid.UUID(int=42)), ("BA", b"\x00\xff"),
        ("TS", "-P1DT2H3M4.5678901S"), ("Version", "1.2.3.4"), ("URI", "http://x/_x0041_"),
        ("XD", "<a>&amp;</a>"), ("SBK", "{ $_ }"), ("SS", "s€cret"), ("S", "_x000A_"),
    ]:  # fmt: skip
        ps.add_parameter(tag, TaggedValue(tag, value))
    ps.add_parameter("Empty", element("<I32 />")).add_parameter("Capital", element("<B>True</B>"))
    ps.add_parameter("NoText", element("<B />")).add_parameter("Blank", element("<S />"))
    ps.add_parameter("Float", 2.25).add_parameter("Guid", uuid.UUID(int=7))


def datetimes(ps: PowerShell) -> None:
    ps.add_cmdlet("Set-Times")
    for index, text in enumerate(
        [
            "2024-05-01T12:30:00Z",
            "2024-05-01T12:30:00.1234567+02:00",
            "2024-05-01T12:30:00.5-07:30",
            "2024-05-01T12:30:00",
            "2024-05-01T12:30:00.123",
        ]
    ):
        ps.add_parameter(f"When{index}", element(f"<DT>{text}</DT>"))


def objects(ps: PowerShell) -> None:
    """Objects: property bags, the same object twice (a Ref), enums, collections of kinds."""
    bag = generic(["Contoso.Thing", "System.Object"], {"A": 1, "B": [1, "x"]}, {"C": None})
    ps.add_cmdlet("Set-Objects")
    ps.add_parameter("Bag", bag)
    ps.add_parameter("Nested", generic(["Contoso.Outer"], {"Inner": bag, "Z": {}}, {}))
    flags = GenericComplexObject()
    flags.types = ["Contoso.Flags", "System.Enum", "System.ValueType", "System.Object"]
    flags.to_string = "IMAP, POP"
    flags.property_sets = [27]
    ps.add_parameter("Flags", flags)
    ps.add_parameter("Registered", PypsrpThreadOptions(value=PypsrpThreadOptions.REUSE_THREAD))
    ps.add_parameter("Apartment", ApartmentState(value=ApartmentState.MTA))
    ps.add_parameter("Keys", {1: "one", "1": "text", False: "no", None: "null", 2.5: "x"})
    equal_keys = ((1, "int"), (True, "bool"), (1.0, "float"), ("a", 1), ("a", 2))
    ps.add_parameter("EqualKeys", TaggedValue("DCT", equal_keys))
    ps.add_parameter(
        "Kinds",
        element(
            '<Obj RefId="900"><TN RefId="90"><T>System.Collections.Stack</T></TN>'
            "<STK><S>top</S><I32>2</I32></STK></Obj>"
        ),
    )
    ps.add_parameter(
        "Enumerable",
        element(f'<Obj RefId="901">{tn(91, "Contoso.Bag")}<IE><B>true</B></IE><MS>'
                '<S N="Note">dropped</S></MS></Obj>'),
    )  # fmt: skip
    ps.add_parameter(
        "Custom",
        element(f'<Obj RefId="902">{tn(92, "System.Management.Automation.PSCustomObject")}'
                '<Props><S N="Same">adapted</S><S N="First">1</S></Props>'
                '<MS><S N="Same">extended</S></MS></Obj>'),
    )  # fmt: skip
    ps.add_parameter(
        "State",
        element(f'<Obj RefId="903">{tn(93, "System.Management.Automation.PSInvocationState")}'
                "<ToString>Running</ToString><I32>1</I32></Obj>"),
    )  # fmt: skip
    ps.add_parameter("StateAgain", element('<Ref RefId="903" />'))
    ps.add_parameter("KindsAgain", element('<Ref RefId="900" />'))
    ps.add_parameter(
        "Hashtable",
        element(f'<Obj RefId="904">{tn(94, "System.Collections.Hashtable")}<DCT>'
                '<En><S N="Key">k</S><Ref N="Value" RefId="902" /></En>'
                '<En><I64 N="Key">5</I64><Obj RefId="905" N="Value"><TNRef RefId="94" />'
                "<DCT /></Obj></En></DCT></Obj>"),
    )  # fmt: skip


def statements_of_kinds(ps: PowerShell) -> None:
    """Positional arguments, switches, duplicates, names with a dash, a script, merges."""
    ps.add_cmdlet("Get-Item", use_local_scope=True).add_argument("first").add_argument(None)
    ps.add_parameter("-Path", "x").add_parameter("Force", True).add_parameter("Null")
    ps.add_parameter("Path", "again").add_parameter("Ünïcode_x0041_", 1)
    ps.add_statement()
    ps.add_script("param($a) $a", use_local_scope=False).add_argument("x<y>")
    ps.add_cmdlet("Out-String")
    ps.merge_error("output")
    ps.add_statement()
    ps.add_cmdlet("Get-Date")


CASES: dict[str, Build] = {
    **SHAPES,
    **{name: statements(commands) for name, commands in EDGEBOOK_CASES.items()},
    "every tag": every_tag,
    "datetimes": datetimes,
    "objects": objects,
    "statements of kinds": statements_of_kinds,
}
WRITERS: dict[str, Callable[[CreatePipeline, Serializer], bytes]] = {
    "edgebook": create_pipeline_xml,
    "pypsrp": pypsrp_xml,
}


def written(
    build: Build, writer: str = "pypsrp", *, host: bool = True, no_input: bool = True
) -> bytes:
    """The fragment of the CREATE_PIPELINE message pypsrp's PowerShell.begin_invoke makes,
    written by edgebook's writer or by pypsrp's."""
    made = pool()
    ps = PowerShell(made)
    build(ps)
    pipeline = Pipeline(is_nested=False, cmds=ps.commands, history=None, redirect_err_to_out=False)
    message = CreatePipeline(
        no_input,
        ApartmentState(value=made.apartment_state),
        RemoteStreamOptions(value=RemoteStreamOptions.ADD_INVOCATION_INFO),
        False,
        HostInfo(host=made.host if host else None),
        pipeline,
        False,
    )
    return whole(WRITERS[writer](message, made._serializer))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("host", [True, False])
@pytest.mark.parametrize("no_input", [True, False])
def test_written_cases_read_as_through_psrpcore(
    case: str, writer: str, host: bool, no_input: bool
) -> None:
    fragment = written(CASES[case], writer, host=host, no_input=no_input)
    read = directly(fragment)
    assert read == through_psrpcore(fragment)
    assert read[1] is no_input and read[2].is_host_null is not host


def psrpcore_fragment(build: Callable[[ClientPowerShell], None]) -> bytes:
    """The CreatePipeline psrpcore's client sends (ArrayLists, registered enums, Refs)."""
    client, server = ClientRunspacePool(), ServerRunspacePool()
    client.open()
    for source, target in ((client, server), (server, client)):
        while (payload := source.data_to_send()) is not None:
            target.receive_data(payload)
            while target.next_event() is not None:
                pass
    ps = ClientPowerShell(client)
    build(ps)
    ps.start()
    payload = client.data_to_send()
    assert payload is not None
    return whole(clixml(payload.data))


def psrpcore_values(ps: ClientPowerShell) -> None:
    ps.add_command("Set-Thing").add_parameter("Names", ["a", 1, None]).add_argument({"k": "v"})
    ps.add_parameter("When", dt.datetime(2024, 5, 1, 12, 30, 1, 500, tzinfo=dt.UTC))
    ps.add_parameter("Span", dt.timedelta(days=-1, microseconds=3))
    ps.add_parameter("State", PSInvocationState.Stopped).add_parameter(
        "Threads", PSThreadOptions.UseNewThread
    )
    ps.add_parameter("Switch")
    ps.add_statement()
    command = Command("Get-Date")
    command.redirect_all()
    ps.add_command(command)
    ps.add_script("1 + 1")


def test_psrpcore_written_messages_read_as_through_psrpcore() -> None:
    fragment = psrpcore_fragment(psrpcore_values)
    read = directly(fragment)
    assert read == through_psrpcore(fragment)
    assert read[2].use_runspace_host


# --- what the reader refuses ----------------------------------------------------------------

BASE = clixml(written(statements([EdgebookCommand("Get-A", {"N": "x"})])))


def edited(old: str, new: str) -> bytes:
    assert old.encode() in BASE
    return BASE.replace(old.encode(), new.encode(), 1)


REFUSED: dict[str, bytes] = {
    "a Ref to a part of the pipeline": edited('<S N="V">x</S>', '<Ref RefId="0" N="V" />'),
    "a property given twice": edited('<B N="NoInput">true</B>', '<B N="NoInput">true</B>' * 2),
    "a field psrpcore needs left out": edited('<B N="AddToHistory">false</B>', ""),
    "IsScript not a boolean": edited('<B N="IsScript">false</B>', '<I32 N="IsScript">0</I32>'),
    "host default data": edited(
        '<B N="_useRunspaceHost">false</B>',
        '<B N="_useRunspaceHost">false</B><Obj RefId="99" N="_hostDefaultData"><MS /></Obj>',
    ),
    "an unknown tag": edited('<S N="V">x</S>', '<Unknown N="V">x</Unknown>'),
    "a string inside an object": edited('<S N="V">x</S>', '<Obj RefId="99" N="V"><S>x</S></Obj>'),
    "a queue": edited('<S N="V">x</S>', '<Obj RefId="99" N="V"><QUE><S>x</S></QUE></Obj>'),
    "a RefId defined twice": edited('<S N="V">x</S>', '<Obj RefId="1" N="V"><LST /></Obj>'),
    "a RefId defined again inside its object": edited(
        '<S N="V">x</S>', '<Obj RefId="99" N="V"><MS><Obj RefId="99" N="W" /></MS></Obj>'
    ),
    "a Ref to the object being read": edited(
        '<S N="V">x</S>', '<Obj RefId="99" N="V"><LST><Ref RefId="99" /></LST></Obj>'
    ),
    "an enum value the enum lacks": edited(
        '<S N="V">x</S>',
        f'<Obj RefId="99" N="V">{tn(99, "System.Management.Automation.PSInvocationState")}'
        "<I32>42</I32></Obj>",
    ),
    "a class psrpcore rehydrates": edited(
        '<S N="V">x</S>',
        f'<Obj RefId="99" N="V">{tn(99, "System.Management.Automation.Host.Coordinates")}'
        '<Props><I32 N="X">1</I32><I32 N="Y">2</I32></Props></Obj>',
    ),
    "a character as a key": edited(
        '<S N="V">x</S>',
        f'<Obj RefId="99" N="V">{tn(99, "System.Collections.Hashtable")}'
        '<DCT><En><C N="Key">65</C><S N="Value">a</S></En></DCT></Obj>',
    ),
    "an integer out of its range": edited('<S N="V">x</S>', '<I32 N="V">2147483648</I32>'),
    "a registered enum with properties": edited(
        '<S N="V">x</S>',
        f'<Obj RefId="99" N="V">{tn(99, "System.Management.Automation.PSInvocationState")}'
        '<I32>1</I32><MS><S N="Note">x</S></MS></Obj>',
    ),
    "not XML": b"<Obj",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_reader_refuses_what_it_does_not_read_as_psrpcore(case: str) -> None:
    with pytest.raises(Unreadable):
        read_create_pipeline(whole(REFUSED[case]), PID, CIPHER)


def test_only_a_whole_create_pipeline_for_that_pipeline_is_read() -> None:
    assert read_create_pipeline(whole(BASE), PID, CIPHER).commands[0].name == "Get-A"
    first, *_rest = fragments(BASE, size=200)
    other = fragments(BASE, kind=PSRPMessageType.PipelineInput)[0]
    for refused in (first, whole(BASE) + whole(BASE), other, whole(BASE)[:-1]):
        with pytest.raises(Unreadable):
            read_create_pipeline(refused, PID, CIPHER)
    with pytest.raises(Unreadable):
        read_create_pipeline(whole(BASE), uuid.uuid4(), CIPHER)


# --- the lab falls back to psrpcore ----------------------------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How the lab took each CreatePipeline: "direct" or "psrpcore"."""
    taken: list[str] = []

    def spy(fragment: bytes, pipeline_id: uuid.UUID, cipher: Any) -> PipelineRequest:
        try:
            request = read_create_pipeline(fragment, pipeline_id, cipher)
        except Unreadable:
            taken.append("psrpcore")
            raise
        taken.append("direct")
        return request

    monkeypatch.setattr(runspace, "read_create_pipeline", spy)
    return taken


@pytest.fixture
def client() -> Iterator[tuple[RunspacePool, FakeBackend]]:
    backend = FakeBackend()
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman")
    with RunspacePool(connect_in_process(endpoint, USERNAME, PASSWORD)) as opened:
        yield opened, backend


def invoke(pool_: RunspacePool, cmdlet: str, **parameters: Any) -> None:
    ps = PowerShell(pool_)
    ps.add_cmdlet(cmdlet)
    for name, value in parameters.items():
        ps.add_parameter(name, value)
    ps.invoke()
    assert not ps.had_errors


def test_a_fragmented_pipeline_goes_through_psrpcore_once(client, reads, monkeypatch) -> None:
    conversions: list[int] = []
    convert = psrpcore.PowerShell.FromPSObjectForRemoting.__func__  # type: ignore[attr-defined]

    def counted(cls: type, value: Any, **kwargs: Any) -> Any:
        conversions.append(1)
        return convert(cls, value, **kwargs)

    monkeypatch.setattr(psrpcore.PowerShell, "FromPSObjectForRemoting", classmethod(counted))
    opened, backend = client
    blob = bytes(range(256)) * 2400  # several fragments of a 150 KiB envelope
    invoke(opened, "Echo", Blob=blob, Name="small")
    invoke(opened, "Echo", Name="small")
    assert reads == ["psrpcore", "direct"]
    assert conversions == [1]  # the pipeline's metadata, not event.pipeline again
    (call,) = backend.calls[0].statements[0]
    assert call.parameters == {"Blob": blob, "Name": "small"}
    assert backend.calls[1].statements == [[runspace.CommandCall("Echo", {"Name": "small"})]]


@pytest.mark.parametrize(
    "value",
    [
        Coordinates(x=1, y=2),
        element(f'<Obj RefId="900">{tn(90, "Contoso.Name")}<ToString>x</ToString><S>x</S></Obj>'),
    ],
    ids=["a class psrpcore rehydrates", "a string inside an object"],
)
def test_a_value_the_reader_refuses_gets_psrpcores_value(client, reads, value) -> None:
    opened, backend = client
    made = pool()
    written = made._serializer.serialize(value)
    assert written is not None
    expected = from_wire(deserialize(written, CIPHER))
    invoke(opened, "Echo", Value=value)
    assert reads == ["psrpcore"]
    (call,) = backend.calls[0].statements[0]
    assert canonical(call.parameters["Value"]) == canonical(expected)


def test_statement_values_are_fresh_for_each_reference() -> None:
    """A <Ref> gives a copy, as from_wire makes a new value each time it meets the object."""
    fragment = written(objects)
    request = read_create_pipeline(fragment, PID, CIPHER)
    parameters = dict(request.commands[0].parameters)
    assert parameters["Kinds"] == parameters["KindsAgain"] == ["top", 2]
    assert parameters["Kinds"] is not parameters["KindsAgain"]
    assert parameters["Nested"]["Inner"] == parameters["Bag"]
    assert parameters["Nested"]["Inner"]["B"] is not parameters["Bag"]["B"]
