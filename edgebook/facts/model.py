"""The facts of one Edge and of the organisation, and the settings the rules judge them by."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography import x509

from edgebook import certs
from edgebook.facts import values as v
from edgebook.facts.cmdlet_outputs import (
    CertificateFact,
    EventFact,
    HealthFact,
    ProbeResult,
    QueueFact,
    ReceiveConnectorFact,
    SendConnectorFact,
)
from edgebook.facts.probe_results import probe_from_dict
from edgebook.facts.values import Record

EXO_CAPABILITY = "mail.protection.outlook.com:AcceptCloudServicesMail"
# What the facts read of Get-TransportService (a server's Name: inspect picks the Mailbox
# server's own among all) and of Get-Service: inspect's projections.
TRANSPORT_SERVICE_PROPERTIES = ("Name", "InternalTransportCertificateThumbprint")
SERVICE_PROPERTIES = ("Name", "Status")


def _default_thumbprint(transport_service: Record | None) -> str | None:
    """None when Get-TransportService was not read, '' when it names no certificate."""
    if transport_service is None:
        return None
    return v.thumbprint(v.get(transport_service, "InternalTransportCertificateThumbprint"))


def same_server(name: str, *candidates: str) -> bool:
    """Whether a server reference (NetBIOS name or FQDN) names one of the candidates."""
    wanted = name.strip().casefold()
    if not wanted:
        return False
    short = wanted.split(".", 1)[0]
    for candidate in candidates:
        known = candidate.strip().casefold()
        if known and (wanted == known or short == known or known.split(".", 1)[0] == wanted):
            return True
    return False


def any_same_server(references: Iterable[str], *candidates: str) -> bool:
    """Whether one of the server references names one of the candidates: what same_server()
    says for each reference, with the references indexed once (a connector's source servers
    are matched against every Edge)."""
    names, first_labels = _server_index(tuple(references))
    for candidate in candidates:
        known = candidate.strip().casefold()
        if known and (known in names or known in first_labels or known.split(".", 1)[0] in names):
            return True
    return False


@functools.lru_cache(maxsize=256)
def _server_index(references: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The references as same_server() compares them (stripped, casefolded, not empty), and
    their first labels."""
    names = frozenset(r.strip().casefold() for r in references) - {""}
    return names, frozenset(name.split(".", 1)[0] for name in names)


@dataclass(frozen=True)
class InspectSettings:
    """What the organisation expects: hybrid or not, FQDNs, the warning window, the clock."""

    hybrid: bool = False
    expected_fqdns: tuple[str, ...] = ()
    warning_days: int = 30
    tls_domain_capabilities: tuple[str, ...] = (EXO_CAPABILITY,)
    queue_threshold: int = 100
    event_days: int = 7
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    roots: tuple[x509.Certificate, ...] | None = None  # trust anchors; None: the system store

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "hybrid": self.hybrid,
            "expected_fqdns": list(self.expected_fqdns),
            "warning_days": self.warning_days,
            "tls_domain_capabilities": list(self.tls_domain_capabilities),
            "queue_threshold": self.queue_threshold,
            "event_days": self.event_days,
            "now": v.iso(self.now),
            "roots": None
            if self.roots is None
            else [{"subject": certs.subject_name(r), "pem": v.pem(r)} for r in self.roots],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "settings") -> InspectSettings:
        """From to_dict()'s form (the trust anchors from their PEM)."""
        data = v.mapping(data, where)
        roots = data.get("roots")
        if roots is not None:
            roots = tuple(
                _root(r, f"{where}.roots[{i}]")
                for i, r in enumerate(v.items(roots, f"{where}.roots"))
            )
        return v.from_json(cls, data, where, roots=roots)


def _root(data: Any, where: str) -> x509.Certificate:
    """A trust anchor as InspectSettings.to_dict() writes it: subject and PEM."""
    if isinstance(data, str):
        raise v.unreadable(
            where,
            "is a subject name only (the facts were saved before edgebook kept the trust "
            "anchors' PEM), so the certificates cannot be judged against it: inspect again",
        )
    return v.certificate(v.mapping(data, where).get("pem"), f"{where}.pem")


@dataclass
class EdgeFacts:
    """Everything read about one Edge Transport server (and what it serves on 25 and 50636)."""

    name: str
    fqdn: str = ""
    certificates: list[CertificateFact] = field(default_factory=list)
    default_thumbprint: str | None = None  # None: not read; '': no certificate configured
    services: dict[str, str] = field(default_factory=dict)  # service name -> status
    receive_connectors: list[ReceiveConnectorFact] = field(default_factory=list)
    send_connectors: list[SendConnectorFact] = field(default_factory=list)  # replicated
    queues: list[QueueFact] = field(default_factory=list)
    health: list[HealthFact] = field(default_factory=list)
    events: list[EventFact] = field(default_factory=list)
    smtp_probe: ProbeResult | None = None
    ldaps_probe: ProbeResult | None = None

    @classmethod
    def from_records(
        cls,
        name: str,
        fqdn: str = "",
        *,
        certificates: Iterable[Record] = (),
        transport_service: Record | None = None,
        services: Iterable[Record] = (),
        receive_connectors: Iterable[Record] = (),
        send_connectors: Iterable[Record] = (),
        queues: Iterable[Record] = (),
        health: Iterable[Record] = (),
        events: Iterable[Record] = (),
        smtp_probe: ProbeResult | None = None,
        ldaps_probe: ProbeResult | None = None,
    ) -> EdgeFacts:
        """From the Edge's records: Get-ExchangeCertificate, Get-TransportService, Get-Service,
        Get-ReceiveConnector, Get-SendConnector, Get-Queue, Get-ServerHealth, Get-EventLog."""
        return cls(
            name=name,
            fqdn=fqdn,
            certificates=[CertificateFact.from_record(r) for r in certificates],
            default_thumbprint=_default_thumbprint(transport_service),
            services={
                v.text(v.get(r, "Name")): v.text(v.get(r, "Status"))
                for r in services
                if v.text(v.get(r, "Name"))
            },
            receive_connectors=[ReceiveConnectorFact.from_record(r) for r in receive_connectors],
            send_connectors=[SendConnectorFact.from_record(r) for r in send_connectors],
            queues=[QueueFact.from_record(r) for r in queues],
            health=[HealthFact.from_record(r) for r in health],
            events=[EventFact.from_record(r) for r in events],
            smtp_probe=smtp_probe,
            ldaps_probe=ldaps_probe,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "edge") -> EdgeFacts:
        """From to_dict()'s form (probe results included)."""
        data = v.mapping(data, where)
        probes = {
            name: None
            if data.get(name) is None
            else probe_from_dict(data[name], where=f"{where}.{name}")
            for name in ("smtp_probe", "ldaps_probe")
        }
        return v.from_json(cls, data, where, **probes)

    def is_named(self, reference: str) -> bool:
        """Whether a server reference (name or FQDN, any case) means this Edge."""
        return same_server(reference, self.name, self.fqdn)

    def named_in(self, references: Iterable[str]) -> bool:
        """Whether one of the server references (a connector's source servers) means this Edge."""
        return any_same_server(references, self.name, self.fqdn)

    def certificate(self, thumbprint: str | None) -> CertificateFact | None:
        """The installed certificate with this thumbprint, if any."""
        wanted = v.thumbprint(thumbprint)
        return next((c for c in self.certificates if wanted and c.thumbprint == wanted), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "fqdn": self.fqdn,
            "default_thumbprint": self.default_thumbprint,
            "certificates": [c.to_dict() for c in self.certificates],
            "services": dict(self.services),
            "receive_connectors": [c.to_dict() for c in self.receive_connectors],
            "send_connectors": [c.to_dict() for c in self.send_connectors],
            "queues": [q.to_dict() for q in self.queues],
            "health": [h.to_dict() for h in self.health],
            "events": [e.to_dict() for e in self.events],
            "smtp_probe": self.smtp_probe.to_dict() if self.smtp_probe else None,
            "ldaps_probe": self.ldaps_probe.to_dict() if self.ldaps_probe else None,
        }


@dataclass
class MailboxServerFact:
    """A Mailbox server: its certificates and its internal transport certificate."""

    name: str
    fqdn: str = ""
    internal_thumbprint: str | None = None
    certificates: list[CertificateFact] = field(default_factory=list)

    @classmethod
    def from_records(
        cls,
        name: str,
        fqdn: str = "",
        *,
        transport_service: Record | None = None,
        certificates: Iterable[Record] = (),
    ) -> MailboxServerFact:
        """From Get-TransportService and Get-ExchangeCertificate -Server records."""
        return cls(
            name=name,
            fqdn=fqdn,
            internal_thumbprint=_default_thumbprint(transport_service),
            certificates=[CertificateFact.from_record(r) for r in certificates],
        )

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "mailbox_server"
    ) -> MailboxServerFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "fqdn": self.fqdn,
            "internal_thumbprint": self.internal_thumbprint,
            "certificates": [c.to_dict() for c in self.certificates],
        }


@dataclass(frozen=True)
class SubscriptionFact:
    """One Edge Subscription (Get-EdgeSubscription)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "Name",
        "Site",
        "Domain",
        "CreateUtc",
        "LeaseType",
        "IsValid",
    )

    name: str
    site: str = ""
    domain: str = ""
    create_utc: dt.datetime | None = None
    lease_type: str = ""
    is_valid: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "subscription") -> SubscriptionFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> SubscriptionFact:
        """From a Get-EdgeSubscription record."""
        return cls(
            name=v.text(v.get(record, "Name")),
            site=v.text(v.get(record, "Site")),
            domain=v.text(v.get(record, "Domain")),
            create_utc=v.moment(v.get(record, "CreateUtc")),
            lease_type=v.text(v.get(record, "LeaseType")),
            is_valid=v.boolean(v.get(record, "IsValid")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


@dataclass(frozen=True)
class EdgeSyncFact:
    """One row of Test-EdgeSynchronization (one subscribed Edge)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "Name",
        "SyncStatus",
        "FailureDetail",
        "LeaseType",
        "LeaseHolder",
        "LastSynchronizedUtc",
    )

    name: str
    sync_status: str = ""
    failure_detail: str = ""
    lease_type: str = ""
    lease_holder: str = ""
    last_synchronized_utc: dt.datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "edgesync") -> EdgeSyncFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> EdgeSyncFact:
        """From a Test-EdgeSynchronization record."""
        return cls(
            name=v.text(v.get(record, "Name")),
            sync_status=v.text(v.get(record, "SyncStatus")),
            failure_detail=v.text(v.get(record, "FailureDetail")),
            lease_type=v.text(v.get(record, "LeaseType")),
            lease_holder=v.text(v.get(record, "LeaseHolder")),
            last_synchronized_utc=v.moment(v.get(record, "LastSynchronizedUtc")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


@dataclass
class OrgFacts:
    """The organisation as seen from a Mailbox server, and the settings to judge it by.

    With no Mailbox server (the organisation was not read) the organisation-side rules stay
    silent rather than report everything as missing.
    """

    mailbox_servers: list[MailboxServerFact] = field(default_factory=list)
    send_connectors: list[SendConnectorFact] = field(default_factory=list)
    subscriptions: list[SubscriptionFact] = field(default_factory=list)
    edgesync: list[EdgeSyncFact] = field(default_factory=list)
    settings: InspectSettings = field(default_factory=InspectSettings)

    @classmethod
    def from_records(
        cls,
        *,
        mailbox_servers: Iterable[MailboxServerFact] = (),
        send_connectors: Iterable[Record] = (),
        subscriptions: Iterable[Record] = (),
        edgesync: Iterable[Record] = (),
        settings: InspectSettings | None = None,
    ) -> OrgFacts:
        """From Get-SendConnector, Get-EdgeSubscription and Test-EdgeSynchronization records."""
        return cls(
            mailbox_servers=list(mailbox_servers),
            send_connectors=[SendConnectorFact.from_record(r) for r in send_connectors],
            subscriptions=[SubscriptionFact.from_record(r) for r in subscriptions],
            edgesync=[EdgeSyncFact.from_record(r) for r in edgesync],
            settings=settings or InspectSettings(),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "org") -> OrgFacts:
        """From to_dict()'s form (the settings included)."""
        return v.from_json(cls, data, where)

    @property
    def gathered(self) -> bool:
        """Whether the organisation side was read (at least one Mailbox server)."""
        return bool(self.mailbox_servers)

    @property
    def now(self) -> dt.datetime:
        """The moment the facts are judged at."""
        return self.settings.now

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "mailbox_servers": [m.to_dict() for m in self.mailbox_servers],
            "send_connectors": [c.to_dict() for c in self.send_connectors],
            "subscriptions": [s.to_dict() for s in self.subscriptions],
            "edgesync": [e.to_dict() for e in self.edgesync],
            "settings": self.settings.to_dict(),
        }


def facts_to_dict(org: OrgFacts, edges: Iterable[EdgeFacts]) -> dict[str, Any]:
    """The `facts` object of `edgebook inspect --json`: the organisation and each Edge."""
    return {"org": org.to_dict(), "edges": [e.to_dict() for e in edges]}


def facts_from_dict(data: Mapping[str, Any]) -> tuple[OrgFacts, list[EdgeFacts]]:
    """The organisation and the Edges from facts_to_dict()'s form (the inverse of it), for
    judging saved facts again; FactsError names what cannot be read back."""
    data = v.mapping(data, "facts")
    if "facts" in data and "org" not in data:
        raise v.unreadable("facts", "is a whole `inspect --json` document: give its 'facts'")
    for key in ("org", "edges"):
        if key not in data:
            raise v.unreadable(key, "is missing")
    org = OrgFacts.from_dict(data["org"], where="org")
    edges = [
        EdgeFacts.from_dict(edge, where=f"edges[{i}]")
        for i, edge in enumerate(v.items(data["edges"], "edges"))
    ]
    return org, edges
