"""Test messages through an Edge: one per direction the Edge routes, sent to its SMTP listener
and watched with Get-Queue until the queue that carries it is empty again.

Exchange has no per-message id a remote reader can follow through the Edge's queues without
Get-Message (which the lab does not serve), so a message has left its queue when the queue of
its direction (the Exchange Online smart host, or the EdgeSync inbound delivery to the Mailbox
servers) holds no message and no LastError. Against a real Edge the outbound message relays only
when the sending address is allowed to relay (send it from a Mailbox server instead).
"""

from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from edgebook.facts import EdgeFacts, OrgFacts, QueueFact
from edgebook.rules.usage import is_hybrid_connector, is_inbound_connector

INBOUND_DELIVERY = "SmtpRelayToMailboxDeliveryGroup"
SENDER = "edgebook-verify"


@dataclass(frozen=True)
class Direction:
    """Where a test message goes and which queues carry it."""

    name: str
    sender: str
    recipient: str
    next_hops: tuple[str, ...] = ()  # queues by NextHopDomain (casefold); empty: inbound delivery

    def carries(self, queue: QueueFact) -> bool:
        """Whether this queue carries messages of this direction."""
        if not self.next_hops:
            return queue.delivery_type.casefold() == INBOUND_DELIVERY.casefold()
        hops = {h.strip().strip("[]").casefold() for h in queue.next_hop_domain.split(";")}
        return bool(hops & set(self.next_hops))


@dataclass
class MailOutcome:
    """One test message: what the Edge answered, and what its queue showed at the end."""

    direction: Direction
    reply: str = ""
    queue: str = ""
    seen: str = ""
    left_queue: bool = False
    seconds: float = 0.0
    subject: str = field(default_factory=lambda: f"edgebook verify {uuid.uuid4().hex[:12]}")

    def row(self) -> dict[str, str]:
        """The verdict-table row of this message."""
        return {
            "check": f"test message {self.direction.name} ({self.direction.recipient})",
            "expected": "accepted (250) and gone from its queue",
            "seen": f"{self.reply or 'not sent'}; {self.seen}",
            "verdict": "ok" if self.left_queue else "fail",
        }


def directions(edge: EdgeFacts, org: OrgFacts, internal_domain: str) -> list[Direction]:
    """Inbound to the organisation (when an EdgeSync inbound connector is replicated to the
    Edge) and outbound to Exchange Online (when a hybrid connector sends from this Edge)."""
    found = []
    connectors = edge.send_connectors or org.send_connectors
    if internal_domain and any(is_inbound_connector(c) for c in connectors):
        found.append(
            Direction(
                "inbound to the organisation",
                f"{SENDER}@example.org",
                f"postmaster@{internal_domain}",
            )
        )
    for connector in connectors:
        sources = {s.casefold() for s in connector.source_transport_servers}
        if not is_hybrid_connector(connector) or (sources and edge.name.casefold() not in sources):
            continue
        domain = next((d for d in connector.domains if d not in ("*", "--")), "")
        if domain:
            hops = tuple(h.strip().strip("[]").casefold() for h in connector.smart_hosts)
            found.append(
                Direction(
                    f"outbound to Exchange Online via {connector.name}",
                    f"{SENDER}@{internal_domain or 'example.org'}",
                    f"postmaster@{domain.lstrip('*.')}",
                    hops,
                )
            )
    return found


def send(host: str, port: int, helo: str, outcome: MailOutcome, timeout: float) -> MailOutcome:
    """Submit the message over SMTP (STARTTLS when offered; the certificate is judged by the
    probes, not here); the Edge's reply goes into the outcome."""
    direction = outcome.direction
    message = (
        f"From: <{direction.sender}>\r\nTo: <{direction.recipient}>\r\n"
        f"Subject: {outcome.subject}\r\n\r\nedgebook phase 04 test message ({direction.name}).\r\n"
    )
    try:
        with smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout) as client:
            client.ehlo()
            if client.has_extn("starttls"):
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # judged by the 25 probe, not by mail flow
                client.starttls(context=context)
                client.ehlo()
            client.mail(direction.sender)
            code, text = client.rcpt(direction.recipient)
            if code >= 300:
                outcome.reply = f"RCPT refused: {code} {text.decode(errors='replace')}"
                return outcome
            code, text = client.data(message.encode())
            outcome.reply = f"{code} {text.decode(errors='replace').splitlines()[0]}"
    except (OSError, smtplib.SMTPException) as exc:
        outcome.reply = f"not accepted: {type(exc).__name__}: {exc}"
    return outcome


def accepted(outcome: MailOutcome) -> bool:
    """Whether the Edge queued the message (250)."""
    return outcome.reply.startswith("250")


def watch(
    read_queues: Callable[[], list[QueueFact]],
    outcomes: list[MailOutcome],
    timeout: float,
    interval: float = 1.0,
) -> list[MailOutcome]:
    """Read the queues (one round trip each time) until every accepted message's queue is
    empty and without error, or timeout seconds have passed."""
    started = time.monotonic()
    pending = [o for o in outcomes if accepted(o)]
    for outcome in outcomes:
        if not accepted(outcome):
            outcome.seen = "the Edge did not accept it"
    while pending:
        queues = read_queues()
        elapsed = time.monotonic() - started
        for outcome in list(pending):
            carrying = [q for q in queues if outcome.direction.carries(q)]
            outcome.seconds = round(elapsed, 1)
            if not carrying:
                outcome.seen = "no queue on the Edge carries this direction"
                continue
            outcome.queue = ", ".join(q.identity for q in carrying)
            stuck = [q for q in carrying if q.message_count or q.last_error]
            if stuck:
                outcome.seen = "; ".join(
                    f"{q.identity} {q.status} {q.message_count} message(s)"
                    + (f", LastError {q.last_error}" if q.last_error else "")
                    for q in stuck
                )
                continue
            outcome.seen = f"left {outcome.queue} after {outcome.seconds:g} s"
            outcome.left_queue = True
            pending.remove(outcome)
        if not pending or elapsed >= timeout:
            break
        time.sleep(interval)
    for outcome in pending:
        outcome.seen = f"still queued after {timeout:g} s: {outcome.seen}"
    return outcomes
