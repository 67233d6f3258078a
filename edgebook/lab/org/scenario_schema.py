"""The scenario file format (docs/lab-scenarios.md): validation into typed specs.

Every problem is a ScenarioError naming the file, the key path, what was found and what is
expected: unknown keys, duplicate names, numbers that are not finite or out of range, DNS
names and subjects that cannot be issued, and lab_files paths that would leave the lab folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from edgebook.certs import (
    CertificateError,
    dns_name,
    parse_tls_certificate_name,
    parse_windows_name,
)
from edgebook.errors import EdgebookError
from edgebook.yamlfile import MISSING, Section

SERVICE_NAMES = {"None", "IMAP", "POP", "UM", "IIS", "SMTP", "Federation", "UMCallRouter"}
SERVICE_STATES = ("Running", "Paused", "Stopped")
SERVICES = ("MSExchangeTransport", "ADAM_MSExchange", "MSExchangeEdgeSync")
EDGE_SERVICES = ("MSExchangeTransport", "ADAM_MSExchange")
MAILBOX_SERVICES = ("MSExchangeTransport", "MSExchangeEdgeSync")
TLS_AUTH_LEVELS = ("EncryptionOnly", "CertificateValidation", "DomainValidation")
DAYS = 36500.0  # relative times stay within a hundred years of the lab's creation
MAX_COUNT = 1_000_000
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_LAB_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class ScenarioError(EdgebookError):
    """A scenario file is missing or malformed."""


class Node(Section):
    """A mapping of a scenario file (edgebook.yamlfile.Section raising ScenarioError)."""

    error_type = ScenarioError

    def texts(self, key: str) -> list[str]:
        """A list of non-empty strings (or one string); an error names the entry at fault."""
        value = self.raw(key)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, str) or not item.strip():
                    raise self.error(f"{self.key(key)}[{index}]", item, "a non-empty string")
        return super().texts(key)

    def days(self, key: str, default: Any = MISSING) -> float:
        """Days relative to the lab's creation, finite and within a hundred years."""
        return self.number(key, default, -DAYS, DAYS)

    def dns_names(self, key: str, *, wildcard: bool = True, one: bool = False) -> list[str]:
        """DNS names as a certificate stores them (IDNA A-labels, lower case)."""
        names = []
        for index, text in enumerate(self.texts(key)):
            path = self.key(key) if one else f"{self.key(key)}[{index}]"
            try:
                name = dns_name(text)
            except CertificateError:
                raise self.error(path, text, "a DNS name such as mail.contoso.com") from None
            if name.startswith("*.") and not wildcard:
                raise self.error(path, text, "a DNS name without a wildcard")
            names.append(name)
        return names

    def dns_name(self, key: str, default: Any = MISSING) -> str:
        """One DNS name without a wildcard."""
        if self.raw(key) is MISSING and default is not MISSING:
            return default
        self.text(key)
        return self.dns_names(key, wildcard=False, one=True)[0]

    def subject(self, key: str) -> str:
        """A distinguished name in Windows format that a certificate can carry."""
        text = self.text(key)
        try:
            parse_windows_name(text)
        except CertificateError as exc:
            raise self.error(
                self.key(key), text, f"a name such as CN=mail.contoso.com ({exc})"
            ) from None
        return text

    def tls_certificate_name(self, key: str) -> str | None:
        """A TlsCertificateName ("<I>issuer<S>subject"), or None when absent."""
        text = self.optional_text(key)
        if text is not None:
            try:
                for name in parse_tls_certificate_name(text):
                    parse_windows_name(name)
            except CertificateError as exc:
                raise self.error(
                    self.key(key),
                    text,
                    f"a name such as '<I>CN=Issuing CA<S>CN=mail.contoso.com' ({exc})",
                ) from None
        return text

    def certificate_reference(self, cert_ids: set[str] | None = None) -> str | None:
        """tls_certificate (a certificate id of the scenario, checked when cert_ids is given)
        or tls_certificate_name, not both; the id, or None."""
        wanted = self.optional_text("tls_certificate")
        if wanted is not None and self.raw("tls_certificate_name") is not MISSING:
            raise self.error(
                self.key("tls_certificate_name"),
                self.raw("tls_certificate_name"),
                "no tls_certificate_name beside tls_certificate (give one of them)",
            )
        self.tls_certificate_name("tls_certificate_name")
        if wanted is not None and cert_ids is not None and wanted not in cert_ids:
            raise self.error(self.key("tls_certificate"), wanted, _cert_id(cert_ids))
        return wanted

    def unique(self, entries: list[tuple[str, str]], what: str) -> None:
        """Refuse a value given twice among (key path, value) entries; compared without case,
        as Exchange compares names."""
        seen: dict[str, str] = {}
        for path, value in entries:
            first = seen.setdefault(value.casefold(), path)
            if first != path:
                raise self.error(path, value, f"a unique {what} ({first} has it already)")


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
    mailbox_default: str | None = None  # certificate id: the Mailbox default then (F22)


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


CONNECTOR_TEXT = ("tls_certificate_name", "tls_domain", "tls_auth_level", "fqdn")
CONNECTOR_LISTS = ("address_spaces", "smart_hosts", "source_transport_servers")
CONNECTOR_FLAGS = {
    "require_tls": False,
    "cloud_services_mail_enabled": False,
    "domain_secure_enabled": False,
    "dns_routing_enabled": True,
    "enabled": True,
}
CONNECTOR_KEYS = ("name", *CONNECTOR_LISTS, *CONNECTOR_TEXT, *CONNECTOR_FLAGS, "tls_certificate")
TOP_KEYS = (
    "description",
    "organization",
    "certificate_authorities",
    "servers",
    "certificates",
    "send_connectors",
    "subscriptions",
)


def _validity(node: Node) -> Validity:
    valid = node.section("valid", ("from_days", "to_days"), ("from_days", "to_days"))
    result = Validity(valid.days("from_days"), valid.days("to_days"))
    if result.to_days <= result.from_days:
        raise valid.error(valid.key("to_days"), result.to_days, "to_days after from_days")
    return result


def parse(name: str, source: str, data: Any) -> Scenario:
    """Validate a loaded YAML document into a Scenario."""
    top = Node(source, data, "", TOP_KEYS, ("description", "organization", "servers"))
    org = top.section("organization", ("domain", "site", "hybrid_domain"), ("domain",))
    domain = org.dns_name("domain")
    cas = _cas(top)
    servers = [
        _server(node, domain)
        for node in top.sections("servers", SERVER_KEYS, ("name", "role"), minimum=1)
    ]
    top.unique(_paths("servers", "name", [s.name for s in servers]), "server name")
    top.unique(_paths("servers", "fqdn", [s.fqdn for s in servers]), "server FQDN")
    names = {s.name for s in servers}
    ca_ids = {c.id for c in cas}
    certificates = [
        _certificate(node, ca_ids, names)
        for node in top.sections("certificates", CERT_KEYS, ("id", "subject", "valid"))
    ]
    top.unique(_paths("certificates", "id", [c.id for c in certificates]), "certificate id")
    _unique_lab_files(top, certificates)
    defaults = [
        (f"certificates[{index}].install[{number}].server", install.server)
        for index, spec in enumerate(certificates)
        for number, install in enumerate(spec.install)
        if install.default
    ]
    top.unique(defaults, "server among the installs with default: true (one default per server)")
    cert_ids = {c.id for c in certificates}
    for index, spec in enumerate(servers):
        wanted = spec.receive.tls_certificate
        if wanted and wanted not in cert_ids:
            raise top.error(
                f"servers[{index}].receive_connector.tls_certificate", wanted, _cert_id(cert_ids)
            )
    connectors = [
        _connector(node, names, cert_ids)
        for node in top.sections("send_connectors", CONNECTOR_KEYS, ("name", "address_spaces"))
    ]
    top.unique(
        _paths("send_connectors", "name", [c.values["name"] for c in connectors]),
        "send connector name",
    )
    edges = {s.name for s in servers if s.role == "Edge"}
    subscriptions = [
        _subscription(node, edges, cert_ids)
        for node in top.sections("subscriptions", SUB_KEYS, ("edge",))
    ]
    top.unique(
        _paths("subscriptions", "edge", [s.edge for s in subscriptions]),
        "Edge (one subscription each)",
    )
    return Scenario(
        name=name,
        description=top.text("description"),
        source=source,
        domain=domain,
        site=org.text("site", "Default-First-Site-Name"),
        hybrid_domain=org.dns_name("hybrid_domain", None),
        cas=cas,
        servers=servers,
        certificates=certificates,
        send_connectors=connectors,
        subscriptions=subscriptions,
    )


def _cas(top: Node) -> list[CASpec]:
    cas: list[CASpec] = []
    for node in top.sections(
        "certificate_authorities", ("id", "subject", "parent", "valid"), ("id", "subject", "valid")
    ):
        ca = CASpec(
            node.text("id"), node.subject("subject"), node.optional_text("parent"), _validity(node)
        )
        if ca.parent is not None and ca.parent not in [c.id for c in cas]:
            raise node.error(node.key("parent"), ca.parent, "the id of a CA listed before this one")
        cas.append(ca)
    top.unique(_paths("certificate_authorities", "id", [c.id for c in cas]), "CA id")
    return cas


SERVER_KEYS = (
    "name",
    "role",
    "fqdn",
    "installed_days",
    "services",
    "receive_connector",
    "queues",
    "traffic",
)
RECEIVE_KEYS = ("fqdn", "tls_certificate", "tls_certificate_name", "tls_domain_capabilities")
CERT_KEYS = ("id", "subject", "domains", "issuer", "valid", "key_size", "install", "lab_files")
INSTALL_KEYS = ("server", "services", "exportable", "friendly_name", "default", "chain")
SUB_KEYS = (
    "edge",
    "created_days",
    "create_inbound_send_connector",
    "create_internet_send_connector",
    "mailbox_default",
)


def _server(node: Node, domain: str) -> ServerSpec:
    name = node.text("name")
    if not _SERVER_NAME.match(name):
        raise node.error(node.key("name"), name, "a server name (letters, digits, -, _)")
    role = node.choice("role", ("Mailbox", "Edge"))
    allowed = EDGE_SERVICES if role == "Edge" else MAILBOX_SERVICES
    given = node.raw("services")
    for key in given if isinstance(given, dict) else ():
        if key in SERVICES and key not in allowed:
            raise node.error(
                node.key(f"services.{key}"),
                key,
                f"one of the services of {role} servers: {', '.join(allowed)}",
            )
    services = node.optional_section("services", allowed)
    states = {k: services.choice(k, SERVICE_STATES) for k in services.value} if services else {}
    receive = ReceiveSpec()
    rnode = node.optional_section("receive_connector", RECEIVE_KEYS)
    if rnode is not None:
        receive = ReceiveSpec(
            rnode.dns_name("fqdn", None),
            rnode.certificate_reference(),
            rnode.optional_text("tls_certificate_name"),
            rnode.texts("tls_domain_capabilities"),
        )
    return ServerSpec(
        name=name,
        role=role,
        fqdn=node.dns_name("fqdn", f"{name.lower()}.{domain}"),
        installed_days=node.days("installed_days", -1000),
        services=states,
        receive=receive,
        queues={k: int(v) for k, v in _counts(node, "queues", whole=True).items()},
        traffic=_counts(node, "traffic", whole=False),
    )


def _counts(node: Node, key: str, *, whole: bool) -> dict[str, float]:
    """A mapping of send connector name to a count (whole) or a rate, from 0 to MAX_COUNT."""
    value = node.raw(key)
    if value is MISSING:
        return {}
    if not isinstance(value, dict):
        raise node.error(node.key(key), value, "a mapping of send connector name to a number")
    names = tuple(str(k) for k in value)
    counts = Node(node.file, {str(k): v for k, v in value.items()}, node.key(key), names)
    if whole:
        return {k: float(counts.integer(k, MISSING, 0, MAX_COUNT)) for k in names}
    return {k: counts.number(k, MISSING, 0, MAX_COUNT) for k in names}


def _certificate(node: Node, ca_ids: set[str], servers: set[str]) -> CertSpec:
    issuer = node.optional_text("issuer")
    if issuer is not None and issuer not in ca_ids:
        raise node.error(node.key("issuer"), issuer, "the id of a certificate authority")
    key_size = node.integer("key_size", 2048, 1024, 4096)
    if key_size not in (1024, 2048, 4096):
        raise node.error(node.key("key_size"), key_size, "1024, 2048 or 4096")
    installs = []
    inodes = node.sections("install", INSTALL_KEYS, ("server",))
    node.unique(
        [(inode.key("server"), inode.text("server")) for inode in inodes],
        "server (a certificate is installed once per server)",
    )
    for inode in inodes:
        server = inode.text("server")
        if server not in servers:
            raise inode.error(inode.key("server"), server, "the name of a server of this scenario")
        services = [s.strip() for item in inode.texts("services") for s in item.split(",")]
        for service in services:
            if service not in SERVICE_NAMES:
                raise inode.error(
                    inode.key("services"),
                    service,
                    f"services among {', '.join(sorted(SERVICE_NAMES))}",
                )
        installs.append(
            InstallSpec(
                server,
                services,
                inode.boolean("exportable", False),
                inode.text("friendly_name", ""),
                inode.boolean("default", False),
                inode.boolean("chain", True),
            )
        )
    return CertSpec(
        id=node.text("id"),
        subject=node.subject("subject"),
        domains=node.dns_names("domains"),
        issuer=issuer,
        valid=_validity(node),
        key_size=key_size,
        install=installs,
        lab_files=[
            _lab_file(node, index, text) for index, text in enumerate(node.texts("lab_files"))
        ],
    )


def _lab_file(node: Node, index: int, text: str) -> str:
    """A path inside the lab folder: relative, '/'-separated, plain names, ending in .pfx."""
    parts = text.split("/")
    if (
        "\\" in text
        or ":" in text
        or not text.lower().endswith(".pfx")
        or not all(_LAB_FILE.match(part) and part not in (".", "..") for part in parts)
    ):
        raise node.error(
            f"{node.key('lab_files')}[{index}]",
            text,
            "a .pfx path inside the lab folder such as renewal/EDGE01.pfx (relative, '/' "
            "between plain names, no '..', no leading '/' or '.')",
        )
    return str(PurePosixPath(*parts))


def _unique_lab_files(top: Node, certificates: list[CertSpec]) -> None:
    entries = [
        (f"certificates[{index}].lab_files[{number}]", path)
        for index, spec in enumerate(certificates)
        for number, path in enumerate(spec.lab_files)
    ]
    top.unique(entries, "lab file (each written once)")


def _paths(key: str, field: str, values: list[str]) -> list[tuple[str, str]]:
    return [(f"{key}[{index}].{field}", value) for index, value in enumerate(values)]


def _connector(node: Node, servers: set[str], cert_ids: set[str]) -> SendConnectorSpec:
    values: dict[str, Any] = {"name": node.text("name")}
    values.update({key: node.texts(key) for key in CONNECTOR_LISTS})
    values.update({key: node.optional_text(key) for key in CONNECTOR_TEXT})
    node.choice("tls_auth_level", TLS_AUTH_LEVELS, None)
    node.dns_name("fqdn", None)
    node.dns_names("tls_domain", one=True)  # a string (optional_text above); may be *.domain
    values.update({key: node.boolean(key, default) for key, default in CONNECTOR_FLAGS.items()})
    if not values["address_spaces"]:
        raise node.error(node.key("address_spaces"), [], "at least one address space")
    for server in values["source_transport_servers"]:
        if server not in servers:
            raise node.error(
                node.key("source_transport_servers"), server, "names of servers of this scenario"
            )
    return SendConnectorSpec(values, node.certificate_reference(cert_ids))


def _subscription(node: Node, edges: set[str], cert_ids: set[str]) -> SubscriptionSpec:
    edge = node.text("edge")
    if edge not in edges:
        raise node.error(node.key("edge"), edge, "the name of an Edge server of this scenario")
    then = node.optional_text("mailbox_default")
    if then is not None and then not in cert_ids:
        raise node.error(node.key("mailbox_default"), then, _cert_id(cert_ids))
    return SubscriptionSpec(
        edge,
        node.days("created_days", -30),
        node.boolean("create_inbound_send_connector", True),
        node.boolean("create_internet_send_connector", True),
        then,
    )


def _cert_id(cert_ids: set[str]) -> str:
    """What a certificate reference may be: the ids of the scenario's certificates."""
    if not cert_ids:
        return "the id of a certificate under certificates: (this scenario lists none)"
    return f"the id of a certificate of this scenario ({', '.join(sorted(cert_ids))})"
