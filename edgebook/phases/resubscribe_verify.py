"""Phase 03's checks seen from here: what an Edge presents on 25 and 50636 (edgebook.probes),
and an optional test message through the Edge, watched until it leaves the queue.

The test message is the consultant's choice (`test_message_to`): it is real mail into the
organisation, so it is never sent unless asked. It goes to the Edge's SMTP endpoint of the
inventory, like any sender on the Internet would send it.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgebook import probes
from edgebook.config import Inventory
from edgebook.errors import EdgebookError
from edgebook.exchange.command import Command

Prober = Callable[[str, str], "str | None"]  # (Edge, "smtp"|"ldaps") -> thumbprint presented
PROBE_TIMEOUT_S = 10.0


def probe_edge(inventory: Inventory, timeout: float = PROBE_TIMEOUT_S) -> Prober:
    """A prober over the inventory's SMTP and LDAPS endpoints of each Edge."""

    def presented(edge: str, kind: str) -> str | None:
        server = inventory.edge(edge)
        found: probes.SmtpProbe | probes.LdapsProbe
        if kind == "smtp":
            found = probes.smtp_certificate(
                server.smtp.host, server.smtp.port, timeout, server_name=server.fqdn
            )
        else:
            found = probes.ldaps_certificate(
                server.ldaps.host, server.ldaps.port, timeout, server_name=server.fqdn
            )
        return found.thumbprint

    return presented


class TestMessageFailed(EdgebookError):
    """The test message could not be sent, or did not leave the Edge's queues in time."""


@dataclass
class TestMessage:
    """What happened to the test message."""

    edge: str
    to: str
    sent: bool
    left_queue_s: float | None
    queues: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return vars(self)


def send_test_message(
    inventory: Inventory,
    edge: str,
    to: str,
    shell: Any,
    *,
    timeout: float = 120.0,
    every: float = 2.0,
    sender: str = "postmaster@edgebook.invalid",
) -> TestMessage:
    """Send one message through the Edge (STARTTLS) and poll Get-Queue until it has left."""
    server = inventory.edge(edge)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the certificate itself was probed and compared
    body = f"Subject: edgebook test message ({edge})\r\n\r\nSent by edgebook phase 03.\r\n"
    try:
        with smtplib.SMTP(server.smtp.host, server.smtp.port, timeout=min(timeout, 30)) as smtp:
            smtp.ehlo("edgebook.invalid")
            smtp.starttls(context=context)
            smtp.ehlo("edgebook.invalid")
            smtp.sendmail(sender, [to], body)
    except (OSError, smtplib.SMTPException) as exc:
        raise TestMessageFailed(f"the test message to {to} via {edge} was refused: {exc}") from None
    start = time.monotonic()
    while True:
        result = shell.run_batch(
            [Command("Get-Queue").select(["Identity", "Status", "MessageCount"])],
            errors="return",
        )
        queues = [{k: str(v) for k, v in r.items()} for r in result.records if isinstance(r, dict)]
        if not result.errors and all(q.get("MessageCount") == "0" for q in queues):
            return TestMessage(edge, to, True, round(time.monotonic() - start, 1), queues)
        if time.monotonic() - start >= timeout:
            raise TestMessageFailed(
                f"the test message to {to} did not leave {edge}'s queues within {timeout:g} s: "
                f"{queues}"
            )
        time.sleep(every)
