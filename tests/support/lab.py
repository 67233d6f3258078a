"""Test support for the lab: organisations built once per scenario and copied per test, and a
thin driver that calls LabBackend.invoke with CommandCall objects (no sockets)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from edgebook.lab.winrm.protocol import Choice, CommandCall, Invocation, Session

PASSWORD = "Lab-Passw0rd!"


def error_instance(event_id: int) -> str:
    """The InstanceId Get-EventLog -InstanceId matches for an Error entry: the event ID with
    the Error severity bits (PowerShell compares the whole InstanceId)."""
    return str(0xC0000000 | event_id)


_TEMPLATES: dict[str, tuple[Path, float]] = {}  # scenario: (folder, when it was built)


def lab_copy(scenario: str, target: Path) -> LabStore:
    """A fresh copy of the scenario's organisation in target: its lab clock turned back by the
    template's age, so the copy is as young as a lab built now (traffic, retries and EdgeSync
    count lab minutes since the scenario was built, whichever test built it first)."""
    if scenario not in _TEMPLATES:
        base = Path(tempfile.mkdtemp(prefix="edgebook-lab-template-")) / scenario
        LabStore.create(base, scenario, PASSWORD)
        _TEMPLATES[scenario] = (base, time.time())
    base, built = _TEMPLATES[scenario]
    shutil.copytree(base, target)
    state = target / "state.json"
    document = json.loads(state.read_text())
    document["clock_offset_s"] -= time.time() - built
    state.write_text(json.dumps(document))
    return LabStore(target)


class ScriptedHost:
    """A client host UI for backend-level tests: answers each question with the next label of
    `answers` and records (caption, message); a question beyond them fails the test."""

    def __init__(self, answers: Sequence[str], questions: list[tuple[str, str]]) -> None:
        self.pending = list(answers)
        self.questions = questions

    def prompt_for_choice(
        self, caption: str, message: str, choices: Sequence[Choice], default: int
    ) -> int:
        """The index of the next scripted answer among the choices."""
        self.questions.append((caption, message))
        assert self.pending, f"unexpected question: {caption}: {message}"
        label = self.pending.pop(0)
        labels = [choice.label.replace("&", "").casefold() for choice in choices]
        assert label.casefold() in labels, f"{label!r} is not among {labels}"
        return labels.index(label.casefold())


class Lab:
    """Drives the backend like the WSMan endpoint does.

    A cmdlet that asks a question gets a client without a host UI (it fails as over PSRP with
    pypsrp's default) unless the call gives `answers`, the labels to choose in order; every
    question asked is recorded in `questions`.
    """

    def __init__(self, store: LabStore) -> None:
        self.store = store
        self.backend = LabBackend(store)
        self.sessions: dict[str, Session] = {}
        self.questions: list[tuple[str, str]] = []

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

    def run(
        self,
        server: str,
        name: str,
        *args: Any,
        answers: Sequence[str] | None = None,
        **params: Any,
    ) -> Invocation:
        """One command in one invocation."""
        return self.pipeline(server, [CommandCall(name, params, list(args))], answers=answers)

    def pipeline(
        self, server: str, *statements: list[CommandCall], answers: Sequence[str] | None = None
    ) -> Invocation:
        """Several statements in one invocation; all scripted answers must be used."""
        host = None if answers is None else ScriptedHost(answers, self.questions)
        result = self.backend.invoke(self.session(server), list(statements), [], host)
        assert host is None or not host.pending, f"questions not asked: {host.pending}"
        return result

    def ok(
        self,
        server: str,
        name: str,
        *args: Any,
        answers: Sequence[str] | None = None,
        **params: Any,
    ) -> list[Any]:
        """Run a command that must succeed without errors; its output."""
        result = self.run(server, name, *args, answers=answers, **params)
        assert result.terminating is None, result.terminating.message
        assert not result.errors, [e.message for e in result.errors]
        return result.output

    def fails(
        self,
        server: str,
        name: str,
        *args: Any,
        answers: Sequence[str] | None = None,
        **params: Any,
    ) -> str:
        """Run a command that must fail terminating; its message."""
        result = self.run(server, name, *args, answers=answers, **params)
        assert result.terminating is not None, f"{name} did not fail: {result.output}"
        return result.terminating.message

    def queue(self, edge: str, connector: str) -> Any:
        """The Get-Queue object of a connector's queue on an Edge (NextHopConnector: its GUID)."""
        (found,) = self.ok(edge, "Get-SendConnector", connector)
        queues = self.ok(edge, "Get-Queue")
        return next(q for q in queues if q["NextHopConnector"] == found["Guid"])
