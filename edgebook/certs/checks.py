"""Checks of a certificate for the Exchange Edge role, returned as findings."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence

import idna
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgebook.certs.chain import build_chain, is_self_signed, system_roots
from edgebook.certs.load import CertificateBundle, CertificateError, key_matches
from edgebook.certs.names import (
    TLS_NAME_MAX,
    issuer_name,
    subject_name,
    thumbprint,
    tls_certificate_name,
    windows_name,
)
from edgebook.findings import Finding, Severity

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_HASHES = {"sha1", "md5"}
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS names of the Subject Alternative Name extension, in stored order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return san.value.get_values_for_type(x509.DNSName)


def common_names(cert: x509.Certificate) -> list[str]:
    """The subject's CN values (not used for name matching, shown for evidence)."""
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _normalise_fqdn(fqdn: str) -> str:
    name = fqdn.strip().rstrip(".")
    if not name or any(ch.isspace() for ch in name) or "*" in name or ".." in name:
        raise CertificateError(f"invalid FQDN {fqdn!r}: give a host name like mail.contoso.com")
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise CertificateError(f"invalid FQDN {fqdn!r}: {exc}") from exc


def matches_fqdn(pattern: str, fqdn: str) -> bool:
    """RFC 6125 matching of one SAN DNS name against an FQDN (whole-label left-most wildcard)."""
    host = _normalise_fqdn(fqdn).split(".")
    labels = pattern.strip().rstrip(".").lower().split(".")
    if "*" not in pattern:
        return labels == host
    wildcard_ok = labels[0] == "*" and "*" not in ".".join(labels[1:]) and len(labels) >= 3
    return wildcard_ok and len(host) == len(labels) and host[1:] == labels[1:] and bool(host[0])


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> int:
    """Whole days until the certificate expires (negative once expired)."""
    now = now or dt.datetime.now(dt.UTC)
    return math.floor((cert.not_valid_after_utc - now).total_seconds() / 86400)


def key_type(cert: x509.Certificate) -> tuple[str, int | None]:
    """('RSA' | 'EC' | 'DSA' | other algorithm name, key size in bits or None)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__.removesuffix("PublicKey").lstrip("_"), None


def key_description(cert: x509.Certificate) -> str:
    """A short text such as 'RSA 2048' or 'EC 256 (secp256r1)'."""
    kind, size = key_type(cert)
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {size} ({key.curve.name})"
    return f"{kind} {size}" if size else kind


def signature_hash(cert: x509.Certificate) -> str | None:
    """Name of the signature's hash algorithm ('sha256'), or None when there is none."""
    algorithm = cert.signature_hash_algorithm
    return algorithm.name if algorithm else None


_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}


def eku_oids(cert: x509.Certificate) -> list[str] | None:
    """Dotted EKU OIDs, or None when the certificate has no EKU extension (any purpose)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return None
    return [oid.dotted_string for oid in eku.value]


def eku_names(cert: x509.Certificate) -> list[str]:
    """EKU purposes by name ('serverAuth') or dotted OID; empty without the extension."""
    return [_EKU_NAMES.get(oid, oid) for oid in eku_oids(cert) or []]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _serial(cert: x509.Certificate) -> str:
    number = cert.serial_number
    return number.to_bytes(number.bit_length() // 8 + 1, "big", signed=True).hex().upper()


def describe(item: CertificateBundle | x509.Certificate) -> dict:
    """The `cert show --json` view of a certificate or a CertificateBundle."""
    cert = item.leaf if isinstance(item, CertificateBundle) else item
    if not isinstance(cert, x509.Certificate):
        raise TypeError("describe() takes an x509.Certificate or a CertificateBundle")
    kind, size = key_type(cert)
    view: dict = {
        "thumbprint": thumbprint(cert),
        "subject": subject_name(cert),
        "issuer": issuer_name(cert),
        "serial": _serial(cert),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "dns_names": dns_names(cert),
        "eku": eku_names(cert),
        "key_type": kind,
        "key_size": size,
        "signature_hash": signature_hash(cert),
        "self_signed": is_self_signed(cert),
        "tls_certificate_name": tls_certificate_name(cert),
    }
    if isinstance(item, CertificateBundle):
        view["has_private_key"] = item.private_key is not None
        view["chain"] = [describe(c) for c in item.chain]
    return view


def _finding(
    slug: str, severity: Severity, message: str, server: str | None, **evidence
) -> Finding:
    return Finding(slug, severity, message, server, evidence)


def _validity_findings(
    cert: x509.Certificate, now: dt.datetime, warning_days: int, server: str | None
) -> list[Finding]:
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    evidence = {"not_before": _iso(not_before), "not_after": _iso(not_after), "now": _iso(now)}
    if now > not_after:
        return [
            _finding(
                "cert-expired",
                Severity.ERROR,
                f"The certificate expired on {_iso(not_after)}: get a new one issued "
                "and replace it on the Edge before anything else.",
                server,
                **evidence,
            )
        ]
    if now < not_before:
        return [
            _finding(
                "cert-not-yet-valid",
                Severity.ERROR,
                f"The certificate is valid only from {_iso(not_before)}: wait until then, "
                "or check the clocks of the issuing CA and of this machine.",
                server,
                **evidence,
            )
        ]
    left = days_left(cert, now)
    if left < warning_days:
        return [
            _finding(
                "cert-expiring",
                Severity.WARNING,
                f"The certificate expires in {left} days ({_iso(not_after)}), within the "
                f"{warning_days}-day warning window: renew it now.",
                server,
                days_left=left,
                warning_days=warning_days,
                **evidence,
            )
        ]
    return []


def _san_findings(
    cert: x509.Certificate, fqdns: Iterable[str], server: str | None
) -> list[Finding]:
    names = dns_names(cert)
    findings = []
    for fqdn in fqdns:
        if any(matches_fqdn(pattern, fqdn) for pattern in names):
            continue
        in_cn = any(cn.lower() == _normalise_fqdn(fqdn) for cn in common_names(cert))
        hint = (
            " It appears only in the subject CN, which TLS clients ignore when a SAN exists."
            if in_cn
            else ""
        )
        findings.append(
            _finding(
                "san-missing-fqdn",
                Severity.ERROR,
                f"{fqdn} is not covered by the certificate's Subject Alternative Names.{hint} "
                "Request a certificate whose SAN lists it (a wildcard covers one label only).",
                server,
                fqdn=fqdn,
                dns_names=names,
                common_names=common_names(cert),
            )
        )
    return findings


def _key_findings(cert: x509.Certificate, server: str | None) -> list[Finding]:
    kind, size = key_type(cert)
    findings = []
    weak = size is not None and (
        (kind == "RSA" and size < MIN_RSA_BITS) or (kind == "EC" and size < MIN_EC_BITS)
    )
    if weak or kind == "DSA":
        findings.append(
            _finding(
                "weak-key",
                Severity.ERROR,
                f"The key is {key_description(cert)}: use RSA of at least {MIN_RSA_BITS} bits "
                f"or EC of at least {MIN_EC_BITS} bits (P-256 or P-384), then reissue.",
                server,
                key_type=kind,
                key_size=size,
            )
        )
    hash_name = signature_hash(cert)
    if hash_name in WEAK_HASHES:
        findings.append(
            _finding(
                "weak-signature",
                Severity.ERROR,
                f"The certificate is signed with {hash_name.upper()}, which TLS peers reject: "
                "have it reissued with SHA-256 or better.",
                server,
                signature_hash=hash_name,
            )
        )
    return findings


def _eku_findings(cert: x509.Certificate, server: str | None) -> list[Finding]:
    oids = eku_oids(cert)
    if oids is None or SERVER_AUTH in oids or "2.5.29.37.0" in oids:
        return []
    return [
        _finding(
            "eku-missing-server-auth",
            Severity.ERROR,
            "The Enhanced Key Usage lacks Server Authentication (1.3.6.1.5.5.7.3.1), so "
            "Exchange cannot offer it for STARTTLS: request it from a web-server template.",
            server,
            eku=eku_names(cert),
        )
    ]


def _chain_findings(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate] | None,
    server: str | None,
) -> list[Finding]:
    trust = list(roots) if roots is not None else list(system_roots())
    result = build_chain(cert, [c for c in chain if c != cert], trust)
    if result.trusted:
        return []
    store = "the supplied roots" if roots is not None else "the system trust store"
    path = [subject_name(c) for c in result.path]
    missing_issuer = windows_name(result.missing_issuer) if result.missing_issuer else None
    bad_signature = [subject_name(c) for c in result.bad_signature]
    evidence = {
        "path": path,
        "missing_issuer": missing_issuer,
        "bad_signature": bad_signature,
        "trust_anchors": store,
    }
    if bad_signature:
        message = (
            f"A certificate named {bad_signature[0]} is at hand but did not sign "
            f"{path[-1]} (signature check failed): it is a different or renewed CA "
            "certificate. Get the intermediate that really issued this certificate."
        )
        return [_finding("chain-incomplete", Severity.ERROR, message, server, **evidence)]
    if result.missing_issuer is not None:
        message = (
            f"No path to {store}: the issuer {missing_issuer} is missing. Add the "
            "intermediate certificate(s) from your CA to the chain (and to the Edge's store)."
        )
    else:
        message = (
            f"The chain ends at {path[-1]}, which is not in {store}: "
            "use a certificate from a CA that your partners trust, or supply the right root."
        )
    return [_finding("chain-incomplete", Severity.WARNING, message, server, **evidence)]


def _private_key_findings(
    cert: x509.Certificate,
    private_key: PrivateKeyTypes | None,
    has_private_key: bool | None,
    server: str | None,
) -> list[Finding]:
    if private_key is not None:
        if key_matches(private_key, cert):
            return []
        return [
            _finding(
                "private-key-mismatch",
                Severity.ERROR,
                "The private key does not belong to this certificate: find the key that "
                "was generated with its request (or re-key and reissue).",
                server,
            )
        ]
    if has_private_key is False:
        return [
            _finding(
                "private-key-missing",
                Severity.ERROR,
                "The certificate has no private key here, so it cannot serve TLS: complete "
                "the pending request on the machine that made it, or import the PFX.",
                server,
            )
        ]
    return []


def check_certificate(
    cert: x509.Certificate,
    *,
    fqdns: Iterable[str] = (),
    warning_days: int = 30,
    now: dt.datetime | None = None,
    chain: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] | None = None,
    private_key: PrivateKeyTypes | None = None,
    has_private_key: bool | None = None,
    server: str | None = None,
) -> list[Finding]:
    """Every finding for a certificate meant for the Edge (STARTTLS, EdgeSync, hybrid)."""
    now = now or dt.datetime.now(dt.UTC)
    findings = _validity_findings(cert, now, warning_days, server)
    findings += _san_findings(cert, fqdns, server)
    findings += _eku_findings(cert, server)
    findings += _key_findings(cert, server)
    if is_self_signed(cert):
        findings.append(
            _finding(
                "self-signed",
                Severity.INFO,
                "The certificate is self-signed. That is normal for the Edge's default "
                "(direct-trust) certificate; for STARTTLS with partners or Exchange Online "
                "use a certificate from a public CA.",
                server,
                subject=subject_name(cert),
            )
        )
    else:
        findings += _chain_findings(cert, chain, roots, server)
    findings += _private_key_findings(cert, private_key, has_private_key, server)
    name = tls_certificate_name(cert)
    if len(name) > TLS_NAME_MAX:
        findings.append(
            _finding(
                "tls-name-too-long",
                Severity.WARNING,
                f"The TlsCertificateName is {len(name)} characters; above {TLS_NAME_MAX} it is "
                "not replicated to the Edge (KB4052493). Use the connector's Fqdn with "
                "TlsCertificateName $null, or a certificate with a shorter issuer and subject.",
                server,
                tls_certificate_name=name,
                length=len(name),
                limit=TLS_NAME_MAX,
            )
        )
    return findings
