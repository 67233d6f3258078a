"""A clean hybrid organisation as hand-built Exchange records: 1 Mailbox, 2 Edges.

Tests change the records (plain dicts, keyed by Exchange property names) and then build the
facts with World.facts() or judge them with World.evaluate(). The clean world yields no error
and no warning finding.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from edgebook import certs
from edgebook.facts import EdgeFacts, InspectSettings, MailboxServerFact, OrgFacts
from edgebook.findings import Finding, Severity
from edgebook.probes import LdapsProbe, SmtpProbe
from edgebook.rules import evaluate
from tests.support.certs import NOW, SERVER_AUTH, Issued, make_ca, make_leaf, name

SITE = "Default-First-Site-Name"
PUBLIC_FQDN = "mail.contoso.com"
EDGES = ("EDGE1", "EDGE2")
MAILBOX = "MBX1"
HYBRID = "Outbound to Office 365"
INTERNET = f"EdgeSync - {SITE} to Internet"
INBOUND = f"EdgeSync - Inbound to {SITE}"
EXO_CAPABILITY = "mail.protection.outlook.com:AcceptCloudServicesMail"


@dataclass(frozen=True)
class Pki:
    """The certificates of the clean world (generated once per test session)."""

    root: Issued
    ica: Issued
    public: Issued
    defaults: dict[str, Issued]


def public_subject(cn: str = PUBLIC_FQDN) -> Any:
    """The subject of a public certificate: CN=<cn>, O=Contoso, C=US."""
    return name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, "Contoso"),
        (NameOID.COMMON_NAME, cn),
    )


def self_signed(server: str, days_valid: int = 1825) -> Issued:
    """An Exchange-style self-signed default certificate: CN=<server>, SAN name and FQDN."""
    fqdn = f"{server.lower()}.contoso.com"
    return make_leaf(
        None,
        name((NameOID.COMMON_NAME, server)),
        [server, fqdn],
        days_valid=days_valid,
        eku=(SERVER_AUTH,),
    )


@functools.lru_cache(maxsize=1)
def pki() -> Pki:
    """The shared PKI: a root, an issuing CA, the public certificate, self-signed defaults."""
    root = make_ca(name((NameOID.COUNTRY_NAME, "US"), (NameOID.COMMON_NAME, "Contoso Test Root")))
    ica = make_ca(name((NameOID.COMMON_NAME, "Contoso Issuing CA 1")), issuer=root)
    public = make_leaf(ica, public_subject(), [PUBLIC_FQDN, "smtp.contoso.com"])
    defaults = {server: self_signed(server) for server in (*EDGES, MAILBOX)}
    return Pki(root, ica, public, defaults)


@functools.lru_cache(maxsize=1)
def second_ca() -> Issued:
    """Another issuing CA under the same root (an issuer change, F3)."""
    return make_ca(name((NameOID.COMMON_NAME, "Contoso Issuing CA 2")), issuer=pki().root)


def public_leaf(issuer: Issued | None = None, cn: str = PUBLIC_FQDN, **kw: Any) -> Issued:
    """A public certificate like the clean one (by default from the first issuing CA)."""
    return make_leaf(issuer or pki().ica, public_subject(cn), [cn, "smtp.contoso.com"], **kw)


def cert_record(issued: Issued, **overrides: Any) -> dict[str, Any]:
    """A Get-ExchangeCertificate record of the certificate (overrides by property name)."""
    cert = issued.cert
    record = {
        "Thumbprint": certs.thumbprint(cert),
        "Subject": certs.subject_name(cert),
        "Issuer": certs.issuer_name(cert),
        "NotBefore": cert.not_valid_before_utc,
        "NotAfter": cert.not_valid_after_utc,
        "Services": "SMTP",
        "HasPrivateKey": True,
        "PrivateKeyExportable": True,
        "IsSelfSigned": cert.issuer == cert.subject,
        "Status": "Valid",
        "CertificateDomains": certs.dns_names(cert),
        "FriendlyName": "",
        "RawData": cert.public_bytes(serialization.Encoding.DER),
    }
    record.update(overrides)
    return record


def thumb(issued: Issued) -> str:
    """The certificate's thumbprint."""
    return certs.thumbprint(issued.cert)


def tls_name(issued: Issued) -> str:
    """The certificate's TlsCertificateName."""
    return certs.tls_certificate_name(issued.cert)


def _send_connectors(public: Issued) -> list[dict[str, Any]]:
    both = list(EDGES)
    return [
        {
            "Identity": HYBRID,
            "Name": HYBRID,
            "AddressSpaces": ["smtp:contoso.mail.onmicrosoft.com;1"],
            "SmartHosts": ["contoso-com.mail.protection.outlook.com"],
            "SourceTransportServers": both,
            "TlsCertificateName": tls_name(public),
            "TlsDomain": "mail.protection.outlook.com",
            "TlsAuthLevel": "DomainValidation",
            "RequireTLS": True,
            "Fqdn": PUBLIC_FQDN,
            "CloudServicesMailEnabled": True,
            "DomainSecureEnabled": False,
            "Enabled": True,
        },
        {
            "Identity": INTERNET,
            "Name": INTERNET,
            "AddressSpaces": ["SMTP:*;100"],
            "SmartHosts": [],
            "SourceTransportServers": both,
            "TlsCertificateName": None,
            "DomainSecureEnabled": True,
            "Enabled": True,
        },
        {
            "Identity": INBOUND,
            "Name": INBOUND,
            "AddressSpaces": ["SMTP:--;1"],
            "SmartHosts": ["--"],
            "SourceTransportServers": both,
            "TlsCertificateName": None,
            "Enabled": True,
        },
    ]


def _edge_records(server: str, p: Pki) -> dict[str, Any]:
    default = p.defaults[server]
    connector = f"Default internal receive connector {server}"
    return {
        "certificates": [
            cert_record(default, Services="SMTP", PrivateKeyExportable=False),
            cert_record(p.public, Services="SMTP"),
        ],
        "transport_service": {
            "Name": server,
            "InternalTransportCertificateThumbprint": thumb(default),
        },
        "services": [
            {"Name": "MSExchangeTransport", "Status": "Running"},
            {"Name": "ADAM_MSExchange", "Status": "Running"},
        ],
        "receive_connectors": [
            {
                "Identity": f"{server}\\{connector}",
                "Name": connector,
                "Fqdn": PUBLIC_FQDN,
                "Bindings": ["0.0.0.0:25", "[::]:25"],
                "TlsCertificateName": None,
                "TlsDomainCapabilities": [EXO_CAPABILITY],
                "Enabled": True,
            }
        ],
        "send_connectors": _send_connectors(p.public),
        "queues": [
            {
                "Identity": f"{server}\\Submission",
                "Status": "Ready",
                "MessageCount": 0,
                "NextHopDomain": "Submission",
                "LastError": None,
                "DeliveryType": "Undefined",
            },
            {
                "Identity": f"{server}\\3",
                "Status": "Active",
                "MessageCount": 2,
                "NextHopDomain": "contoso.mail.onmicrosoft.com",
                "LastError": None,
                "DeliveryType": "SmartHostConnectorDelivery",
            },
        ],
        "health": [
            {
                "Name": monitor,
                "HealthSetName": "EdgeTransport",
                "AlertValue": "Healthy",
                "TargetResource": "EdgeTransport",
                "CurrentHealthSetState": "Online",
            }
            for monitor in ("Transport.ServerCertMismatch.Monitor", "EdgeAvailabilityMonitor")
        ],
        "events": [
            {
                "EventID": 1000,
                "TimeGenerated": NOW - dt.timedelta(hours=1),
                "Message": "unrelated",
                "EntryType": "Information",
                "Source": "MSExchangeTransport",
            }
        ],
    }


def smtp_probe(
    server: str, leaf: Issued | None, chain: Sequence[Issued] = (), **kw: Any
) -> SmtpProbe:
    """An SMTP STARTTLS probe result that collected this leaf."""
    fields: dict[str, Any] = {
        "ok": leaf is not None,
        "leaf": leaf.cert if leaf else None,
        "chain": [leaf.cert, *(c.cert for c in chain)] if leaf else [],
        "banner": f"220 {server.lower()}.contoso.com Microsoft ESMTP MAIL Service ready",
        "starttls_offered": True,
        "verified": True,
    }
    fields.update(kw)
    return SmtpProbe(target=f"{server.lower()}.contoso.com:25", **fields)


def ldaps_probe(server: str, leaf: Issued | None, **kw: Any) -> LdapsProbe:
    """An LDAPS probe result on 50636 that collected this leaf."""
    fields: dict[str, Any] = {"ok": leaf is not None, "leaf": leaf.cert if leaf else None}
    fields["chain"] = [leaf.cert] if leaf else []
    fields.update(kw)
    return LdapsProbe(target=f"{server.lower()}.contoso.com:50636", **fields)


@dataclass
class World:
    """Records of a whole organisation, editable before building facts."""

    pki: Pki
    edges: dict[str, dict[str, Any]]
    mailbox: dict[str, Any]
    send_connectors: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    edgesync: list[dict[str, Any]]
    smtp_probes: dict[str, SmtpProbe | None]
    ldaps_probes: dict[str, LdapsProbe | None]
    settings: dict[str, Any] = field(default_factory=dict)

    def send(self, connector: str) -> dict[str, Any]:
        """The org send connector record with this name."""
        return next(c for c in self.send_connectors if c["Name"] == connector)

    def receive(self, edge: str) -> dict[str, Any]:
        """The Edge's default internal receive connector record."""
        return self.edges[edge]["receive_connectors"][0]

    def facts(self) -> tuple[OrgFacts, list[EdgeFacts]]:
        """The facts built from the records, as the gather code would build them."""
        mailbox = MailboxServerFact.from_records(
            MAILBOX,
            "mbx1.contoso.com",
            transport_service=self.mailbox["transport_service"],
            certificates=self.mailbox["certificates"],
        )
        org = OrgFacts.from_records(
            mailbox_servers=[mailbox],
            send_connectors=self.send_connectors,
            subscriptions=self.subscriptions,
            edgesync=self.edgesync,
            settings=InspectSettings(**self.settings),
        )
        edges = [
            EdgeFacts.from_records(
                edge,
                f"{edge.lower()}.contoso.com",
                **records,
                smtp_probe=self.smtp_probes[edge],
                ldaps_probe=self.ldaps_probes[edge],
            )
            for edge, records in self.edges.items()
        ]
        return org, edges

    def evaluate(self) -> list[Finding]:
        """Every finding for the world."""
        return evaluate(*self.facts())


def clean_world() -> World:
    """The clean hybrid organisation: no error and no warning finding."""
    p = pki()
    return World(
        pki=p,
        edges={edge: _edge_records(edge, p) for edge in EDGES},
        mailbox={
            "transport_service": {
                "Name": MAILBOX,
                "InternalTransportCertificateThumbprint": thumb(p.defaults[MAILBOX]),
            },
            "certificates": [
                cert_record(p.defaults[MAILBOX], Services="IMAP, POP, SMTP"),
                cert_record(p.public, Services="None"),
            ],
        },
        send_connectors=_send_connectors(p.public),
        subscriptions=[
            {
                "Name": edge,
                "Site": SITE,
                "Domain": "contoso.com",
                "IsValid": True,
                "LeaseType": "Option",
            }
            for edge in EDGES
        ],
        edgesync=[
            {"Name": edge, "SyncStatus": "Normal", "FailureDetail": "", "LeaseType": "Option"}
            for edge in EDGES
        ],
        smtp_probes={edge: smtp_probe(edge, p.public, [p.ica]) for edge in EDGES},
        ldaps_probes={edge: ldaps_probe(edge, p.defaults[edge]) for edge in EDGES},
        settings={
            "hybrid": True,
            "expected_fqdns": (PUBLIC_FQDN,),
            "warning_days": 30,
            "now": NOW,
            "roots": (p.root.cert,),
        },
    )


def problems(findings: list[Finding]) -> list[Finding]:
    """The error and warning findings."""
    return [f for f in findings if f.severity >= Severity.WARNING]


def of(findings: list[Finding], slug: str, server: str | None = "*") -> list[Finding]:
    """The findings with this slug (and server, unless '*')."""
    return [f for f in findings if f.slug == slug and (server == "*" or f.server == server)]
