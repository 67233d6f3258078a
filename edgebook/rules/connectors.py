"""Connector rules: stale (F3) and too long (F4) TlsCertificateName values, the certificate the
change needs on a Mailbox server (F9), and Edges missing from send connectors (F10)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.x509.oid import NameOID

from edgebook import certs
from edgebook.facts import (
    CertificateFact,
    EdgeFacts,
    OrgFacts,
    ReceiveConnectorFact,
    SendConnectorFact,
    any_same_server,
)
from edgebook.findings import Finding, Severity
from edgebook.rules.usage import (
    edge_send_connectors,
    is_hybrid_connector,
    is_inbound_connector,
    named_by,
    parse_name,
    ps,
)


def _common_names(subject: str) -> list[str]:
    try:
        name = certs.parse_windows_name(subject)
    except certs.CertificateError:
        return []
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def replacement(edge: EdgeFacts, text: str, org: OrgFacts) -> CertificateFact | None:
    """The current certificate on the Edge that a stale TlsCertificateName most likely meant:
    the same subject (a new issuer, F3), else one covering the subject's CN; CA-issued first."""
    parts = parse_name(text)
    if parts is None:
        return None
    current = [c for c in edge.certificates if c.current(org.now) and not named_by(text, c)]
    same_subject = [c for c in current if c.subject.casefold() == parts[1].casefold()]
    covering = [c for c in current if any(c.covers(cn) for cn in _common_names(parts[1]))]
    found = same_subject or covering
    if not found:
        return None
    return max(found, key=lambda c: (not c.is_self_signed, c.smtp, c.not_after or org.now))


@dataclass(frozen=True)
class _Named:
    """A connector with a TlsCertificateName, as one Edge uses it."""

    kind: str  # "send" or "receive"
    identity: str
    text: str


def _named_connectors(org: OrgFacts, edge: EdgeFacts) -> list[_Named]:
    """Send connectors the Edge sources (the org's, and replicas that differ) and its receive
    connectors, each with a TlsCertificateName."""
    found: dict[tuple[str, str], _Named] = {}
    send = [*edge_send_connectors(org, edge), *edge.send_connectors]
    for connector in send:
        if connector.tls_certificate_name:
            key = (connector.name.casefold(), connector.tls_certificate_name.casefold())
            found.setdefault(key, _Named("send", connector.name, connector.tls_certificate_name))
    for receive in edge.receive_connectors:
        if receive.enabled and receive.tls_certificate_name:
            key = ("receive:" + receive.identity.casefold(), receive.tls_certificate_name)
            found.setdefault(key, _Named("receive", receive.identity, receive.tls_certificate_name))
    return list(found.values())


def _fix(named: _Named, edge: EdgeFacts, new_name: str) -> str:
    if named.kind == "send":
        return (
            f"On a Mailbox server that has this certificate installed (F9): Set-SendConnector "
            f"-Identity {ps(named.identity)} -TlsCertificateName {ps(new_name)}; then "
            f"Start-EdgeSynchronization -TargetServer {edge.name} -ForceFullSync and, once "
            f"replicated, Restart-Service MSExchangeTransport on {edge.name}."
        )
    return (
        f"On {edge.name}: Set-ReceiveConnector -Identity {ps(named.identity)} "
        f"-TlsCertificateName {ps(new_name)}; then Restart-Service MSExchangeTransport."
    )


def _stale(org: OrgFacts, edge: EdgeFacts, named: _Named) -> Finding | None:
    what = f"The TlsCertificateName of {named.kind} connector {named.identity}"
    evidence: dict[str, object] = {
        "connector": named.identity,
        "kind": named.kind,
        "tls_certificate_name": named.text,
    }
    if parse_name(named.text) is None:
        return Finding(
            "tls-name-stale",
            Severity.ERROR,
            f"{what} is not of the form '<I>issuer<S>subject', so no certificate matches it on "
            f"{edge.name}. Set it again from the certificate: $c = Get-ExchangeCertificate "
            '-Thumbprint <thumbprint>; "<I>$($c.Issuer)<S>$($c.Subject)".',
            edge.name,
            evidence,
        )
    matching = [c for c in edge.certificates if named_by(named.text, c)]
    if any(c.current(org.now) for c in matching):
        return None
    better = replacement(edge, named.text, org)
    if matching and better is None:
        return None  # only an expired match and nothing newer: cert-expired explains it
    evidence |= {
        "matching_installed": [
            {
                "thumbprint": c.thumbprint,
                "not_after": c.not_after.isoformat() if c.not_after else None,
            }
            for c in matching
        ],
        "proposed": better.tls_certificate_name if better else None,
        "proposed_thumbprint": better.thumbprint if better else None,
    }
    state = (
        "only expired certificates match it" if matching else "no installed certificate matches it"
    )
    if better is None:
        advice = (
            "Install the certificate it names (with its chain), or set TlsCertificateName to "
            "the issuer and subject of a certificate installed on every Edge."
        )
    else:
        advice = (
            f"Certificate {better.thumbprint} ({better.subject}, issued by {better.issuer}) "
            f"would match with TlsCertificateName {better.tls_certificate_name}. "
            + _fix(named, edge, better.tls_certificate_name)
        )
    return Finding(
        "tls-name-stale",
        Severity.ERROR,
        f"{what} is {named.text!r}, but on {edge.name} {state} (F3: sessions fail with 454 4.7.5 "
        f"or STARTTLS is not offered, event 12014). {advice}",
        edge.name,
        evidence,
    )


def _too_long(connectors: list[SendConnectorFact], edges: list[EdgeFacts]) -> list[Finding]:
    findings = []
    for connector in connectors:
        text = connector.tls_certificate_name or ""
        if len(text) > certs.TLS_NAME_MAX:
            findings.append(
                Finding(
                    "tls-name-too-long",
                    Severity.ERROR,
                    f"The TlsCertificateName of send connector {connector.name} is {len(text)} "
                    f"characters; above {certs.TLS_NAME_MAX} EdgeSync does not replicate it "
                    "(F4, KB4052493: Start-EdgeSynchronization 'Incomplete'). Use the "
                    f"connector's Fqdn instead (Set-SendConnector -Identity {ps(connector.name)} "
                    "-TlsCertificateName $null -Fqdn <name in the certificate>), raise rangeUpper "
                    "of ms-Exch-Smtp-TLS-Certificate in AD LDS, or use a certificate with shorter "
                    "names.",
                    None,
                    {"connector": connector.name, "length": len(text), "limit": certs.TLS_NAME_MAX},
                )
            )
    for edge in edges:
        for receive in edge.receive_connectors:
            text = receive.tls_certificate_name or ""
            if len(text) > certs.TLS_NAME_MAX:
                findings.append(_receive_too_long(edge, receive, text))
    return findings


def _receive_too_long(edge: EdgeFacts, receive: ReceiveConnectorFact, text: str) -> Finding:
    return Finding(
        "tls-name-too-long",
        Severity.WARNING,
        f"The TlsCertificateName of receive connector {receive.identity} is {len(text)} "
        f"characters, above AD LDS's limit of {certs.TLS_NAME_MAX} (F4). Prefer the connector's "
        f"Fqdn: Set-ReceiveConnector -Identity {ps(receive.identity)} -TlsCertificateName $null.",
        edge.name,
        {"connector": receive.identity, "length": len(text), "limit": certs.TLS_NAME_MAX},
    )


def _needed_names(org: OrgFacts, edges: list[EdgeFacts], connector: SendConnectorFact) -> list[str]:
    """The TlsCertificateName values the connector needs: the configured one where an Edge
    has a current match, else the replacement the stale rule proposes."""
    text = connector.tls_certificate_name
    wanted = []
    for edge in edges:
        if not text or not edge.named_in(connector.source_transport_servers):
            continue
        if any(named_by(text, c) and c.current(org.now) for c in edge.certificates):
            wanted.append(text)
        elif better := replacement(edge, text, org):
            wanted.append(better.tls_certificate_name)
    return list(dict.fromkeys(wanted))


def _missing_on_mailbox(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    if not (org.settings.hybrid and org.gathered):
        return []
    findings = []
    for connector in (c for c in org.send_connectors if is_hybrid_connector(c)):
        for text in _needed_names(org, edges, connector):
            if any(named_by(text, c) for m in org.mailbox_servers for c in m.certificates):
                continue
            findings.append(
                Finding(
                    "tls-name-cert-missing-on-mailbox",
                    Severity.WARNING,
                    f"No Mailbox server has a certificate matching {text!r} (hybrid send "
                    f"connector {connector.name}). Set-SendConnector and the HCW accept only a "
                    "certificate installed where they run (F9): import the Edge certificate's "
                    "PFX on one Mailbox server without enabling it for SMTP (F1): "
                    "Import-ExchangeCertificate -FileData ([IO.File]::ReadAllBytes('<pfx>')) "
                    "-Password (Read-Host -AsSecureString).",
                    None,
                    {
                        "connector": connector.name,
                        "tls_certificate_name": text,
                        "mailbox_servers": [m.name for m in org.mailbox_servers],
                    },
                )
            )
    return findings


def _sourced(connector: SendConnectorFact, edges: list[str]) -> list[str]:
    """The Edges (by subscription name) among the connector's source servers."""
    return [e for e in edges if any_same_server(connector.source_transport_servers, e)]


def _not_in_send_connector(org: OrgFacts) -> list[Finding]:
    if not (org.gathered and org.subscriptions):
        return []
    sites = {s.name: s.site.casefold() for s in org.subscriptions}
    findings = []
    for connector in org.send_connectors:
        present = _sourced(connector, list(sites))
        if not present or is_inbound_connector(connector):
            continue
        present_sites = {sites[e] for e in present}
        for edge in sites:
            if edge in present or (sites[edge] and sites[edge] not in present_sites):
                continue
            findings.append(
                Finding(
                    "edge-not-in-send-connector",
                    Severity.WARNING,
                    f"Subscribed Edge {edge} is not a source server of send connector "
                    f"{connector.name}, which {', '.join(present)} use(s) (F10: "
                    "Remove-EdgeSubscription strips the Edge from connectors). If that is not "
                    "deliberate, on a Mailbox server: Set-SendConnector -Identity "
                    f"{ps(connector.name)} -SourceTransportServers @{{Add={ps(edge)}}}.",
                    edge,
                    {
                        "connector": connector.name,
                        "source_transport_servers": list(connector.source_transport_servers),
                    },
                )
            )
    inbound = [c for c in org.send_connectors if is_inbound_connector(c)]
    for edge in sites:
        if any(edge in _sourced(c, [edge]) for c in inbound):
            continue
        findings.append(
            Finding(
                "edge-not-in-send-connector",
                Severity.ERROR,
                f"No EdgeSync inbound send connector (address space '--') has subscribed Edge "
                f"{edge} as a source, so the Edge cannot deliver to the Mailbox servers (F10). "
                + (
                    f"Add it: Set-SendConnector -Identity {ps(inbound[0].name)} "
                    f"-SourceTransportServers @{{Add={ps(edge)}}}."
                    if inbound
                    else "Resubscribe the Edge with -CreateInboundSendConnector $true, or create "
                    "the 'EdgeSync - Inbound to <site>' connector again."
                ),
                edge,
                {"inbound_connectors": [c.name for c in inbound]},
            )
        )
    return findings


def connector_rules(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Findings about TlsCertificateName values and connector membership."""
    send = org.send_connectors if org.gathered else _replicas(edges)
    findings = _too_long(send, edges)
    for edge in edges:
        for named in _named_connectors(org, edge):
            if len(named.text) <= certs.TLS_NAME_MAX:
                stale = _stale(org, edge, named)
                findings += [stale] if stale else []
    return findings + _missing_on_mailbox(org, edges) + _not_in_send_connector(org)


def _replicas(edges: list[EdgeFacts]) -> list[SendConnectorFact]:
    unique: dict[str, SendConnectorFact] = {}
    for edge in edges:
        for connector in edge.send_connectors:
            unique.setdefault(connector.name.casefold(), connector)
    return list(unique.values())
