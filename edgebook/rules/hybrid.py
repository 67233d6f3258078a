"""Hybrid rules: the Outbound-to-Office-365 send connector (F16) and the Edge's default internal
receive connector (F17), as the HCW and KB3212872 expect them."""

from __future__ import annotations

from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts, SendConnectorFact
from edgebook.findings import Finding, Severity
from edgebook.rules.usage import (
    DEFAULT_RECEIVE_PREFIX,
    EXO_TLS_DOMAIN,
    is_default_receive,
    is_hybrid_connector,
    named_by,
    ps,
    public_certificates,
)


def _suggested_fqdn(org: OrgFacts, candidates: list[CertificateFact]) -> str:
    """An expected FQDN the certificates cover, else their first host name."""
    for fqdn in org.settings.expected_fqdns:
        if any(c.covers(fqdn) for c in candidates):
            return fqdn
    names = [d for c in candidates for d in c.domains if "*" not in d]
    return names[0] if names else "<name in the certificate>"


def _connector_certificates(
    org: OrgFacts, edge: EdgeFacts, connector: SendConnectorFact
) -> list[CertificateFact]:
    """The certificates the connector presents from this Edge: its TlsCertificateName's, else
    the Edge's public ones (with those whose Services are unknown: they may be)."""
    if connector.tls_certificate_name:
        named = [
            c
            for c in edge.certificates
            if named_by(connector.tls_certificate_name, c) and c.current(org.now)
        ]
        if named:
            return named
    return public_certificates(edge, org, maybe=True)


def _send_problems(
    org: OrgFacts, edges: list[EdgeFacts], connector: SendConnectorFact
) -> tuple[dict[str, list], dict[str, str]]:
    """(property -> [found, expected]) and the Set-SendConnector arguments that fix them."""
    problems: dict[str, list] = {}
    fixes: dict[str, str] = {}
    if connector.tls_domain.casefold() != EXO_TLS_DOMAIN:
        problems["TlsDomain"] = [connector.tls_domain, EXO_TLS_DOMAIN]
        fixes["TlsDomain"] = EXO_TLS_DOMAIN
    if connector.tls_auth_level.casefold() != "domainvalidation":
        problems["TlsAuthLevel"] = [connector.tls_auth_level, "DomainValidation"]
        fixes["TlsAuthLevel"] = "DomainValidation"
    for name, value in (
        ("RequireTLS", connector.require_tls),
        ("CloudServicesMailEnabled", connector.cloud_services_mail_enabled),
    ):
        if value is not True:
            problems[name] = [value, True]
            fixes[name] = "$true"
    sourced = [e for e in edges if e.named_in(connector.source_transport_servers)]
    uncovered = {}
    for edge in sourced:
        presented = _connector_certificates(org, edge, connector)
        if not any(c.covers(connector.fqdn) for c in presented):
            uncovered[edge.name] = _suggested_fqdn(org, presented)
    if uncovered:
        problems["Fqdn"] = [connector.fqdn, sorted(set(uncovered.values()))]
        fixes["Fqdn"] = next(iter(uncovered.values()))
    return problems, fixes


def _send_connector_findings(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    connectors = [c for c in org.send_connectors if is_hybrid_connector(c)]
    if not connectors:
        return [
            Finding(
                "hybrid-send-connector",
                Severity.ERROR,
                "Hybrid is expected, but no send connector routes to Exchange Online (address "
                "space *.mail.onmicrosoft.com or smart host *.mail.protection.outlook.com): "
                "rerun the Hybrid Configuration Wizard with the Edges as sending servers (F16).",
                None,
                {"send_connectors": [c.name for c in org.send_connectors]},
            )
        ]
    findings = []
    for connector in connectors:
        problems, fixes = _send_problems(org, edges, connector)
        if not problems:
            continue
        arguments = " ".join(f"-{name} {value}" for name, value in fixes.items())
        findings.append(
            Finding(
                "hybrid-send-connector",
                Severity.ERROR,
                f"Hybrid send connector {connector.name} is not as the HCW sets it (F16: mail "
                "from on-premises appears external in Exchange Online): wrong "
                f"{', '.join(problems)}. On a Mailbox server: Set-SendConnector -Identity "
                f"{ps(connector.name)} {arguments}; then Start-EdgeSynchronization -ForceFullSync "
                "(or rerun the HCW).",
                None,
                {"connector": connector.name, "problems": problems},
            )
        )
    return findings


def _capability_pairs(values: tuple[str, ...]) -> set[tuple[str, str]]:
    """('domain', 'capability') pairs of TlsDomainCapabilities entries 'domain:Cap1,Cap2'."""
    pairs = set()
    for entry in values:
        domain, _, caps = entry.partition(":")
        for cap in caps.split(","):
            if cap.strip():
                pairs.add((domain.strip().casefold(), cap.strip().casefold()))
    return pairs


def _receive_connector_findings(org: OrgFacts, edge: EdgeFacts) -> list[Finding]:
    expected_name = f"{DEFAULT_RECEIVE_PREFIX} {edge.name}"
    identity = f"{edge.name}\\{expected_name}"
    connector = next((c for c in edge.receive_connectors if is_default_receive(c, edge)), None)
    public = public_certificates(edge, org, maybe=True)  # Services unknown: may be in use
    fqdn = _suggested_fqdn(org, public)
    capability = org.settings.tls_domain_capabilities[0]
    if connector is None:
        return [
            Finding(
                "hybrid-receive-connector",
                Severity.ERROR,
                f"{edge.name} has no receive connector '{expected_name}', which Exchange Online "
                "delivers to in hybrid (F17). Recreate it on the Edge (New-ReceiveConnector, "
                f"bound to port 25) with -TlsDomainCapabilities {capability} -Fqdn {fqdn}.",
                edge.name,
                {"receive_connectors": [c.identity for c in edge.receive_connectors]},
            )
        ]
    problems: dict[str, list] = {}
    accepted = _capability_pairs(org.settings.tls_domain_capabilities)
    if not accepted & _capability_pairs(connector.tls_domain_capabilities):
        problems["TlsDomainCapabilities"] = [
            list(connector.tls_domain_capabilities),
            list(org.settings.tls_domain_capabilities),
        ]
    if not any(c.covers(connector.fqdn) for c in public):
        problems["Fqdn"] = [connector.fqdn, fqdn]
    if not problems:
        return []
    return [
        Finding(
            "hybrid-receive-connector",
            Severity.ERROR,
            f"Receive connector {connector.identity} lacks the hybrid settings (F17: mail from "
            f"Exchange Online is not treated as internal): wrong {', '.join(problems)}. On "
            f"{edge.name}: Set-ReceiveConnector -Identity {ps(connector.identity or identity)} "
            f"-TlsDomainCapabilities {capability} -Fqdn {fqdn}.",
            edge.name,
            {"connector": connector.identity, "problems": problems},
        )
    ]


def hybrid_rules(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Findings about the hybrid connectors; silent unless hybrid is expected."""
    if not org.settings.hybrid:
        return []
    findings = _send_connector_findings(org, edges) if org.gathered else []
    for edge in edges:
        findings += _receive_connector_findings(org, edge)
    return findings
