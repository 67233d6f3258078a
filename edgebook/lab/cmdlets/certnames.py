"""What New-ExchangeCertificate puts into a certificate or request: subject, the names of the
Subject Alternative Name field (DomainName, the Include* switches, the defaults) and, for a
renewal piped in from Get-ExchangeCertificate, the certificate it renews."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from edgebook.lab.cmdlets.base import Context, binding_error
from edgebook.lab.cmdlets.binding import display
from edgebook.lab.org import pki
from edgebook.lab.org.model import Server
from edgebook.lab.winrm.objects import ExObject

X509_TYPE = "System.Security.Cryptography.X509Certificates.X509Certificate2"
INCLUDES = (
    "IncludeServerFQDN",
    "IncludeServerNetBIOSName",
    "IncludeAcceptedDomains",
    "IncludeAutoDiscover",
)


@dataclass
class Renewal:
    """The certificate a piped -Instance renews: its subject, names and key size."""

    subject: x509.Name
    domains: list[str]
    key_size: int


def renewal_of(ctx: Context, instance: Any) -> Renewal | None:
    """The certificate bound to -Instance (an ExchangeCertificate from the pipeline, or what a
    client sends back for one: its RawData); a binding error for anything else."""
    if instance is None:
        return None
    raw = None
    if isinstance(instance, ExObject):
        raw = instance.properties.get("RawData")
    elif isinstance(instance, dict):
        raw = next((v for k, v in instance.items() if str(k).casefold() == "rawdata"), None)
    try:
        cert = x509.load_der_x509_certificate(bytes(raw)) if raw is not None else None
    except (TypeError, ValueError):
        cert = None
    if cert is None:
        raise binding_error(
            ctx.cmdlet,
            f"Cannot bind parameter 'Instance'. Cannot convert the \"{display(instance)}\" value "
            f'to type "{X509_TYPE}".',
            "CannotConvertArgumentNoMessage",
        )
    return Renewal(cert.subject, pki.domains_of(cert), cert.public_key().key_size)  # type: ignore[union-attr]


def accepted_domains(ctx: Context, server: Server) -> list[str]:
    """The organisation's accepted domains as the server sees them (an Edge: only once
    subscribed, EdgeSync replicates them)."""
    if server.role == "Edge" and ctx.org.subscription(server.name) is None:
        return []
    return [d for d in (ctx.org.domain, ctx.org.hybrid_domain) if d]


def san_names(
    ctx: Context,
    server: Server,
    params: dict[str, Any],
    subject: x509.Name,
    renewal: Renewal | None,
) -> list[str]:
    """The Subject Alternative Name values, in the lab's order: the subject's CN (Exchange
    always includes it), -DomainName, the renewed certificate's names, the Include* switches,
    and the server's name and FQDN when neither -DomainName nor an Include* switch is given."""
    names = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    names += params.get("DomainName") or []
    if renewal is not None:
        names += renewal.domains
    if params.get("IncludeServerFQDN"):
        names.append(server.fqdn)
    if params.get("IncludeServerNetBIOSName"):
        names.append(server.name)
    accepted = accepted_domains(ctx, server)
    if params.get("IncludeAcceptedDomains"):
        names += accepted
    if params.get("IncludeAutoDiscover"):
        names += [f"autodiscover.{d}" for d in accepted]
    defaults = not params.get("DomainName") and not any(params.get(n) for n in INCLUDES)
    if defaults and renewal is None:
        names += [server.name, server.fqdn]
    unique: list[str] = []
    for name in names:
        if name.casefold() not in (u.casefold() for u in unique):
            unique.append(name)
    return unique


def default_services(server: Server, params: dict[str, Any]) -> list[str]:
    """Services of a new self-signed certificate without -Services: IMAP, POP, SMTP (an Edge:
    SMTP, it runs neither IMAP nor POP); SMTP only with -IncludeAcceptedDomains or
    -IncludeAutoDiscover (Microsoft's docs)."""
    if server.role == "Edge" or any(
        params.get(n) for n in ("IncludeAcceptedDomains", "IncludeAutoDiscover")
    ):
        return ["SMTP"]
    return ["IMAP, POP, SMTP"]
