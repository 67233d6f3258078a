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
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebook import certs
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
from edgebook.exchange.connect import ShellFactory
from edgebook.exchange.shell import Command
from edgebook.findings import Severity
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import resubscribe_steps as rs
from edgebook.phases.own_effects import NO_EFFECTS, OwnEffects, read_own_effects
from edgebook.phases.prepare_certificate import CERTIFICATE_ONLY, RESUBSCRIBE, load_pfx, validate
from edgebook.phases.resubscribe_source import (
    PreparedCertificate,
    on_edge,
    prepared_certificate,
    put_on_edge,
)
from edgebook.phases.resubscribe_verify import Prober, probe_edge
from edgebook.rules.edgesync import DECRYPT_FAILED

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


def _check_certificate(
    cert: PreparedCertificate, inventory: Inventory, facts: Any, now: dt.datetime
) -> list[str]:
    """The PFX again: its names for this Edge, its validity (a wrong FQDN is refused here)."""
    problems: list[str] = []
    if cert.key_on_edge:  # route edge-request: phase 02 completed it on the Edge
        problems, found = on_edge(cert, facts)
        if found is None:
            return problems
        candidate = found
    elif cert.pfx is None:
        return ["phase 02 left no PFX to import on the Edge"]
    else:
        candidate = load_pfx(
            Path(cert.pfx.path), cert.password.reference if cert.password else None, None
        )
        if candidate.thumbprint != cert.thumbprint:
            problems.append(f"{cert.pfx.path} no longer holds {cert.thumbprint}")
    for finding in validate(
        candidate, inventory, facts, now, inspect_phase._trust_anchors(inventory)
    ):
        if finding.severity == Severity.ERROR:
            problems.append(f"{finding.slug}: {finding.message}")
    if len(cert.tls_name) > certs.TLS_NAME_MAX:
        problems.append(
            f"F4: TlsCertificateName {cert.tls_name[:60]}… has {len(cert.tls_name)} characters "
            f"(more than {certs.TLS_NAME_MAX}): it would not replicate to the Edge; use a "
            "certificate with a shorter issuer and subject, or the connector's Fqdn"
        )
    return problems


def _f22(edge: Any, org: Any) -> list[str]:
    """Mailbox servers that cannot decrypt their EdgeSync credentials for this Edge (F22): their
    default certificate is newer than the subscription, or EdgeSync to the Edge fails to decrypt
    the credential with that certificate (an older certificate made the default shows only so)."""
    sub = next((s for s in org.subscriptions if edge.is_named(s.name)), None)
    if sub is None:
        return []
    row = next((r for r in org.edgesync if edge.is_named(r.name)), None)
    failure = (row.failure_detail or "") if row is not None else ""
    decrypt = DECRYPT_FAILED in failure.casefold()
    found = []
    for mailbox in org.mailbox_servers:
        thumb = mailbox.internal_thumbprint or ""
        default = next((c for c in mailbox.certificates if c.thumbprint == thumb), None)
        newer = bool(
            default is not None
            and default.not_before
            and sub.create_utc
            and default.not_before > sub.create_utc
        )
        named = decrypt and bool(thumb) and thumb.casefold() in failure.casefold()
        if not (newer or named):
            continue
        why = (
            f"is newer than {edge.name}'s subscription ({sub.create_utc:%Y-%m-%d %H:%M} UTC)"
            if newer
            else f"is not the one {edge.name}'s subscription was made with: EdgeSync from "
            f"{mailbox.name} to {edge.name} fails to decrypt the credential with it"
        )
        found.append(
            f"F22: {mailbox.name}'s default transport certificate {thumb} {why}: EdgeSync from it "
            "fails until the Edge is subscribed again; this plan resubscribes (or restore "
            f"{mailbox.name}'s previous default and plan again)"
        )
    if decrypt and not found:
        found.append(
            f"F22: EdgeSync to {edge.name} fails to decrypt the credential ({failure}): a Mailbox "
            "server's default certificate changed after the subscription; this plan resubscribes "
            "(or restore that server's previous default and plan again)"
        )
    return found


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
    problems = _check_certificate(cert, inventory, facts, org.settings.now)
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
    f22 = _f22(facts, org)
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


def _other_edges_busy(planned: Planned, shells: Any) -> list[str]:
    """Never two Edges drained at once, and the next Edge only after this one verified."""
    problems = []
    for other in planned.inventory.edges:
        if other.name == planned.edge:
            continue
        journal = Journal(layout.journal_path(planned.change, other.name)).read()
        started = [r for r in journal.records if r["event"] in ("apply-started", "apply-completed")]
        last = started[-1] if started else None
        if last is not None and last["event"] == "apply-started":
            stored = layout.edge_dir(planned.change, other.name) / "plans"
            phase = json.loads((stored / f"{last['plan_sha256']}.json").read_text())["phase"]
            if phase == PHASE:
                problems.append(
                    f"{other.name}'s phase 03 in change {planned.change} started and has not "
                    f"completed: finish it (run again with its approval) or roll it back first"
                )
        shell = shells(other.name)
        result = shell.run_batch(
            [
                Command(
                    "Get-Service",
                    {"Name": rs.TRANSPORT},
                    (Command("Select-Object", {"Property": ["Name", "Status"]}),),
                )
            ],
            errors="return",
        )
        status = next((str(r.get("Status")) for r in result.records if isinstance(r, dict)), "?")
        if status != "Running" or result.errors:
            problems.append(
                f"{other.name}: {rs.TRANSPORT} is {status}: never two Edges drained at once; "
                "bring it back first"
            )
    return problems


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
        [Command("Get-SendConnector", {}, (Command("Select-Object", {"Property": properties}),))],
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


def subscription_age_check(name: str, data: bytes, age_s: float) -> str | None:
    """F8: the file's lifetime (Duration) against the time since it was read; nothing of its
    content is returned."""
    try:
        root = ET.fromstring(data.decode("utf-8-sig"))
        duration = next(c.text or "" for c in root if c.tag == "Duration")
        days, _, clock = duration.rpartition(".")
        hours, minutes, seconds = (int(p) for p in clock.split(":"))
        lifetime = dt.timedelta(days=int(days or 0), hours=hours, minutes=minutes, seconds=seconds)
    except (ET.ParseError, StopIteration, ValueError, UnicodeDecodeError):
        return f"the {name} is not an Edge Subscription file"
    margin = 120.0
    if age_s + margin > lifetime.total_seconds():
        return (
            f"F8: the {name} was read {age_s / 60:.0f} min ago; its bootstrap account lives "
            f"{lifetime.total_seconds() / 60:.0f} min: too old to import"
        )
    return None


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
        _refuse(_other_edges_busy(planned, shells), planned.edge)
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
