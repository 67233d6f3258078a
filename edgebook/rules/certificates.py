"""Certificate rules: validity and quality of the certificates in use (via edgebook.certs),
duplicates (F2), the default certificate (F1, F14), exportability (F5) and Edges alike (F18)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from edgebook import certs
from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts
from edgebook.findings import Finding, Severity
from edgebook.rules.usage import Usage, public_certificates, usage

# check_certificate slugs the connector rules report better (with the connector's name).
_CONNECTOR_SLUGS = {"tls-name-too-long"}
# Exchange's CertificateStatus values that mean the chain does not build to a trusted root.
_UNTRUSTED = {"untrusted", "invalid"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _label(cert: CertificateFact) -> str:
    return f"{cert.thumbprint} ({cert.subject})"


def _served_chain(edge: EdgeFacts, cert: CertificateFact) -> list:
    """The chain as a probe saw it served, when the probe's leaf is this certificate."""
    for probe in (edge.smtp_probe, edge.ldaps_probe):
        if probe is not None and probe.ok and probe.thumbprint == cert.thumbprint:
            return list(probe.chain)
    return []


def _in_context(finding: Finding, edge: EdgeFacts, cert: CertificateFact, use: Usage) -> Finding:
    """A certs-level finding, told which certificate on which Edge and why it matters."""
    return dataclasses.replace(
        finding,
        server=edge.name,
        message=f"Certificate {_label(cert)} on {edge.name}, {use.describe()}: {finding.message}",
        evidence={
            "thumbprint": cert.thumbprint,
            "subject": cert.subject,
            "usage": use.to_dict(),
            **finding.evidence,
        },
    )


def _status_findings(edge: EdgeFacts, cert: CertificateFact, has: set[str]) -> list[Finding]:
    """What Exchange's own Status says (also when RawData was not read)."""
    status = (cert.status or "").casefold()
    evidence = {"thumbprint": cert.thumbprint, "subject": cert.subject, "status": cert.status}
    if status in _UNTRUSTED and "chain-incomplete" not in has:
        return [
            Finding(
                "chain-incomplete",
                Severity.ERROR,
                f"Exchange reports certificate {_label(cert)} on {edge.name} as {cert.status}: "
                "its chain does not build to a trusted root. Import the intermediate and root "
                "certificates of the CA (the PKCS#7 chain) into the Edge's computer store, "
                f"then check: Get-ExchangeCertificate -Thumbprint {cert.thumbprint} | fl Status.",
                edge.name,
                evidence,
            )
        ]
    if status == "revoked":
        return [
            Finding(
                "cert-revoked",
                Severity.ERROR,
                f"Exchange reports certificate {_label(cert)} on {edge.name} as Revoked: "
                "partners will refuse it. Get a new certificate issued and replace it.",
                edge.name,
                evidence,
            )
        ]
    if status == "revocationcheckfailure":
        return [
            Finding(
                "cert-revocation-unknown",
                Severity.WARNING,
                f"Exchange could not check revocation of certificate {_label(cert)} on "
                f"{edge.name} (RevocationCheckFailure): allow the Edge to reach the CA's CRL/OCSP "
                "URLs (often blocked in a DMZ), or peers may distrust it.",
                edge.name,
                evidence,
            )
        ]
    return []


def _exchange_expiry(edge: EdgeFacts, cert: CertificateFact) -> list[Finding]:
    """Without RawData, Exchange's Status DateInvalid is the expiry verdict."""
    if cert.cert is not None or (cert.status or "").casefold() != "dateinvalid":
        return []
    return [
        Finding(
            "cert-expired",
            Severity.ERROR,
            "Exchange reports the certificate as DateInvalid (expired or not yet valid): "
            "replace it before anything else.",
            edge.name,
            {
                "status": cert.status,
                "not_after": cert.not_after.isoformat() if cert.not_after else None,
            },
        )
    ]


def _unused_expired(edge: EdgeFacts, cert: CertificateFact, found: list[Finding]) -> list[Finding]:
    return [
        Finding(
            "cert-expired",
            Severity.INFO,
            f"Certificate {_label(cert)} on {edge.name} has expired and nothing uses it: remove "
            f"it (with the Edge drained, see duplicate-subject) with Remove-ExchangeCertificate "
            f"-Thumbprint {cert.thumbprint}.",
            edge.name,
            {"thumbprint": cert.thumbprint, "subject": cert.subject, **f.evidence},
        )
        for f in found
        if f.slug == "cert-expired"
    ]


def _mailbox_copies(org: OrgFacts, cert: CertificateFact) -> dict[str, bool | None]:
    """The Mailbox servers holding the same certificate: is its key exportable there (None:
    unknown)?"""
    return {
        server.name: held.private_key_exportable
        for server in org.mailbox_servers
        for held in server.certificates
        if held.thumbprint == cert.thumbprint
    }


def _key_not_exportable(
    org: OrgFacts, edge: EdgeFacts, cert: CertificateFact, use: Usage
) -> list[Finding]:
    public = not cert.is_self_signed and (use.smtp or use.named_by or use.selected_by)
    if not public or cert.private_key_exportable is not False:
        return []
    evidence = {"thumbprint": cert.thumbprint, "subject": cert.subject, "exportable": False}
    copies = _mailbox_copies(org, cert)
    copy = next((server for server, exportable in copies.items() if exportable), None)
    if copy is None and None in copies.values():
        return []  # a Mailbox copy's exportability is unknown: cert-facts-unknown says so
    if copy:
        return [
            Finding(
                "key-not-exportable",
                Severity.INFO,
                f"The private key of {_label(cert)} on {edge.name} is not exportable, as "
                f"recommended; an exportable copy is installed on {copy}, so a PFX can be made "
                "there for the Mailbox import (F9) and for disaster recovery.",
                edge.name,
                {**evidence, "exportable_on": copy},
            )
        ]
    return [
        Finding(
            "key-not-exportable",
            Severity.WARNING,
            f"The private key of {_label(cert)} on {edge.name} is not exportable and no Mailbox "
            "server holds an exportable copy, so no PFX can be made for the import on a Mailbox "
            "server (needed to set TlsCertificateName, F9) or for disaster recovery. At the next "
            "renewal request the certificate with -PrivateKeyExportable $true on an internal "
            "server, keep the PFX safe, and import it on the Edge non-exportable.",
            edge.name,
            evidence,
        )
    ]


def _certificate_findings(org: OrgFacts, edge: EdgeFacts, cert: CertificateFact) -> list[Finding]:
    settings = org.settings
    use = usage(org, edge, cert)
    chain = _served_chain(edge, cert)
    found = _exchange_expiry(edge, cert)
    if cert.cert is not None:
        found = certs.check_certificate(
            cert.cert,
            fqdns=() if cert.is_self_signed else settings.expected_fqdns,
            warning_days=settings.warning_days,
            now=settings.now,
            chain=chain,
            roots=settings.roots,
            has_private_key=cert.has_private_key,
            server=edge.name,
        )
    if not use.in_use:
        # Services unknown: it may be in use, so it is not called unused (cert-facts-unknown)
        return [] if use.maybe_in_use else _unused_expired(edge, cert, found)
    kept = [
        f
        for f in found
        if f.slug not in _CONNECTOR_SLUGS
        # The store's chain is not read: judge the chain only as it was served.
        and (f.slug != "chain-incomplete" or chain)
        and (f.slug != "self-signed" or not use.default)
    ]
    result = [_in_context(f, edge, cert, use) for f in kept]
    result += _status_findings(edge, cert, {f.slug for f in kept})
    return result + _key_not_exportable(org, edge, cert, use)


def _duplicate_subjects(edge: EdgeFacts) -> list[Finding]:
    groups: dict[str, list[CertificateFact]] = defaultdict(list)
    for cert in edge.certificates:
        groups[cert.subject.casefold()].append(cert)
    findings = []
    for group in groups.values():
        if len(group) < 2:
            continue
        keep = max(
            group,
            key=lambda c: (c.thumbprint == edge.default_thumbprint, c.not_after or _EPOCH),
        )
        same_issuer = len({c.issuer.casefold() for c in group}) == 1
        removes = "; ".join(
            f"Remove-ExchangeCertificate -Thumbprint {c.thumbprint}" for c in group if c is not keep
        )
        findings.append(
            Finding(
                "duplicate-subject",
                Severity.ERROR,
                f"{len(group)} certificates on {edge.name} have the subject {group[0].subject}"
                + (" and the same issuer" if same_issuer else "")
                + ": the Edge may drop SMTP sessions after the banner (451 4.4.395 … 421 4.1.1, "
                "F2) and a TlsCertificateName becomes ambiguous. Drain the Edge "
                "(Suspend-Service MSExchangeTransport, watch Get-Queue), keep "
                f"{keep.thumbprint} and remove the other(s): {removes}; then resume.",
                edge.name,
                {
                    "subject": group[0].subject,
                    "same_issuer": same_issuer,
                    "certificates": [
                        {
                            "thumbprint": c.thumbprint,
                            "issuer": c.issuer,
                            "not_after": c.not_after.isoformat() if c.not_after else None,
                        }
                        for c in group
                    ],
                    "keep": keep.thumbprint,
                },
            )
        )
    return findings


def _default_certificate(org: OrgFacts, edge: EdgeFacts) -> list[Finding]:
    default = edge.default_thumbprint
    if default is None:
        return []
    evidence = {
        "default_thumbprint": default,
        "installed": [c.thumbprint for c in edge.certificates],
    }
    if not default or edge.certificate(default) is None:
        what = f"{default} is not in its store" if default else "none is configured"
        return [
            Finding(
                "default-cert-missing",
                Severity.ERROR,
                f"{edge.name}'s default (internal transport) certificate {what} (F14): transport "
                "to the Mailbox servers fails (454 4.7.0, event 12013). On the Edge create a new "
                "self-signed one with New-ExchangeCertificate and answer Yes to replacing the "
                "default SMTP certificate, then resubscribe the Edge (New-EdgeSubscription "
                "-FileName on the Edge, New-EdgeSubscription -FileData … -Site … on a Mailbox "
                "server).",
                edge.name,
                evidence,
            )
        ]
    findings = []
    for mailbox in org.mailbox_servers:
        if mailbox.internal_thumbprint == default:
            findings.append(
                Finding(
                    "edge-hub-clash",
                    Severity.ERROR,
                    f"{edge.name}'s default certificate {default} is also the internal transport "
                    f"certificate of Mailbox server {mailbox.name} (F1): the Edge Subscription "
                    "cannot load ('direct trust certificate … is a duplicate'). Keep a distinct "
                    f"certificate on each side: on {mailbox.name} make its own self-signed "
                    "certificate the default again (New-ExchangeCertificate, answer Yes), or give "
                    "the Edge a new self-signed default and resubscribe.",
                    edge.name,
                    {"default_thumbprint": default, "mailbox": mailbox.name},
                )
            )
        elif any(c.thumbprint == default for c in mailbox.certificates):
            findings.append(
                Finding(
                    "edge-hub-clash",
                    Severity.WARNING,
                    f"{edge.name}'s default certificate {default} is installed on Mailbox server "
                    f"{mailbox.name}. Never enable it for SMTP there with -Force or a Yes to "
                    "replacing the default (F1, F12): the subscription would fail to load.",
                    edge.name,
                    {"default_thumbprint": default, "mailbox": mailbox.name},
                )
            )
    return findings


def _edges_differ(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    names = {
        edge.name: {c.tls_certificate_name.casefold(): c for c in public_certificates(edge, org)}
        for edge in edges
    }
    names = {edge: found for edge, found in names.items() if found}
    # a certificate whose Services are unknown may be in use: it may be the common one
    maybe = {
        edge.name: {
            c.tls_certificate_name.casefold() for c in public_certificates(edge, org, maybe=True)
        }
        for edge in edges
        if edge.name in names
    }
    if len(names) < 2 or set.intersection(*maybe.values()):
        return []
    in_use = {
        edge: sorted(c.tls_certificate_name for c in found.values())
        for edge, found in names.items()
    }
    listing = "; ".join(f"{edge}: {' | '.join(found)}" for edge, found in in_use.items())
    return [
        Finding(
            "edges-differ",
            Severity.ERROR if org.settings.hybrid else Severity.INFO,
            "The Edges use public certificates with different issuer and subject (F18), but one "
            "TlsCertificateName applies to all Edges of a send connector. Install on every Edge "
            "a certificate with the same issuer and subject (the same certificate, or one from "
            f"the same CA with the same subject). In use: {listing}.",
            None,
            {"certificates": in_use},
        )
    ]


# What cannot be judged without each of Exchange's properties (cert-facts-unknown).
_NEEDED_FOR = {
    "Services": "whether it is enabled for SMTP and so in use (smtp-not-enabled; the checks "
    "of a certificate in use)",
    "Status": "Exchange's verdict on its chain and revocation (chain-incomplete, cert-revoked)",
    "HasPrivateKey": "whether it has a private key (private-key-missing)",
    "PrivateKeyExportable": "whether its key can be exported (key-not-exportable, F5)",
}


def _unknown_facts(server: str, certificates: list[CertificateFact]) -> list[Finding]:
    """A certificate whose Exchange view did not arrive: say which checks were not made."""
    findings = []
    for cert in certificates:
        missing = cert.unknown()
        if not missing:
            continue
        checks = [_NEEDED_FOR[name] for name in missing]
        findings.append(
            Finding(
                "cert-facts-unknown",
                Severity.WARNING,
                f"Exchange's {', '.join(missing)} of certificate {_label(cert)} on {server} did "
                f"not arrive, so these are unknown: {'; '.join(checks)}. Over remote PowerShell "
                "a certificate carries only RawData unless these are selected on the server "
                "(Get-ExchangeCertificate | Select-Object -Property …). Inspect again; if it "
                "persists, check that the account may run Select-Object on that server.",
                server,
                {"thumbprint": cert.thumbprint, "subject": cert.subject, "unknown": list(missing)},
            )
        )
    return findings


def certificate_rules(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Findings about the certificates of each Edge and across Edges."""
    findings = []
    for mailbox in org.mailbox_servers:
        findings += _unknown_facts(mailbox.name, mailbox.certificates)
    for edge in edges:
        findings += _unknown_facts(edge.name, edge.certificates)
        for cert in edge.certificates:
            findings += _certificate_findings(org, edge, cert)
        findings += _duplicate_subjects(edge)
        findings += _default_certificate(org, edge)
    return findings + _edges_differ(org, edges)
