"""The fault matrix's machinery (tests/test_fault_matrix*.py): phase 03 on EDGE01 of a
seed-incident lab with phase 02 applied, one route at a time, a fault made at one step, then the
rollback and the rerun checked.

Faults: the cmdlet fails (the lab's injected faults, as `edgebook lab fault`), the connection
drops after the pipeline that runs the step's first cmdlet, or the process dies as that
pipeline is sent. A step is found on the wire by its first call (cmdlet, parameters, server), so
the trigger does not depend on how the engine batches its reads. Every shell records the byte
arrays it received: the subscription file the lab wrote, to look for under outputs/.
"""

from __future__ import annotations

import base64
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from edgebook.change.journal import Journal
from edgebook.change.step import Step
from edgebook.config import Inventory
from edgebook.evidence import layout
from edgebook.exchange.connect import ShellFactory
from edgebook.exchange.errors import ExchangeConnectionError
from edgebook.exchange.shell import ExchangeShell
from edgebook.lab.cmdlets.faults import clear_faults, set_fault
from edgebook.lab.org import edgesync
from edgebook.lab.org.model import mail_ledger
from edgebook.lab.org.store import LabStore
from edgebook.phases import resubscribe
from edgebook.phases.prepare_certificate import RESUBSCRIBE
from edgebook.phases.resubscribe import Options
from tests.support.resubscribe import CHANGE, InProcessLab

EDGE = "EDGE01"
FAULTS = {
    "cmdlet-error": "the cmdlet fails (edgebook lab fault)",
    "connection-dropped": "the connection drops after the step's pipeline ran",
    "killed": "the process is killed as the step's cmdlets are sent (they never run; no "
    "cleanup: the lock stays on the Edge)",
}


class Killed(BaseException):
    """The process died: nothing after it runs, not even the lock's release."""


@dataclass
class Wire:
    """What the shells of one test share: the fault's state and the bytes received."""

    target: tuple[str, str, dict[str, str]] | None = None  # server, cmdlet, parameters
    fault: str = ""
    fired: bool = False
    dead: bool = False
    received: list[bytes] = field(default_factory=list)


StepRow = tuple[
    str, str, bool
]  # (step id prefix, the cmdlet that makes it, whether rollback undoes it)


def matrix(steps: list[StepRow]) -> list[tuple[str, str, bool, str]]:
    """Every step of a route with every fault."""
    return [
        (step, cmdlet, reversible, fault) for step, cmdlet, reversible in steps for fault in FAULTS
    ]


def assert_covers(
    route: str, options: Any, steps: list[StepRow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows name every step of the route's plan, in order, each with a cmdlet it calls."""
    _lab, planned = planned_lab(route, options, tmp_path, monkeypatch)
    ids = [s.id for s in planned.plan.steps]
    assert [target_step(planned, prefix).id for prefix, _c, _r in steps] == ids
    for prefix, cmdlet, _r in steps:
        assert cmdlet in [c.cmdlet for c in target_step(planned, prefix).calls]


def signature(step: Step, cmdlet: str) -> tuple[str, str, dict[str, str]]:
    """How the step's first call of the cmdlet looks on the wire: server, cmdlet, its plain
    parameters."""
    call = next(c for c in step.calls if c.cmdlet == cmdlet)
    plain = {k: str(v) for k, v in call.params.items() if isinstance(v, str | bool | int)}
    return step.server, call.cmdlet, plain


def _matches(command: Any, server: str, target: tuple[str, str, dict[str, str]]) -> bool:
    where, cmdlet, plain = target
    if server.casefold() != where.casefold() or command.name.casefold() != cmdlet.casefold():
        return False
    given = command.parameters
    return all(str(given.get(k)) == v for k, v in plain.items())


class FaultyShell:
    """A shell that drops its connection after, or dies before, the pipeline of the target call;
    it keeps every byte array it receives."""

    def __init__(self, shell: Any, wire: Wire) -> None:
        self.shell, self.wire = shell, wire

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shell, name)

    def __enter__(self) -> FaultyShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shell.close()

    def run_batch(self, commands: list[Any], **kw: Any) -> Any:
        wire = self.wire
        if wire.dead:
            raise Killed("the process is gone")
        hit = (
            wire.target is not None
            and not wire.fired
            and any(_matches(c, self.shell.name, wire.target) for c in commands)
        )
        if hit and wire.fault == "killed":
            wire.fired = wire.dead = True
            raise Killed(f"killed before {wire.target}")
        result = self.shell.run_batch(commands, **kw)
        records = result if isinstance(result, list) else result.records  # errors=raise: a list
        wire.received += [bytes(r) for r in records if isinstance(r, bytes | bytearray)]
        if hit and wire.fault == "connection-dropped":
            wire.fired = True
            raise ExchangeConnectionError(
                self.shell.name,
                self.shell.url,
                "the connection dropped (test)",
                ConnectionResetError(104, "Connection reset by peer"),
            )
        return result


def factory(lab: InProcessLab, wire: Wire) -> ShellFactory:
    """A shell factory whose shells share `wire`."""

    def make(inventory: Inventory, name: str) -> ExchangeShell:
        # A FaultyShell stands in for the ExchangeShell it wraps (__getattr__ delegates the rest).
        return cast(ExchangeShell, FaultyShell(lab.factory(inventory, name), wire))

    return make


_TEMPLATES: dict[str, Path] = {}
_PLANS: dict[str, resubscribe.Planned] = {}


def _template(base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lab with phase 02 applied for EDGE01, made once per session."""
    if "prepared" not in _TEMPLATES:
        base = base_dir / "fault-matrix-template"
        if base.exists():
            shutil.rmtree(base)
        monkeypatch.setenv(layout.OUTPUTS_ENV, str(base / "outputs"))
        InProcessLab(base / "lab").prepare(EDGE)
        _TEMPLATES["prepared"] = base
    return _TEMPLATES["prepared"]


def planned_lab(
    route: str, options: Options, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[InProcessLab, resubscribe.Planned]:
    """A copy of the prepared lab and phase 03's plan for `route`, computed once per session
    (planning reads only: the plan of a fresh copy is the same plan)."""
    base = _template(tmp_path.parent, monkeypatch)
    if route not in _PLANS:
        planned_dir = tmp_path.parent / f"fault-matrix-{route}"
        if planned_dir.exists():
            shutil.rmtree(planned_dir)
        shutil.copytree(base, planned_dir)
        monkeypatch.setenv(layout.OUTPUTS_ENV, str(planned_dir / "outputs"))
        lab = InProcessLab(planned_dir / "lab", create=False)
        planned = resubscribe.plan(lab.inventory, EDGE, CHANGE, options, shell_factory=lab.factory)
        assert planned.route == route, planned.route
        _PLANS[route] = planned
        _TEMPLATES[route] = planned_dir
    source = _TEMPLATES[route]
    shutil.copytree(source / "outputs", tmp_path / "outputs")
    shutil.copytree(source / "lab", tmp_path / "lab")
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    return InProcessLab(tmp_path / "lab", create=False), _PLANS[route]


def target_step(planned: resubscribe.Planned, prefix: str) -> Step:
    """The plan's step whose id starts with prefix (exactly one)."""
    (found,) = [s for s in planned.plan.steps if s.id.startswith(prefix)]
    return found


def inject(lab: InProcessLab, planned: resubscribe.Planned, step: Step, cmdlet: str) -> None:
    """A lab fault on the step's cmdlet: its Nth call on that server from now, N counted over
    the calls the plan makes there before it (every earlier step runs)."""
    server, cmdlet, _ = signature(step, cmdlet)
    earlier = planned.plan.steps[: planned.plan.steps.index(step)]
    nth = 1 + sum(
        1
        for s in earlier
        if s.server.casefold() == server.casefold()
        for c in s.calls
        if c.cmdlet.casefold() == cmdlet.casefold()
    )
    set_fault(lab.store, cmdlet, server, nth=nth)


def reads_only(step: Step) -> bool:
    """A step that only reads (it is skipped when its read already shows the state)."""
    return all(c.cmdlet.startswith("Get-") for c in step.calls)


def connectors(lab: InProcessLab) -> dict[str, tuple[list[str], str]]:
    """Send connectors now: name -> (source servers, TlsCertificateName)."""
    return {
        c.name: (sorted(c.source_transport_servers), c.tls_certificate_name or "")
        for c in LabStore(lab.directory).read().send_connectors
    }


def snapshot(journal: Journal) -> dict[str, tuple[list[str], str]]:
    """The send connectors' snapshot phase 03 journalled before its first step."""
    (record,) = journal.read().events("send-connectors-snapshot")
    return {
        c["Identity"]: (sorted(c["SourceTransportServers"] or []), c["TlsCertificateName"] or "")
        for c in record["connectors"]
    }


def no_mail_lost(lab: InProcessLab) -> None:
    """The lab's ledger balances on every Edge: accepted == delivered + queued."""
    org = LabStore(lab.directory).read()
    for edge in org.edges:
        ledger = mail_ledger(org, edge.name)
        assert ledger.balanced, f"{edge.name} lost mail: {ledger}"


def healthy(lab: InProcessLab, journal: Journal) -> None:
    """Mail flows through EDGE01 again: services, queues, EdgeSync, the Edge in every send
    connector it was in before the change (F10)."""
    no_mail_lost(lab)
    org = LabStore(lab.directory).read()
    edge = org.server(EDGE)
    assert edge.services["MSExchangeTransport"] == "Running"
    assert edge.services["ADAM_MSExchange"] == "Running"
    assert sum(q.message_count for q in edge.queues if q.kind == "connector") == 0
    assert edgesync.sync_failure(org, edge) is None
    before = snapshot(journal)
    for connector in org.send_connectors:
        assert EDGE in connector.source_transport_servers  # no Edge left out
        assert sorted(connector.source_transport_servers) == before[connector.name][0]


def secrets_of(files: list[bytes]) -> list[bytes]:
    """What of the subscription files must never be written: each file, its base64, the ESRA
    password it holds in clear text."""
    found: list[bytes] = []
    for data in files:
        found += [data, base64.b64encode(data)]
        root = ET.fromstring(data.decode("utf-8-sig"))
        found += [(c.text or "").encode() for c in root if c.tag == "ESRAPassword" and c.text]
    return found


def nowhere_under(folder: Path, secrets: list[bytes]) -> None:
    """None of `secrets` appears in any file under folder."""
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            leaked = [s[:24] for s in secrets if s and s in text]
            assert not leaked, f"{path} holds subscription file content {leaked}"


def step_pattern(step: Step) -> re.Pattern[str]:
    """The start of the error of a run that stopped at this step."""
    return re.compile(rf"^step {re.escape(step.id)} on {step.server} ")


def run_fault(
    route: str,
    options: Options,
    prefix: str,
    cmdlet: str,
    reversible: bool,
    fault: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One cell of the matrix: the fault at the step, the stop, the journal, the rollback (or
    its refusal), the rerun with the same approval, nothing lost, no secret written."""
    lab, planned = planned_lab(route, options, tmp_path, monkeypatch)
    step = target_step(planned, prefix)
    sha = planned.plan.sha256
    wire = Wire()
    if fault == "cmdlet-error":
        inject(lab, planned, step, cmdlet)
    else:
        wire.target, wire.fault = signature(step, cmdlet), fault
    make = factory(lab, wire)

    def apply() -> Any:
        return resubscribe.apply(planned, sha, shell_factory=make, probe=lab.probe)

    if fault == "killed":
        with pytest.raises(Killed):
            apply()
        assert wire.fired
    else:
        result = apply()
        assert not result.completed
        assert step_pattern(step).match(result.error or ""), result.error  # names the step
        assert "run again" in result.error or "fail" in result.error
    clear_faults(lab.store)
    wire.target = None
    wire.dead = False
    journal = Journal(layout.journal_path(CHANGE, EDGE))
    events = [r for r in journal.read().records if r.get("plan_sha256") == sha]
    last = events[-1]
    if fault != "killed":
        assert last["event"] == "apply-stopped" and last["step"] == step.id
    elif reads_only(step):  # killed as it read: the steps before it are journalled, not it
        assert last["event"] in ("step-done", "step-skipped") and step.id not in {
            r.get("step") for r in events
        }
    else:  # the journal ends with the step started, nothing after it
        assert last["event"] == "step-started" and last["step"] == step.id
    undone = resubscribe.rollback_change(planned, take_over_lock=CHANGE, shell_factory=make)
    if reversible:
        assert undone.completed, undone.error
        assert connectors(lab) == snapshot(journal)  # the snapshot is back
        org = LabStore(lab.directory).read()
        assert org.server(EDGE).services["MSExchangeTransport"] == "Running"
        assert edgesync.sync_failure(org, org.server(EDGE)) is None
    else:
        assert not undone.completed and "finish the change forward" in (undone.error or "")
        stopped = list(journal.read().events("rollback-stopped"))[-1]  # at a step without undo
        assert stopped["step"] in {s.id for s in planned.plan.steps if s.final}
        assert not list(journal.read().events("step-rolled-back"))  # nothing before it undone
    no_mail_lost(lab)
    again = resubscribe.apply(planned, sha, shell_factory=make, probe=lab.probe)
    assert again.completed, again.error
    healthy(lab, journal)
    if route == RESUBSCRIBE:  # every run of this route made a subscription file
        assert wire.received
    nowhere_under(tmp_path / "outputs", secrets_of(wire.received))
