"""The fault matrix of phase 03 (docs/fault-matrix.md is generated from MATRIX below): every
step of the certificate-only route on EDGE01 made to fail by a cmdlet error (the lab's
injected faults), a connection dropped after the step's pipeline ran, and the process killed
before the step. Each stops at that step naming it, the journal shows where, rollback restores
the send connectors' snapshot (or, past the old certificate's removal, refuses and says to
finish forward), and a rerun with the same approval ends healthy with no Edge out of a send
connector and no message left queued. After the rollback and after the rerun no message is lost
on either Edge (the lab's ledger: accepted == delivered + queued).

Regenerate the document: python tests/test_fault_matrix.py > docs/fault-matrix.md
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from edgebook.change.journal import Journal
from edgebook.evidence import layout
from edgebook.exchange.errors import ExchangeConnectionError
from edgebook.lab.cmdlets.faults import clear_faults, set_fault
from edgebook.lab.org.model import mail_ledger
from edgebook.lab.org.store import LabStore
from edgebook.phases import resubscribe
from edgebook.phases.resubscribe import Options
from tests.support.resubscribe import CHANGE, InProcessLab

EDGE = "EDGE01"
FAST = Options(drain_timeout=20, sync_timeout=20, poll_every=0.2)
STEPS = [  # (step id prefix, the cmdlet that makes it, whether rollback can pass it)
    ("drain", "Suspend-Service", True),
    ("stop-transport", "Stop-Service", True),
    ("import", "Import-ExchangeCertificate", True),
    ("enable-smtp", "Enable-ExchangeCertificate", True),
    ("tls-name", "Set-SendConnector", True),
    ("sync", "Start-EdgeSynchronization", True),
    ("receive-tls", "Set-ReceiveConnector", True),
    ("remove-old", "Remove-ExchangeCertificate", False),  # once started it may have happened
    ("start-transport", "Start-Service", False),
    ("resume", "Resume-Service", False),
]
FAULTS = {
    "cmdlet-error": "the cmdlet fails (edgebook lab fault)",
    "connection-dropped": "the connection drops after the step's pipeline ran",
    "killed": "the process is killed as the step's cmdlets are sent (they never run; no "
    "cleanup: the lock stays on the Edge)",
}
MATRIX = [
    (step, cmdlet, reversible, fault) for step, cmdlet, reversible in STEPS for fault in FAULTS
]


class Killed(BaseException):
    """The process died: nothing after it runs, not even the lock's release."""


class FaultyShell:
    """A shell that drops its connection after, or dies before, the pipeline running `cmdlet`."""

    def __init__(self, shell: Any, cmdlet: str, fault: str, state: dict[str, bool]) -> None:
        self.shell, self.cmdlet, self.fault, self.state = shell, cmdlet, fault, state

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shell, name)

    def __enter__(self) -> FaultyShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shell.close()

    def run_batch(self, commands: list[Any], **kw: Any) -> Any:
        if self.state.get("dead"):
            raise Killed("the process is gone")
        hit = any(c.name == self.cmdlet for c in commands) and not self.state.get("fired")
        if hit and self.fault == "killed":
            self.state["fired"] = self.state["dead"] = True
            raise Killed(f"killed before {self.cmdlet}")
        result = self.shell.run_batch(commands, **kw)
        if hit and self.fault == "connection-dropped":
            self.state["fired"] = True
            raise ExchangeConnectionError(
                self.shell.name,
                self.shell.url,
                "the connection dropped (test)",
                ConnectionResetError(104, "Connection reset by peer"),
            )
        return result


_TEMPLATE: dict[str, Path] = {}


def prepared_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InProcessLab:
    """A lab with phase 02 applied for EDGE01, copied from one made per session."""
    if "lab" not in _TEMPLATE:
        base = tmp_path.parent / "fault-matrix-template"
        if base.exists():
            shutil.rmtree(base)
        monkeypatch.setenv(layout.OUTPUTS_ENV, str(base / "outputs"))
        InProcessLab(base / "lab").prepare(EDGE)
        _TEMPLATE["lab"] = base
    base = _TEMPLATE["lab"]
    shutil.copytree(base / "outputs", tmp_path / "outputs")
    shutil.copytree(base / "lab", tmp_path / "lab")
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    return InProcessLab(tmp_path / "lab", create=False)


def connectors(lab: InProcessLab) -> dict[str, tuple[list[str], str]]:
    return {
        c.name: (sorted(c.source_transport_servers), c.tls_certificate_name or "")
        for c in LabStore(lab.directory).read().send_connectors
    }


def snapshot(journal: Journal) -> dict[str, tuple[list[str], str]]:
    (record,) = journal.read().events("send-connectors-snapshot")
    return {
        c["Identity"]: (sorted(c["SourceTransportServers"] or []), c["TlsCertificateName"] or "")
        for c in record["connectors"]
    }


def no_mail_lost(lab: InProcessLab) -> None:
    org = LabStore(lab.directory).read()
    for edge in org.edges:
        ledger = mail_ledger(org, edge.name)
        assert ledger.balanced, f"{edge.name} lost mail: {ledger}"


def healthy(lab: InProcessLab) -> None:
    no_mail_lost(lab)
    org = LabStore(lab.directory).read()
    edge = org.server(EDGE)
    assert edge.services["MSExchangeTransport"] == "Running"
    assert edge.services["ADAM_MSExchange"] == "Running"
    assert sum(q.message_count for q in edge.queues if q.kind == "connector") == 0
    for connector in org.send_connectors:
        assert EDGE in connector.source_transport_servers  # no Edge left out


@pytest.mark.parametrize(
    ("step", "cmdlet", "reversible", "fault"),
    MATRIX,
    ids=[f"{s}-{f}" for s, _c, _r, f in MATRIX],
)
def test_fault(tmp_path, monkeypatch, step, cmdlet, reversible, fault):
    lab = prepared_lab(tmp_path, monkeypatch)
    planned = resubscribe.plan(lab.inventory, EDGE, CHANGE, FAST, shell_factory=lab.factory)
    target = next(s.id for s in planned.plan.steps if s.id.startswith(step))
    sha = planned.plan.sha256
    state: dict[str, bool] = {}
    if fault == "cmdlet-error":
        set_fault(lab.store, cmdlet, EDGE if step not in ("tls-name", "sync") else "EX01", nth=1)
        factory = lab.factory
    else:

        def factory(inventory: Any, name: str) -> Any:
            return FaultyShell(lab.factory(inventory, name), cmdlet, fault, state)

    def run(make: Any) -> Any:
        return resubscribe.apply(planned, sha, shell_factory=make, probe=lab.probe)

    if fault == "killed":
        with pytest.raises(Killed):
            run(factory)
    else:
        result = run(factory)
        assert not result.completed
        assert result.error.startswith(f"step {target} on ")  # names the step
        assert "run again" in result.error or "fail" in result.error
    clear_faults(lab.store)
    journal = Journal(layout.journal_path(CHANGE, EDGE))
    events = [r for r in journal.read().records if r.get("plan_sha256") == sha]
    if fault == "killed":  # the journal ends with the step started, nothing after it
        assert events[-1]["event"] == "step-started" and events[-1]["step"] == target
    else:
        assert events[-1]["event"] == "apply-stopped" and events[-1]["step"] == target
    undone = resubscribe.rollback_change(planned, take_over_lock=CHANGE, shell_factory=lab.factory)
    if reversible:
        assert undone.completed, undone.error
        assert connectors(lab) == snapshot(journal)  # the snapshot is back
        org = LabStore(lab.directory).read()
        assert org.server(EDGE).services["MSExchangeTransport"] == "Running"
    else:
        assert not undone.completed and "finish the change forward" in undone.error
    no_mail_lost(lab)
    again = resubscribe.apply(planned, sha, shell_factory=lab.factory, probe=lab.probe)
    assert again.completed, again.error
    healthy(lab)


def document() -> str:
    """docs/fault-matrix.md, from MATRIX."""
    lines = [
        "# Phase 03 fault matrix",
        "",
        "Generated from `tests/test_fault_matrix.py` (`python tests/test_fault_matrix.py > "
        "docs/fault-matrix.md`); the test checks this file is current. Route: certificate only, "
        "EDGE01 of the seed-incident lab, phase 02 applied.",
        "",
        "Faults: " + "; ".join(f"**{k}**: {v}" for k, v in FAULTS.items()) + ".",
        "",
        "In every case the run stops at the step (its message names the step and says what to "
        "do; the journal ends there), and a rerun with the same approval resumes and ends "
        "healthy: transport and AD LDS running, no message queued, EDGE01 still a source of "
        "every send connector. After the rollback and after the rerun no message is lost on "
        "either Edge (the lab's ledger: accepted = delivered + queued).",
        "",
        "| step | cmdlet | fault | stops at | rollback | rerun |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for step, cmdlet, reversible, fault in MATRIX:
        stops = "the step (journal: started, not ended)" if fault == "killed" else "the step"
        back = (
            "restores the send connectors' snapshot, transport running"
            if reversible
            else "refused once `remove-old` started (no undo): finish forward"
        )
        lines.append(f"| `{step}` | `{cmdlet}` | {fault} | {stops} | {back} | ends healthy |")
    return "\n".join(lines) + "\n"


def test_the_document_is_current():
    path = Path(__file__).parent.parent / "docs" / "fault-matrix.md"
    assert path.read_text(encoding="utf-8") == document()


if __name__ == "__main__":
    print(document(), end="")
