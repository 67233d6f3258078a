"""A WSMan Create's SessionCapability and InitRunspacePool read directly (edgebook.lab.winrm.
pool_reader) open the pool exactly as through psrpcore: the same pool state (its values and their
psrpcore types) and the same reply bytes, on what pypsrp (edgebook's client) and psrpcore's client
send. What the reader refuses goes to psrpcore, with psrpcore's result or error."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import psrpcore
import pytest
from psrpcore import ClientRunspacePool
from psrpcore._payload import create_fragment, create_message
from psrpcore.types import (
    ApartmentState,
    HostInfo,
    PSInt,
    PSRPMessageType,
    PSThreadOptions,
    RunspacePoolState,
    serialize,
)
from pypsrp.host import PSHost
from pypsrp.powershell import RunspacePool

from edgebook.exchange.host import QuestionHost
from edgebook.lab.winrm import runspace
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.pipeline_reader import Unreadable
from edgebook.lab.winrm.pool_reader import read_opening
from edgebook.lab.winrm.protocol import Session
from edgebook.lab.winrm.runspace import PSRPDataError, ShellRunspace
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.fake_backend import PASSWORD, USERNAME, FakeBackend
from tests.test_lab_wsman import create_refused

CIPHER = psrpcore.PSRemotingCrypto()
RPID = uuid.UUID("5b7f3a10-9c2e-4d61-8e0f-2a4b6c8d0e1f")


def pypsrp_creation(monkeypatch: pytest.MonkeyPatch, **options: Any) -> bytes:
    """The creationXml pypsrp sends to open a pool with these options (through the lab)."""
    sent: list[bytes] = []
    original = ShellRunspace.open

    def record(shell: ShellRunspace, creation_xml: bytes) -> None:
        sent.append(creation_xml)
        original(shell, creation_xml)

    arguments = options.pop("application_arguments", None)
    with monkeypatch.context() as patch:
        patch.setattr(ShellRunspace, "open", record)
        endpoint = WSManEndpoint(FakeBackend(), "EDGE01", path="wsman")
        with connect_in_process(endpoint, USERNAME, PASSWORD) as wsman:
            pool = RunspacePool(wsman, **options)
            pool.open(arguments)
            pool.close()
    (creation,) = sent
    return creation


def psrpcore_creation(**options: Any) -> bytes:
    """The creationXml psrpcore's client sends to open a pool with these options."""
    pool = ClientRunspacePool(runspace_pool_id=RPID, **options)
    pool.open()
    payload = pool.data_to_send()
    assert payload is not None
    return payload.data


def described(value: Any) -> tuple[str, bytes]:
    """A value's Python type and its CLIXML (its PowerShell type names and value)."""
    return type(value).__name__, ET.tostring(serialize(value, CIPHER))


def pool_state(shell: ShellRunspace) -> tuple[Any, ...]:
    """What psrpcore's handlers set on opening the pool, and the replies queued."""
    pool = shell._pool
    values = (pool.min_runspaces, pool.max_runspaces, pool.thread_options, pool.apartment_state)
    capability = pool.their_capability  # None when no SessionCapability was processed
    versions = (
        ()
        if capability is None
        else (capability.PSVersion, capability.protocolversion, capability.SerializationVersion)
    )
    return (
        pool.state,
        pool.runspace_pool_id,
        [described(value) for value in (*values, pool.host, *versions)],
        described(pool.application_arguments),
        (pool._ci_count, pool._fragment_count, pool._send_buffer),
        list(shell._outgoing[None]),
    )


def new_shell() -> ShellRunspace:
    session = Session(server="EDGE01", configuration_name="Microsoft.PowerShell")
    return ShellRunspace("S1", session, FakeBackend(), max_fragment=153600, owner=USERNAME)


def opened(creation_xml: bytes) -> tuple[Any, ...] | str:
    """The pool's state once opened with these bytes, or the PSRPDataError's text."""
    shell = new_shell()
    try:
        shell.open(creation_xml)
    except PSRPDataError as error:
        return str(error)
    return pool_state(shell)


def through_psrpcore(monkeypatch: pytest.MonkeyPatch, creation_xml: bytes) -> Any:
    """opened(), the reader refusing everything."""

    def refuse(creation_xml: bytes, cipher: Any) -> Any:
        raise Unreadable("the test's refusal")

    with monkeypatch.context() as patch:
        patch.setattr(runspace, "read_opening", refuse)
        return opened(creation_xml)


def assert_read_as_psrpcore(monkeypatch: pytest.MonkeyPatch, creation_xml: bytes) -> None:
    read_opening(creation_xml, CIPHER)  # the reader reads it (no Unreadable)
    direct = opened(creation_xml)
    assert not isinstance(direct, str)
    assert direct == through_psrpcore(monkeypatch, creation_xml)


# --- what the clients send --------------------------------------------------------------------


def test_edgebooks_pool_opens_as_through_psrpcore(monkeypatch):
    creation = pypsrp_creation(monkeypatch, host=QuestionHost("EDGE01"))
    assert_read_as_psrpcore(monkeypatch, creation)
    state = opened(creation)
    assert state[0] == RunspacePoolState.Opened
    assert len(state[-1]) == 1  # SessionCapability, ApplicationPrivateData, RunspacePoolState


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"min_runspaces": 2, "max_runspaces": 7, "apartment_state": 0, "thread_options": 2},
        {"host": PSHost(None, None, False, "bare", None, None, "1.0")},
        {"application_arguments": {"Name": "x", "Count": 3, "Flags": [True, None]}},
    ],
)
def test_pypsrp_pools_open_as_through_psrpcore(monkeypatch, options):
    assert_read_as_psrpcore(monkeypatch, pypsrp_creation(monkeypatch, **options))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "min_runspaces": 3,
            "max_runspaces": 9,
            "apartment_state": ApartmentState.STA,
            "thread_options": PSThreadOptions.ReuseThread,
            "application_arguments": {"a": 1, "nested": {"b": ["x", 2]}},
        },
        {"host": HostInfo(IsHostNull=False, IsHostUINull=True, UseRunspaceHost=True)},
    ],
)
def test_psrpcore_pools_open_as_through_psrpcore(monkeypatch, options):
    assert_read_as_psrpcore(monkeypatch, psrpcore_creation(**options))


# --- other shapes: psrpcore decides ------------------------------------------------------------

CAPABILITY = (
    '<Obj RefId="0"><MS><Version N="protocolversion">2.3</Version>'
    '<Version N="PSVersion">2.0</Version><Version N="SerializationVersion">1.1.0.1</Version>'
    "</MS></Obj>"
)
THREAD_OPTIONS = (
    '<Obj RefId="1" N="PSThreadOptions"><TN RefId="0">'
    "<T>System.Management.Automation.Runspaces.PSThreadOptions</T><T>System.Enum</T>"
    "<T>System.ValueType</T><T>System.Object</T></TN><ToString>Default</ToString><I32>0</I32></Obj>"
)
APARTMENT = (
    '<Obj RefId="2" N="ApartmentState"><TN RefId="1">'
    "<T>System.Management.Automation.Runspaces.ApartmentState</T><T>System.Enum</T>"
    "<T>System.ValueType</T><T>System.Object</T></TN><ToString>UNKNOWN</ToString><I32>2</I32></Obj>"
)
HOST = (
    '<Obj RefId="3" N="HostInfo"><MS><B N="_isHostNull">false</B><B N="_isHostUINull">false</B>'
    '<B N="_isHostRawUINull">true</B><B N="_useRunspaceHost">false</B></MS></Obj>'
)
INIT = (
    '<Obj RefId="0"><MS><I32 N="MinRunspaces">1</I32><I32 N="MaxRunspaces">1</I32>'
    f'{THREAD_OPTIONS}{APARTMENT}{HOST}<Nil N="ApplicationArguments" /></MS></Obj>'
)


def creation_xml(
    capability: str = CAPABILITY,
    init: str = INIT,
    *,
    kinds: tuple[PSRPMessageType, ...] = (
        PSRPMessageType.SessionCapability,
        PSRPMessageType.InitRunspacePool,
    ),
    objects: tuple[int, ...] = (1, 2),
    pools: tuple[uuid.UUID, ...] = (RPID, RPID),
    bom: bytes = b"",
) -> bytes:
    """Two messages, each in one fragment, as pypsrp sends them (pypsrp's CLIXML by default)."""
    return b"".join(
        create_fragment(obj, 0, create_message(True, kind, bom + xml.encode(), pool), end=True)
        for obj, kind, pool, xml in zip(objects, kinds, pools, (capability, init), strict=True)
    )


def changed(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


READ: dict[str, Callable[[], bytes]] = {
    "pypsrp's": creation_xml,
    "another pool id in the second message": lambda: creation_xml(pools=(RPID, uuid.uuid4())),
    "a BOM": lambda: creation_xml(bom=b"\xef\xbb\xbf"),
    "flags in capitals": lambda: creation_xml(
        init=changed(changed(INIT, "false</B>", "False</B>"), "true</B>", "TRUE</B>")
    ),
    "members in another order": lambda: creation_xml(
        changed(CAPABILITY, '<Version N="PSVersion">2.0</Version>', "").replace(
            "</MS>", '<Version N="PSVersion">2.0</Version></MS>'
        ),
        changed(INIT, f"{THREAD_OPTIONS}{APARTMENT}{HOST}", f"{HOST}{APARTMENT}{THREAD_OPTIONS}"),
    ),
    "application arguments": lambda: creation_xml(
        init=changed(
            INIT,
            '<Nil N="ApplicationArguments" />',
            '<Obj N="ApplicationArguments" RefId="9"><TN RefId="5">'
            "<T>System.Management.Automation.PSPrimitiveDictionary</T>"
            "<T>System.Collections.Hashtable</T><T>System.Object</T></TN>"
            '<DCT><En><S N="Key">Name</S><S N="Value">lab</S></En></DCT></Obj>',
        )
    ),
}


@pytest.mark.parametrize("case", READ)
def test_these_shapes_are_read_as_through_psrpcore(monkeypatch, case):
    assert_read_as_psrpcore(monkeypatch, READ[case]())


def fragmented() -> bytes:
    first, second = (
        create_message(True, kind, xml.encode(), RPID)
        for kind, xml in (
            (PSRPMessageType.SessionCapability, CAPABILITY),
            (PSRPMessageType.InitRunspacePool, INIT),
        )
    )
    return (
        create_fragment(1, 0, first, end=True)
        + create_fragment(2, 0, second[:50], end=False)
        + create_fragment(2, 1, second[50:], end=True)
    )


REFUSED: dict[str, Callable[[], bytes]] = {
    "a time zone": lambda: creation_xml(
        changed(CAPABILITY, "</MS>", '<BA N="TimeZone">AAEAAAD/////AQAAAAAAAAAEAQAAAA==</BA></MS>')
    ),
    "host default data": lambda: creation_xml(
        init=changed(INIT, "</B></MS></Obj><Nil", '</B><Nil N="_hostDefaultData" /></MS></Obj><Nil')
    ),
    "a 64-bit count": lambda: creation_xml(
        init=changed(INIT, '<I32 N="MaxRunspaces">1</I32>', '<I64 N="MaxRunspaces">4</I64>')
    ),
    "an empty count": lambda: creation_xml(
        init=changed(INIT, '<I32 N="MinRunspaces">1</I32>', '<I32 N="MinRunspaces" />')
    ),
    "a type name reference": lambda: creation_xml(
        init=changed(
            INIT,
            APARTMENT,
            '<Obj RefId="2" N="ApartmentState"><TNRef RefId="0" />'
            "<ToString>MTA</ToString><I32>1</I32></Obj>",
        )
    ),
    "an escaped member name": lambda: creation_xml(
        changed(CAPABILITY, 'N="PSVersion"', 'N="_x0050_SVersion"')
    ),
    "messages swapped": lambda: creation_xml(
        INIT,
        CAPABILITY,
        kinds=(PSRPMessageType.InitRunspacePool, PSRPMessageType.SessionCapability),
    ),
    "one object id twice": lambda: creation_xml(objects=(1, 1)),
    "a fragmented message": fragmented,
    "a missing count": lambda: creation_xml(
        init=changed(INIT, '<I32 N="MaxRunspaces">1</I32>', "")
    ),
    "a bad version": lambda: creation_xml(changed(CAPABILITY, ">2.3<", ">two<")),
    "an unknown thread option": lambda: creation_xml(
        init=changed(INIT, "<I32>0</I32>", "<I32>9</I32>")
    ),
    "not XML": lambda: creation_xml(changed(CAPABILITY, "</MS></Obj>", "</MS>")),
    "not fragments": lambda: b"these bytes are not PSRP fragments",
}


@pytest.mark.parametrize("case", REFUSED)
def test_other_shapes_go_to_psrpcore_with_its_result(monkeypatch, case):
    creation = REFUSED[case]()
    with pytest.raises(Unreadable):
        read_opening(creation, CIPHER)
    assert opened(creation) == through_psrpcore(monkeypatch, creation)


def test_psrpcore_opens_or_refuses_the_refused_shapes_as_expected(monkeypatch):
    results = {case: through_psrpcore(monkeypatch, build()) for case, build in REFUSED.items()}
    errors = {case for case, result in results.items() if isinstance(result, str)}
    assert errors == {
        "a missing count",
        "a bad version",
        "an unknown thread option",
        "not XML",
        "not fragments",
    }
    assert results["an empty count"][2][0] == described(PSInt(0))  # psrpcore reads <I32 /> as 0


def test_malformed_creation_xml_is_a_wsman_internal_error():
    endpoint = WSManEndpoint(FakeBackend(), "EDGE01", path="wsman")
    fault = create_refused(endpoint, REFUSED["a bad version"]())
    assert fault.code == "w:InternalError"
    assert "cannot process the PSRP data: ValueError" in fault.reason
    assert endpoint.open_shells == 0
