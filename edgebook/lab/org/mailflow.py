"""The simulation: service starts bind certificates, queues drain or retry, EdgeSync replicates
(what the TLS listeners then present is edgebook.lab.org.listener_state).

Everything is evaluated lazily against the lab clock: evaluate(org, now, edges) catches up the
Edges a pipeline or a mail touches, just before it runs (an Edge nobody asks about waits).
Rules of the lab, documented in docs/lab-scenarios.md:
- transport binds its certificates when it starts (F11); AD LDS binds its certificate when
  ADAM_MSExchange starts (F7), choosing the default certificate if eligible, else the newest
  eligible one (certstore.adam_choice);
- an outbound mutual-TLS connector fails when its bound certificate is gone (F3, 454 4.7.5),
  shares its subject with another certificate (F2), or was selected by FQDN without SMTP (F15);
- Edge-to-Mailbox delivery needs the Edge default certificate in the store (F14) and equal to
  the certificate captured by the subscription (F12);
- a queue in Retry connects again only at its NextRetryTime (Microsoft's Edge defaults), or at
  once on Retry-Queue, Resume-Queue or a transport start;
- every message an Edge takes in counts as accepted, every message a queue hands to its next
  hop as delivered: nothing else adds or removes messages, so accepted == delivered + queued.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from edgebook.errors import EdgebookError
from edgebook.lab.org import certstore, events, pki
from edgebook.lab.org.edgesync import replicate, sync_failure
from edgebook.lab.org.model import (
    ADAM,
    PAUSED,
    RUNNING,
    STOPPED,
    TRANSPORT,
    Org,
    Queue,
    SendBinding,
    SendConnector,
    Server,
    TransportBinding,
    clock,
)

SYNC_INTERVAL = dt.timedelta(minutes=3)
EVENT_EVERY = dt.timedelta(minutes=15)
EXPIRY_WARNING = dt.timedelta(days=30)
ERR_TLS_NAME = (
    "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not "
    "be found."
)
ERR_DUPLICATE = "451 4.4.395 Target host responded with error. -> 421 4.1.1 Connection timed out"
ERR_DIRECT_TRUST = (
    "451 4.4.395 Target host responded with error. -> 454 4.7.0 Temporary authentication failure"
)
ERR_NOT_SMTP = (
    '451 4.4.0 Primary target IP address responded with: "421 4.4.1 Connection timed out." '
    "Attempted failover to alternate host, but that did not succeed. TLS negotiation failed "
    "with error UnknownCredentials"
)
ERR_UNREACHABLE = "451 4.4.0 DNS query failed. The error was: no send connector routes this domain"


class MailRefused(EdgebookError):
    """The Edge does not accept mail now (transport paused or stopped)."""


def is_inbound(connector: SendConnector) -> bool:
    """Whether the connector delivers into the organisation (EdgeSync - Inbound, space "--")."""
    return any(space.split(":", 1)[-1].startswith("--") for space in connector.address_spaces)


def mutual_tls(connector: SendConnector) -> bool:
    """Whether the connector authenticates with a certificate of its own."""
    return bool(
        connector.tls_certificate_name
        or connector.domain_secure_enabled
        or connector.tls_auth_level
    )


def resolve_send(server: Server, connector: SendConnector, now: dt.datetime) -> SendBinding:
    """Resolve the certificate of a send connector the way transport does at start."""
    if connector.tls_certificate_name:
        found = certstore.by_tls_name(server, connector.tls_certificate_name, now)
        if not found:
            return SendBinding(connector.tls_certificate_name, None, "missing")
        found.sort(key=lambda c: certstore.cert_of(c).not_valid_after_utc, reverse=True)
        return SendBinding(connector.tls_certificate_name, found[0].thumbprint)
    if connector.fqdn:
        chosen = certstore.by_fqdn(server, connector.fqdn, now)
        if chosen is not None:
            error = None if chosen.services & certstore.SMTP else "not-smtp"
            return SendBinding(None, chosen.thumbprint, error)
    return SendBinding(None, server.internal_transport_thumbprint)


def resolve_receive(server: Server, now: dt.datetime) -> dict[str, str | None]:
    """The STARTTLS certificate of each receive connector (None: no STARTTLS offered)."""
    bound: dict[str, str | None] = {}
    for rc in server.receive_connectors:
        if rc.tls_certificate_name:
            found = certstore.by_tls_name(server, rc.tls_certificate_name, now)
            bound[rc.name] = found[0].thumbprint if found else None
            if not found:
                events.log(
                    server,
                    12014,
                    now,
                    domain=rc.tls_certificate_name,
                    connector=rc.name,
                    fqdn=rc.fqdn,
                )
            continue
        chosen = certstore.by_fqdn(server, rc.fqdn, now)
        if chosen is not None and chosen.services & certstore.SMTP:
            bound[rc.name] = chosen.thumbprint
        elif chosen is None and _default_usable(server, now):
            bound[rc.name] = server.internal_transport_thumbprint
        else:
            bound[rc.name] = None
            events.log(server, 12014, now, domain=rc.fqdn, connector=rc.name, fqdn=rc.fqdn)
    return bound


def _default_usable(server: Server, now: dt.datetime) -> bool:
    thumb = server.internal_transport_thumbprint
    entry = server.certificate(thumb) if thumb else None
    return entry is not None and certstore.usable(entry, now)


def replicated_connectors(server: Server) -> list[SendConnector]:
    """The send connectors this Edge's AD LDS holds that list the Edge as a source."""
    if server.replica is None:
        return []
    return [
        c
        for c in server.replica.connectors
        if any(s.casefold() == server.name.casefold() for s in c.source_transport_servers)
    ]


def start_transport(org: Org, server: Server, now: dt.datetime) -> None:
    """Start MSExchangeTransport: bind the default, receive and send certificates."""
    server.services[TRANSPORT] = RUNNING
    if server.role != "Edge":
        return
    if not _default_usable(server, now) and server.internal_transport_thumbprint:
        events.log(server, 12013, now, thumbprint=server.internal_transport_thumbprint)
    binding = TransportBinding(
        started=now,
        default_thumbprint=server.internal_transport_thumbprint,
        receive=resolve_receive(server, now),
    )
    for connector in replicated_connectors(server):
        binding.send[connector.name] = _bind_send(server, connector, now)
    server.transport = binding
    warn_expiry(server, now, force=True)
    for queue in server.queues:  # lab choice: a (re)started transport connects at once
        if queue.kind == "connector" and queue.status == "Retry":
            evaluate_queue(org, server, queue, now, force=True)


def _bind_send(server: Server, connector: SendConnector, now: dt.datetime) -> SendBinding:
    bound = resolve_send(server, connector, now)
    if bound.error == "missing":
        events.log(
            server,
            12014,
            now,
            domain=connector.tls_certificate_name,
            connector=connector.name,
            fqdn=connector.fqdn or server.fqdn,
        )
    return bound


def start_adam(server: Server, now: dt.datetime) -> None:
    """Start ADAM_MSExchange: AD LDS binds its LDAPS certificate."""
    server.services[ADAM] = RUNNING
    chosen = certstore.adam_choice(server, now)
    server.adam_thumbprint = chosen.thumbprint if chosen else None


def stop_service(server: Server, service: str) -> list[str]:
    """Stop a service (and its dependents); returns the services stopped."""
    stopped = [service]
    if service == ADAM and server.services.get(TRANSPORT, STOPPED) != STOPPED:
        stopped.insert(0, TRANSPORT)
    for name in stopped:
        server.services[name] = STOPPED
        if name == TRANSPORT:
            server.transport = None
        if name == ADAM:
            server.adam_thumbprint = None
    return stopped


def warn_expiry(server: Server, now: dt.datetime, force: bool = False) -> None:
    """Event 12018 for bound STARTTLS certificates expiring within the warning window (daily)."""
    if server.transport is None:
        return
    thumbs = {t for t in server.transport.receive.values() if t}
    thumbs |= {b.thumbprint for b in server.transport.send.values() if b.thumbprint}
    for thumb in sorted(thumbs):
        entry = server.certificate(thumb)
        if entry is None or thumb == server.transport.default_thumbprint:
            continue
        left = certstore.cert_of(entry).not_valid_after_utc - now
        if dt.timedelta(0) < left <= EXPIRY_WARNING:
            every = dt.timedelta(0) if force else dt.timedelta(days=1)
            domains = pki.domains_of(certstore.cert_of(entry))
            events.log_throttled(
                server,
                12018,
                now,
                every if not force else dt.timedelta(hours=1),
                thumb,
                subject=domains[0] if domains else certstore.subject(entry),
                thumbprint=thumb,
                hours=int(left.total_seconds() // 3600),
            )


def queue_error(org: Org, server: Server, queue: Queue, now: dt.datetime) -> str | None:
    """The LastError a connector queue meets now, or None when its path works."""
    connector = next((c for c in replicated_connectors(server) if c.name == queue.connector), None)
    if connector is None or not connector.enabled:
        return ERR_UNREACHABLE
    if is_inbound(connector):
        default = server.internal_transport_thumbprint
        sub = org.subscription(server.name)
        if not _default_usable(server, now):
            events.log_throttled(
                server, 12013, now, EVENT_EVERY, str(default), thumbprint=str(default)
            )
            return ERR_DIRECT_TRUST
        if sub is None or sub.certificate_thumbprint != default:
            return ERR_DIRECT_TRUST
        return None
    if server.transport is None:
        return None
    binding = server.transport.send.get(connector.name)
    if binding is None:  # a connector replicated after transport started
        binding = server.transport.send[connector.name] = _bind_send(server, connector, now)
    if not mutual_tls(connector):
        return None
    if binding.error == "not-smtp":
        return ERR_NOT_SMTP
    entry = server.certificate(binding.thumbprint) if binding.thumbprint else None
    if binding.error == "missing" or entry is None or not certstore.usable(entry, now):
        events.log_throttled(
            server,
            12014,
            now,
            EVENT_EVERY,
            connector.name,
            domain=binding.tls_name or connector.fqdn or server.fqdn,
            connector=connector.name,
            fqdn=connector.fqdn or server.fqdn,
        )
        return ERR_TLS_NAME
    if len(certstore.same_subject(server, entry)) > 1:
        return ERR_DUPLICATE
    return None


def evaluate(org: Org, now: dt.datetime, edges: Iterable[Server] | None = None) -> None:
    """Bring Edges (default: every Edge) up to the lab time: traffic, queues, events, replication.

    An Edge's catch-up depends only on that Edge and the organisation-wide configuration, so an
    Edge no request touches can wait until one does.
    """
    for server in org.edges if edges is None else edges:
        if server.role != "Edge":
            continue
        running = server.services.get(TRANSPORT) == RUNNING
        if running:
            _generate_traffic(org, server, now)
        else:
            server.traffic_at = now
        if running or server.services.get(TRANSPORT) == PAUSED:
            for queue in server.queues:
                if queue.kind == "connector":
                    evaluate_queue(org, server, queue, now)
            warn_expiry(server, now)
        sub = org.subscription(server.name)
        if sub is not None:
            last = server.replica.last_sync if server.replica else None
            due = last is None or last < sub.create_utc or now - last >= SYNC_INTERVAL
            if due and sync_failure(org, server) is None:
                replicate(org, server, now)


# Microsoft, "Message retry, resubmit, and expiration intervals", Edge Transport defaults: after a
# failed connection QueueGlitchRetryCount (4) attempts QueueGlitchRetryInterval (1 min) apart, then
# TransientFailureRetryCount (6) attempts TransientFailureRetryInterval (10 min) apart, then one
# every OutboundConnectionFailureRetryInterval (30 min). A queue in Retry connects only then.
GLITCH_RETRIES, GLITCH_INTERVAL = 4, dt.timedelta(minutes=1)
TRANSIENT_RETRIES, TRANSIENT_INTERVAL = 6, dt.timedelta(minutes=10)
OUTBOUND_FAILURE_INTERVAL = dt.timedelta(minutes=30)


def retry_interval(retry_count: int) -> dt.timedelta:
    """How long a queue in Retry waits after its retry_count-th failed attempt."""
    if retry_count <= GLITCH_RETRIES:
        return GLITCH_INTERVAL
    if retry_count <= GLITCH_RETRIES + TRANSIENT_RETRIES:
        return TRANSIENT_INTERVAL
    return OUTBOUND_FAILURE_INTERVAL


def next_retry(queue: Queue) -> dt.datetime | None:
    """NextRetryTime: when a queue in Retry connects again (None: not in Retry)."""
    if queue.status != "Retry" or queue.last_retry is None:
        return None
    return queue.last_retry + retry_interval(queue.retry_count)


def evaluate_queue(
    org: Org, server: Server, queue: Queue, now: dt.datetime, force: bool = False
) -> None:
    """Deliver or retry; an empty queue opens no session, so it logs nothing (no 12013/12014);
    a suspended queue waits; a queue in Retry connects only at its NextRetryTime, or at once
    when forced (Retry-Queue, a resumed queue, a transport start)."""
    if queue.status == "Suspended":
        return
    due = next_retry(queue)
    if not force and due is not None and now < due:
        return
    error = queue_error(org, server, queue, now) if queue.message_count else None
    if error is None:
        server.mail_delivered += queue.message_count
        queue.message_count = 0
        queue.status = "Ready"
        queue.last_error = None
        queue.first_retry = queue.last_retry = None
        queue.retry_count = 0
        return
    queue.status = "Retry"
    queue.last_error = error
    if force or queue.last_retry is None:  # an attempt now
        queue.first_retry = queue.first_retry or now
        queue.last_retry, queue.retry_count = now, queue.retry_count + 1
        return
    # the attempts the schedule made since the last one evaluated, all failing as now
    while (step := queue.last_retry + retry_interval(queue.retry_count)) <= now:
        queue.last_retry, queue.retry_count = step, queue.retry_count + 1


def _generate_traffic(org: Org, server: Server, now: dt.datetime) -> None:
    if server.traffic_at is None:
        server.traffic_at = now
        return
    minutes = (now - server.traffic_at).total_seconds() / 60
    added = False
    for connector, rate in server.traffic.items():
        count = int(minutes * rate)
        if count > 0:
            enqueue(server, connector, count)
            added = True
    if added:
        server.traffic_at = now


def enqueue(server: Server, connector_name: str, count: int) -> Queue:
    """Accept count messages into the queue of a send connector (made if none yet)."""
    queue = next((q for q in server.queues if q.connector == connector_name), None)
    if queue is None:
        connector = next(
            (c for c in replicated_connectors(server) if c.name == connector_name), None
        )
        queue = new_queue(server, connector_name, connector)
    queue.message_count += count
    server.mail_accepted += count
    return queue


def new_queue(server: Server, name: str, connector: SendConnector | None) -> Queue:
    """A connector queue on a server (numbered like Exchange's)."""
    number = max([q.number for q in server.queues] + [2]) + 1
    hop = name.lower()
    delivery = "SmartHostConnectorDelivery"
    category = "External"
    if connector is not None:
        if is_inbound(connector):
            delivery, category = "SmtpRelayToMailboxDeliveryGroup", "Internal"
            hop = f"edgesync - inbound to {server.name.lower()}"
        elif connector.smart_hosts and not connector.dns_routing_enabled:
            hop = ";".join(connector.smart_hosts)
        else:
            delivery, hop = (
                "DnsConnectorDelivery",
                connector.address_spaces[0].split(":")[-1].split(";")[0],
            )
    queue = Queue(
        number,
        "connector",
        hop,
        delivery,
        name,
        tls_domain=connector.tls_domain if connector else None,
    )
    queue.next_hop_category = category
    server.queues.append(queue)
    return queue


def route(org: Org, server: Server, recipient: str) -> str | None:
    """The replicated send connector that carries mail to this recipient from this Edge."""
    domain = recipient.rsplit("@", 1)[-1].casefold()
    best: tuple[int, str] | None = None
    for connector in replicated_connectors(server):
        for space in connector.address_spaces:
            pattern = space.split(":", 1)[-1].split(";")[0].casefold()
            if pattern == "--":
                internal = domain == org.domain.casefold() or domain.endswith(
                    "." + org.domain.casefold()
                )
                score = 1000 if internal else -1
            elif pattern == "*":
                score = 0
            elif pattern.startswith("*."):
                score = len(pattern) if domain.endswith(pattern[1:]) else -1
            else:
                score = len(pattern) + 1 if domain == pattern else -1
            if score >= 0 and (best is None or score > best[0]):
                best = (score, connector.name)
    return best[1] if best else None


def submit_mail(
    org: Org, edge: str, count: int, recipients: list[str], now: dt.datetime
) -> list[Queue]:
    """Put count messages per recipient into the Edge's queues; returns the queues touched."""
    server = org.server(edge)
    if server.services.get(TRANSPORT) != RUNNING:
        raise MailRefused(
            f"421 4.3.2 Service not available: MSExchangeTransport on {server.name} is "
            f"{server.services.get(TRANSPORT, STOPPED)}"
        )
    touched = []
    for recipient in recipients:
        connector = route(org, server, recipient)
        if connector is None:
            queue = next((q for q in server.queues if q.kind == "unreachable"), None)
            if queue is None:
                queue = Queue(2, "unreachable", "Unreachable", "Unreachable", None, status="Ready")
                server.queues.append(queue)
            queue.message_count += count
            queue.last_error = ERR_UNREACHABLE
            server.mail_accepted += count
        else:
            queue = enqueue(server, connector, count)
        touched.append(queue)
    for queue in touched:
        if queue.kind == "connector":
            evaluate_queue(org, server, queue, now)
    return touched


class Transactions(Protocol):
    """What accept_mail needs of a store (edgebook.lab.org.store.LabStore or ResidentStore)."""

    def transaction(self, servers: Collection[str] | None = None) -> AbstractContextManager[Org]:
        """The mutable organisation; servers names what the block touches."""
        ...


def accept_mail(
    store: Transactions, edge_name: str, mail_from: str, rcpt_tos: list[str], data: bytes
) -> None:
    """Mail accepted by an Edge's SMTP listener lands in its queues (one message per recipient)."""
    with store.transaction([edge_name]) as org:
        now = clock(org)
        server = org.server(edge_name)
        evaluate(org, now, [server])
        submit_mail(org, server.name, 1, list(rcpt_tos), now)


CLOUD_CAPABILITIES = ("acceptcloudservicesmail", "acceptoorgprotocol")


def cloud_mail_internal(org: Org, edge_name: str) -> bool:
    """Whether mail from Exchange Online arriving at this Edge counts as internal (F17: needs
    mail.protection.outlook.com:AcceptCloudServicesMail on a receive connector)."""
    for rc in org.server(edge_name).receive_connectors:
        for entry in rc.tls_domain_capabilities:
            domain, _, capabilities = entry.partition(":")
            wanted = {c.strip().casefold() for c in capabilities.split(",")}
            if domain.strip().casefold() == "mail.protection.outlook.com" and wanted & set(
                CLOUD_CAPABILITIES
            ):
                return True
    return False
