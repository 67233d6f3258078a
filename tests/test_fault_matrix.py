"""The fault matrix of phase 03 (docs/fault-matrix.md is generated from the MATRIX tables here
and in tests/test_fault_matrix_resubscribe.py): every step of the certificate-only route on
EDGE01 made to fail by a cmdlet error (the lab's injected faults), a connection dropped after the
step's pipeline ran, and the process killed before the step. Each stops at that step naming it,
the journal shows where, rollback restores the send connectors' snapshot (or, past the old
certificate's removal, refuses and says to finish forward), and a rerun with the same approval
ends healthy with no Edge out of a send connector and no message left queued. After the rollback
and after the rerun no message is lost on either Edge (the lab's ledger: accepted == delivered +
queued). The machinery: tests/support/faults.py.

Regenerate the document: .venv/bin/python -m tests.test_fault_matrix > docs/fault-matrix.md
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebook.phases.prepare_certificate import CERTIFICATE_ONLY
from edgebook.phases.resubscribe import Options
from tests import test_fault_matrix_resubscribe as resubscribe_route
from tests.support import faults

ROUTE = CERTIFICATE_ONLY
OPTIONS = Options(drain_timeout=20, sync_timeout=20, poll_every=0.2)
STEPS = [  # (step id prefix, the cmdlet that makes it, whether rollback can pass it)
    ("drain", "Suspend-Service", True),
    ("stop-transport", "Stop-Service", True),
    ("import", "Import-ExchangeCertificate", True),
    ("enable-smtp", "Enable-ExchangeCertificate", True),
    ("tls-name", "Set-SendConnector", True),
    ("sync", "Start-EdgeSynchronization", True),
    ("replicated", "Get-SendConnector", True),
    ("receive-tls", "Set-ReceiveConnector", True),
    ("remove-old", "Remove-ExchangeCertificate", False),  # once started it may have happened
    ("start-transport", "Start-Service", False),
    ("resume", "Resume-Service", False),
]
MATRIX = faults.matrix(STEPS)


def test_the_matrix_covers_every_step_of_the_route(tmp_path, monkeypatch):
    faults.assert_covers(ROUTE, OPTIONS, STEPS, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("step", "cmdlet", "reversible", "fault"),
    MATRIX,
    ids=[f"{s}-{f}" for s, _c, _r, f in MATRIX],
)
def test_fault(tmp_path, monkeypatch, step, cmdlet, reversible, fault):
    faults.run_fault(ROUTE, OPTIONS, step, cmdlet, reversible, fault, tmp_path, monkeypatch)


def _rows(matrix: list[tuple[str, str, bool, str]], barrier: str, resubscribes: bool) -> list[str]:
    lines = [
        "| step | cmdlet | fault | stops at | rollback | rerun |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for step, cmdlet, reversible, fault in matrix:
        if step == "replicated" and fault == "killed":
            stops = "the step, as it reads (journal: the steps before it done, nothing of it)"
        elif fault == "killed":
            stops = "the step (journal: started, not ended)"
        else:
            stops = "the step"
        back = (
            "restores the send connectors' snapshot, transport running, EdgeSync Normal"
            if reversible
            else f"refused once {barrier} started (no undo): finish forward"
        )
        rerun = "ends healthy" + (
            "; EDGE01 back in every send connector (F10)" if resubscribes else ""
        )
        lines.append(f"| `{step}` | `{cmdlet}` | {fault} | {stops} | {back} | {rerun} |")
    return lines


def document() -> str:
    """docs/fault-matrix.md, from both routes' MATRIX."""
    lines = [
        "# Phase 03 fault matrix",
        "",
        "Generated from `tests/test_fault_matrix.py` and `tests/test_fault_matrix_resubscribe.py` "
        "(`.venv/bin/python -m tests.test_fault_matrix > docs/fault-matrix.md`); a test checks "
        "this file is current. EDGE01 of the seed-incident lab, phase 02 applied; the machinery is "
        "`tests/support/faults.py`.",
        "",
        "Faults: " + "; ".join(f"**{k}**: {v}" for k, v in faults.FAULTS.items()) + ". A step is "
        "recognised on the wire by its first cmdlet and parameters on its server; a lab fault "
        "fails that cmdlet's call on that server.",
        "",
        "In every case the run stops at the step (its message names the step and says what to "
        "do; the journal ends there), and a rerun with the same approval resumes and ends "
        "healthy: transport and AD LDS running, no message queued, EdgeSync to EDGE01 Normal, "
        "EDGE01 a source of every send connector it was a source of before the change. After the "
        "rollback and after the rerun no message is lost on either Edge (the lab's ledger: "
        "accepted = delivered + queued). Whatever the fault, no file under the outputs folder "
        "holds the subscription file the lab wrote (its bytes, their base64, the ESRA password).",
        "",
        "## Certificate only",
        "",
        "The route phase 02 chooses for `seed-incident` (KB2989382: the Edge's default stays, no "
        "resubscription).",
        "",
        *_rows(MATRIX, "`remove-old`", resubscribes=False),
        "",
        "## Resubscribe",
        "",
        "`replace_default_certificate=True` and `remove_subscription_first=True`, so that every "
        "step of the route runs: `Remove-EdgeSubscription` takes EDGE01 out of the send "
        "connectors' source servers (F10) and the `sources-*` steps put it back.",
        "",
        "What a rollback can restore: up to `restart-adam`, everything (the imported "
        "certificate removed, the previous default made the default again, AD LDS restarted on "
        "it, transport running), and the old subscription is untouched. Once "
        "`remove-subscription` (or, without `remove_subscription_first`, `subscribe`) has started, "
        "the old subscription cannot come back, and undoing the default certificate would break "
        "EdgeSync with the new one: the steps are `final`, rollback refuses (`rollback-stopped`) "
        "and says to finish forward; the plan's `undo: none: ...` text of those steps says so "
        "before approval. Finishing forward (the rerun) subscribes again and restores EDGE01 in "
        "every send connector from the snapshot.",
        "",
        *_rows(resubscribe_route.MATRIX, "`remove-subscription`", resubscribes=True),
    ]
    return "\n".join(lines) + "\n"


def test_the_document_is_current():
    path = Path(__file__).parent.parent / "docs" / "fault-matrix.md"
    assert path.read_text(encoding="utf-8") == document()


if __name__ == "__main__":
    print(document(), end="")
