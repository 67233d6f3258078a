"""Phase 03, resubscribe: put the certificate phase 02 prepared into service on one Edge, each
step checked before the next, under the Edge's lock, with a journal; then the next Edge.

Two routes. Certificate only (KB2989382, the default stays): drain, stop, import, enable SMTP
answering No, TlsCertificateName, synchronise, start, resume, verify. Resubscribe (the default
changes, EdgeSync fails, F22): the same plus AD LDS restarted and probed (F7), a new Edge
Subscription read into memory and imported on a Mailbox server without new connectors, the
send connectors' source servers restored from the snapshot (F10).

Nothing changes without apply and the approved plan hash (edgebook.change.approval).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebook.change.approval import approve, save_plan
from edgebook.change.engine import Engine, Progress
from edgebook.change.journal import Journal
from edgebook.change.lock import EdgeLock
from edgebook.change.outcome import ApplyResult
from edgebook.change.plan import Plan
from edgebook.change.reads import round_trips
from edgebook.change.rollback import rollback
from edgebook.change.session import ShellPool
from edgebook.change.values import snapshot
from edgebook.config import Inventory, resolve_inventory
from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence import layout
from edgebook.exchange.command import Command
from edgebook.exchange.connect import ShellFactory
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import resubscribe_steps as rs
from edgebook.phases.own_effects import NO_EFFECTS, OwnEffects, read_own_effects
from edgebook.phases.prepare_certificate import CERTIFICATE_ONLY, RESUBSCRIBE
from edgebook.phases.resubscribe_checks import (
    certificate_problems,
    f22_problems,
    other_edges_busy,
    subscription_age_check,
)
from edgebook.phases.resubscribe_source import (
    PreparedCertificate,
    prepared_certificate,
    put_on_edge,
)
from edgebook.phases.resubscribe_verify import Prober, probe_edge

PHASE = "resubscribe"
F12_NOTE = (
    "replace_default_certificate=False (F12): Enable-ExchangeCertificate asks whether to "
    "overwrite the default SMTP certificate; answering No keeps the Edge's self-signed default, "
    "the one its subscription pins, so EdgeSync keeps working (KB2989382). Yes makes the public "
    "certificate the default: the subscription must then be made again (it is, in this plan)"
)

RESUBSCRIBE_ROLLBACK = (
    "rollback across the resubscription: before the old subscription is removed or replaced, "
    "rollback restores everything (the certificate, the default, AD LDS, transport, the send "
    "connectors); once that step has started the old subscription cannot come back and undoing "
    "the default certificate would break EdgeSync, so rollback stops there and the change is "
    "finished forward (run again with the same approval: it subscribes again and puts the Edge "
    "back in every send connector it was in, F10)"
)


class ResubscribeRefused(EdgebookError):
    """The change cannot be made safely as asked; nothing was changed."""


@dataclass(frozen=True)
class Options:
    """The notebook's parameters that shape the plan."""

    replace_default_certificate: bool = False
    remove_subscription_first: bool = False
    drain_timeout: float = 600.0
    sync_timeout: float = 600.0
    poll_every: float = 5.0
    stop_with_queued: bool = False
    exportable: bool = False


@dataclass
class Planned:
    """A computed phase 03 for one Edge: the certificate, the route, the plan."""

    inventory: Inventory
    edge: str
    change: str
    mailbox: str
    route: str
    certificate: PreparedCertificate
    plan: Plan
    plan_path: Path
    inspected: Any

    @property
    def edge_dir(self) -> Path:
        """outputs/<change>/<EDGE>/."""
        return layout.edge_dir(self.change, self.edge)

    def records(self) -> dict[str, Any]:
        """What the notebook records."""
        return {
            "plan_sha256": self.plan.sha256,
            "route": self.route,
            "certificate": self.certificate.to_dict(),
            "round_trips": round_trips(self.plan),
        }


def _refuse(problems: list[str], edge: str) -> None:
    if problems:
        raise ResubscribeRefused(
            f"phase 03 for {edge} refused; nothing was changed:\n  " + "\n  ".join(problems)
        )


def _facts(
    edge: Any,
    org: Any,
    cert: PreparedCertificate,
    mailbox: str,
    options: Options,
    own: OwnEffects = NO_EFFECTS,
) -> dict:
    """What the plan was computed from; the send connectors as before this change (own): a
    TlsCertificateName another Edge of this change set is recorded as the name it replaced."""
    return {
        "edge": {
            "name": edge.name,
            "default_thumbprint": edge.default_thumbprint,
            "certificates": sorted(
                [c.thumbprint, c.subject, c.issuer, list(c.services or ())]
                for c in edge.certificates
            ),
            "receive_connectors": sorted(
                [c.identity, c.tls_certificate_name or ""] for c in edge.receive_connectors
            ),
        },
        "organisation": {
            "mailbox": mailbox,
            "mailbox_defaults": {m.name: m.internal_thumbprint for m in org.mailbox_servers},
            "send_connectors": sorted(
                [c.name, c.tls_certificate_name or "", sorted(c.source_transport_servers)]
                for c in map(own.send_connector, org.send_connectors)
            ),
            "subscriptions": sorted([s.name, s.site] for s in org.subscriptions),
        },
        "certificate": cert.to_dict(),
        "options": vars(options),
    }


def plan(
    inventory: Inventory,
    edge: str,
    change: str,
    options: Options = Options(),
    *,
    shell_factory: ShellFactory | None = None,
) -> Planned:
    """Read the organisation, check the prepared certificate, compute and keep the plan."""
    layout.check_change_id(change)
    edge = inventory.edge(edge).name
    cert = prepared_certificate(change, edge)
    mailbox = inventory.mailbox_server(cert.staging).name
    site = inventory.organisation.ad_site
    inspected = inspect_phase.inspect(inventory, edge, shell_factory=shell_factory)
    facts = next((e for e in inspected.edges if e.name == edge), None)
    org = inspected.org
    if facts is None or not org.gathered or facts.default_thumbprint is None:
        raise ResubscribeRefused(
            f"{edge} or the Mailbox side could not be read; see the inspect findings: "
            + "; ".join(f.message for f in inspected.findings if f.slug == "server-unreachable")
        )
    problems = certificate_problems(cert, inventory, facts, org.settings.now)
    sub = next((s for s in org.subscriptions if facts.is_named(s.name)), None)
    if sub is not None and site and sub.site and sub.site.casefold() != site.casefold():
        problems.append(
            f"site: {edge} is subscribed in AD site {sub.site!r} but the inventory says "
            f"{site!r} (organisation.ad_site): correct the inventory"
        )
    staged = next((m for m in org.mailbox_servers if m.name == mailbox), None)
    if (
        staged is not None
        and staged.certificates
        and not any(
            c.subject == cert.subject and c.issuer == cert.issuer for c in staged.certificates
        )
    ):
        problems.append(
            f"F9: {mailbox} holds no certificate issued by {cert.issuer} to {cert.subject}: "
            "Set-SendConnector there could not name it; run phase 02 again (it stages it)"
        )
    f22 = f22_problems(facts, org)
    route = cert.route or CERTIFICATE_ONLY
    if options.replace_default_certificate or f22:
        route = RESUBSCRIBE
    own = read_own_effects(change, [e.name for e in inventory.edges])
    mine = [  # as before this change: a name set by another Edge's phase 03 is still renamed
        own.send_connector(c)
        for c in org.send_connectors
        if any(facts.is_named(s) for s in c.source_transport_servers)
    ]
    if options.remove_subscription_first and route == RESUBSCRIBE:
        alone = [c.name for c in mine if len(c.source_transport_servers) == 1]
        if alone:
            problems.append(
                f"remove_subscription_first: {edge} is the only source of {', '.join(alone)}; "
                "Remove-EdgeSubscription would delete them (F10). Resubscribe without removing "
                "(it overwrites) or add another source first"
            )
    _refuse(problems, edge)
    steps = _steps(facts, org, cert, mailbox, site, route, options, change, mine)
    notes = [
        F12_NOTE,
        f"route: {route}" + (f" (phase 02 chose {cert.route})" if cert.route else ""),
    ]
    notes += f22
    if route == RESUBSCRIBE:
        notes.append(RESUBSCRIBE_ROLLBACK)
    if options.replace_default_certificate:
        notes.append(
            f"replace_default_certificate: the new Edge default {cert.thumbprint} is also on "
            f"{cert.staging} (staged so that Set-SendConnector can name it, F9; it cannot be "
            "removed while a send connector names it, F21), so inspect warns edge-hub-clash "
            "from now on and phase 04 reports it. Keep the default (route certificate-only, "
            "KB2989382) unless the Edge default itself must change"
        )
    counts = round_trips(Plan(change, edge, PHASE, {}, tuple(steps)))
    notes.append(
        "pipelines per server (no step skipped, every wait met at once; the lock and the "
        "snapshot add 4 on the Edge and 1 on the Mailbox server): "
        + ", ".join(f"{server} {n}" for server, n in counts.items())
    )
    computed = Plan(
        change,
        edge,
        PHASE,
        _facts(facts, org, cert, mailbox, options, own),
        tuple(steps),
        tuple(notes),
    )
    path = save_plan(computed, layout.edge_dir(change, edge))
    return Planned(inventory, edge, change, mailbox, route, cert, computed, path, inspected)


def _steps(
    edge: Any,
    org: Any,
    cert: PreparedCertificate,
    mailbox: str,
    site: str,
    route: str,
    options: Options,
    change: str,
    mine: list[Any],
) -> list[Any]:
    name, thumb, default = edge.name, cert.thumbprint, edge.default_thumbprint or ""
    every = options.poll_every
    presents = thumb if options.replace_default_certificate else default
    enable = rs.enable_smtp(name, thumb, default, options.replace_default_certificate)
    out = [
        rs.drain(name, options.drain_timeout, every),
        rs.stop_transport(name, options.stop_with_queued),
        *put_on_edge(name, cert, change, options.exportable, enable),  # import, or checked there
    ]
    if route == RESUBSCRIBE:
        out.append(rs.restart_adam(name, presents))
        if options.remove_subscription_first:
            out.append(rs.remove_subscription(mailbox, name))
        out += [rs.subscription_file(name, change), rs.subscribe(mailbox, name, site, presents)]
        out += [rs.sources(mailbox, c.name, name) for c in sorted(mine, key=lambda c: c.name)]
    renamed = [
        c
        for c in sorted(mine, key=lambda c: c.name)
        if c.tls_certificate_name and c.tls_certificate_name != cert.tls_name
    ]
    out += [
        rs.tls_name(mailbox, c.name, cert.tls_name, name, cert.subject, cert.issuer)
        for c in renamed
    ]
    out.append(rs.synchronise(mailbox, name, options.sync_timeout, every))
    out += [
        rs.replicated(name, c.name, cert.tls_name, options.sync_timeout, every) for c in renamed
    ]
    out += [
        rs.receive_tls_name(name, c.identity, cert.tls_name)
        for c in edge.receive_connectors
        if c.tls_certificate_name and c.tls_certificate_name != cert.tls_name
    ]
    out += [
        rs.remove_old(name, c.thumbprint, c.subject)
        for c in edge.certificates
        if c.subject == cert.subject and c.thumbprint not in (thumb, default)
    ]
    out += [
        rs.start_transport(name),
        rs.resume(name, thumb, presents, options.drain_timeout, every),
    ]
    return out


def _snapshot(planned: Planned, shells: Any, journal: Journal, sha: str) -> None:
    """Every send connector as it was, journalled once per plan (F10)."""
    if any(journal.read().events("send-connectors-snapshot", plan=sha)):
        return
    properties = [
        "Identity",
        "SourceTransportServers",
        "TlsCertificateName",
        "Fqdn",
        "TlsDomain",
        "TlsAuthLevel",
        "RequireTLS",
        "CloudServicesMailEnabled",
    ]
    result = shells(planned.mailbox).run_batch(
        [Command("Get-SendConnector").select(properties)],
        errors="return",
    )
    if result.errors:
        raise ResubscribeRefused(
            f"the send connectors could not be read on {planned.mailbox}: "
            + "; ".join(e.message for e in result.errors)
            + "; nothing was changed"
        )
    journal.append(
        "send-connectors-snapshot",
        plan_sha256=sha,
        server=planned.mailbox,
        connectors=[snapshot(r, tuple(properties)) for r in result.records if isinstance(r, dict)],
    )


def apply(
    planned: Planned,
    approved_plan_sha256: str,
    *,
    take_over_lock: str = "",
    shell_factory: ShellFactory | None = None,
    probe: Prober | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] | None = None,
) -> ApplyResult:
    """Run the approved plan under the Edge's lock, after the rolling checks and the snapshot."""
    journal = Journal(layout.journal_path(planned.change, planned.edge))
    chosen = approve(planned.plan, approved_plan_sha256, planned.edge_dir, journal)
    servers = [planned.edge, planned.mailbox, *(e.name for e in planned.inventory.edges)]
    with ShellPool(planned.inventory, servers, shell_factory) as shells:
        busy = other_edges_busy(planned.inventory, planned.edge, planned.change, shells, PHASE)
        _refuse(busy, planned.edge)
        with EdgeLock(
            shells(planned.edge),
            planned.change,
            journal,
            plan_sha256=chosen.plan.sha256,
            take_over=take_over_lock,
        ):
            _snapshot(planned, shells, journal, chosen.plan.sha256)
            engine = Engine(
                chosen.plan,
                shells,
                journal,
                probe=probe or probe_edge(planned.inventory),
                progress=progress,
                check_kept=subscription_age_check,
                clock=clock or time.monotonic,
            )
            result = engine.apply()
    _keep_answers(planned, result)
    return result


def rollback_change(
    planned: Planned, *, take_over_lock: str = "", shell_factory: ShellFactory | None = None
) -> ApplyResult:
    """Revert what this change's phase 03 did on this Edge, newest first (phase 02 untouched);
    stops before a step that cannot be undone (the old certificate removed)."""
    journal = Journal(layout.journal_path(planned.change, planned.edge))
    read = journal.read()
    ours = {
        r["plan_sha256"]
        for r in read.events("apply-started")
        if _phase_of(planned.edge_dir, r["plan_sha256"]) == PHASE
    }
    servers = [planned.edge, planned.mailbox] + [r["server"] for r in read.events("step-done")]
    with ShellPool(planned.inventory, servers, shell_factory) as shells:  # noqa: SIM117
        with EdgeLock(shells(planned.edge), planned.change, journal, take_over=take_over_lock):
            result = rollback(journal, shells, ours)
    _keep_answers(planned, result)
    return result


def _phase_of(edge_dir: Path, sha: str) -> str:
    path = edge_dir / "plans" / f"{sha}.json"
    return json.loads(path.read_text())["phase"] if path.is_file() else ""


def _keep_answers(planned: Planned, result: ApplyResult) -> Path:
    folder = layout.phase_dir(planned.change, planned.edge, PHASE)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"answers-{stamp}.json"
    path.write_text(json.dumps([a.to_dict() for a in result.answers], indent=1) + "\n")
    return path


def run(inventory: str | Path, edge: str = "", change: str = "", **options: Any) -> Planned:
    """The notebook's entry point: resolve the inventory, default to its first Edge, plan."""
    if not change:
        raise ConfigError(
            "change: give the change id phase 02 used (e.g. CHG-2026-0042): phase 03 takes the "
            "certificate prepared in that change"
        )
    if options.get("drain_timeout", 1) <= 0:
        raise ConfigError("drain_timeout: seconds to wait for the queues to empty, more than 0")
    loaded = resolve_inventory(inventory)
    return plan(loaded, edge or loaded.edges[0].name, change, Options(**options))
