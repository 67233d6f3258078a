"""SMTP receive rules: what each receive connector selects (F15), and what port 25 serves
compared with it (F11)."""

from __future__ import annotations

from edgebook.facts import EdgeFacts, OrgFacts, ProbeResult
from edgebook.findings import Finding, Severity
from edgebook.rules.usage import Selection, ps, receive_selection, smtp_receive_connectors

SMTP_PORT = 25


def probe_port(probe: ProbeResult, default: int) -> int:
    """The port of a probe's 'host:port' target."""
    _, _, port = str(probe.target).rpartition(":")
    return int(port) if port.isdigit() else default


def probe_failed(edge: EdgeFacts, probe: ProbeResult, what: str) -> Finding:
    """A probe that collected no certificate: nothing served could be compared."""
    return Finding(
        "probe-failed",
        Severity.WARNING,
        f"The {what} probe of {edge.name} at {probe.target} failed ({probe.error}), so the "
        "certificate it serves could not be compared with the configuration. Check that this "
        "machine can reach the port (DMZ firewall) and that the service is running.",
        edge.name,
        {"target": str(probe.target), "error": probe.error},
    )


def _selection_finding(edge: EdgeFacts, selection: Selection) -> Finding | None:
    connector = selection.connector
    if selection.eligible or selection.unknown:
        return None  # usable, or Services unknown (cert-facts-unknown says what was not checked)
    if selection.unusable:
        cert = selection.unusable[0]
        by_name = selection.by == "TlsCertificateName"
        return Finding(
            "smtp-not-enabled",
            Severity.WARNING if by_name else Severity.ERROR,
            f"Receive connector {connector.identity} selects certificate {cert.thumbprint} "
            f"({cert.subject}) by its {selection.by} {selection.key}, but the certificate is not "
            f"enabled for SMTP (F15: STARTTLS fails, 421 4.4.1 / UnknownCredentials). On "
            f"{edge.name}: Enable-ExchangeCertificate -Thumbprint {cert.thumbprint} -Services "
            "SMTP, and answer No when asked to replace the default SMTP certificate (F12).",
            edge.name,
            {
                "connector": connector.identity,
                "by": selection.by,
                "key": selection.key,
                "thumbprint": cert.thumbprint,
                "services": list(cert.services or ()),
            },
        )
    if selection.by == "Fqdn":
        return Finding(
            "receive-fqdn-no-cert",
            Severity.ERROR,
            f"No current certificate with a private key on {edge.name} covers {selection.key}, "
            f"the Fqdn of receive connector {connector.identity}: STARTTLS is not offered there "
            "(event 12014). Install and enable for SMTP a certificate whose SAN lists it, or "
            f"set the Fqdn to a name the certificate has: Set-ReceiveConnector -Identity "
            f"{ps(connector.identity)} -Fqdn <name in the certificate>.",
            edge.name,
            {"connector": connector.identity, "fqdn": selection.key},
        )
    return None  # a TlsCertificateName with no match: tls-name-stale says it


def _served(org: OrgFacts, edge: EdgeFacts, probe: ProbeResult) -> list[Finding]:
    if getattr(probe, "starttls_offered", None) is False and getattr(probe, "banner", None):
        return [
            Finding(
                "starttls-not-offered",
                Severity.ERROR,
                f"{edge.name} does not offer STARTTLS at {probe.target}: transport found no "
                "certificate for the receive connector (event 12014; F3 stale TlsCertificateName, "
                "F15 not enabled for SMTP, or an Fqdn no certificate covers). Fix what the other "
                f"findings name, then Restart-Service MSExchangeTransport on {edge.name}.",
                edge.name,
                {"target": str(probe.target), "ehlo": list(getattr(probe, "ehlo", []) or [])},
            )
        ]
    if not probe.ok or not probe.thumbprint:
        return [probe_failed(edge, probe, "SMTP STARTTLS")]
    port = probe_port(probe, SMTP_PORT)
    selections = [receive_selection(edge, c, org) for c in smtp_receive_connectors(edge, port)]
    expected = {c.thumbprint: c for s in selections if s for c in s.eligible}
    maybe = {c.thumbprint for s in selections if s for c in s.unknown}
    if not expected or probe.thumbprint in expected or probe.thumbprint in maybe:
        return []
    served = edge.certificate(probe.thumbprint)
    state = "is installed" if served else "is no longer installed"
    best = next(iter(expected.values()))
    return [
        Finding(
            "smtp-cert-mismatch",
            Severity.ERROR,
            f"{edge.name} serves certificate {probe.thumbprint} on port {port}, which {state} "
            f"and is not what the receive connector configuration selects ({best.thumbprint}, "
            f"{best.subject}). Transport loads its certificates at start (F11): drain the Edge "
            f"and Restart-Service MSExchangeTransport on {edge.name}, then probe again.",
            edge.name,
            {
                "served": probe.thumbprint,
                "expected": list(expected),
                "connectors": [s.connector.identity for s in selections if s],
            },
        )
    ]


def smtp_rules(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Findings about the receive side: selection by connector and what port 25 serves."""
    findings = []
    for edge in edges:
        for connector in edge.receive_connectors:
            selection = receive_selection(edge, connector, org) if connector.enabled else None
            found = _selection_finding(edge, selection) if selection else None
            findings += [found] if found else []
        if edge.smtp_probe is not None:
            findings += _served(org, edge, edge.smtp_probe)
    return findings
