"""Transport state rules: services, queues, the EdgeTransport health set, certificate events."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from edgebook.facts import EdgeFacts, EventFact, OrgFacts
from edgebook.findings import Finding, Severity

SERVICES = ("MSExchangeTransport", "ADAM_MSExchange")

# Substrings of a queue's LastError -> the trap it points to (checked in this order).
QUEUE_HINTS = (
    ("454 4.7.0", "F14: the default certificate is missing or not trusted (default-cert-missing)"),
    ("421 4.1.1", "F2: two certificates with the same subject (duplicate-subject)"),
    ("421 4.4.1", "F15: the certificate is not enabled for SMTP (smtp-not-enabled)"),
    ("4.7.5", "F3: TlsCertificateName names no installed certificate (tls-name-stale)"),
    ("5.7.3", "F3: STARTTLS is not offered (tls-name-stale, starttls-not-offered)"),
    ("4.4.317", "F3: STARTTLS is not offered (tls-name-stale, starttls-not-offered)"),
)

# MSExchangeTransport certificate events 12012-12024: severity and what to do.
CERT_EVENTS = {
    12012: (Severity.ERROR, "internal transport certificate not in AD", "F14"),
    12013: (Severity.ERROR, "cannot load the internal transport certificate", "F14"),
    12014: (Severity.ERROR, "cannot load the STARTTLS certificate", "F3/F15"),
    12015: (Severity.ERROR, "internal transport certificate expired", "renew, resubscribe"),
    12016: (Severity.ERROR, "STARTTLS certificate expired", "replace the certificate"),
    12017: (Severity.WARNING, "internal transport certificate expires soon", "renew"),
    12018: (Severity.WARNING, "STARTTLS certificate expires soon", "F20: renew now"),
    12019: (Severity.WARNING, "remote internal transport certificate expired", "Mailbox side"),
    12020: (Severity.WARNING, "remote STARTTLS certificate expired", "the peer's certificate"),
    12021: (Severity.WARNING, "receive connector configuration ignored", "check connectors"),
    12022: (Severity.ERROR, "internal transport certificate corrupted in AD", "resubscribe"),
    12023: (Severity.WARNING, "internal certificate fallback to the server FQDN", "F14"),
    12024: (Severity.WARNING, "ephemeral self-signed certificate in use", "F14"),
}


def _service_findings(edge: EdgeFacts) -> list[Finding]:
    return [
        Finding(
            "service-not-running",
            Severity.ERROR,
            f"Service {name} on {edge.name} is {edge.services[name]}: "
            + (
                "the Edge accepts and sends no mail."
                if name == "MSExchangeTransport"
                else "EdgeSync cannot reach AD LDS and transport depends on it."
            )
            + f" Start it: Start-Service {name} (and read the Application log if it stops).",
            edge.name,
            {"service": name, "status": edge.services[name]},
        )
        for name in SERVICES
        if name in edge.services and edge.services[name].casefold() != "running"
    ]


def _queue_findings(org: OrgFacts, edge: EdgeFacts) -> list[Finding]:
    threshold = org.settings.queue_threshold
    findings = []
    for queue in edge.queues:
        retry = queue.status.casefold() == "retry"
        if not retry and queue.message_count < threshold:
            continue
        hint = next((h for code, h in QUEUE_HINTS if code in queue.last_error), None)
        state = f"in Retry ({queue.last_error or 'no LastError'})" if retry else "backing up"
        findings.append(
            Finding(
                "queue-backlog",
                Severity.ERROR if hint else Severity.WARNING,
                f"Queue {queue.identity} to {queue.next_hop_domain or '?'} on {edge.name} holds "
                f"{queue.message_count} message(s) and is {state}."
                + (f" This points to {hint}." if hint else "")
                + f" Watch it with Get-Queue -Identity {queue.identity} | fl; after the fix "
                f"Retry-Queue -Identity {queue.identity}.",
                edge.name,
                {**queue.to_dict(), "threshold": threshold, "hint": hint},
            )
        )
    return findings


def _health_findings(edge: EdgeFacts) -> list[Finding]:
    findings = []
    for monitor in edge.health:
        value = monitor.alert_value.casefold()
        if value in {"", "healthy", "disabled"}:
            continue
        cert = "cert" in monitor.name.casefold() or "tls" in monitor.name.casefold()
        findings.append(
            Finding(
                "health-degraded",
                Severity.ERROR if value == "unhealthy" else Severity.WARNING,
                f"Monitor {monitor.name} ({monitor.health_set}) on {edge.name} is "
                f"{monitor.alert_value}."
                + (
                    " It watches the transport certificates: see the certificate and "
                    "smtp-cert-mismatch findings (F20)."
                    if cert
                    else ""
                )
                + f" Details: Get-ServerHealth -Identity {edge.name} -HealthSet "
                f"{monitor.health_set or 'EdgeTransport'} | ? AlertValue -ne Healthy.",
                edge.name,
                monitor.to_dict(),
            )
        )
    return findings


EXPIRY_EVENTS = (12017, 12018)
_THUMBPRINT = re.compile(r"thumbprint:\s*([0-9A-Fa-f]{40})")


def _removed(edge: EdgeFacts, message: str) -> bool:
    """Whether an expiry event names a certificate the Edge no longer holds."""
    found = _THUMBPRINT.search(message or "")
    if found is None or not edge.certificates:
        return False
    return edge.certificate(found.group(1)) is None


def _event_findings(org: OrgFacts, edge: EdgeFacts) -> list[Finding]:
    since = org.now - dt.timedelta(days=org.settings.event_days)
    groups: dict[int, list[EventFact]] = defaultdict(list)
    for event in edge.events:
        if event.event_id in CERT_EVENTS and (event.time is None or event.time >= since):
            if event.event_id in EXPIRY_EVENTS and _removed(edge, event.message):
                continue  # a warning about a certificate no longer installed (replaced)
            groups[event.event_id].append(event)
    findings = []
    for event_id, events in sorted(groups.items()):
        severity, meaning, advice = CERT_EVENTS[event_id]
        last = max(events, key=lambda e: e.time or since)
        findings.append(
            Finding(
                "cert-warning-events",
                severity,
                f"{edge.name} logged event {event_id} ({meaning}) {len(events)} time(s) in the "
                f"last {org.settings.event_days} days, last at "
                f"{last.time.isoformat() if last.time else '?'} ({advice}): {last.message}",
                edge.name,
                {
                    "event_id": event_id,
                    "count": len(events),
                    "last": last.time.isoformat() if last.time else None,
                    "message": last.message,
                },
            )
        )
    return findings


def transport_rules(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Findings about services, queues, health and certificate events on each Edge."""
    findings = []
    for edge in edges:
        findings += _service_findings(edge)
        findings += _queue_findings(org, edge)
        findings += _health_findings(edge)
        findings += _event_findings(org, edge)
    return findings
