"""The fault matrix of phase 03's resubscribe route (docs/fault-matrix.md lists it after the
certificate-only route; tests/test_fault_matrix.py generates the document): EDGE01 of the
seed-incident lab, replace_default_certificate and remove_subscription_first, so that every step
of the route runs, the send connectors' source servers included (Remove-EdgeSubscription takes
EDGE01 out of them, F10). Every step made to fail three ways; each stops at that step naming
it, the journal shows where; rollback restores the snapshot before the old subscription is
removed, and from there refuses and says to finish forward (the old subscription cannot come
back); a rerun with the same approval ends healthy: EdgeSync Normal, EDGE01 back in every send
connector it was in, no message lost, and the subscription file's content in no file under
outputs/.
"""

from __future__ import annotations

import pytest

from edgebook.phases.prepare_certificate import RESUBSCRIBE
from edgebook.phases.resubscribe import Options
from tests.support import faults

ROUTE = RESUBSCRIBE
OPTIONS = Options(
    replace_default_certificate=True,
    remove_subscription_first=True,
    drain_timeout=20,
    sync_timeout=20,
    poll_every=0.2,
)
STEPS = [  # (step id prefix, the cmdlet that makes it, whether rollback can pass it)
    ("drain", "Suspend-Service", True),
    ("stop-transport", "Stop-Service", True),
    ("import", "Import-ExchangeCertificate", True),
    ("enable-smtp", "Enable-ExchangeCertificate", True),
    ("restart-adam", "Restart-Service", True),
    ("remove-subscription", "Remove-EdgeSubscription", False),  # the old subscription is gone
    ("subscription-file", "New-EdgeSubscription", False),
    ("subscribe", "New-EdgeSubscription", False),
    ("sources-edgesync---default", "Set-SendConnector", False),
    ("sources-edgesync---inbound", "Set-SendConnector", False),
    ("sources-outbound", "Set-SendConnector", False),
    ("tls-name", "Set-SendConnector", False),
    ("sync", "Start-EdgeSynchronization", False),
    ("replicated", "Get-SendConnector", False),
    ("receive-tls", "Set-ReceiveConnector", False),
    ("remove-old", "Remove-ExchangeCertificate", False),
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


def test_the_plan_says_before_approval_what_a_rollback_cannot_restore(tmp_path, monkeypatch):
    _lab, planned = faults.planned_lab(ROUTE, OPTIONS, tmp_path, monkeypatch)
    final = [s.id for s in planned.plan.steps if s.final]
    assert final == ["remove-subscription-edge01", "subscribe-edge01"] + [
        s.id for s in planned.plan.steps if s.id.startswith("remove-old")
    ]
    text = planned.plan.text()
    assert text.count("undo:  none: the old subscription cannot come back") == 2
    assert "rollback across the resubscription" in text
    sources = [s for s in planned.plan.steps if s.id.startswith("sources-")]
    assert sources and all(not s.undo and "it stays one" in s.no_undo for s in sources)
