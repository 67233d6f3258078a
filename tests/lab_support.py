"""Test support for the lab: organisations built once per scenario and copied per test, and a
thin driver that calls LabBackend.invoke with CommandCall objects (no sockets)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from edgebook.lab.winrm.protocol import CommandCall, Invocation, Session

PASSWORD = "Lab-Passw0rd!"
_TEMPLATES: dict[str, Path] = {}


def lab_copy(scenario: str, target: Path) -> LabStore:
    """A fresh copy of the scenario's organisation in target."""
    if scenario not in _TEMPLATES:
        base = Path(tempfile.mkdtemp(prefix="edgebook-lab-template-")) / scenario
        LabStore.create(base, scenario, PASSWORD)
        _TEMPLATES[scenario] = base
    shutil.copytree(_TEMPLATES[scenario], target)
    return LabStore(target)


class Lab:
    """Drives the backend like the WSMan endpoint does."""

    def __init__(self, store: LabStore) -> None:
        self.store = store
        self.backend = LabBackend(store)
        self.sessions: dict[str, Session] = {}

    def session(self, server: str) -> Session:
        """One runspace per server; Edge sessions load the Exchange snap-in first."""
        if server not in self.sessions:
            role = self.store.read().server(server).role
            if role == "Edge":
                session = Session(server, "Microsoft.PowerShell")
                result = self.backend.invoke(
                    session, [[CommandCall("Add-PSSnapin", {"Name": EXCHANGE_SNAPIN})]], []
                )
                assert result.terminating is None and not result.errors
            else:
                session = Session(server, "Microsoft.Exchange")
            self.sessions[server] = session
        return self.sessions[server]

    def run(self, server: str, name: str, *args: Any, **params: Any) -> Invocation:
        """One command in one invocation."""
        return self.pipeline(server, [CommandCall(name, params, list(args))])

    def pipeline(self, server: str, *statements: list[CommandCall]) -> Invocation:
        """Several statements in one invocation."""
        return self.backend.invoke(self.session(server), list(statements), [])

    def ok(self, server: str, name: str, *args: Any, **params: Any) -> list[Any]:
        """Run a command that must succeed without errors; its output."""
        result = self.run(server, name, *args, **params)
        assert result.terminating is None, result.terminating.message
        assert not result.errors, [e.message for e in result.errors]
        return result.output

    def fails(self, server: str, name: str, *args: Any, **params: Any) -> str:
        """Run a command that must fail terminating; its message."""
        result = self.run(server, name, *args, **params)
        assert result.terminating is not None, f"{name} did not fail: {result.output}"
        return result.terminating.message

    def queue(self, edge: str, connector: str) -> Any:
        """The Get-Queue object of a connector's queue on an Edge."""
        queues = self.ok(edge, "Get-Queue")
        return next(q for q in queues if q["NextHopConnector"] == connector)
