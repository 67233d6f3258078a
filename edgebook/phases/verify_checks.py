"""Phase 04's verdict table: connectors, served certificates, test messages, EdgeSync and inspect's
findings, each as (check, expected, seen, verdict) with verdict ok, fail or pending (another
Edge's turn in a rolling change)."""

from __future__ import annotations

import re
from typing import Any

from edgebook.change.approval import load_plan
from edgebook.change.journal import Journal
from edgebook.config import Inventory
from edgebook.errors import ConfigError
from edgebook.evidence import layout
from edgebook.exchange import connect
from edgebook.exchange.command import Command
from edgebook.exchange.connect import ShellFactory, resolve_credentials
from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts, QueueFact
from edgebook.findings import Severity
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import verify_mail
from edgebook.phases.verify import (
    DONE,
    NOT_HYBRID,
    PHASE,
    Verification,
    event_window,
    verification_is_hybrid,
)
from edgebook.phases.verify_steps import KB3212872, capability_present, hybrid_send_connectors
from edgebook.rules.usage import is_default_receive

DEFAULT_WATCH_S = 120.0
THUMBPRINT_IN_EVENT = re.compile(r"thumbprint: ([0-9A-Fa-f]{40})")
ROLLING = "edges-differ"  # F18: holds while the other Edges of the change still wait their turn


def _verified_elsewhere(verification: Verification) -> list[str]:
    """The other Edges of the inventory that completed a phase 04 plan in this change."""
    done = []
    for other in verification.inventory.edges:
        if other.name == verification.edge:
            continue
        edge_dir = layout.edge_dir(verification.change, other.name)
        journal = Journal(layout.journal_path(verification.change, other.name)).read()
        for record in journal.events(DONE):
            plan = load_plan(edge_dir, record.get("plan_sha256", ""))
            if plan is not None and plan.phase == PHASE:
                done.append(other.name)
                break
    return done


def _row(check: str, expected: Any, seen: Any, ok: bool) -> dict[str, str]:
    return {
        "check": check,
        "expected": str(expected),
        "seen": "—" if seen in (None, "") else str(seen),
        "verdict": "ok" if ok else "fail",
    }


def _connector_rows(
    verification: Verification, facts: EdgeFacts, org: OrgFacts, cert: CertificateFact | None
) -> list[dict[str, str]]:
    rows = []
    receive = next((c for c in facts.receive_connectors if is_default_receive(c, facts)), None)
    capability = verification.receive_capability
    caps = list(receive.tls_domain_capabilities) if receive else None
    name = receive.identity if receive else f"{facts.name}\\Default internal receive connector"
    rows.append(
        _row(
            f"{name} TlsDomainCapabilities",
            capability,
            caps,
            receive is not None and capability_present(receive.tls_domain_capabilities, capability),
        )
    )
    covered = bool(receive and cert and cert.covers(receive.fqdn))
    rows.append(
        _row(
            f"{name} Fqdn",
            "a name the certificate covers",
            receive.fqdn if receive else None,
            covered,
        )
    )
    sends = hybrid_send_connectors(org, facts)
    if not sends:
        rows.append(_row("hybrid send connector", "one sending from this Edge", None, False))
    for connector in sends:
        seen = {
            "TlsDomain": connector.tls_domain,
            "TlsAuthLevel": connector.tls_auth_level,
            "RequireTLS": connector.require_tls,
            "CloudServicesMailEnabled": connector.cloud_services_mail_enabled,
        }
        for prop, wanted in KB3212872.items():
            ok = str(seen[prop]).casefold() == str(wanted).casefold()
            rows.append(_row(f"{connector.name} {prop}", wanted, seen[prop], ok))
        rows.append(
            _row(
                f"{connector.name} Fqdn",
                "a name the certificate covers",
                connector.fqdn,
                bool(cert and cert.covers(connector.fqdn)),
            )
        )
        tls_name = verification.certificate.get("tls_certificate_name")
        if tls_name:
            rows.append(
                _row(
                    f"{connector.name} TlsCertificateName",
                    tls_name,
                    connector.tls_certificate_name,
                    (connector.tls_certificate_name or "").casefold() == tls_name.casefold(),
                )
            )
    return rows


def _served_rows(facts: EdgeFacts, thumbprint: str) -> list[dict[str, str]]:
    rows = []
    for label, probe, wanted in (
        ("SMTP 25 serves", facts.smtp_probe, thumbprint),
        ("LDAPS 50636 serves the Edge default", facts.ldaps_probe, facts.default_thumbprint),
    ):
        seen = probe.thumbprint if probe and probe.ok else (probe.error if probe else "no probe")
        rows.append(
            _row(f"{label} ({probe.target if probe else '?'})", wanted, seen, seen == wanted)
        )
    return rows


def _edgesync_row(org: OrgFacts, facts: EdgeFacts) -> dict[str, str]:
    status = next((e for e in org.edgesync if facts.is_named(e.name)), None)
    seen = f"{status.sync_status} {status.failure_detail}".strip() if status else None
    return _row(
        "EdgeSync (Test-EdgeSynchronization)",
        "Normal",
        seen,
        status is not None and status.sync_status == "Normal",
    )


def _findings_rows(
    verification: Verification, inspected: Any, facts: EdgeFacts | None
) -> list[dict[str, str]]:
    """No error or warning from inspect's rules. Three are settled by what the change did, each
    on a row of its own: F18 while other Edges of the change have not been verified yet
    (pending: their turn comes), key-not-exportable for the certificate whose PFX phase 02 kept
    (the backup the warning asks for), and certificate events naming a certificate the change
    removed (history)."""
    left = [f for f in inspected.findings if f.severity in (Severity.ERROR, Severity.WARNING)]
    rows = []
    rolling = [f for f in left if f.slug == ROLLING]
    if rolling and not _verified_elsewhere(verification):
        left = [f for f in left if f.slug != ROLLING]
        rows.append(
            {
                "check": "the other Edges (F18, one TlsCertificateName for all Edges)",
                "expected": "the same issuer and subject on every Edge",
                "seen": rolling[0].message.split("In use: ", 1)[-1],
                "verdict": "pending",
            }
        )
    kept = verification.certificate
    for finding in list(left):
        if (
            finding.slug == "key-not-exportable"
            and finding.evidence.get("thumbprint") == kept.get("thumbprint")
            and kept.get("file")
            and kept.get("file_sha256")
        ):
            left.remove(finding)
            seen = f"phase 02 kept {kept['file']} (sha256 {str(kept['file_sha256'])[:16]}…)"
            rows.append(_row(f"key-not-exportable {kept['thumbprint']}", "a PFX kept", seen, True))
        elif finding.slug == "cert-warning-events" and facts is not None:
            removed = _removed_certificate(str(finding.evidence.get("message", "")), facts)
            if removed:
                left.remove(finding)
                rows.append(
                    _row(
                        f"event {finding.evidence.get('event_id')} (history)",
                        "about a certificate still installed",
                        f"names {removed}, which the change removed",
                        True,
                    )
                )
    seen = "; ".join(f"{f.severity}: {f.slug}: {f.message}" for f in left)
    rows.insert(0, _row("inspect findings (errors and warnings)", "none", seen, not left))
    return rows


def _removed_certificate(message: str, facts: EdgeFacts) -> str:
    """The thumbprint an event message names when that certificate is no longer on the Edge."""
    found = THUMBPRINT_IN_EVENT.search(message)
    if found and facts.certificate(found.group(1)) is None:
        return found.group(1).upper()
    return ""


def _internal_domain(inventory: Inventory) -> str:
    fqdn = inventory.organisation.mailbox_servers[0].fqdn
    return fqdn.split(".", 1)[1] if "." in fqdn else ""


def check(
    verification: Verification,
    *,
    test_messages: bool = True,
    watch_timeout: float = DEFAULT_WATCH_S,
    internal_domain: str = "",
    reread: bool = True,
    shell_factory: ShellFactory | None = None,
) -> list[dict[str, str]]:
    """The verdict table: inspect again (rules, probes, EdgeSync; with reread False the plan's
    own read, when nothing ran since), then the test messages."""
    if watch_timeout <= 0:
        raise ConfigError(f"watch_timeout must be above 0 seconds, not {watch_timeout:g}")
    inventory, edge = verification.inventory, verification.edge
    if reread:
        verification.inspected = inspect_phase.inspect(
            inventory,
            edge,
            event_days=event_window(verification.since),
            shell_factory=shell_factory,
        )
    inspected = verification.inspected
    facts = next((e for e in inspected.edges if e.name == edge), None)
    if facts is None:
        return _findings_rows(verification, inspected, None)
    thumbprint = verification.certificate["thumbprint"]
    cert = facts.certificate(thumbprint)
    rows = [
        _row(
            f"certificate {thumbprint} on {edge} serves SMTP",
            "SMTP",
            ", ".join(cert.services or ()) if cert else None,
            bool(cert and cert.services and "SMTP" in cert.services),
        ),
    ]
    if verification_is_hybrid(inventory, hybrid_send_connectors(inspected.org, facts)):
        rows += _connector_rows(verification, facts, inspected.org, cert)
    else:
        rows.append(_row("hybrid connectors", "skipped", NOT_HYBRID, True))
    rows += _served_rows(facts, thumbprint)
    if test_messages:
        rows += [
            o.row()
            for o in messages(
                verification,
                facts,
                inspected.org,
                watch_timeout,
                internal_domain or _internal_domain(inventory),
                shell_factory,
            )
        ]
    rows.append(_edgesync_row(inspected.org, facts))
    return rows + _findings_rows(verification, inspected, facts)


def messages(
    verification: Verification,
    facts: EdgeFacts,
    org: OrgFacts,
    watch_timeout: float,
    internal_domain: str,
    shell_factory: ShellFactory | None = None,
) -> list[verify_mail.MailOutcome]:
    """One test message per direction through the Edge's SMTP listener, watched on its queues
    over one WinRM session (one round trip per look)."""
    inventory = verification.inventory
    server = inventory.edge(verification.edge)
    outcomes = [
        verify_mail.send(
            server.smtp.host,
            server.smtp.port,
            "edgebook-verify.invalid",
            verify_mail.MailOutcome(direction),
            timeout=min(30.0, watch_timeout),
        )
        for direction in verify_mail.directions(facts, org, internal_domain)
    ]
    if not outcomes:
        return []
    factory = shell_factory or connect.shell_factory(resolve_credentials([server]))
    with factory(inventory, server.name) as shell:

        def read_queues() -> list[QueueFact]:
            queues = shell.run_batch([Command("Get-Queue").select(QueueFact.PROPERTIES)])
            return [QueueFact.from_record(r) for r in queues]

        return verify_mail.watch(read_queues, outcomes, watch_timeout)


def passed(rows: list[dict[str, str]]) -> bool:
    """Whether no check of the verdict table failed (pending: another Edge's turn)."""
    return bool(rows) and all(row["verdict"] in ("ok", "pending") for row in rows)
