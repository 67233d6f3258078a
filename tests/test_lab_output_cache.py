"""The lab's output cache (edgebook.lab.winrm.outcache): what the unmodified pypsrp client
receives is the same with and without it, and a changed object is never served stale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psrpcore
import pytest
from psrpcore.types import serialize

from edgebook.config import WinRMEndpoint
from edgebook.exchange.shell import ExchangeShell
from edgebook.exchange.wire_types import EDGE_SHAPE
from edgebook.lab.backend import LabBackend
from edgebook.lab.winrm import outcache, runspace
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.objects import ExObject, Int64
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
    texts = [ElementTree.tostring(serialize(to_wire(o), crypto)) for o in (wide, narrow)]
    assert b"<I64" in texts[0] and b"<I32" in texts[1]
