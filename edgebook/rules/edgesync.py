"""EdgeSync rules: subscriptions, Test-EdgeSynchronization, and the certificate AD LDS serves on
50636 compared with the one the subscription carries (F7)."""

from __future__ import annotations

from typing import Any

from edgebook.facts import EdgeFacts, OrgFacts
from edgebook.findings import Finding, Severity
from edgebook.rules.smtp import probe_failed

RESUBSCRIBE = (
    "Resubscribe: on the Edge New-EdgeSubscription -FileName C:\\temp\\{edge}.xml; on a Mailbox "
    "server New-EdgeSubscription -FileData ([IO.File]::ReadAllBytes('C:\\temp\\{edge}.xml')) "
    "-Site <AD site> -CreateInboundSendConnector $false -CreateInternetSendConnector $false; "
    "then restore the Edge in the send connectors' SourceTransportServers (F10)."
)
# EdgeSync's text when a Mailbox server's default certificate changed after the subscription.
DECRYPT_FAILED = "failed to decrypt the credential"
# Test-EdgeSynchronization SyncStatus -> severity and what it means.
_STATUS = {
    "failed": (Severity.ERROR, "synchronisation failed"),
    "inconclusive": (Severity.WARNING, "the test was inconclusive (a sync may be in progress)"),
    "nosyncconfigured": (Severity.ERROR, "no synchronisation is configured for the site"),
}


def _sync_findings(org: OrgFacts, edge: EdgeFacts) -> list[Finding]:
    subscription = next((s for s in org.subscriptions if edge.is_named(s.name)), None)
    if subscription is None:
        return [
            Finding(
                "edgesync-failing",
                Severity.ERROR,
                f"{edge.name} has no Edge Subscription in the organisation, so nothing "
                "replicates to it (recipients, connectors). " + RESUBSCRIBE.format(edge=edge.name),
                edge.name,
                {"subscriptions": [s.name for s in org.subscriptions]},
            )
        ]
    findings = []
    if subscription.is_valid is False:
        findings.append(
            Finding(
                "edgesync-failing",
                Severity.ERROR,
                f"The Edge Subscription of {edge.name} is not valid (IsValid False). "
                + RESUBSCRIBE.format(edge=edge.name),
                edge.name,
                {"subscription": subscription.to_dict()},
            )
        )
    row = next((r for r in org.edgesync if edge.is_named(r.name)), None)
    if row is None:
        return [
            *findings,
            Finding(
                "edgesync-failing",
                Severity.WARNING,
                f"Test-EdgeSynchronization returned no status for {edge.name}: run "
                f"Test-EdgeSynchronization -TargetServer {edge.name} -ExcludeRecipientTest on a "
                "Mailbox server of its site and check the Edge is reachable on 50636.",
                edge.name,
                {"edgesync": [r.name for r in org.edgesync]},
            ),
        ]
    status = row.sync_status.casefold()
    if status == "normal":
        return findings
    severity, meaning = _STATUS.get(status, (Severity.WARNING, "the status is unknown"))
    detail = f" FailureDetail: {row.failure_detail}." if row.failure_detail else ""
    failure = row.failure_detail.casefold()
    if DECRYPT_FAILED in failure:
        detail = f" FailureDetail: {row.failure_detail.rstrip('.')}."
        return [*findings, _credential_finding(org, edge, row.to_dict(), detail)]
    hint = (
        " A SubscriptionConnectionError usually means the certificate AD LDS serves on 50636 is "
        "not the one in the subscription (F7; see ldaps-cert-mismatch)."
        if "subscriptionconnectionerror" in failure
        else ""
    )
    return [
        *findings,
        Finding(
            "edgesync-failing",
            severity,
            f"EdgeSync to {edge.name}: SyncStatus {row.sync_status}, {meaning}.{detail}{hint} "
            f"Start-EdgeSynchronization -TargetServer {edge.name} -ForceFullSync on a Mailbox "
            "server, then test again; if it keeps failing, resubscribe.",
            edge.name,
            row.to_dict(),
        ),
    ]


def _credential_finding(
    org: OrgFacts, edge: EdgeFacts, evidence: dict[str, Any], detail: str
) -> Finding:
    """F22: a Mailbox server's default certificate changed after the subscription."""
    subscription = next((s for s in org.subscriptions if edge.is_named(s.name)), None)
    since = subscription.create_utc if subscription else None
    changed = []
    for mailbox in org.mailbox_servers:
        default = next(
            (c for c in mailbox.certificates if c.thumbprint == mailbox.internal_thumbprint), None
        )
        if default is None or (since and default.not_before and default.not_before <= since):
            continue
        older = sorted(
            (
                c
                for c in mailbox.certificates
                if c is not default and c.not_before and since and c.not_before <= since
            ),
            key=lambda c: c.not_before.timestamp() if c.not_before else 0.0,
        )
        previous = f" (a candidate: {older[-1].thumbprint}, {older[-1].subject})" if older else ""
        changed.append(
            f"{mailbox.name}'s default transport certificate is now {default.thumbprint} "
            f"({default.subject}), newer than the Edge Subscription{previous}"
        )
    cause = "; ".join(changed) or (
        "a Mailbox server's default transport certificate changed after the Edge Subscription "
        "was made"
    )
    return Finding(
        "edgesync-failing",
        Severity.ERROR,
        f"EdgeSync to {edge.name} fails: the Mailbox servers cannot decrypt the EdgeSync "
        f"credentials stored for it, because {cause} (F22; typically an ACME tool's "
        f"Enable-ExchangeCertificate -Force).{detail} Fix: make the previous default certificate "
        "the default again on that Mailbox server "
        "(Enable-ExchangeCertificate -Thumbprint <previous> -Services SMTP, answering Yes), or "
        "keep the new one and subscribe the Edge again: " + RESUBSCRIBE.format(edge=edge.name),
        edge.name,
        {**evidence, "mailbox_defaults_changed": changed},
    )


def _ldaps_findings(edge: EdgeFacts) -> list[Finding]:
    probe = edge.ldaps_probe
    if probe is None:
        return []
    if not probe.ok or not probe.thumbprint:
        return [probe_failed(edge, probe, "LDAPS")]
    expected = edge.default_thumbprint
    if not expected or probe.thumbprint == expected:
        return []
    served = edge.certificate(probe.thumbprint)
    what = f"{served.thumbprint} ({served.subject})" if served else probe.thumbprint
    return [
        Finding(
            "ldaps-cert-mismatch",
            Severity.ERROR,
            f"AD LDS on {edge.name} serves {what} at {probe.target}, but the Edge Subscription "
            f"carries the default certificate {expected} (F7): the Mailbox servers cannot match "
            "it (EdgeSync 10104, 'LDAP server unavailable'). Make the default certificate the one "
            "AD LDS picks (put it into the ADAM_MSExchange service's personal store, or remove "
            "the other eligible certificate), then reload it: Restart-Service ADAM_MSExchange "
            "(it stops MSExchangeTransport too: drain the Edge first), and run "
            "Test-EdgeSynchronization again.",
            edge.name,
            {"served": probe.thumbprint, "expected": expected, "target": str(probe.target)},
        )
    ]


def edgesync_rules(org: OrgFacts, edges: list[EdgeFacts]) -> list[Finding]:
    """Findings about subscriptions, synchronisation and the LDAPS certificate."""
    findings = []
    for edge in edges:
        if org.gathered:
            findings += _sync_findings(org, edge)
        findings += _ldaps_findings(edge)
    return findings
