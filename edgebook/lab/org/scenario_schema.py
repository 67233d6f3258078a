"""The scenario file format (docs/lab-scenarios.md): validation into typed specs.

Every problem is a ScenarioError naming the file, the key path and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgebook.errors import EdgebookError

SERVICE_NAMES = {"None", "IMAP", "POP", "UM", "IIS", "SMTP", "Federation", "UMCallRouter"}
SERVICE_STATES = {"Running", "Paused", "Stopped"}


class ScenarioError(EdgebookError):
    """A scenario file is missing or malformed."""


class Node:
    """A value at a key path of a scenario file, with typed accessors that explain errors."""

    def __init__(self, source: str, path: str, value: Any) -> None:
        self.source, self.path, self.value = source, path, value

    def fail(self, expected: str, key: str | None = None) -> ScenarioError:
        """An error for this node (or one of its keys)."""
        where = f"{self.path}.{key}" if key else self.path
        return ScenarioError(f"{self.source}: {where}: expected {expected}")

    def mapping(self, allowed: set[str], required: frozenset[str] | set[str] = frozenset()) -> Node:
        """Check this node is a mapping with only allowed keys and all required keys."""
        if not isinstance(self.value, dict):
            raise self.fail(f"a mapping, found {_kind(self.value)}")
        for key in self.value:
            if key not in allowed:
                raise self.fail(f"one of the keys {', '.join(sorted(allowed))}", str(key))
        for key in sorted(required - set(self.value)):
            raise self.fail("this key (it is required)", key)
        return self

    def child(self, key: str) -> Node:
        """The node of one key (value None when absent)."""
        return Node(self.source, f"{self.path}.{key}", self.value.get(key))

    def items(self, key: str) -> list[Node]:
        """The nodes of a list under key (empty when absent)."""
        value = self.value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"a list, found {_kind(value)}", key)
        return [Node(self.source, f"{self.path}.{key}[{i}]", v) for i, v in enumerate(value)]

    def str(self, key: str, default: str | None = None, choices: set[str] | None = None) -> Any:
        """A string value (required when default is None and the key is absent)."""
        value = self.value.get(key, default)
        if value is None and default is None and key not in self.value:
            raise self.fail("a string (this key is required)", key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"a string, found {_kind(value)}", key)
        if choices and value not in choices:
            raise self.fail(f"one of {', '.join(sorted(choices))}, found {value!r}", key)
        return value

    def opt_str(self, key: str) -> str | None:
        """An optional string."""
        value = self.value.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"a string, found {_kind(value)}", key)
        return value

    def bool(self, key: str, default: bool) -> bool:
        """A boolean value."""
        value = self.value.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"true or false, found {_kind(value)}", key)
        return value

    def num(self, key: str, default: float | None = None) -> float:
        """A number."""
        value = self.value.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"a number, found {_kind(value)}", key)
        return float(value)

    def strs(self, key: str) -> list[str]:
        """A list of strings (a single string is accepted as a one-item list)."""
        value = self.value.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"a list of strings, found {_kind(value)}", key)
        return list(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the string {value!r}"}.get(
        type(value), f"{type(value).__name__} {value!r}"
    )


@dataclass
class Validity:
    """Validity relative to the creation time, in days."""

    from_days: float
    to_days: float


@dataclass
class CASpec:
    """A lab CA."""

    id: str
    subject: str
    parent: str | None
    valid: Validity


@dataclass
class InstallSpec:
    """A certificate installed on a server."""

    server: str
    services: list[str]
    exportable: bool
    friendly_name: str
    default: bool
    chain: bool


@dataclass
class CertSpec:
    """A certificate issued at creation."""

    id: str
    subject: str
    domains: list[str]
    issuer: str | None
    valid: Validity
    key_size: int
    install: list[InstallSpec]
    lab_files: list[str]


@dataclass
class ReceiveSpec:
    """Changes to an Edge's default internal receive connector."""

    fqdn: str | None = None
    tls_certificate: str | None = None
    tls_certificate_name: str | None = None
    tls_domain_capabilities: list[str] = field(default_factory=list)


@dataclass
class ServerSpec:
    """A server."""

    name: str
    role: str
    fqdn: str
    installed_days: float
    services: dict[str, str]
    receive: ReceiveSpec
    queues: dict[str, int]
    traffic: dict[str, float]


@dataclass
class SendConnectorSpec:
    """A send connector."""

    values: dict[str, Any]
    tls_certificate: str | None


@dataclass
class SubscriptionSpec:
    """An Edge Subscription made before creation."""

    edge: str
    created_days: float
    create_inbound: bool
    create_internet: bool


@dataclass
class Scenario:
    """A validated scenario."""

    name: str
    description: str
    source: str
    domain: str
    site: str
    hybrid_domain: str | None
    cas: list[CASpec]
    servers: list[ServerSpec]
    certificates: list[CertSpec]
    send_connectors: list[SendConnectorSpec]
    subscriptions: list[SubscriptionSpec]


CONNECTOR_KEYS = {
    "name": "str",
    "address_spaces": "strs",
    "smart_hosts": "strs",
    "source_transport_servers": "strs",
    "tls_certificate_name": "opt",
    "tls_domain": "opt",
    "tls_auth_level": "opt",
    "require_tls": "bool",
    "fqdn": "opt",
    "cloud_services_mail_enabled": "bool",
    "domain_secure_enabled": "bool",
    "dns_routing_enabled": "bool",
    "enabled": "bool",
}
CONNECTOR_DEFAULTS = {
    "require_tls": False,
    "cloud_services_mail_enabled": False,
    "domain_secure_enabled": False,
    "dns_routing_enabled": True,
    "enabled": True,
}


def _validity(node: Node) -> Validity:
    node.mapping({"from_days", "to_days"}, {"from_days", "to_days"})
    valid = Validity(node.num("from_days"), node.num("to_days"))
    if valid.to_days <= valid.from_days:
        raise node.fail("to_days after from_days", "to_days")
    return valid


def parse(name: str, source: str, data: Any) -> Scenario:
    """Validate a loaded YAML document into a Scenario."""
    top = Node(source, name, data).mapping(
        {
            "description",
            "organization",
            "certificate_authorities",
            "servers",
            "certificates",
            "send_connectors",
            "subscriptions",
        },
        {"description", "organization", "servers"},
    )
    org = top.child("organization").mapping({"domain", "site", "hybrid_domain"}, {"domain"})
    domain = org.str("domain")
    cas = []
    for node in top.items("certificate_authorities"):
        node.mapping({"id", "subject", "parent", "valid"}, {"id", "subject", "valid"})
        cas.append(
            CASpec(
                node.str("id"),
                node.str("subject"),
                node.opt_str("parent"),
                _validity(node.child("valid")),
            )
        )
    ca_ids = [c.id for c in cas]
    for node, ca in zip(top.items("certificate_authorities"), cas, strict=True):
        if ca.parent is not None and ca.parent not in ca_ids[: ca_ids.index(ca.id)]:
            raise node.fail(f"the id of a CA listed before this one, found {ca.parent!r}", "parent")
    servers = [_server(node, domain) for node in top.items("servers")]
    if not servers:
        raise top.fail("at least one server", "servers")
    names = {s.name for s in servers}
    certificates = [_certificate(node, set(ca_ids), names) for node in top.items("certificates")]
    cert_ids = {c.id for c in certificates}
    for node, spec in zip(top.items("servers"), servers, strict=True):
        if spec.receive.tls_certificate and spec.receive.tls_certificate not in cert_ids:
            raise node.child("receive_connector").fail(
                f"a certificate id, found {spec.receive.tls_certificate!r}", "tls_certificate"
            )
    connectors = []
    for node in top.items("send_connectors"):
        node.mapping({*CONNECTOR_KEYS, "tls_certificate"}, {"name", "address_spaces"})
        values: dict[str, Any] = {}
        for key, kind in CONNECTOR_KEYS.items():
            if kind == "str":
                values[key] = node.str(key)
            elif kind == "strs":
                values[key] = node.strs(key)
            elif kind == "opt":
                values[key] = node.opt_str(key)
            else:
                values[key] = node.bool(key, CONNECTOR_DEFAULTS[key])
        for server in values["source_transport_servers"]:
            if server not in names:
                raise node.fail(f"names of servers, found {server!r}", "source_transport_servers")
        tls_cert = node.opt_str("tls_certificate")
        if tls_cert is not None and tls_cert not in cert_ids:
            raise node.fail(f"a certificate id, found {tls_cert!r}", "tls_certificate")
        connectors.append(SendConnectorSpec(values, tls_cert))
    edges = {s.name for s in servers if s.role == "Edge"}
    subscriptions = []
    for node in top.items("subscriptions"):
        node.mapping(
            {
                "edge",
                "created_days",
                "create_inbound_send_connector",
                "create_internet_send_connector",
            },
            {"edge"},
        )
        edge = node.str("edge")
        if edge not in edges:
            raise node.fail(f"the name of an Edge server, found {edge!r}", "edge")
        subscriptions.append(
            SubscriptionSpec(
                edge,
                node.num("created_days", -30),
                node.bool("create_inbound_send_connector", True),
                node.bool("create_internet_send_connector", True),
            )
        )
    return Scenario(
        name=name,
        description=top.str("description"),
        source=source,
        domain=domain,
        site=org.str("site", "Default-First-Site-Name"),
        hybrid_domain=org.opt_str("hybrid_domain"),
        cas=cas,
        servers=servers,
        certificates=certificates,
        send_connectors=connectors,
        subscriptions=subscriptions,
    )


def _server(node: Node, domain: str) -> ServerSpec:
    node.mapping(
        {
            "name",
            "role",
            "fqdn",
            "installed_days",
            "services",
            "receive_connector",
            "queues",
            "traffic",
        },
        {"name", "role"},
    )
    name = node.str("name")
    services = node.child("services")
    states: dict[str, str] = {}
    if services.value is not None:
        services.mapping({"MSExchangeTransport", "ADAM_MSExchange", "MSExchangeEdgeSync"})
        states = {k: services.str(k, choices=SERVICE_STATES) for k in services.value}
    receive = ReceiveSpec()
    rnode = node.child("receive_connector")
    if rnode.value is not None:
        rnode.mapping(
            {"fqdn", "tls_certificate", "tls_certificate_name", "tls_domain_capabilities"}
        )
        receive = ReceiveSpec(
            rnode.opt_str("fqdn"),
            rnode.opt_str("tls_certificate"),
            rnode.opt_str("tls_certificate_name"),
            rnode.strs("tls_domain_capabilities"),
        )
    return ServerSpec(
        name=name,
        role=node.str("role", choices={"Mailbox", "Edge"}),
        fqdn=node.str("fqdn", f"{name.lower()}.{domain}"),
        installed_days=node.num("installed_days", -1000),
        services=states,
        receive=receive,
        queues={k: int(v) for k, v in _number_map(node.child("queues")).items()},
        traffic=_number_map(node.child("traffic")),
    )


def _number_map(node: Node) -> dict[str, float]:
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        raise node.fail("a mapping of send connector name to a number")
    for key, value in node.value.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise node.fail("a number >= 0", str(key))
    return dict(node.value)


def _certificate(node: Node, ca_ids: set[str], servers: set[str]) -> CertSpec:
    node.mapping(
        {"id", "subject", "domains", "issuer", "valid", "key_size", "install", "lab_files"},
        {"id", "subject", "valid"},
    )
    issuer = node.opt_str("issuer")
    if issuer is not None and issuer not in ca_ids:
        raise node.fail(f"the id of a certificate authority, found {issuer!r}", "issuer")
    key_size = int(node.num("key_size", 2048))
    if key_size not in (1024, 2048, 4096):
        raise node.fail("1024, 2048 or 4096", "key_size")
    installs = []
    for inode in node.items("install"):
        inode.mapping(
            {"server", "services", "exportable", "friendly_name", "default", "chain"}, {"server"}
        )
        server = inode.str("server")
        if server not in servers:
            raise inode.fail(f"the name of a server, found {server!r}", "server")
        services = [s.strip() for item in inode.strs("services") for s in item.split(",")]
        for service in services:
            if service not in SERVICE_NAMES:
                raise inode.fail(f"services among {', '.join(sorted(SERVICE_NAMES))}", "services")
        installs.append(
            InstallSpec(
                server,
                services,
                inode.bool("exportable", False),
                inode.str("friendly_name", ""),
                inode.bool("default", False),
                inode.bool("chain", True),
            )
        )
    return CertSpec(
        id=node.str("id"),
        subject=node.str("subject"),
        domains=node.strs("domains"),
        issuer=issuer,
        valid=_validity(node.child("valid")),
        key_size=key_size,
        install=installs,
        lab_files=node.strs("lab_files"),
    )
