"""No message lost in the lab: an Edge's accepted == delivered + queued through transport
pause/stop/start, queue suspend/resume/retry and the traps that put a queue in Retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebook.exchange.secure import SecureText
from edgebook.lab import control
from edgebook.lab.org import mailflow
from edgebook.lab.org.model import MailLedger, mail_ledger
from tests.support.lab import PASSWORD, Lab, lab_copy

HYBRID = "Outbound to Office 365"
TRANSPORT = "MSExchangeTransport"
EDGES = ("EDGE01", "EDGE02")
TO_CLOUD = ["a@contoso.mail.onmicrosoft.com", "b@contoso.mail.onmicrosoft.com"]


def make(tmp_path: Path, scenario: str = "seed-incident") -> Lab:
    return Lab(lab_copy(scenario, tmp_path / "lab"))


def ledger(lab: Lab, edge: str = "EDGE01") -> MailLedger:
    """The Edge's ledger once the lab caught it up (any pipeline on an Edge evaluates it, even one
    that fails because transport is stopped), both Edges balanced."""
    for name in EDGES:
        lab.run(name, "Get-Queue")
        found = mail_ledger(lab.store.read(), name)
        assert found.balanced, f"{name} lost mail: {found}"
    return mail_ledger(lab.store.read(), edge)


def hybrid_count(lab: Lab) -> int:
    """Messages in EDGE01's hybrid queue, as kept in the state (Get-Queue needs transport)."""
    edge = lab.store.read().server("EDGE01")
    return next(q.message_count for q in edge.queues if q.connector == HYBRID)


def send(lab: Lab, recipients: list[str]) -> None:
    """Mail through the path the SMTP listener takes."""
    mailflow.accept_mail(lab.store, "EDGE01", "sender@example.org", recipients, b"Subject: t\r\n")


@pytest.mark.parametrize("scenario", ["seed-incident", "expired", "duplicate-subject"])
def test_queued_mail_of_a_scenario_counts_as_accepted(tmp_path, scenario):
    lab = make(tmp_path, scenario)
    org = lab.store.read()
    for edge in EDGES:
        found = mail_ledger(org, edge)
        assert found.balanced, f"{edge}: {found}"
        assert found.accepted >= found.queued
    if scenario == "expired":  # 57 messages seeded in Retry (F3)
        assert mail_ledger(org, "EDGE01").queued >= 57


def test_ledger_balances_through_transport_pause_stop_start_and_queue_suspend(tmp_path):
    lab = make(tmp_path)
    start = ledger(lab)
    send(lab, TO_CLOUD)
    sent = ledger(lab)
    assert sent.accepted >= start.accepted + 2 and hybrid_count(lab) == 0  # delivered at once
    assert sent.delivered >= start.delivered + 2

    lab.ok("EDGE01", "Suspend-Service", TRANSPORT)
    with pytest.raises(mailflow.MailRefused):
        send(lab, TO_CLOUD)
    lab.store.advance(10)
    paused = ledger(lab)
    assert paused.accepted == sent.accepted  # paused: no mail accepted, no traffic

    lab.ok("EDGE01", "Resume-Service", TRANSPORT)
    queue = lab.queue("EDGE01", HYBRID)
    lab.ok("EDGE01", "Suspend-Queue", queue["Identity"])
    lab.store.advance(10)
    send(lab, TO_CLOUD)
    suspended = ledger(lab)
    held = hybrid_count(lab)
    assert held >= 2 + 20  # two sent, two a minute of traffic
    assert suspended.accepted >= paused.accepted + held and suspended.queued >= held

    lab.ok("EDGE01", "Stop-Service", TRANSPORT)
    lab.store.advance(10)
    stopped = ledger(lab)
    assert (stopped.accepted, stopped.queued) == (suspended.accepted, suspended.queued)
    assert hybrid_count(lab) == held  # a stopped transport keeps its queues

    lab.ok("EDGE01", "Start-Service", TRANSPORT)
    lab.ok("EDGE01", "Resume-Queue", queue["Identity"])
    resumed = ledger(lab)
    assert hybrid_count(lab) == 0
    assert resumed.delivered >= stopped.delivered + held


def test_ledger_balances_while_a_trap_keeps_the_queue_in_retry_and_after_the_fix(tmp_path):
    lab = make(tmp_path)
    renewal = (lab.store.dir / "renewal" / "EDGE01.pfx").read_bytes()
    (cert,) = lab.ok(
        "EDGE01", "Import-ExchangeCertificate", FileData=renewal, Password=SecureText(PASSWORD)
    )
    send(lab, TO_CLOUD)  # F2: two certificates with the subject, mutual TLS fails
    queue = lab.queue("EDGE01", HYBRID)
    assert str(queue["Status"]) == "Retry"
    before = ledger(lab)
    lab.store.advance(10)
    lab.ok("EDGE01", "Retry-Queue", queue["Identity"])
    retried = ledger(lab)
    assert str(lab.queue("EDGE01", HYBRID)["Status"]) == "Retry"
    assert retried.delivered - before.delivered < retried.accepted - before.accepted
    assert hybrid_count(lab) >= 2 + 20

    lab.ok("EDGE01", "Stop-Service", TRANSPORT)  # restart while in Retry: nothing dropped
    lab.ok("EDGE01", "Start-Service", TRANSPORT)
    restarted = ledger(lab)
    assert restarted.queued >= retried.queued

    held = hybrid_count(lab)
    lab.ok("EDGE01", "Remove-ExchangeCertificate", cert["Thumbprint"], answers=["Yes"])
    lab.ok("EDGE01", "Restart-Service", TRANSPORT)  # F11: binds again at start
    lab.ok("EDGE01", "Retry-Queue", queue["Identity"])
    fixed = ledger(lab)
    assert hybrid_count(lab) == 0
    assert fixed.delivered >= restarted.delivered + held


def test_status_reports_the_ledger_of_each_edge(tmp_path):
    lab = make(tmp_path, "expired")
    document = control.status(lab.store.dir)
    mail = {s["name"]: s["mail"] for s in document["servers"]}
    org = lab.store.read()
    assert mail["EX01"] is None  # a Mailbox server keeps no Edge ledger
    for edge in EDGES:
        assert mail[edge] == mail_ledger(org, edge)._asdict()
        assert mail[edge]["accepted"] == mail[edge]["delivered"] + mail[edge]["queued"]
