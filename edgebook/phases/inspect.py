"""Inspect: read every server once, probe what the Edges serve, and judge the facts.

Round trips: per Edge the snap-in load plus ONE batched pipeline of read-only cmdlets; on the
Mailbox side ONE batched pipeline, whatever the number of Edges; the probes in parallel. Each
read is projected on the server onto what its facts read (Select-Object -Property): Exchange's
objects are large (a receive connector ~7 KB, a service ~3 KB), and a projected one is a few
hundred bytes to send, parse and read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebook.config import EdgeServer, Inventory, Server, files, resolve_inventory
from edgebook.errors import ConfigError
from edgebook.exchange import connect
from edgebook.exchange import wire_types as types
from edgebook.exchange.batch import by_type, run_all
from edgebook.exchange.certificates import read_certificates
from edgebook.exchange.command import Command
from edgebook.exchange.connect import DEFAULT_TIMEOUT_S, ShellFactory, resolve_credentials
from edgebook.exchange.errors import ExchangeConnectionError
from edgebook.exchange.normalize import CommandError, PSRecord
from edgebook.facts import (
    SERVICE_PROPERTIES,
    TRANSPORT_SERVICE_PROPERTIES,
    EdgeFacts,
    EdgeSyncFact,
    EventFact,
    HealthFact,
    InspectSettings,
    MailboxServerFact,
    OrgFacts,
    QueueFact,
    ReceiveConnectorFact,
    SendConnectorFact,
    SubscriptionFact,
    facts_from_dict,
    facts_to_dict,
)
from edgebook.findings import Finding, Severity, sort_findings
from edgebook.probes import ProbeTarget, TlsProbe, probe_many
from edgebook.rules import evaluate

PROBE_TIMEOUT_S = 10.0
EDGE_SERVICES = ["MSExchangeTransport", "ADAM_MSExchange"]
# Get-EventLog writes this when the window holds no entry: not a failure.
NO_EVENTS = "No matches found"


@dataclass
class InspectResult:
    """Facts, findings and round-trip counts of one inspect run."""

    inventory: Inventory
    edge: str | None  # the Edge this run is about (None: all)
    org: OrgFacts
    edges: list[EdgeFacts]
    findings: list[Finding]
    round_trips: dict[str, dict[str, int]] = field(default_factory=dict)

    def facts_dict(self) -> dict[str, Any]:
        """The facts, JSON-ready."""
        return facts_to_dict(self.org, self.edges)

    def to_dict(self) -> dict[str, Any]:
        """The `edgebook inspect --json` document."""
        return {
            "findings": [f.to_dict() for f in self.findings],
            "facts": self.facts_dict(),
            "round_trips": self.round_trips,
        }


def read_send_connectors() -> Command:
    """Get-SendConnector projected on the server to what the facts read: each connector lists
    every source server, which remoting would send as a full ADObjectId (about 1 KB each, so
    O(Edges^2) bytes for a fleet's replicas); projected, each is its name."""
    return Command("Get-SendConnector").select(SendConnectorFact.PROPERTIES)


def edge_commands(edge: EdgeServer, since: dt.datetime) -> list[Command]:
    """The read-only statements of the one Edge pipeline."""
    health = {"Identity": edge.name, "HealthSet": "EdgeTransport"}
    events = {"LogName": "Application", "Source": "MSExchangeTransport", "After": since.isoformat()}
    return [
        Command("Get-Date"),
        read_certificates(),  # RawData and Exchange's view, projected on the server
        Command("Get-TransportService").select(TRANSPORT_SERVICE_PROPERTIES),
        Command("Get-Service", {"Name": EDGE_SERVICES}).select(SERVICE_PROPERTIES),
        Command("Get-ReceiveConnector").select(ReceiveConnectorFact.PROPERTIES),
        read_send_connectors(),  # the replicas, each Edge's own
        Command("Get-Queue").select(QueueFact.PROPERTIES),
        Command("Get-ServerHealth", health).select(HealthFact.PROPERTIES),
        # projected, also because EventLogEntry.Data is an often empty byte[], which pypsrp
        # 0.9.1 cannot deserialise
        Command("Get-EventLog", events).select(EventFact.PROPERTIES),
    ]


MAILBOX_COMMANDS = [
    read_send_connectors(),
    Command("Get-EdgeSubscription").select(SubscriptionFact.PROPERTIES),
    Command("Test-EdgeSynchronization", {"ExcludeRecipientTest": True}).select(
        EdgeSyncFact.PROPERTIES
    ),
    Command("Get-TransportService").select(TRANSPORT_SERVICE_PROPERTIES),
    read_certificates(),
]


def _server_clock(records: list[Any]) -> dt.datetime | None:
    for record in records:
        if isinstance(record, dt.datetime):
            return record if record.tzinfo else record.replace(tzinfo=dt.UTC)
        if isinstance(record, str):
            try:
                return dt.datetime.fromisoformat(record)
            except ValueError:
                continue
    return None


def _read_failures(server: str, errors: list[CommandError]) -> list[Finding]:
    return [
        Finding(
            "read-failed",
            Severity.WARNING,
            f"{error.cmdlet or 'a cmdlet'} failed on {server}: {error.message}. The findings "
            "that need this information are missing; fix the cause and inspect again.",
            server,
            {"cmdlet": error.cmdlet, "error_id": error.fully_qualified_error_id},
        )
        for error in errors
        if NO_EVENTS not in error.message
    ]


@dataclass
class _EdgeRead:
    facts: EdgeFacts | None  # without the probes, joined after; None when unreachable
    clock: dt.datetime | None
    failures: list[Finding]
    stats: dict[str, int]
    unreachable: ExchangeConnectionError | None = None


def _probe_outcome(probe: TlsProbe) -> str:
    if probe.ok:
        return f"{probe.kind.upper()} {probe.target} served certificate {probe.thumbprint}"
    return f"{probe.kind.upper()} {probe.target} failed ({probe.error})"


def _unreachable(
    server: str, error: ExchangeConnectionError, probes: tuple[TlsProbe, ...] = ()
) -> Finding:
    """WinRM failed; the Edge's SMTP and LDAPS probes are reported apart, in the same finding."""
    evidence: dict[str, Any] = {"url": error.url, "cause": error.cause}
    seen = ""
    if probes:
        seen = f" Probes from here: {'; '.join(_probe_outcome(p) for p in probes)}."
        evidence["probes"] = [
            {"target": p.target, "ok": p.ok, "error": p.error, "thumbprint": p.thumbprint}
            for p in probes
        ]
    text = str(error)
    return Finding(
        "server-unreachable",
        Severity.ERROR,
        f"{text}{'' if text.endswith(('.', '?', ')')) else '.'} The other servers were "
        f"inspected; findings that need {server}'s facts are missing until it can be "
        f"reached.{seen}",
        server,
        evidence,
    )


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while the servers are read: the reads allocate many
    short-lived objects, and a full collection of the process's heap (80 ms with edgebook's
    imports) stalls every read thread at once. Collection resumes after (if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_edge(
    inventory: Inventory, edge: EdgeServer, since: dt.datetime, shell_factory: ShellFactory
) -> _EdgeRead:
    try:
        with shell_factory(inventory, edge.name) as shell:
            records, errors = run_all(shell, edge_commands(edge, since))
            stats = shell.stats
    except ExchangeConnectionError as exc:
        return _EdgeRead(None, None, [], {}, unreachable=exc)
    # built here, in the read's thread, while other Edges' reads wait on the network
    return _EdgeRead(
        _edge_facts(edge, by_type(records)),
        _server_clock(records),
        _read_failures(edge.name, errors),
        {"pipelines": stats.pipelines, "cmdlets": stats.cmdlets, "requests": stats.wsman_requests},
    )


def _read_mailbox(
    inventory: Inventory, shell_factory: ShellFactory
) -> tuple[dict[str, list[PSRecord]], list[Finding], str, dict[str, int]]:
    server = inventory.organisation.mailbox_servers[0]
    try:
        with shell_factory(inventory, server.name) as shell:
            records, errors = run_all(shell, MAILBOX_COMMANDS)
            stats = shell.stats
    except ExchangeConnectionError as exc:
        return {}, [_unreachable(server.name, exc)], server.name, {}
    counts = {
        "pipelines": stats.pipelines,
        "cmdlets": stats.cmdlets,
        "requests": stats.wsman_requests,
    }
    return by_type(records), _read_failures(server.name, errors), server.name, counts


def _probe_targets(inventory: Inventory) -> list[ProbeTarget]:
    targets = []
    for edge in inventory.edges:
        targets.append(ProbeTarget("smtp", edge.smtp.host, edge.smtp.port, server_name=edge.fqdn))
        targets.append(
            ProbeTarget("ldaps", edge.ldaps.host, edge.ldaps.port, server_name=edge.fqdn)
        )
    return targets


def _accepted_capabilities(configured: str) -> tuple[str, ...]:
    """The configured TlsDomainCapabilities; AcceptOorgProtocol also admits the 2013+ name."""
    domain, _, capability = configured.partition(":")
    if capability == "AcceptOorgProtocol":
        return (configured, f"{domain}:AcceptCloudServicesMail")
    return (configured,)


def _trust_anchors(inventory: Inventory) -> tuple[Any, ...] | None:
    """The change.trust_anchors certificates; a bad file (or a winrm.ca_file that is not
    PEM) is a ConfigError naming the key."""
    files.check_ca_files(inventory)
    return files.trust_anchors(inventory)


def _settings(
    inventory: Inventory,
    warning_days: int | None,
    now: dt.datetime,
    roots: tuple[Any, ...] | None,
) -> InspectSettings:
    change = inventory.change
    return InspectSettings(
        hybrid=change.hybrid,
        expected_fqdns=change.expected_fqdns,
        warning_days=warning_days or change.warning_days,
        tls_domain_capabilities=_accepted_capabilities(change.tls_domain_capabilities),
        event_days=change.event_days,
        now=now,
        roots=roots,
    )


def inspect(
    inventory: Inventory,
    edge: str | None = None,
    *,
    warning_days: int | None = None,
    event_days: float | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    shell_factory: ShellFactory | None = None,
) -> InspectResult:
    """Gather the facts of every server concurrently, then evaluate the rules.

    timeout bounds each server's read (a WinRM call) and each probe (10 s at most); a server
    that does not answer in time is a server-unreachable finding.
    """
    if timeout <= 0:
        raise ConfigError(f"the timeout must be more than 0 seconds, not {timeout:g}")
    if edge is not None:
        edge = inventory.edge(edge).name  # a clear error for an unknown name
    roots = _trust_anchors(inventory)  # a bad file stops here, before any connection
    servers: tuple[Server, ...] = (inventory.organisation.mailbox_servers[0], *inventory.edges)
    shell_factory = shell_factory or connect.shell_factory(resolve_credentials(servers), timeout)
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(days=event_days or inventory.change.event_days)
    probe_timeout = min(PROBE_TIMEOUT_S, timeout)
    with _without_cyclic_gc(), ThreadPoolExecutor(max_workers=len(inventory.edges) + 2) as pool:
        # The reads first: a thread starts only once it gets the GIL, which the probes' CPU
        # work would hold (20 Edges' reads started 0.3 s apart behind them).
        mailbox_job = pool.submit(_read_mailbox, inventory, shell_factory)
        edge_jobs = {
            e.name: pool.submit(_read_edge, inventory, e, since, shell_factory)
            for e in inventory.edges
        }
        probes_job = pool.submit(probe_many, _probe_targets(inventory), probe_timeout)
        probes: list[TlsProbe] = probes_job.result()
        mailbox_records, failures, mailbox_name, mailbox_stats = mailbox_job.result()
        edge_reads = {name: job.result() for name, job in edge_jobs.items()}
    clocks = [r.clock for r in edge_reads.values() if r.clock]
    settings = _settings(inventory, warning_days, max(clocks) if clocks else now, roots)
    org = _org_facts(inventory, mailbox_records, mailbox_name, settings)
    if not mailbox_records:  # the organisation was not read: its rules stay silent
        org.mailbox_servers.clear()
    edges = []
    for index, server in enumerate(inventory.edges):
        read = edge_reads[server.name]
        smtp, ldaps = probes[2 * index], probes[2 * index + 1]
        failures += read.failures
        if read.unreachable is not None:
            failures.append(_unreachable(server.name, read.unreachable, (smtp, ldaps)))
        elif read.facts is not None:
            edges.append(dataclasses.replace(read.facts, smtp_probe=smtp, ldaps_probe=ldaps))
    findings = sort_findings(
        [f for f in evaluate(org, edges) + failures if _concerns(f, edge, inventory)]
    )
    round_trips = {name: read.stats for name, read in edge_reads.items() if read.stats}
    if mailbox_stats:
        round_trips[mailbox_name] = mailbox_stats
    return InspectResult(inventory, edge, org, edges, findings, round_trips)


def _concerns(finding: Finding, edge: str | None, inventory: Inventory) -> bool:
    if edge is None or finding.server is None:
        return True
    other_edges = {e.name.casefold() for e in inventory.edges} - {edge.casefold()}
    return finding.server.casefold() not in other_edges


def _read(records: Mapping[str, list[PSRecord]], type_name: str) -> list[PSRecord]:
    """The records of one type: projected (`Selected.<type>`), then plain (an older reader)."""
    return records.get(f"Selected.{type_name}", []) + records.get(type_name, [])


def _edge_facts(server: EdgeServer, records: dict[str, list[PSRecord]]) -> EdgeFacts:
    """The Edge's facts from its records (the probes are joined by inspect)."""
    transport = _read(records, types.TRANSPORT_SERVICE)
    return EdgeFacts.from_records(
        server.name,
        server.fqdn,
        certificates=_read(records, types.EXCHANGE_CERTIFICATE),
        transport_service=transport[0] if transport else None,
        services=_read(records, types.SERVICE_CONTROLLER),
        receive_connectors=_read(records, types.RECEIVE_CONNECTOR),
        send_connectors=_read(records, types.SEND_CONNECTOR),
        queues=_read(records, types.QUEUE),
        health=_read(records, types.SERVER_HEALTH),
        events=_read(records, types.EVENT_LOG_ENTRY),
    )


def _org_facts(
    inventory: Inventory,
    records: dict[str, list[PSRecord]],
    connected_to: str,
    settings: InspectSettings,
) -> OrgFacts:
    transport = _read(records, types.TRANSPORT_SERVICE)
    certificates = _read(records, types.EXCHANGE_CERTIFICATE)  # of the one connected to
    mailboxes = []
    for server in inventory.organisation.mailbox_servers:
        own = [r for r in transport if str(r.get("Name", "")).casefold() == server.name.casefold()]
        mailboxes.append(
            MailboxServerFact.from_records(
                server.name,
                server.fqdn,
                transport_service=own[0] if own else None,
                certificates=certificates if server.name == connected_to else (),
            )
        )
    return OrgFacts.from_records(
        mailbox_servers=mailboxes,
        send_connectors=_read(records, types.SEND_CONNECTOR),
        subscriptions=_read(records, types.EDGE_SUBSCRIPTION),
        edgesync=_read(records, types.EDGE_SYNC_STATUS),
        settings=settings,
    )


def run(
    inventory: str | Path,
    edge: str | None = None,
    *,
    warning_days: int | None = None,
    event_days: float | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> InspectResult:
    """The notebook's entry point: resolve the inventory, default to its first Edge, inspect."""
    loaded = resolve_inventory(inventory)
    return inspect(
        loaded,
        edge or loaded.edges[0].name,
        warning_days=warning_days,
        event_days=event_days,
        timeout=timeout,
    )


def judge_saved(facts: Mapping[str, Any], edge: str | None = None) -> list[Finding]:
    """The rules' findings on saved facts (the `facts` of `edgebook inspect --json`, or notebook
    01's "facts" record), judged again at their own moment; edge (its "edge" record): only what
    concerns that Edge, as its run reported. Read failures are not facts: they stay as recorded."""
    org, edges = facts_from_dict(facts)
    findings = evaluate(org, edges)
    if edge is None:
        return findings
    others = {e.name.casefold() for e in edges} - {edge.casefold()}
    return [f for f in findings if f.server is None or f.server.casefold() not in others]
