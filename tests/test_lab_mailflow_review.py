"""Mail flow against Microsoft's "Message retry, resubmit, and expiration intervals": a queue in
Retry connects again only at its NextRetryTime (Edge defaults: 4 glitch retries 1 minute apart,
6 transient retries 10 minutes apart, then one every 30 minutes), so a fixed path does not drain
a retrying queue before then, unless Retry-Queue, Resume-Queue or a transport start asks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from edgebook.exchange.secure import SecureText
from edgebook.lab.org import mailflow
from edgebook.lab.org.model import mail_ledger
from tests.support.lab import PASSWORD, Lab, lab_copy

HYBRID = "Outbound to Office 365"
TO_CLOUD = ["a@contoso.mail.onmicrosoft.com", "b@contoso.mail.onmicrosoft.com"]
MINUTE = dt.timedelta(minutes=1)


def retrying(tmp_path: Path) -> tuple[Lab, str]:
    """seed-incident with a second certificate of the Edge's subject imported (F2): mail to
    Office 365 lands in a queue in Retry. Returns the lab and that certificate's thumbprint."""
    lab = Lab(lab_copy("seed-incident", tmp_path / "lab"))
    pfx = (lab.store.dir / "renewal" / "EDGE01.pfx").read_bytes()
    (cert,) = lab.ok(
        "EDGE01", "Import-ExchangeCertificate", FileData=pfx, Password=SecureText(PASSWORD)
    )
    mailflow.accept_mail(lab.store, "EDGE01", "s@example.org", TO_CLOUD, b"Subject: t\r\n")
    queue = lab.queue("EDGE01", HYBRID)
    assert (str(queue["Status"]), queue["RetryCount"]) == ("Retry", 1)
    return lab, str(cert["Thumbprint"])


def schedule(queue: Any) -> tuple[int, dt.timedelta, dt.timedelta]:
    """RetryCount, LastRetryTime - FirstRetryTime and NextRetryTime - LastRetryTime."""
    last = queue["LastRetryTime"]
    return queue["RetryCount"], last - queue["FirstRetryTime"], queue["NextRetryTime"] - last


def test_retries_follow_the_edge_default_intervals(tmp_path):
    lab, _ = retrying(tmp_path)
    assert schedule(lab.queue("EDGE01", HYBRID)) == (1, 0 * MINUTE, MINUTE)
    lab.store.advance(3)  # glitch retries at +1, +2, +3 minutes
    assert schedule(lab.queue("EDGE01", HYBRID)) == (4, 3 * MINUTE, MINUTE)
    lab.store.advance(20)  # the last glitch retry at +4, the first transient one at +14
    assert schedule(lab.queue("EDGE01", HYBRID)) == (6, 14 * MINUTE, 10 * MINUTE)
    lab.store.advance(80)  # transient retries to +64, then every 30 minutes: +94
    assert schedule(lab.queue("EDGE01", HYBRID)) == (12, 94 * MINUTE, 30 * MINUTE)


def test_a_fixed_path_drains_a_retrying_queue_only_at_its_next_retry_time(tmp_path):
    lab, duplicate = retrying(tmp_path)
    lab.store.advance(4.5)  # the fifth attempt at +4 failed: the next one is at +14
    lab.ok("EDGE01", "Remove-ExchangeCertificate", duplicate, answers=["Yes"])  # F2 fixed
    queue = lab.queue("EDGE01", HYBRID)
    assert str(queue["Status"]) == "Retry" and queue["MessageCount"] >= len(TO_CLOUD)
    assert queue["LastError"] == mailflow.ERR_DUPLICATE  # what the last attempt met

    lab.store.advance(5)  # +9.5: still waiting
    assert lab.queue("EDGE01", HYBRID)["MessageCount"] >= len(TO_CLOUD)
    lab.store.advance(5)  # +14.5: the attempt at +14 delivers
    queue = lab.queue("EDGE01", HYBRID)
    assert (str(queue["Status"]), queue["MessageCount"], queue["LastError"]) == ("Ready", 0, None)
    assert (queue["RetryCount"], queue["NextRetryTime"]) == (0, None)
    assert mail_ledger(lab.store.read(), "EDGE01").balanced


def test_retry_queue_and_a_transport_restart_connect_at_once(tmp_path):
    lab, duplicate = retrying(tmp_path)
    lab.store.advance(5)
    lab.ok("EDGE01", "Remove-ExchangeCertificate", duplicate, answers=["Yes"])
    identity = lab.queue("EDGE01", HYBRID)["Identity"]
    lab.ok("EDGE01", "Retry-Queue", identity)
    assert lab.queue("EDGE01", HYBRID)["MessageCount"] == 0

    lab2, duplicate2 = retrying(tmp_path / "second")
    lab2.ok("EDGE01", "Remove-ExchangeCertificate", duplicate2, answers=["Yes"])
    assert lab2.queue("EDGE01", HYBRID)["MessageCount"] >= len(TO_CLOUD)
    lab2.ok("EDGE01", "Restart-Service", "MSExchangeTransport")
    assert lab2.queue("EDGE01", HYBRID)["MessageCount"] == 0


def test_retry_queue_on_a_failing_path_counts_an_attempt_and_resets_the_timer(tmp_path):
    lab, _ = retrying(tmp_path)
    lab.store.advance(6)  # attempts at +1 .. +4 failed; the next is at +14
    identity = lab.queue("EDGE01", HYBRID)["Identity"]
    lab.ok("EDGE01", "Retry-Queue", identity)
    count, _, wait = schedule(lab.queue("EDGE01", HYBRID))
    assert (count, wait) == (6, 10 * MINUTE)


def test_a_suspended_queue_makes_no_attempt_and_connects_when_resumed(tmp_path):
    lab, _ = retrying(tmp_path)
    identity = lab.queue("EDGE01", HYBRID)["Identity"]
    lab.ok("EDGE01", "Suspend-Queue", identity)
    lab.store.advance(60)  # no attempt while suspended
    assert lab.queue("EDGE01", HYBRID)["RetryCount"] == 1
    lab.ok("EDGE01", "Resume-Queue", identity)  # one attempt now, still failing (F2)
    count, since_first, wait = schedule(lab.queue("EDGE01", HYBRID))
    assert (count, wait) == (2, MINUTE) and since_first >= 60 * MINUTE
