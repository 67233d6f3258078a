"""Facts made from single Exchange records: certificates, connectors, queues, health, events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from cryptography import x509

from edgebook import certs
from edgebook.exchange.certificates import (
    CertificateReadError,
    ExchangeView,
    RemoteCertificate,
    parse_certificate,
)
from edgebook.facts import values as v
from edgebook.facts.values import FactsError, Record

# --- certificates --------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFact:
    """One certificate from Get-ExchangeCertificate: its identity from RawData (read as a remote
    client must, edgebook.exchange.certificates), Exchange's view from the projected properties.
    None in services, status, has_private_key, private_key_exportable, root_ca_type or
    friendly_name means unknown: the property did not arrive."""

    thumbprint: str
    subject: str
    issuer: str
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    services: tuple[str, ...] | None = None
    has_private_key: bool | None = None
    private_key_exportable: bool | None = None
    is_self_signed: bool | None = None
    status: str | None = None
    domains: tuple[str, ...] = ()
    friendly_name: str | None = None
    root_ca_type: str | None = None
    cert: x509.Certificate | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_record(cls, record: Record) -> CertificateFact:
        """From a Get-ExchangeCertificate record: RawData (with or without the projection of
        Exchange's view), or, without RawData, Exchange's own Thumbprint, Subject, Issuer, ..."""
        raw = v.get(record, "RawData")
        if raw is not None and raw != b"" and raw != "":
            try:
                return cls.from_remote(parse_certificate(record))
            except CertificateReadError as exc:
                raise FactsError(str(exc)) from None
        thumb = v.thumbprint(v.get(record, "Thumbprint"))
        if not thumb:
            raise FactsError(
                "a Get-ExchangeCertificate record has neither Thumbprint nor RawData: read "
                "certificates with edgebook.exchange.certificates.read_certificates()"
            )
        view = ExchangeView.from_record(record)
        return cls(
            thumbprint=thumb,
            subject=v.text(v.get(record, "Subject")),
            issuer=v.text(v.get(record, "Issuer")),
            not_before=v.moment(v.get(record, "NotBefore")),
            not_after=v.moment(v.get(record, "NotAfter")),
            services=view.services,
            has_private_key=view.has_private_key,
            private_key_exportable=view.private_key_exportable,
            is_self_signed=v.boolean(v.get(record, "IsSelfSigned")),
            status=view.status,
            domains=v.texts(v.get(record, "CertificateDomains")),
            friendly_name=view.friendly_name,
            root_ca_type=view.root_ca_type,
        )

    @classmethod
    def from_remote(cls, remote: RemoteCertificate) -> CertificateFact:
        """From a certificate read through edgebook.exchange.certificates."""
        view = remote.view
        return cls(
            thumbprint=remote.thumbprint,
            subject=remote.subject,
            issuer=remote.issuer,
            not_before=remote.not_before,
            not_after=remote.not_after,
            services=view.services,
            has_private_key=view.has_private_key,
            private_key_exportable=view.private_key_exportable,
            is_self_signed=remote.is_self_signed,
            status=view.status,
            domains=remote.dns_names,
            friendly_name=view.friendly_name,
            root_ca_type=view.root_ca_type,
            cert=remote.cert,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "certificate") -> CertificateFact:
        """From to_dict()'s form (the certificate itself from its PEM when present)."""
        data = v.mapping(data, where)
        cert = v.pem_certificate(data.get("pem"), f"{where}.pem")
        return v.from_json(cls, data, where, cert=cert)

    def unknown(self) -> tuple[str, ...]:
        """Exchange's properties the rules need that did not arrive (Exchange's names)."""
        needed = (
            ("Services", self.services),
            ("Status", self.status),
            ("HasPrivateKey", self.has_private_key),
            ("PrivateKeyExportable", self.private_key_exportable),
        )
        return tuple(name for name, value in needed if value is None)

    @property
    def tls_certificate_name(self) -> str:
        """Exchange's `<I>issuer<S>subject` for this certificate, from Exchange's own strings."""
        return f"<I>{self.issuer}<S>{self.subject}"

    @property
    def smtp(self) -> bool:
        """Whether the certificate is known to be enabled for SMTP (see unknown())."""
        return "SMTP" in (self.services or ())

    def current(self, now: dt.datetime) -> bool:
        """Whether now lies within the validity period (unknown dates count as valid)."""
        started = self.not_before is None or self.not_before <= now
        return started and (self.not_after is None or now <= self.not_after)

    def covers(self, fqdn: str) -> bool:
        """Whether one of the certificate's domains matches the FQDN (wildcards per RFC 6125)."""
        if not fqdn:
            return False
        try:
            return any(certs.matches_fqdn(domain, fqdn) for domain in self.domains)
        except certs.CertificateError:
            return False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: no key material; the (public) certificate as PEM when it was read."""
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": v.iso(self.not_before),
            "not_after": v.iso(self.not_after),
            "services": None if self.services is None else list(self.services),
            "has_private_key": self.has_private_key,
            "private_key_exportable": self.private_key_exportable,
            "is_self_signed": self.is_self_signed,
            "status": self.status,
            "domains": list(self.domains),
            "friendly_name": self.friendly_name,
            "root_ca_type": self.root_ca_type,
            "unknown": list(self.unknown()),
            "tls_certificate_name": self.tls_certificate_name,
            "pem": v.pem(self.cert),
        }


# --- connectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveConnectorFact:
    """One receive connector of an Edge (Get-ReceiveConnector; not replicated)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "Identity",
        "Name",
        "Fqdn",
        "Bindings",
        "TlsCertificateName",
        "TlsDomainCapabilities",
        "Enabled",
    )

    identity: str
    name: str
    fqdn: str = ""
    bindings: tuple[str, ...] = ()
    tls_certificate_name: str | None = None
    tls_domain_capabilities: tuple[str, ...] = ()
    enabled: bool = True

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "receive_connector"
    ) -> ReceiveConnectorFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> ReceiveConnectorFact:
        """From a Get-ReceiveConnector record."""
        identity = v.text(v.get(record, "Identity"))
        name = v.text(v.get(record, "Name")) or identity.rsplit("\\", 1)[-1]
        return cls(
            identity=identity or name,
            name=name,
            fqdn=v.text(v.get(record, "Fqdn")),
            bindings=v.texts(v.get(record, "Bindings")),
            tls_certificate_name=v.tls_name(v.get(record, "TlsCertificateName")),
            tls_domain_capabilities=v.texts(v.get(record, "TlsDomainCapabilities")),
            enabled=v.boolean(v.get(record, "Enabled")) is not False,
        )

    def listens_on(self, port: int) -> bool:
        """Whether one of the bindings (`0.0.0.0:25`, `[::]:25`) is on this port."""
        return any(b.rsplit(":", 1)[-1] == str(port) for b in self.bindings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


@dataclass(frozen=True)
class SendConnectorFact:
    """One send connector (Get-SendConnector: the org object, or its replica on an Edge)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "Identity",
        "Name",
        "AddressSpaces",
        "SmartHosts",
        "SourceTransportServers",
        "TlsCertificateName",
        "TlsDomain",
        "TlsAuthLevel",
        "RequireTLS",
        "Fqdn",
        "CloudServicesMailEnabled",
        "DomainSecureEnabled",
        "Enabled",
    )

    identity: str
    name: str
    address_spaces: tuple[str, ...] = ()
    smart_hosts: tuple[str, ...] = ()
    source_transport_servers: tuple[str, ...] = ()
    tls_certificate_name: str | None = None
    tls_domain: str = ""
    tls_auth_level: str = ""
    require_tls: bool | None = None
    fqdn: str = ""
    cloud_services_mail_enabled: bool | None = None
    domain_secure_enabled: bool | None = None
    enabled: bool = True

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "send_connector"
    ) -> SendConnectorFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> SendConnectorFact:
        """From a Get-SendConnector record."""
        identity = v.text(v.get(record, "Identity"))
        return cls(
            identity=identity or v.text(v.get(record, "Name")),
            name=v.text(v.get(record, "Name")) or identity,
            address_spaces=v.texts(v.get(record, "AddressSpaces")),
            smart_hosts=v.texts(v.get(record, "SmartHosts")),
            source_transport_servers=v.texts(v.get(record, "SourceTransportServers")),
            tls_certificate_name=v.tls_name(v.get(record, "TlsCertificateName")),
            tls_domain=v.text(v.get(record, "TlsDomain")),
            tls_auth_level=v.text(v.get(record, "TlsAuthLevel")),
            require_tls=v.boolean(v.get(record, "RequireTLS")),
            fqdn=v.text(v.get(record, "Fqdn")),
            cloud_services_mail_enabled=v.boolean(v.get(record, "CloudServicesMailEnabled")),
            domain_secure_enabled=v.boolean(v.get(record, "DomainSecureEnabled")),
            enabled=v.boolean(v.get(record, "Enabled")) is not False,
        )

    @property
    def domains(self) -> tuple[str, ...]:
        """The address spaces' domains (`SMTP:*.contoso.com;1` gives `*.contoso.com`)."""
        found = []
        for space in self.address_spaces:
            body = space.split(":", 1)[-1] if ":" in space else space
            found.append(body.split(";", 1)[0].strip())
        return tuple(found)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


# --- transport state -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFact:
    """One queue (Get-Queue)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "Identity",
        "Status",
        "MessageCount",
        "NextHopDomain",
        "LastError",
        "DeliveryType",
    )

    identity: str
    status: str = ""
    message_count: int = 0
    next_hop_domain: str = ""
    last_error: str = ""
    delivery_type: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "queue") -> QueueFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> QueueFact:
        """From a Get-Queue record."""
        return cls(
            identity=v.text(v.get(record, "Identity")),
            status=v.text(v.get(record, "Status")),
            message_count=v.integer(v.get(record, "MessageCount")) or 0,
            next_hop_domain=v.text(v.get(record, "NextHopDomain")),
            last_error=v.text(v.get(record, "LastError")),
            delivery_type=v.text(v.get(record, "DeliveryType")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


@dataclass(frozen=True)
class HealthFact:
    """One monitor of a health set (Get-ServerHealth)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "Name",
        "HealthSetName",
        "HealthSet",
        "AlertValue",
        "TargetResource",
        "CurrentHealthSetState",
        "State",
    )

    name: str
    health_set: str = ""
    alert_value: str = ""
    target_resource: str = ""
    state: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "health") -> HealthFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> HealthFact:
        """From a Get-ServerHealth record."""
        return cls(
            name=v.text(v.get(record, "Name")),
            health_set=v.text(v.get(record, "HealthSetName")) or v.text(v.get(record, "HealthSet")),
            alert_value=v.text(v.get(record, "AlertValue")),
            target_resource=v.text(v.get(record, "TargetResource")),
            state=v.text(v.get(record, "CurrentHealthSetState")) or v.text(v.get(record, "State")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


@dataclass(frozen=True)
class EventFact:
    """One Application log entry (Get-EventLog)."""

    PROPERTIES: ClassVar[tuple[str, ...]] = (  # what from_record reads (inspect's projection)
        "EventID",
        "InstanceId",
        "TimeGenerated",
        "TimeWritten",
        "Message",
        "EntryType",
        "Source",
    )

    event_id: int
    time: dt.datetime | None
    message: str = ""
    entry_type: str = ""
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "event") -> EventFact:
        """From to_dict()'s form."""
        return v.from_json(cls, data, where)

    @classmethod
    def from_record(cls, record: Record) -> EventFact:
        """From an EventLogEntry record (EventID, or the low 16 bits of InstanceId)."""
        event_id = v.integer(v.get(record, "EventID"))
        if event_id is None:
            event_id = (v.integer(v.get(record, "InstanceId")) or 0) & 0xFFFF
        return cls(
            event_id=event_id,
            time=v.moment(v.get(record, "TimeGenerated")) or v.moment(v.get(record, "TimeWritten")),
            message=v.text(v.get(record, "Message")),
            entry_type=v.text(v.get(record, "EntryType")),
            source=v.text(v.get(record, "Source")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return v.to_json(self)


# --- probes --------------------------------------------------------------------------------


class ProbeResult(Protocol):
    """What edgebook.probes returns (TlsProbe; SmtpProbe adds banner, ehlo, starttls_offered)."""

    target: str  # "host:port"
    ok: bool
    error: str | None
    leaf: x509.Certificate | None
    chain: list[x509.Certificate]  # as sent, leaf first
    verified: bool
    verify_error: str | None

    @property
    def thumbprint(self) -> str | None:
        """The leaf's SHA-1 thumbprint (upper-case hex), None without a leaf."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        ...
