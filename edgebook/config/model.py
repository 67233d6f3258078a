"""The validated inventory: frozen dataclasses built by edgebook.config.loader."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from edgebook.errors import ConfigError
from edgebook.secrets import Credential, resolve_secret

AUTH_METHODS = ("kerberos", "ntlm", "negotiate", "basic", "certificate")
SCHEMES = ("http", "https")
MAILBOX = "Mailbox"
EDGE = "Edge"
DEFAULT_TLS_DOMAIN_CAPABILITIES = "mail.protection.outlook.com:AcceptCloudServicesMail"
TLS_CAPABILITIES = ("AcceptCloudServicesMail", "AcceptOorgProtocol")


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WinRMEndpoint:
    """Where and how to reach a server's WinRM/PowerShell endpoint."""

    host: str
    port: int
    path: str
    scheme: str
    auth: str
    configuration_name: str
    ca_file: Path | None = None
    verify_tls: bool = True
    certificate_pem: Path | None = None
    certificate_key_pem: Path | None = None
    certificate_key_password: str | None = None  # a secret reference, never the secret

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. https://edge01.contoso.com:5986/wsman."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{self.path}"

    @property
    def is_loopback(self) -> bool:
        """Whether the endpoint is on this machine."""
        return is_loopback(self.host)

    @property
    def cert_validation(self) -> bool | str:
        """pypsrp's cert_validation: the CA bundle path, True (system CAs) or False."""
        if not self.verify_tls:
            return False
        return str(self.ca_file) if self.ca_file is not None else True


@dataclass(frozen=True)
class CredentialRef:
    """A username and a secret reference (env:, keyring:, prompt, file:) for its password."""

    username: str
    password: str

    def resolve(self, *, what: str) -> Credential:
        """Resolve the password now (may prompt); `what` names the server in messages."""
        secret = resolve_secret(self.password, what=f"password of {self.username} for {what}")
        return Credential(self.username, secret)


@dataclass(frozen=True)
class SocketAddress:
    """A host and TCP port to probe (SMTP STARTTLS or LDAPS)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailboxServer:
    """A Mailbox server, reached through its Exchange Management endpoint (/PowerShell)."""

    role: ClassVar[str] = MAILBOX
    name: str
    fqdn: str
    winrm: WinRMEndpoint
    credential: CredentialRef | None


@dataclass(frozen=True)
class EdgeServer:
    """An Edge Transport server: WinRM endpoint plus the SMTP and LDAPS ports to probe."""

    role: ClassVar[str] = EDGE
    name: str
    fqdn: str
    winrm: WinRMEndpoint
    credential: CredentialRef | None
    smtp: SocketAddress
    ldaps: SocketAddress


Server = MailboxServer | EdgeServer
_S = TypeVar("_S", MailboxServer, EdgeServer, Server)


@dataclass(frozen=True)
class Organisation:
    """The Exchange organisation: name, the Edges' AD site, its Mailbox servers."""

    name: str
    ad_site: str
    mailbox_servers: tuple[MailboxServer, ...]


@dataclass(frozen=True)
class CertificateSource:
    """The renewed certificate prepared for one Edge: a PFX and the reference of its password."""

    pfx: Path
    password: str | None = None  # a secret reference, never the secret
    chain: Path | None = None  # intermediates (PEM or PKCS#7) when the PFX lacks them


@dataclass(frozen=True)
class ChangeSettings:
    """What the change expects: warning window, certificate names, hybrid, event window."""

    warning_days: int = 30
    expected_fqdns: tuple[str, ...] = ()
    hybrid: bool = False
    tls_domain_capabilities: str = DEFAULT_TLS_DOMAIN_CAPABILITIES
    event_days: int = 7
    trust_anchors: Path | None = None  # PEM roots trusted besides the system store
    certificates: tuple[tuple[str, CertificateSource], ...] = ()  # (Edge name, source)

    def certificate_for(self, edge: str) -> CertificateSource | None:
        """The certificate source given for an Edge (name compared case-insensitively)."""
        return next((s for name, s in self.certificates if name.lower() == edge.lower()), None)

    @property
    def tls_domain(self) -> str:
        """The domain part of tls_domain_capabilities (mail.protection.outlook.com)."""
        return self.tls_domain_capabilities.partition(":")[0]

    @property
    def tls_capabilities(self) -> tuple[str, ...]:
        """The capability names of tls_domain_capabilities."""
        capabilities = self.tls_domain_capabilities.partition(":")[2]
        return tuple(part.strip() for part in capabilities.split(",") if part.strip())


@dataclass(frozen=True)
class Inventory:
    """A validated parameters file: the organisation, its Edges and the change settings."""

    path: Path
    lab: bool
    organisation: Organisation
    edges: tuple[EdgeServer, ...]
    change: ChangeSettings

    @property
    def servers(self) -> tuple[Server, ...]:
        """Every server: Mailbox servers first, then Edges."""
        return (*self.organisation.mailbox_servers, *self.edges)

    def edge(self, name: str) -> EdgeServer:
        """The Edge with this name (case-insensitive); ConfigError lists the known names."""
        return self._find(name, self.edges, "Edge")

    def mailbox_server(self, name: str) -> MailboxServer:
        """The Mailbox server with this name (case-insensitive)."""
        return self._find(name, self.organisation.mailbox_servers, "Mailbox server")

    def server(self, name: str) -> Server:
        """Any server (Mailbox or Edge) with this name (case-insensitive)."""
        return self._find(name, self.servers, "server")

    def _find(self, name: str, candidates: tuple[_S, ...], kind: str) -> _S:
        for candidate in candidates:
            if candidate.name.lower() == name.lower():
                return candidate
        known = ", ".join(candidate.name for candidate in candidates) or "none"
        raise ConfigError(f"{self.path}: no {kind} named {name!r} (known: {known})")
