"""Phase 02's certificate: where it comes from (route pfx, csr or edge-request), whether it is
fit for the Edge, and what it means against what is installed (F1, F2, F4, F18, KB2989382)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from edgebook import certs
from edgebook.certs import CertificateError
from edgebook.certs.identity import CertificateIdentity
from edgebook.change.values import FileBytes, Secret
from edgebook.config import Inventory
from edgebook.errors import ConfigError, EdgebookError
from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts
from edgebook.findings import Finding, Severity
from edgebook.secrets import resolve_secret

ROUTES = ("pfx", "csr", "edge-request")
CERTIFICATE_ONLY, RESUBSCRIBE = "certificate-only", "resubscribe"


class PrepareRefused(EdgebookError):
    """The certificate cannot be prepared for this Edge; nothing was changed."""


@dataclass
class Candidate(CertificateIdentity):
    """The new certificate: the X.509, its chain, and the file the Mailbox import reads."""

    cert: x509.Certificate
    chain: list[x509.Certificate]
    file: FileBytes  # the PFX (pfx, csr) or the bare certificate (edge-request)
    password: Secret | None
    route: str
    has_key: bool

    def to_dict(self) -> dict[str, Any]:
        """What phase 03 takes from the records (no key material)."""
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_after": self.cert.not_valid_after_utc.isoformat(),
            "tls_certificate_name": self.tls_name,
            "route": self.route,
            "file": self.file.path if self.file else None,
            "file_sha256": self.file.sha256 if self.file else None,
            "password": self.password.reference if self.password else None,
        }


@dataclass
class Assessment:
    """The certificate against the organisation: findings, refusals, consequences, route."""

    findings: list[Finding] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    consequences: list[str] = field(default_factory=list)
    current: CertificateFact | None = None
    phase03: str = CERTIFICATE_ONLY
    phase03_reasons: list[str] = field(default_factory=list)

    def route_record(self) -> dict[str, Any]:
        """The route chosen for phase 03, with its reasons."""
        return {"route": self.phase03, "reasons": list(self.phase03_reasons)}


def _secret(reference: str | None, what: str) -> str:
    if not reference:
        raise ConfigError(f"{what}: give pfx_password as a reference (env:NAME, file:PATH, ...)")
    return resolve_secret(reference, what=what)


def load_pfx(path: Path, reference: str | None, chain: Path | None) -> Candidate:
    """Route pfx: the PFX (with its key) and its chain, opened here to be checked."""
    password = _secret(reference, f"the password of {path}")
    try:
        bundle = certs.load_certificates(path, password)
        extra = certs.load_certificate_list(chain) if chain else []
    except CertificateError as exc:
        raise PrepareRefused(str(exc)) from None
    if bundle.private_key is None:
        raise PrepareRefused(
            f"{path}: the PFX holds no private key, so the Edge could not serve TLS with it: "
            "export the certificate again with its private key"
        )
    if not certs.key_matches(bundle.private_key, bundle.leaf):
        raise PrepareRefused(f"{path}: the private key does not belong to the certificate")
    return Candidate(
        bundle.leaf,
        [*bundle.chain, *[c for c in extra if c not in bundle.chain]],
        FileBytes.of(path),
        Secret(reference or "", f"the password of {path.name}"),
        "pfx",
        True,
    )


def load_issued(path: Path, chain: Path | None, route: str) -> tuple[x509.Certificate, list]:
    """An issued certificate (PEM, DER or PKCS#7 with its chain) for routes csr/edge-request."""
    try:
        bundle = certs.load_certificates(path)
        extra = certs.load_certificate_list(chain) if chain else []
    except CertificateError as exc:
        raise PrepareRefused(str(exc)) from None
    if bundle.private_key is not None:
        raise PrepareRefused(f"{path}: route {route} expects the issued certificate, not a key")
    return bundle.leaf, [*bundle.chain, *[c for c in extra if c not in bundle.chain]]


def cert_file(cert: x509.Certificate, chain: list[x509.Certificate], folder: Path) -> FileBytes:
    """The certificate and its chain without a key, as PKCS#7 (DER): what Import-ExchangeCertificate
    reads besides a PFX, for the Mailbox import of route edge-request."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{certs.thumbprint(cert)}.p7b"
    if not path.exists():
        path.write_bytes(pkcs7.serialize_certificates([cert, *chain], serialization.Encoding.DER))
    return FileBytes.of(path)


def read_request(text: str, what: str) -> x509.CertificateSigningRequest:
    """The PKCS#10 request New-ExchangeCertificate -GenerateRequest returned: Base64 text, with
    or without BEGIN/END lines (Windows frames it as a NEW CERTIFICATE REQUEST)."""
    body = "".join(
        line.strip() for line in text.splitlines() if line.strip() and "-----" not in line
    )
    try:
        request = x509.load_der_x509_csr(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise PrepareRefused(f"{what}: not a Base64 PKCS#10 certificate request ({exc})") from None
    if not request.is_signature_valid:
        raise PrepareRefused(f"{what}: the request's signature does not verify")
    return request


def write_request(request: x509.CertificateSigningRequest, path: Path) -> Path:
    """The request as PEM, for the CA (public: no key in it); an existing file is kept."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(request.public_bytes(serialization.Encoding.PEM))
    return path


def validate(
    candidate: Candidate, inventory: Inventory, edge: EdgeFacts, now: dt.datetime, roots: Any
) -> list[Finding]:
    """edgebook.certs' findings for the new certificate (names: change.expected_fqdns, else the
    Edge's FQDN)."""
    fqdns = inventory.change.expected_fqdns or (edge.fqdn,)
    return certs.check_certificate(
        candidate.cert,
        fqdns=fqdns,
        warning_days=inventory.change.warning_days,
        now=now,
        chain=candidate.chain,
        roots=list(roots) if roots is not None else None,
        has_private_key=candidate.has_key,
        server=edge.name,
    )


def current_certificate(edge: EdgeFacts, org: OrgFacts) -> CertificateFact | None:
    """The public certificate the Edge uses now: the one the connectors name, else the newest
    non-self-signed SMTP certificate."""
    names = {c.tls_certificate_name for c in edge.receive_connectors if c.tls_certificate_name}
    names |= {c.tls_certificate_name for c in org.send_connectors if c.tls_certificate_name}
    public = [c for c in edge.certificates if not c.is_self_signed and c.status != "PendingRequest"]
    named = [c for c in public if c.tls_certificate_name in names]
    smtp = [c for c in public if c.smtp]
    pool = named or smtp
    return (
        max(pool, key=lambda c: c.not_after or dt.datetime.min.replace(tzinfo=dt.UTC))
        if pool
        else None
    )


def assess(
    candidate: Candidate,
    findings: list[Finding],
    edge: EdgeFacts,
    org: OrgFacts,
    other_edges: list[EdgeFacts],
) -> Assessment:
    """Refusals (errors, an incomplete chain, F1), consequences (F2, F4, F18) and the route for
    phase 03 (KB2989382: certificate only unless the default must change or EdgeSync fails)."""
    result = Assessment(findings=findings, current=current_certificate(edge, org))
    for finding in findings:
        if finding.severity == Severity.ERROR or finding.slug == "chain-incomplete":
            result.refusals.append(f"{finding.slug}: {finding.message}")
    thumb = candidate.thumbprint
    for mailbox in org.mailbox_servers:
        if mailbox.internal_thumbprint == thumb:
            result.refusals.append(
                f"edge-hub-clash (F1): {thumb} is the default transport certificate of Mailbox "
                f"server {mailbox.name}; an Edge must never share it (the subscription would fail "
                "to load). Use another certificate for the Edge"
            )
    _names(candidate, result)
    same_subject = [
        c
        for c in edge.certificates
        if c.subject == candidate.subject and c.thumbprint != thumb and c.status != "PendingRequest"
    ]
    if same_subject:
        listed = ", ".join(c.thumbprint for c in same_subject)
        result.consequences.append(
            f"F2: {edge.name} holds {listed} with the same subject; phase 03 imports the new one "
            "with the Edge drained and removes the old one before it resumes transport"
        )
    if edge.certificate(thumb) is not None:
        result.consequences.append(f"{thumb} is already installed on {edge.name}")
    for other in other_edges:
        theirs = current_certificate(other, org)
        if theirs and (theirs.issuer, theirs.subject) != (candidate.issuer, candidate.subject):
            result.consequences.append(
                f"F18: {other.name} uses {theirs.tls_certificate_name}; one TlsCertificateName "
                f"serves every Edge, so {other.name} needs a certificate with the same issuer and "
                "subject (prepare it in this change too)"
            )
    _route(edge, org, result)
    return result


def _names(candidate: Candidate, result: Assessment) -> None:
    current = result.current
    name = candidate.tls_name
    if current and (current.issuer, current.subject) == (candidate.issuer, candidate.subject):
        result.consequences.append(
            f"same issuer and subject as {current.thumbprint}: TlsCertificateName stays {name}"
        )
        return
    result.consequences.append(
        f"new TlsCertificateName {name} ({len(name)} characters): phase 03 sets it on the hybrid "
        "send connector (on a Mailbox server, after this staging: F9) and on the Edge's receive "
        "connector"
    )
    if len(name) > certs.TLS_NAME_MAX:
        result.consequences.append(
            f"F4: {len(name)} characters exceed {certs.TLS_NAME_MAX}: the name would not replicate "
            "to the Edge; use the connector's Fqdn with TlsCertificateName $null, or a shorter "
            "certificate"
        )


def _route(edge: EdgeFacts, org: OrgFacts, result: Assessment) -> None:
    reasons = []
    default = edge.certificate(edge.default_thumbprint)
    if edge.default_thumbprint and default is None:
        reasons.append(
            f"F14: the default certificate {edge.default_thumbprint} is not in the store"
        )
    if default is not None and default.is_self_signed is False:
        reasons.append(
            f"F12 already happened: the default {default.thumbprint} is a public certificate"
        )
    for status in org.edgesync:
        if edge.is_named(status.name) and status.sync_status not in ("Normal", ""):
            reasons.append(
                f"EdgeSync to {edge.name} is {status.sync_status}: {status.failure_detail}"
            )
    if reasons:
        result.phase03, result.phase03_reasons = RESUBSCRIBE, reasons
    else:
        result.phase03_reasons = [
            "only the public STARTTLS certificate changes and the Edge default stays "
            "(KB2989382): no resubscription; phase 03 imports and enables it answering No, sets "
            "TlsCertificateName and restarts transport"
        ]
