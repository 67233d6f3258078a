"""Which certificate the configuration designates: TlsCertificateName, connector FQDN, roles."""

from __future__ import annotations

from dataclasses import dataclass

from edgebook import certs
from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts, ReceiveConnectorFact
from edgebook.facts import SendConnectorFact as SendConnector

EXO_TLS_DOMAIN = "mail.protection.outlook.com"
EXO_ROUTING_SUFFIX = ".mail.onmicrosoft.com"
DEFAULT_RECEIVE_PREFIX = "Default internal receive connector"


def ps(value: str) -> str:
    """A PowerShell single-quoted string literal."""
    return "'" + value.replace("'", "''") + "'"


def parse_name(text: str) -> tuple[str, str] | None:
    """(issuer, subject) of a TlsCertificateName, or None when its syntax is invalid."""
    try:
        return certs.parse_tls_certificate_name(text)
    except certs.CertificateError:
        return None


def named_by(text: str | None, cert: CertificateFact) -> bool:
    """Whether a TlsCertificateName designates the certificate (Exchange's own issuer and
    subject strings, compared as certs.tls_name_matches does: exact text, any case)."""
    parts = parse_name(text) if text else None
    return parts is not None and (
        parts[0].casefold() == cert.issuer.casefold()
        and parts[1].casefold() == cert.subject.casefold()
    )


def edge_send_connectors(org: OrgFacts, edge: EdgeFacts) -> list[SendConnector]:
    """The send connectors the Edge sources: from the organisation, else its replicas."""
    if not org.gathered:
        return list(edge.send_connectors)
    return [c for c in org.send_connectors if edge.named_in(c.source_transport_servers)]


def is_hybrid_connector(connector: SendConnector) -> bool:
    """The Outbound-to-Office-365 shape: *.mail.onmicrosoft.com space or EXO smart host."""
    spaces = any(d.casefold().endswith(EXO_ROUTING_SUFFIX) for d in connector.domains)
    hosts = any(
        h.casefold().rstrip(".").endswith("." + EXO_TLS_DOMAIN) for h in connector.smart_hosts
    )
    return spaces or hosts


def is_inbound_connector(connector: SendConnector) -> bool:
    """The EdgeSync inbound shape (Edge to the Mailbox servers): address space `--`."""
    return "--" in connector.domains or "--" in connector.smart_hosts


def is_default_receive(connector: ReceiveConnectorFact, edge: EdgeFacts) -> bool:
    """Whether this is the Edge's 'Default internal receive connector <EDGE>'."""
    return connector.name.casefold() == f"{DEFAULT_RECEIVE_PREFIX} {edge.name}".casefold()


def smtp_receive_connectors(edge: EdgeFacts, port: int = 25) -> list[ReceiveConnectorFact]:
    """Enabled receive connectors on the port (connectors without known bindings: the default
    internal receive connector)."""
    enabled = [c for c in edge.receive_connectors if c.enabled]
    bound = [c for c in enabled if c.listens_on(port)]
    return bound or [c for c in enabled if not c.bindings and is_default_receive(c, edge)]


def _preference(cert: CertificateFact) -> tuple:
    """Best first: with a private key, CA-issued, newest."""
    return (
        cert.has_private_key is False,
        bool(cert.is_self_signed),
        -(cert.not_before.timestamp() if cert.not_before else 0),
    )


@dataclass(frozen=True)
class Selection:
    """The certificates a receive connector's setting designates (current ones, best first)."""

    connector: ReceiveConnectorFact
    by: str  # "TlsCertificateName" or "Fqdn"
    key: str
    eligible: tuple[CertificateFact, ...]  # transport may use them
    unusable: tuple[CertificateFact, ...]  # designated, current, but not enabled for SMTP
    unknown: tuple[CertificateFact, ...]  # designated, current, Services unknown


def _split(
    connector: ReceiveConnectorFact, by: str, key: str, designated: list[CertificateFact]
) -> Selection:
    """A selection: enabled for SMTP, known not to be, and unknown (Services did not arrive)."""
    return Selection(
        connector,
        by,
        key,
        tuple(c for c in designated if c.smtp),
        tuple(c for c in designated if c.services is not None and not c.smtp),
        tuple(c for c in designated if c.services is None),
    )


def receive_selection(
    edge: EdgeFacts, connector: ReceiveConnectorFact, org: OrgFacts
) -> Selection | None:
    """What the connector's TlsCertificateName (or else its Fqdn) selects; None without both."""
    now = org.now
    current = [c for c in edge.certificates if c.current(now) and c.has_private_key is not False]
    if connector.tls_certificate_name:
        named = sorted(
            (c for c in current if named_by(connector.tls_certificate_name, c)), key=_preference
        )
        return _split(connector, "TlsCertificateName", connector.tls_certificate_name, named)
    if not connector.fqdn:
        return None
    covering = sorted((c for c in current if c.covers(connector.fqdn)), key=_preference)
    return _split(connector, "Fqdn", connector.fqdn, covering)


@dataclass(frozen=True)
class Usage:
    """Why a certificate on an Edge matters (empty: nothing uses it)."""

    default: bool = False
    smtp: bool | None = False  # None: Services unknown (cert-facts-unknown)
    named_by: tuple[str, ...] = ()  # connectors whose TlsCertificateName designates it
    selected_by: tuple[str, ...] = ()  # receive connectors whose Fqdn selects it

    @property
    def in_use(self) -> bool:
        """Whether anything is known to use the certificate."""
        return self.default or bool(self.smtp or self.named_by or self.selected_by)

    @property
    def maybe_in_use(self) -> bool:
        """Whether the certificate is, or may be, in use (its Services are unknown)."""
        return self.in_use or self.smtp is None

    def describe(self) -> str:
        """A short text such as 'the default (internal transport) certificate, SMTP'."""
        parts = ["the default (internal transport) certificate"] if self.default else []
        parts += ["enabled for SMTP"] if self.smtp else []
        parts += ["Services unknown"] if self.smtp is None else []
        parts += [f"TlsCertificateName of {', '.join(self.named_by)}"] if self.named_by else []
        parts += (
            [f"selected by the Fqdn of {', '.join(self.selected_by)}"] if self.selected_by else []
        )
        return "; ".join(parts) or "not used"

    def to_dict(self) -> dict:
        """JSON-ready form for evidence."""
        return {
            "default": self.default,
            "smtp": self.smtp,
            "named_by": list(self.named_by),
            "selected_by": list(self.selected_by),
        }


def usage(org: OrgFacts, edge: EdgeFacts, cert: CertificateFact) -> Usage:
    """How the Edge's configuration uses one of its certificates."""
    connectors: list[ReceiveConnectorFact | SendConnector] = [
        *edge.receive_connectors,
        *edge_send_connectors(org, edge),
    ]
    names = [(c.identity, c.tls_certificate_name) for c in connectors if c.tls_certificate_name]
    selected = []
    for connector in edge.receive_connectors:
        selection = receive_selection(edge, connector, org) if connector.enabled else None
        if selection and selection.by == "Fqdn" and cert in selection.eligible[:1]:
            selected.append(connector.identity)
    return Usage(
        default=bool(edge.default_thumbprint) and cert.thumbprint == edge.default_thumbprint,
        smtp=None if cert.services is None else cert.smtp,
        named_by=tuple(dict.fromkeys(ident for ident, text in names if named_by(text, cert))),
        selected_by=tuple(selected),
    )


def public_certificates(
    edge: EdgeFacts, org: OrgFacts, *, maybe: bool = False
) -> list[CertificateFact]:
    """Current CA-issued certificates the Edge uses for SMTP (the 'public' certificates);
    maybe: also those that may be in use (their Services are unknown)."""
    found = []
    for cert in edge.certificates:
        if cert.current(org.now) and not cert.is_self_signed:
            use = usage(org, edge, cert)
            found += [cert] if use.in_use or (maybe and use.maybe_in_use) else []
    return found
