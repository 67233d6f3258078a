"""The lab's output cache (edgebook.lab.winrm.outcache) and replayed messages
(edgebook.lab.winrm.replay): what the unmodified pypsrp client receives is the same with and
without them, and a changed object is never served stale."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psrpcore
import pytest
from psrpcore import ServerPipeline, ServerRunspacePool
from psrpcore.types import ApplicationPrivateData, RunspacePoolState, serialize

from edgebook.config import WinRMEndpoint
from edgebook.exchange.shell import ExchangeShell
from edgebook.exchange.wire_types import EDGE_SHAPE
from edgebook.lab.backend import LabBackend
from edgebook.lab.winrm import outcache, replay, runspace
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject, Int64
from edgebook.lab.winrm.protocol import ErrorInfo
from edgebook.lab.winrm.wire import to_wire
from edgebook.lab.winrm.wsman import WSManEndpoint
from edgebook.secrets import Credential
from tests.support.lab import PASSWORD, lab_copy

USER = "EDGE01\\Administrator"
READS = [
    ("Get-ReceiveConnector", {}),
    ("Get-SendConnector", {}),
    ("Get-Service", {"Name": ["MSExchangeTransport", "ADAM_MSExchange"]}),
    ("Get-TransportService", {}),
]  # (not Get-ServerHealth: its LastTransitionTime is the lab's "now", new at every call)


class Edge:
    """An ExchangeShell on EDGE01 of a healthy lab, in process."""

    def __init__(self, directory: Path) -> None:
        self.store = lab_copy("healthy", directory)
        path, configuration = EDGE_SHAPE
        self.endpoint = WSManEndpoint(
            LabBackend(self.store), "EDGE01", path=path, configuration_names={configuration}
        )
        self.shell = ExchangeShell(
            "EDGE01",
            WinRMEndpoint("127.0.0.1", 5985, path, "http", "basic", configuration),
            Credential(USER, PASSWORD),
            role="Edge",
            lab=True,
            wsman=connect_in_process(self.endpoint, USER, PASSWORD),
        )

    def read(self, cmdlet: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Each record as (type names, ToString, properties)."""
        return [(r.type_names, r.to_string, dict(r)) for r in self.shell.run(cmdlet, **params)]


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    lab = Edge(tmp_path / "lab")
    with lab.shell:
        yield lab
    lab.endpoint.close()


def test_cached_output_reads_as_psrpcores_own(edge, monkeypatch):
    cache = outcache.ClixmlCache()
    monkeypatch.setattr(outcache, "CACHE", cache)
    first = {cmdlet: edge.read(cmdlet, params) for cmdlet, params in READS}
    assert cache.misses > 0 and cache.hits == 0
    again = {cmdlet: edge.read(cmdlet, params) for cmdlet, params in READS}
    assert cache.hits == cache.misses  # every object the second time from the cache
    assert again == first
    monkeypatch.setattr(runspace, "write_output", lambda pipe, v: pipe.write_output(to_wire(v)))
    plain = {cmdlet: edge.read(cmdlet, params) for cmdlet, params in READS}
    assert plain == first
    assert all(first.values())


def test_a_changed_object_is_serialised_again(edge):
    ((_, _, before),) = edge.read("Get-Service", {"Name": "MSExchangeTransport"})
    edge.shell.run("Suspend-Service", Name="MSExchangeTransport")
    ((_, _, after),) = edge.read("Get-Service", {"Name": "MSExchangeTransport"})
    assert (before["Status"], after["Status"]) == ("Running", "Paused")


def test_int64_and_int_are_different_entries():
    crypto = psrpcore.PSRemotingCrypto()
    wide, narrow = ExObject(["T"], {"A": Int64(5)}), ExObject(["T"], {"A": 5})
    assert repr(wide) != repr(narrow)
    assert outcache.content_key(wide) != outcache.content_key(narrow)
    texts = [ElementTree.tostring(serialize(to_wire(o), crypto)) for o in (wide, narrow)]
    assert b"<I64" in texts[0] and b"<I32" in texts[1]


def test_content_keys_tell_apart_what_serialises_differently():
    utc = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    later_zone = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))  # == utc, other text
    for one, other in [(True, 1), (0.0, -0.0), (utc, later_zone), ("1", 1), ([1], (1,))]:
        assert outcache.content_key(ExObject(["T"], {"A": one})) != outcache.content_key(
            ExObject(["T"], {"A": other})
        )


def test_equal_contents_have_equal_content_keys():
    def build() -> ExObject:
        nested = ExObject(["N"], {"When": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}, "n")
        items = ExList("L", [ExEnum("E", "On", 1), b"\x00", {"k": [nested]}])
        return ExObject(["T", "System.Object"], {"A": items, "B": None}, notes=("B",))

    assert outcache.content_key(build()) == outcache.content_key(build())
    changed = build()
    changed.properties["A"].items[0] = ExEnum("E", "Off", 0)
    assert outcache.content_key(changed) != outcache.content_key(build())


@pytest.fixture
def replays(monkeypatch) -> replay._Replays:
    fresh = replay._Replays()
    monkeypatch.setattr(replay, "REPLAYS", fresh)
    return fresh


PIPELINE = uuid.UUID("6b9b37a1-a5b4-4a5e-b7a4-0d2d34a8e0c1")


def control_messages(pool: ServerRunspacePool) -> list[tuple[Any, ...]]:
    """The messages a pool queues for: its capability, opening, a pipeline run, its closing."""
    pool.prepare_message(pool.our_capability)
    pool.prepare_message(
        ApplicationPrivateData(ApplicationPrivateData=pool.application_private_data)
    )
    pool._change_state(RunspacePoolState.Opened)
    pipe = ServerPipeline(pool, PIPELINE)
    pipe.start()
    pipe.complete()
    pipe.close()
    pool.close()
    return [(m.message_type, m.pipeline_id, m.stream_type, m.data) for m in pool._send_buffer]


def test_replayed_control_messages_are_psrpcores_bytes(replays):
    expected = control_messages(ServerRunspacePool())
    assert control_messages(replay.LabRunspacePool()) == expected  # psrpcore's, kept
    assert replays.hits == 0
    assert control_messages(replay.LabRunspacePool()) == expected  # replayed
    assert replays.hits == len(expected)


def written_error(info: ErrorInfo) -> bytes:
    """The ErrorRecord message the lab queues for info on a running pipeline."""
    pool = ServerRunspacePool()
    pool._change_state(RunspacePoolState.Opened)
    pipe = ServerPipeline(pool, PIPELINE)
    pipe.start()
    queued = len(pool._send_buffer)
    runspace._write_error(pipe, info, "Get-EventLog")
    (message,) = pool._send_buffer[queued:]
    return message.data


def test_a_replayed_error_record_is_psrpcores_bytes(replays):
    info = ErrorInfo("No matches found", "Id,Cmd", "ObjectNotFound", "x", "System.Exception")
    first = written_error(info)
    assert written_error(info) == first and replays.hits == 1
    info.target = "y"  # another error is not served the first's record
    other = written_error(info)
    assert other != first and b">y<" in other and replays.hits == 1


def test_replayed_messages_read_the_same(edge, replays, monkeypatch):
    def read() -> tuple[Any, ...]:
        names = ["MSExchangeTransport", "NoSuchService"]
        result = edge.shell.run("Get-Service", errors="return", Name=names)
        return [dict(r) for r in result.records], result.errors, edge.read(*READS[0])

    first = read()
    assert replays.misses > 0 and "NoSuchService" in first[1][0].message
    hits = replays.hits
    assert read() == first and replays.hits > hits
    monkeypatch.setattr(runspace, "LabRunspacePool", ServerRunspacePool)
    monkeypatch.setattr(runspace, "replay", lambda pool, key, pipeline, send: send())
    assert read() == first
