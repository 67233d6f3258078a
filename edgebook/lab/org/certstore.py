"""Certificate-store logic shared by the cmdlets and the mail-flow simulation."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from edgebook.certs import issuer_name, subject_name, tls_name_matches
from edgebook.exchange.wire_types import SERVICE_FLAGS
from edgebook.lab.org import pki
from edgebook.lab.org.model import CertEntry, Org, Server

SMTP = SERVICE_FLAGS["SMTP"]
# ServicesStringForm: I P U W S F C
STRING_FORM = [("I", 1), ("P", 2), ("U", 4), ("W", 8), ("S", 16), ("F", 32), ("C", 64)]


def services_value(names: list[str]) -> int:
    """The flags value of service names ("IMAP, POP" or a list); ValueError on unknown ones."""
    value = 0
    for item in names:
        for name in str(item).split(","):
            name = name.strip()
            if not name or name.casefold() == "none":
                continue
            match = next((k for k in SERVICE_FLAGS if k.casefold() == name.casefold()), None)
            if match is None:
                raise ValueError(name)
            value |= SERVICE_FLAGS[match]
    return value


def services_text(value: int) -> str:
    """The flags as .NET prints them ("IMAP, POP, SMTP"; "None" for 0)."""
    names = [k for k, v in SERVICE_FLAGS.items() if value & v]
    return ", ".join(names) if names else "None"


def services_string_form(value: int) -> str:
    """The 7-character form, e.g. "....S..""."""
    return "".join(c if value & v else "." for c, v in STRING_FORM)


def cert_of(entry: CertEntry) -> x509.Certificate:
    """The X.509 certificate of a store entry (the placeholder for a pending request)."""
    return pki.load(entry.der_b64)


def key_of(org: Org, entry: CertEntry) -> rsa.RSAPrivateKey | None:
    """The private key of a store entry, if it has one."""
    return pki.unseal(org.secret, entry.key_sealed) if entry.key_sealed else None


def subject(entry: CertEntry) -> str:
    """Subject in Windows format."""
    return subject_name(cert_of(entry))


def issuer(entry: CertEntry) -> str:
    """Issuer in Windows format."""
    return issuer_name(cert_of(entry))


def tls_name(entry: CertEntry) -> str:
    """The TlsCertificateName designating this certificate."""
    return f"<I>{issuer(entry)}<S>{subject(entry)}"


def names_tls(name: str, entry: CertEntry) -> bool:
    """Whether a TlsCertificateName designates this entry (tags and DNs case-insensitive)."""
    if entry.pending_request:
        return False
    try:
        return tls_name_matches(name, cert_of(entry))
    except Exception:  # an unparsable name designates nothing
        return False


def time_valid(entry: CertEntry, now: dt.datetime) -> bool:
    """Whether now lies within the validity period."""
    cert = cert_of(entry)
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def usable(entry: CertEntry, now: dt.datetime) -> bool:
    """Whether transport can load it: issued, with a private key, within validity."""
    return not entry.pending_request and bool(entry.key_sealed) and time_valid(entry, now)


def chain_complete(org: Org, server: Server, entry: CertEntry) -> bool:
    """Whether the chain builds up to a lab root from the server's CA store."""
    cert = cert_of(entry)
    known = [pki.load(d) for d in server.ca_store]
    roots = [pki.load(ca.der_b64) for ca in org.cas if ca.parent is None]
    for _ in range(8):
        if pki.is_self_signed(cert):
            return True  # Exchange reports self-signed certificates Valid
        parent = next((c for c in known + roots if c.subject == cert.issuer), None)
        if parent is None:
            return False
        if parent in roots:
            return True
        cert = parent
    return False


def status(org: Org, server: Server, entry: CertEntry, now: dt.datetime) -> str:
    """CertificateStatus: PendingRequest, DateInvalid, Untrusted or Valid."""
    if entry.pending_request:
        return "PendingRequest"
    if not time_valid(entry, now):
        return "DateInvalid"
    return "Valid" if chain_complete(org, server, entry) else "Untrusted"


def root_ca_type(server: Server, entry: CertEntry) -> str:
    """CertificateAuthorityType, by the Root store the root is found in: Registry for a
    self-signed certificate in the Trusted Root store (setup's "Microsoft Exchange", Microsoft's
    table of the default certificates), None for another self-signed one, ThirdParty (lab
    roots), Unknown for a pending request."""
    if entry.pending_request:
        return "Unknown"
    if not pki.is_self_signed(cert_of(entry)):
        return "ThirdParty"
    return "Registry" if entry.thumbprint in server.trusted_roots else "None"


def by_tls_name(server: Server, name: str, now: dt.datetime) -> list[CertEntry]:
    """Usable certificates a TlsCertificateName designates."""
    return [c for c in server.certificates if names_tls(name, c) and usable(c, now)]


def preference(entry: CertEntry, now: dt.datetime) -> tuple[bool, bool, dt.datetime]:
    """How Exchange ranks certificates for an FQDN, highest first: usable ones, then those
    enabled for SMTP, then the newest (by_fqdn; Get-ExchangeCertificate -DomainName's order)."""
    return usable(entry, now), bool(entry.services & SMTP), cert_of(entry).not_valid_before_utc


def by_fqdn(server: Server, fqdn: str, now: dt.datetime) -> CertEntry | None:
    """The certificate Exchange selects for an FQDN: usable, FQDN in CN/SAN, SMTP first, newest."""
    matches = [
        c for c in server.certificates if usable(c, now) and pki.matches_domain(cert_of(c), fqdn)
    ]
    matches.sort(key=lambda c: preference(c, now), reverse=True)
    return matches[0] if matches else None


def adam_choice(server: Server, now: dt.datetime) -> CertEntry | None:
    """The certificate AD LDS binds at start: the default if eligible, else the newest eligible.

    Eligible (KB321051): serverAuth EKU, private key, within validity, the FQDN in CN/SAN.
    """
    eligible = [
        c
        for c in server.certificates
        if usable(c, now)
        and pki.has_server_auth(cert_of(c))
        and pki.matches_domain(cert_of(c), server.fqdn)
    ]
    default = next(
        (c for c in eligible if c.thumbprint == server.internal_transport_thumbprint), None
    )
    if default is not None:
        return default
    eligible.sort(key=lambda c: cert_of(c).not_valid_before_utc, reverse=True)
    return eligible[0] if eligible else None


def same_subject(server: Server, entry: CertEntry) -> list[CertEntry]:
    """Issued certificates in the store with the same subject as entry (entry included)."""
    wanted = cert_of(entry).subject
    return [
        c for c in server.certificates if not c.pending_request and cert_of(c).subject == wanted
    ]
