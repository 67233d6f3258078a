"""The simulated Exchange organisation as dataclasses, with a JSON round trip.

Names follow docs/domain.md §2. Private keys are held encrypted (edgebook.lab.org.pki.seal)
with the lab's key file; the key itself lives on Org.secret, which is never serialised.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from edgebook.errors import EdgebookError

TRANSPORT = "MSExchangeTransport"
ADAM = "ADAM_MSExchange"
EDGESYNC = "MSExchangeEdgeSync"
RUNNING, PAUSED, STOPPED = "Running", "Paused", "Stopped"

Role = Literal["Mailbox", "Edge"]


@dataclass
class CertEntry:
    """An entry of a server's personal certificate store (LocalMachine\\My)."""

    thumbprint: str
    der_b64: str  # certificate DER; for a pending request the placeholder is the CSR DER
    key_sealed: str | None = None  # private key DER sealed with the lab key (None: no key)
    friendly_name: str = ""
    services: int = 0  # AllowedServices flags
    exportable: bool = False
    pending_request: bool = False
    request_subject: str | None = None
    request_domains: list[str] = field(default_factory=list)
    request_pem: str | None = None
    added: dt.datetime | None = None


@dataclass
class SendBinding:
    """How transport resolved a send connector's certificate when it started."""

    tls_name: str | None
    thumbprint: str | None
    error: str | None = None  # "missing" (F3), "not-smtp" (F15)


@dataclass
class TransportBinding:
    """The certificates transport loaded at its last start (F11: kept until restart)."""

    started: dt.datetime
    default_thumbprint: str | None
    receive: dict[str, str | None] = field(default_factory=dict)  # connector name -> thumbprint
    send: dict[str, SendBinding] = field(default_factory=dict)


@dataclass
class ReceiveConnector:
    """A receive connector of one server (not replicated by EdgeSync)."""

    name: str
    bindings: list[str]
    fqdn: str
    tls_certificate_name: str | None = None
    tls_domain_capabilities: list[str] = field(default_factory=list)
    auth_mechanism: str = "Tls, ExchangeServer"
    require_tls: bool = False
    permission_groups: str = "AnonymousUsers, ExchangeServers, Partners"
    enabled: bool = True
    guid: str = ""
    domain_secure_enabled: bool = False
    suppress_x_anonymous_tls: bool = False


@dataclass
class SendConnector:
    """An organisation-wide send connector (its replicated copy lives on the Edges)."""

    name: str
    address_spaces: list[str]
    smart_hosts: list[str] = field(default_factory=list)
    source_transport_servers: list[str] = field(default_factory=list)
    tls_certificate_name: str | None = None
    tls_domain: str | None = None
    tls_auth_level: str | None = None
    require_tls: bool = False
    fqdn: str | None = None
    cloud_services_mail_enabled: bool = False
    domain_secure_enabled: bool = False
    dns_routing_enabled: bool = True
    enabled: bool = True
    port: int = 25
    guid: str = ""
    when_changed: dt.datetime | None = None
    ignore_starttls: bool = False
    smart_host_auth_mechanism: str = "None"
    comment: str | None = None


@dataclass
class Queue:
    """A delivery queue on a server; evaluated lazily against the lab clock."""

    number: int
    kind: str  # "submission", "connector"
    next_hop_domain: str
    delivery_type: str
    connector: str | None = None  # send connector name this queue routes through
    status: str = "Ready"
    message_count: int = 0
    last_error: str | None = None
    first_retry: dt.datetime | None = None
    last_retry: dt.datetime | None = None
    retry_count: int = 0
    tls_domain: str | None = None
    next_hop_category: str = "External"


@dataclass
class EventEntry:
    """An Application log entry."""

    index: int
    event_id: int
    source: str
    entry_type: str  # Error, Warning, Information
    time: dt.datetime
    message: str
    category: str = "TransportService"


@dataclass
class Replica:
    """What an Edge's AD LDS holds from EdgeSync: send connectors as last replicated."""

    connectors: list[SendConnector] = field(default_factory=list)
    last_sync: dt.datetime | None = None
    # The EdgeSync bootstrap replication account (ESBRA) New-EdgeSubscription created in AD LDS
    # and wrote, password in clear text, to the subscription file.
    bootstrap_username: str | None = None
    bootstrap_password: str | None = None


@dataclass
class Server:
    """An Exchange server (Mailbox or Edge Transport)."""

    name: str
    role: Role
    fqdn: str
    certificates: list[CertEntry] = field(default_factory=list)
    ca_store: list[str] = field(default_factory=list)  # intermediate/root DERs (base64)
    # self-signed certificates also in the Trusted Root store (setup's own: RootCAType Registry)
    trusted_roots: list[str] = field(default_factory=list)
    internal_transport_thumbprint: str | None = None
    services: dict[str, str] = field(default_factory=dict)
    adam_thumbprint: str | None = None  # the certificate AD LDS bound at its last start
    transport: TransportBinding | None = None
    receive_connectors: list[ReceiveConnector] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    events: list[EventEntry] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> base64 content
    replica: Replica | None = None
    traffic: dict[str, float] = field(default_factory=dict)  # connector name -> msgs/min
    traffic_at: dt.datetime | None = None
    installed: dt.datetime | None = None
    mail_accepted: int = 0  # messages the Edge took in (listener, lab send, traffic, seed)
    mail_delivered: int = 0  # messages that left its queues to their next hop

    @property
    def admin_username(self) -> str:
        """The one lab administrator allowed to open a shell on this server."""
        return f"{self.name}\\Administrator" if self.role == "Edge" else "CONTOSO\\Administrator"

    def certificate(self, thumbprint: str) -> CertEntry | None:
        """The store entry with this thumbprint (case-insensitive), if any."""
        wanted = thumbprint.strip().upper()
        return next((c for c in self.certificates if c.thumbprint == wanted), None)


@dataclass
class Subscription:
    """An Edge Subscription: the Edge certificate captured from the subscription file."""

    edge: str
    site: str
    domain: str
    create_utc: dt.datetime
    certificate_der_b64: str
    certificate_thumbprint: str
    mailbox_servers: list[str] = field(default_factory=list)  # in the site at subscription
    # Mailbox name -> thumbprint of its default certificate, whose key encrypted the EdgeSync
    # credentials stored for it at subscription (F22); a Mailbox not listed is not checked.
    mailbox_credentials: dict[str, str] = field(default_factory=dict)
    lease_type: str = "Option"
    # The ESBRA credentials read from the imported subscription file (None: subscribed by the
    # scenario, without a file); initial replication binds to AD LDS with them.
    esra_username: str | None = None
    esra_password: str | None = None


@dataclass
class LabCA:
    """A certification authority of the lab (roots and issuing CAs)."""

    id: str
    der_b64: str
    key_sealed: str
    parent: str | None = None


@dataclass
class Fault:
    """Make a cmdlet fail (optionally only its Nth call, optionally on one server)."""

    cmdlet: str
    server: str | None = None
    nth: int | None = None
    message: str | None = None
    calls: int = 0


@dataclass
class ServiceFailure:
    """Make a service fail to start on a server."""

    server: str
    service: str


@dataclass
class Org:
    """The whole organisation (everything in state.json)."""

    scenario: str
    description: str
    domain: str
    site: str
    hybrid_domain: str | None = None
    clock_offset_s: float = 0.0
    auth_salt: str = ""
    auth_hash: str = ""
    password_sealed: str = ""  # the lab password sealed with the lab key (NTLM needs it)
    servers: list[Server] = field(default_factory=list)
    send_connectors: list[SendConnector] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    cas: list[LabCA] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    service_failures: list[ServiceFailure] = field(default_factory=list)
    secret: bytes = field(default=b"", repr=False, metadata={"transient": True})

    def server(self, name: str) -> Server:
        """The server with this name or FQDN (case-insensitive); EdgebookError if none."""
        found = self.find_server(name)
        if found is None:
            raise EdgebookError(f"the lab has no server {name!r}")
        return found

    def find_server(self, name: str) -> Server | None:
        """The server with this name or FQDN (case-insensitive), if any."""
        wanted = name.strip().casefold()
        return next(
            (s for s in self.servers if wanted in (s.name.casefold(), s.fqdn.casefold())), None
        )

    @property
    def edges(self) -> list[Server]:
        """The Edge Transport servers."""
        return [s for s in self.servers if s.role == "Edge"]

    @property
    def mailboxes(self) -> list[Server]:
        """The Mailbox servers."""
        return [s for s in self.servers if s.role == "Mailbox"]

    def subscription(self, edge: str) -> Subscription | None:
        """The Edge Subscription of this Edge, if subscribed."""
        wanted = edge.casefold()
        return next((s for s in self.subscriptions if s.edge.casefold() == wanted), None)

    def send_connector(self, name: str) -> SendConnector | None:
        """The org send connector with this name (case-insensitive)."""
        wanted = name.casefold()
        return next((c for c in self.send_connectors if c.name.casefold() == wanted), None)


class MailLedger(NamedTuple):
    """An Edge's mail counts: no message is lost while accepted == delivered + queued."""

    accepted: int
    delivered: int
    queued: int

    @property
    def balanced(self) -> bool:
        """Whether every accepted message was delivered or is still queued."""
        return self.accepted == self.delivered + self.queued


def mail_ledger(org: Org, edge: str) -> MailLedger:
    """The mail ledger of a server as of its last evaluation (queued: all its queues)."""
    server = org.server(edge)
    queued = sum(q.message_count for q in server.queues)
    return MailLedger(server.mail_accepted, server.mail_delivered, queued)


# Types to_json returns unchanged, tested inline: a call per value was most of its work.
_PLAIN = frozenset({type(None), str, int, float, bool})
_SCALAR = str | int | float  # built once: a union in the isinstance call is built per call


def to_json(value: Any) -> Any:
    """A dataclass tree as JSON-ready data (datetimes as ISO-8601, transient fields left out)."""
    if type(value) in _PLAIN or isinstance(value, _SCALAR):
        return value
    if isinstance(value, list):
        return [v if type(v) in _PLAIN else to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: v if type(v) in _PLAIN else to_json(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    names = _persisted_fields(type(value))
    if names is None:
        return value
    return {name: v if type(v := getattr(value, name)) in _PLAIN else to_json(v) for name in names}


_PERSISTED: dict[type, tuple[str, ...] | None] = {}


def _persisted_fields(cls: type) -> tuple[str, ...] | None:
    """The names of a dataclass's fields that to_json writes; None for other types."""
    if cls not in _PERSISTED:
        _PERSISTED[cls] = (
            tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("transient"))
            if dataclasses.is_dataclass(cls)
            else None
        )
    return _PERSISTED[cls]


def from_json(cls: type, data: Any) -> Any:
    """Rebuild a dataclass tree written by to_json."""
    return _convert(cls, data)


def _convert(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], data)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_convert(item, v) for v in data]
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: _convert(item, v) for k, v in data.items()}
    if origin is Literal:
        return data
    if tp is dt.datetime:
        return dt.datetime.fromisoformat(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _convert(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if not f.metadata.get("transient") and f.name in data
        }
        return tp(**kwargs)
    return data


def org_to_json(org: Org) -> dict[str, Any]:
    """The organisation as JSON-ready data (without its key)."""
    return to_json(org)


def org_from_json(data: dict[str, Any], secret: bytes) -> Org:
    """The organisation from JSON data, with the lab key attached."""
    org = from_json(Org, data)
    org.secret = secret
    return org


def clock(org: Org) -> dt.datetime:
    """The lab time of an organisation: real UTC now plus its offset."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=org.clock_offset_s)
