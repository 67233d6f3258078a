"""Findings: what is wrong (or worth knowing), where, what to do, and the evidence compared."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that max() gives the worst."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One result of a check, with a stable kebab-case slug."""

    slug: str
    severity: Severity
    message: str
    server: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: slug, severity (lower-case name), server, message, evidence."""
        return {
            "slug": self.slug,
            "severity": str(self.severity),
            "server": self.server,
            "message": self.message,
            "evidence": self.evidence,
        }


def worst(findings: list[Finding]) -> Severity | None:
    """The highest severity among findings, or None when there are none."""
    return max((f.severity for f in findings), default=None)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: -f.severity)


# Every slug edgebook emits, with a one-line description (docs/findings.md has the details).
CATALOGUE: dict[str, str] = {
    "cert-expired": "A certificate in use has expired (info when nothing uses it: remove it).",
    "cert-expiring": "A certificate in use expires within the warning window.",
    "cert-not-yet-valid": "A certificate in use is not valid yet (NotBefore in the future).",
    "cert-revoked": "Exchange reports a certificate in use as Revoked.",
    "cert-revocation-unknown": "Exchange could not check a certificate's revocation status.",
    "cert-facts-unknown": "Exchange's Services, Status or key facts of a certificate are unknown.",
    "san-missing-fqdn": "An expected FQDN is not in the public certificate's SAN.",
    "eku-missing-server-auth": "A certificate in use lacks the Server Authentication EKU.",
    "weak-key": "A certificate in use has a weak key (RSA < 2048, EC < 256, DSA).",
    "weak-signature": "A certificate in use is signed with SHA-1 or MD5.",
    "self-signed": "A certificate used for STARTTLS (not the default) is self-signed.",
    "private-key-missing": "A certificate in use has no private key on the server.",
    "private-key-mismatch": "A private key does not belong to the certificate.",
    "chain-incomplete": "The chain does not build to a trusted root (F6).",
    "duplicate-subject": "Two certificates with the same subject in an Edge's store (F2).",
    "edge-hub-clash": "The Edge default certificate is (or may become) a Mailbox one (F1).",
    "default-cert-missing": "The Edge default (internal transport) certificate is missing (F14).",
    "key-not-exportable": "The public certificate's private key cannot be exported (F5).",
    "edges-differ": "The Edges' public certificates differ in issuer and subject (F18).",
    "tls-name-stale": "A connector's TlsCertificateName matches no valid Edge certificate (F3).",
    "tls-name-too-long": "A TlsCertificateName is longer than 256 characters (F4).",
    "tls-name-cert-missing-on-mailbox": "No Mailbox server has the TlsCertificateName cert (F9).",
    "edge-not-in-send-connector": "A subscribed Edge is missing from a send connector (F10).",
    "smtp-not-enabled": "A receive connector selects a certificate not enabled for SMTP (F15).",
    "receive-fqdn-no-cert": "No certificate covers a receive connector's Fqdn (no STARTTLS).",
    "smtp-cert-mismatch": "Port 25 serves another certificate than configured (F11).",
    "starttls-not-offered": "The Edge does not offer STARTTLS on port 25.",
    "probe-failed": "An SMTP or LDAPS probe collected no certificate.",
    "hybrid-send-connector": "The Outbound-to-Office-365 connector lacks HCW settings (F16).",
    "hybrid-receive-connector": "The Edge receive connector lacks the hybrid settings (F17).",
    "edgesync-failing": "EdgeSync is not Normal, or an Edge has no valid subscription.",
    "ldaps-cert-mismatch": "AD LDS serves another certificate on 50636 than the default (F7).",
    "service-not-running": "MSExchangeTransport or ADAM_MSExchange is not running.",
    "queue-backlog": "A queue is in Retry or above the message threshold.",
    "health-degraded": "An EdgeTransport health monitor is not Healthy (F20).",
    "cert-warning-events": "Certificate events 12012-12024 in the window (F20).",
    "read-failed": "A cmdlet failed while gathering facts; dependent findings are missing.",
    "server-unreachable": "A server could not be reached over WinRM; its facts are missing.",
}
