"""Phase 04, verify hybrid: the Edge's hybrid receive connector and the hybrid send connector as
KB3212872 and the HCW set them (fixed through the change engine when they are not), the
certificates served on 25 and 50636 against what phase 02 prepared, a test message in each
direction watched until it leaves the queue, EdgeSync Normal, and no error or warning left from
inspect's rules: a verdict table (check, expected, seen, verdict).

Nothing changes without apply and the approved plan hash (edgebook.change.approval).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebook.change.approval import approve, load_plan, plans_dir, save_plan
from edgebook.change.engine import Engine
from edgebook.change.journal import Journal
from edgebook.change.lock import EdgeLock
from edgebook.change.outcome import ApplyResult
from edgebook.change.plan import Plan
from edgebook.change.rollback import rollback
from edgebook.change.session import ShellPool
from edgebook.change.step import Step
from edgebook.config import Inventory, resolve_inventory
from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence import layout
from edgebook.exchange.connect import ShellFactory
from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts
from edgebook.facts import values as fv
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import verify_steps as vs
from edgebook.phases.own_effects import NO_EFFECTS, OwnEffects, read_own_effects
from edgebook.rules.usage import is_default_receive

PHASE = "verify"
DONE = "apply-completed"
NOT_HYBRID = (
    "change.hybrid is false and no send connector routes to Exchange Online: the hybrid "
    "connector checks are skipped"
)


class VerifyRefused(EdgebookError):
    """Phase 04 cannot verify this Edge yet (no prepared certificate, not on the Edge, ...)."""


@dataclass
class Verification:
    """A computed phase 04: the facts read, the certificate expected, the plan."""

    inventory: Inventory
    edge: str
    change: str
    certificate: dict[str, Any]  # what phase 02 prepared (thumbprint, tls_certificate_name, ...)
    inspected: Any  # edgebook.phases.inspect.InspectResult
    receive_capability: str
    fqdn: str  # the name the connectors should use, one the certificate covers
    plan: Plan
    plan_path: Path
    mailbox: str
    since: dt.datetime | None = None  # when the change last completed a plan on this Edge

    def records(self) -> dict[str, Any]:
        """What the notebook records before apply."""
        return {
            "plan_sha256": self.plan.sha256,
            "verified_certificate": self.certificate["thumbprint"],
            "connector_fqdn": self.fqdn,
        }


def prepared_certificate(change: str, edge: str, root: Path | None = None) -> dict[str, Any]:
    """What phase 02 prepared for this Edge in this change: the certificate of its newest applied
    plan (the journal), else the record of its latest ok run, else its newest plan;
    VerifyRefused if none."""
    edge_dir = layout.edge_dir(change, edge, root)
    journal = Journal(layout.journal_path(change, edge, root)).read()
    applied = [load_plan(edge_dir, r.get("plan_sha256", "")) for r in journal.events(DONE)]
    found = _certificate_of([p for p in applied if p is not None])
    if found:
        return found
    runs = []
    for path in layout.phase_dir(change, edge, "prepare", root).glob("*.manifest.json"):
        try:  # evidence.manifest would bring papermill into the kernel: plain JSON here
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # `edgebook evidence verify` reports a damaged manifest
        record = (manifest.get("records") or {}).get("prepared_certificate")
        if manifest.get("verdict") == "ok" and isinstance(record, dict):
            runs.append((str(manifest.get("ended", "")), record))
    if runs:
        return max(runs, key=lambda run: run[0])[1]
    files = sorted(plans_dir(edge_dir).glob("*.json"), key=lambda p: p.stat().st_mtime)
    found = _certificate_of([p for p in (load_plan(edge_dir, f.stem) for f in files) if p])
    if found:
        return found
    raise VerifyRefused(
        f"change {change} has no certificate prepared for {edge} (no phase 02 record or plan in "
        f"{edge_dir}): run 02-prepare-certificate first, or give certificate_thumbprint"
    )


def _certificate_of(plans: list[Plan]) -> dict[str, Any] | None:
    """The certificate of the last phase-02 plan among these."""
    for plan in reversed(plans):
        if plan.phase == "prepare" and plan.facts.get("certificate"):
            return dict(plan.facts["certificate"])
    return None


def _certificate(inventory: Inventory, change: str, edge: str, thumbprint: str) -> dict[str, Any]:
    if thumbprint:
        wanted = fv.thumbprint(thumbprint)
        if not wanted or len(wanted) != 40:
            raise ConfigError(
                f"certificate_thumbprint {thumbprint!r}: the 40 hex characters of a SHA-1 "
                "thumbprint, or empty to take what phase 02 prepared"
            )
        return {"thumbprint": wanted, "source": "certificate_thumbprint"}
    return prepared_certificate(change, edge)


def connector_fqdn(inventory: Inventory, cert: CertificateFact, current: list[str]) -> str:
    """The connectors' Fqdn: a current one the certificate covers, else an expected name it
    covers, else its first host name."""
    for name in [*current, *inventory.change.expected_fqdns]:
        if name and cert.covers(name):
            return name
    names = [d for d in cert.domains if "*" not in d]
    if not names:
        raise VerifyRefused(f"certificate {cert.thumbprint} names no host the connectors can use")
    return names[0]


def _facts(
    facts: EdgeFacts,
    org: OrgFacts,
    cert: CertificateFact,
    mailbox: str,
    capability: str,
    own: OwnEffects = NO_EFFECTS,
) -> dict[str, Any]:
    """What the plan was computed from (stable facts only: no clocks, queues or probes); the
    send connectors as before this change (own): values another Edge's phase 04 set show as
    the values they replaced."""
    return {
        "edge": facts.name,
        "certificate": {"thumbprint": cert.thumbprint, "domains": sorted(cert.domains)},
        "receive_connectors": sorted(
            [c.identity, c.fqdn, sorted(c.tls_domain_capabilities)]
            for c in facts.receive_connectors
        ),
        "hybrid_send_connectors": sorted(
            [
                c.name,
                c.fqdn,
                c.tls_domain,
                c.tls_auth_level,
                c.require_tls,
                c.cloud_services_mail_enabled,
            ]
            for c in map(own.send_connector, vs.hybrid_send_connectors(org, facts))
        ),
        "mailbox": mailbox,
        "receive_capability": capability,
    }


def plan_verification(
    inventory: Inventory,
    edge: str,
    change: str,
    *,
    certificate_thumbprint: str = "",
    mailbox: str = "",
    shell_factory: ShellFactory | None = None,
) -> Verification:
    """Read the organisation, find what the hybrid connectors lack, compute and keep the plan."""
    layout.check_change_id(change)
    edge = inventory.edge(edge).name
    mailbox = (
        inventory.mailbox_server(mailbox).name
        if mailbox
        else inventory.organisation.mailbox_servers[0].name
    )
    certificate = _certificate(inventory, change, edge, certificate_thumbprint)
    since = _last_change(change, edge)
    inspected = inspect_phase.inspect(
        inventory, edge, event_days=event_window(since), shell_factory=shell_factory
    )
    facts = next((e for e in inspected.edges if e.name == edge), None)
    if facts is None or not inspected.org.gathered:
        raise VerifyRefused(
            f"{edge} or the Mailbox side could not be read; see the inspect findings: "
            + "; ".join(f.message for f in inspected.findings if f.slug == "server-unreachable")
        )
    cert = facts.certificate(certificate["thumbprint"])
    if cert is None:
        raise VerifyRefused(
            f"certificate {certificate['thumbprint']} (prepared by phase 02) is not on {edge}: "
            "run 03-resubscribe (it puts the certificate on the Edge) before verifying"
        )
    capability = inventory.change.tls_domain_capabilities
    receive = next((c for c in facts.receive_connectors if is_default_receive(c, facts)), None)
    own = read_own_effects(change, [e.name for e in inventory.edges])
    sends = [own.send_connector(c) for c in vs.hybrid_send_connectors(inspected.org, facts)]
    current = ([receive.fqdn] if receive else []) + [c.fqdn for c in sends]
    fqdn = connector_fqdn(inventory, cert, current)
    step_list: list[Step] = []
    notes = [
        f"expected: port 25 serves {cert.thumbprint}; 50636 serves the Edge default "
        f"{facts.default_thumbprint} (the certificate the subscription pins, F7)",
    ]
    if not verification_is_hybrid(inventory, sends):
        notes.append(NOT_HYBRID)
    elif receive is None:
        raise VerifyRefused(
            f"{edge} has no 'Default internal receive connector {edge}'; Exchange Online "
            "delivers to it in hybrid (F17): recreate it, then verify again"
        )
    else:
        if not vs.capability_present(
            receive.tls_domain_capabilities, capability
        ) or not cert.covers(receive.fqdn):
            domain = capability.partition(":")[0].casefold()
            kept = [
                c
                for c in receive.tls_domain_capabilities
                if c.partition(":")[0].strip().casefold() != domain
            ]
            step_list.append(vs.receive_step(edge, receive.identity, [*kept, capability], fqdn))
        if not sends:
            notes.append("no hybrid send connector sends from this Edge: rerun the HCW (F16)")
        for connector in sends:
            settings = vs.send_settings(connector, cert, fqdn)
            if settings:
                step_list.append(vs.send_step(mailbox, edge, connector.name, settings))
    if not step_list:
        notes.append("the hybrid connectors are as KB3212872 says: nothing to change")
    plan = Plan(
        change,
        edge,
        PHASE,
        _facts(facts, inspected.org, cert, mailbox, capability, own),
        tuple(step_list),
        tuple(notes),
    )
    path = save_plan(plan, layout.edge_dir(change, edge))
    return Verification(
        inventory,
        edge,
        change,
        certificate,
        inspected,
        capability,
        fqdn,
        plan,
        path,
        mailbox,
        since,
    )


def verification_is_hybrid(inventory: Inventory, sends: list[Any]) -> bool:
    """Whether the connectors are checked: hybrid expected, or a hybrid connector exists."""
    return inventory.change.hybrid or bool(sends)


def event_window(since: dt.datetime | None) -> float | None:
    """Days of events to read: those since the change's last step on this Edge (older ones are
    what the change fixed), at least a minute; None (the inventory's window) before any step."""
    if since is None:
        return None
    return max((dt.datetime.now(dt.UTC) - since).total_seconds(), 60.0) / 86400


def _last_change(change: str, edge: str) -> dt.datetime | None:
    """When a plan of this change last completed on this Edge (events before it are what the
    change fixed)."""
    done = list(Journal(layout.journal_path(change, edge)).read().events(DONE))
    return dt.datetime.fromisoformat(done[-1]["time"]) if done else None


def apply(
    verification: Verification,
    approved_plan_sha256: str,
    *,
    take_over_lock: str = "",
    shell_factory: ShellFactory | None = None,
) -> ApplyResult:
    """Run the approved plan under the Edge's lock; the journal and the answers are kept."""
    journal = Journal(layout.journal_path(verification.change, verification.edge))
    edge_dir = layout.edge_dir(verification.change, verification.edge)
    chosen = approve(verification.plan, approved_plan_sha256, edge_dir, journal)
    servers = [verification.edge, *(s.server for s in chosen.plan.steps)]
    with ShellPool(verification.inventory, servers, shell_factory) as shells:  # noqa: SIM117
        with EdgeLock(
            shells(verification.edge),
            verification.change,
            journal,
            plan_sha256=chosen.plan.sha256,
            take_over=take_over_lock,
        ):
            return Engine(chosen.plan, shells, journal).apply()


def rollback_change(
    verification: Verification,
    *,
    take_over_lock: str = "",
    shell_factory: ShellFactory | None = None,
) -> ApplyResult:
    """Revert what this change's journal says was done on this Edge, newest first."""
    journal = Journal(layout.journal_path(verification.change, verification.edge))
    servers = [verification.edge] + [r["server"] for r in journal.read().events("step-done")]
    with ShellPool(verification.inventory, servers, shell_factory) as shells:  # noqa: SIM117
        with EdgeLock(
            shells(verification.edge), verification.change, journal, take_over=take_over_lock
        ):
            return rollback(journal, shells)


def run(
    inventory: str | Path,
    edge: str = "",
    change: str = "",
    **options: Any,
) -> Verification:
    """The notebook's entry point: resolve the inventory, default to its first Edge, plan."""
    if not change:
        raise ConfigError(
            "change: give the change id (e.g. CHG-2026-0042); its evidence lives in "
            "outputs/<change>/"
        )
    loaded = resolve_inventory(inventory)
    return plan_verification(loaded, edge or loaded.edges[0].name, change, **options)
