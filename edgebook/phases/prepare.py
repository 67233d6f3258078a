"""Phase 02, prepare the certificate: bring it (pfx), request it here (csr) or on the Edge
(edge-request); check it against the organisation; choose phase 03's route; plan, and with an
approved plan stage it on one Mailbox server (F9) under the Edge's lock, with a journal.

Nothing changes without apply and the approved plan hash (edgebook.change.approval).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebook import certs
from edgebook.certs import CertificateError
from edgebook.change import steps
from edgebook.change.approval import approve, save_plan
from edgebook.change.engine import Engine
from edgebook.change.journal import Journal
from edgebook.change.lock import EdgeLock
from edgebook.change.outcome import ApplyResult
from edgebook.change.plan import Plan
from edgebook.change.rollback import rollback
from edgebook.change.session import ShellPool
from edgebook.config import Inventory, resolve_inventory
from edgebook.errors import ConfigError
from edgebook.evidence import layout
from edgebook.exchange.connect import ShellFactory
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import prepare_edge_request as edge_request
from edgebook.phases.own_effects import NO_EFFECTS, OwnEffects, read_own_effects
from edgebook.phases.prepare_certificate import (
    ROUTES,
    Assessment,
    Candidate,
    PrepareRefused,
    assess,
    current_certificate,
    load_issued,
    load_pfx,
    validate,
)
from edgebook.secrets import resolve_secret

PHASE = "prepare"
F5_NOTE = (
    "route edge-request: the key is made on the Edge and never leaves it. Requested exportable "
    "so that a backup can be exported; there is no PFX here, so the Mailbox server receives the "
    "bare certificate (enough for Set-SendConnector to name it, F9) and a lost Edge means a "
    "new certificate (F5)"
)
COMPLETE_NOTE = (
    "route edge-request: the issued certificate completes the pending request on the Edge "
    "(Import-ExchangeCertificate; no service enabled, so it is safe before the drain); phase 03 "
    "then enables it there instead of importing a PFX. Completing has no undo: removing the "
    "certificate would destroy the key made on the Edge"
)


@dataclass
class Prepared:
    """A computed phase 02: the inspect facts, the certificate, its assessment and the plan."""

    inventory: Inventory
    edge: str
    change: str
    route: str
    inspected: Any  # edgebook.phases.inspect.InspectResult
    candidate: Candidate | None
    assessment: Assessment | None
    plan: Plan
    plan_path: Path
    waiting: str = ""  # what must happen before the certificate can be prepared (csr, request)
    files: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None  # edge-request: the request made there (public)
    advice: list[str] = field(default_factory=list)  # about other Edges (F18): not hashed

    @property
    def edge_dir(self) -> Path:
        """outputs/<change>/<EDGE>/."""
        return layout.edge_dir(self.change, self.edge)

    def records(self) -> dict[str, Any]:
        """What phase 03 takes from this change's records."""
        return {
            "plan_sha256": self.plan.sha256,
            "route": self.route,
            "phase03_route": self.assessment.route_record() if self.assessment else None,
            "prepared_certificate": self.candidate.to_dict() if self.candidate else None,
            "waiting": self.waiting,
            "files": self.files,
            "edge_request": self.request,
            "advice": self.advice,
        }


def _source(inventory: Inventory, edge: str, pfx: str, password: str, chain: str):
    configured = inventory.change.certificate_for(edge)
    path = Path(pfx).expanduser() if pfx else (configured.pfx if configured else None)
    if path is None:
        raise ConfigError(
            f"route pfx needs a PFX for {edge}: give pfx (a path) or change.certificates."
            f"{edge}.pfx in {inventory.path}"
        )
    reference = password or (configured.password if configured and not pfx else None)
    chain_path = Path(chain) if chain else (configured.chain if configured and not pfx else None)
    return path, reference, chain_path


def _csr(
    inventory: Inventory, edge: str, change: str, subject: str, password: str, certificate: str
) -> tuple[Candidate | None, dict[str, str], str]:
    """Route csr: key (encrypted) and request made here; with the issued certificate, a PFX."""
    folder = layout.edge_dir(change, edge) / "certificate"
    folder.mkdir(parents=True, exist_ok=True)
    key_path, csr_path = folder / f"{edge}.key.pem", folder / f"{edge}.csr"
    secret = resolve_secret(password, what="pfx_password (it encrypts the key)") if password else ""
    if not secret:
        raise ConfigError("route csr needs pfx_password: a reference to the passphrase of the key")
    files = {"key": str(key_path), "csr": str(csr_path)}
    if not key_path.exists():
        names = [*inventory.change.expected_fqdns, inventory.edge(edge).fqdn]
        request, key = certs.generate_csr(subject, list(dict.fromkeys(names)))
        certs.write_private_key(key, key_path, secret)
        certs.write_csr(request, csr_path)
    if not certificate:
        return (
            None,
            files,
            (
                f"send {csr_path} to your CA, then run again with certificate=<the issued "
                f"file>; the key stays in {key_path}, encrypted with pfx_password (the backup "
                "a non-exportable key never gives)"
            ),
        )
    cert, chain = load_issued(Path(certificate), None, "csr")
    try:
        stored_key = certs.load_private_key(key_path, secret)
    except CertificateError as exc:
        raise PrepareRefused(
            f"{exc} (pfx_password: the passphrase the key was made with)"
        ) from None
    try:
        pfx = certs.build_pfx(stored_key, cert, chain, secret, friendly_name=f"{edge} {change}")
    except CertificateError as exc:
        raise PrepareRefused(f"{certificate}: {exc}") from None
    pfx_path = folder / f"{edge}-{certs.thumbprint(cert)[:12]}.pfx"
    if not pfx_path.exists():
        certs.write_pfx(pfx, pfx_path)
    files["pfx"] = str(pfx_path)
    candidate = load_pfx(pfx_path, password, None)
    candidate.route = "csr"
    return candidate, files, ""


def _services(services: Any) -> list[str] | None:
    """Services as a sorted list; None stays None (Exchange did not say: unknown, not empty)."""
    return None if services is None else sorted(services)


def _facts(
    prepared_edge: Any,
    org: Any,
    staging: str,
    candidate: Candidate | None,
    own: OwnEffects = NO_EFFECTS,
) -> dict:
    """What the plan was computed from (stable facts only: no clocks, queues or probes), the
    organisation's as before this change (own): what its other Edges staged or set is left out."""
    staged = next((m for m in org.mailbox_servers if m.name == staging), None)
    sends = [own.send_connector(c) for c in org.send_connectors]
    return {
        "edge": {
            "name": prepared_edge.name,
            "default_thumbprint": prepared_edge.default_thumbprint,
            "certificates": sorted(
                [c.thumbprint, c.subject, c.issuer, _services(c.services), c.status or ""]
                for c in prepared_edge.certificates
            ),
            "receive_connectors": sorted(
                [c.identity, c.tls_certificate_name or ""] for c in prepared_edge.receive_connectors
            ),
        },
        "organisation": {
            "mailbox_defaults": {m.name: m.internal_thumbprint for m in org.mailbox_servers},
            "staging_server": staging,
            "staging_certificates": sorted(
                c.thumbprint
                for c in staged.certificates
                if not own.staged_here(staging, c.thumbprint)
            )
            if staged
            else [],
            "send_connectors": sorted(
                [c.name, c.tls_certificate_name or "", sorted(c.source_transport_servers)]
                for c in sends
            ),
            "edgesync": sorted([e.name, e.sync_status] for e in org.edgesync),
        },
        "certificate": candidate.to_dict() if candidate else None,
    }


def prepare(
    inventory: Inventory,
    edge: str,
    change: str,
    *,
    route: str = "pfx",
    pfx: str = "",
    pfx_password: str = "",
    chain: str = "",
    certificate: str = "",
    mailbox: str = "",
    shell_factory: ShellFactory | None = None,
) -> Prepared:
    """Read the organisation, prepare and check the certificate, compute and keep the plan."""
    layout.check_change_id(change)
    if route not in ROUTES:
        raise ConfigError(f"route {route!r}: one of {', '.join(ROUTES)}")
    edge = inventory.edge(edge).name
    staging = (
        inventory.mailbox_server(mailbox).name
        if mailbox
        else (inventory.organisation.mailbox_servers[0].name)
    )
    if route == "pfx":  # a bad PFX stops here, before any connection
        path, reference, chain_path = _source(inventory, edge, pfx, pfx_password, chain)
        early = load_pfx(path, reference, chain_path)
    inspected = inspect_phase.inspect(inventory, edge, shell_factory=shell_factory)
    facts = next((e for e in inspected.edges if e.name == edge), None)
    if facts is None or not inspected.org.gathered:
        raise PrepareRefused(
            f"{edge} or the Mailbox side could not be read; see the inspect findings: "
            + "; ".join(f.message for f in inspected.findings if f.slug == "server-unreachable")
        )
    files: dict[str, str] = {}
    waiting = pending = ""
    candidate: Candidate | None
    if route == "pfx":
        candidate = early
    elif route == "csr":
        current = current_certificate(facts, inspected.org)
        subject = (
            current.subject
            if current
            else f"CN={(inventory.change.expected_fqdns or (facts.fqdn,))[0]}"
        )
        candidate, files, waiting = _csr(
            inventory, edge, change, subject, pfx_password, certificate
        )
    elif certificate:
        candidate, pending, files = edge_request.issued(edge, change, certificate, chain, facts)
    else:
        candidate = None
    notes: list[str] = []
    advice: list[str] = []  # F18 is about the other Edges, whom this change may have changed
    step_list = []
    assessment = None
    if candidate is not None:
        roots = inspect_phase._trust_anchors(inventory)
        findings = validate(candidate, inventory, facts, inspected.org.now, roots)
        others = [e for e in inspected.edges if e.name != edge]
        assessment = assess(candidate, findings, facts, inspected.org, others)
        if assessment.refusals:
            raise PrepareRefused(
                f"the certificate {candidate.thumbprint} is not fit for {edge}; nothing was "
                "changed:\n  " + "\n  ".join(assessment.refusals)
            )
        advice = [c for c in assessment.consequences if c.startswith("F18")]
        notes += [c for c in assessment.consequences if c not in advice]
        notes.append(
            f"phase 03 route: {assessment.phase03}: {'; '.join(assessment.phase03_reasons)}"
        )
        if pending:
            step_list.append(
                steps.complete_request_on_edge(edge, candidate.thumbprint, pending, candidate.file)
            )
        if route == "edge-request":
            notes.append(COMPLETE_NOTE)
        step_list.append(
            steps.stage_certificate(
                staging,
                candidate.thumbprint,
                candidate.file,
                candidate.password,
                # what an administrator reads first: never enable it (F1); cut to Exchange's limit
                f"edgebook {change}: TlsCertificateName only ({candidate.subject.split(',')[0]})",
            )
        )
    elif route == "edge-request":
        current = current_certificate(facts, inspected.org)
        subject = current.subject if current else f"CN={facts.fqdn}"
        names = list(dict.fromkeys([*inventory.change.expected_fqdns, facts.fqdn]))
        step_list.append(steps.request_on_edge(edge, subject, names, f"{edge} {change}"))
        made = edge_request.keep_request(change, edge)
        waiting = (
            f"the request is made on {edge}: send {Path(made['file']).name} (beside this plan, "
            "in certificate/) to your CA"
            if made
            else "apply this plan to make the request on the Edge; its text is kept in the "
            "journal, the records and certificate/<EDGE>-<request>.req beside this plan. Send "
            "that to your CA"
        ) + (
            ", then run again with certificate=<the issued file>: phase 02 completes the request "
            "on the Edge and stages the certificate on a Mailbox server"
        )
    if route == "edge-request":
        notes.append(F5_NOTE)
    if waiting:
        notes.append(f"waiting: {waiting}")
    own = read_own_effects(change, [e.name for e in inventory.edges])
    plan = Plan(
        change,
        edge,
        PHASE,
        _facts(facts, inspected.org, staging, candidate, own),
        tuple(step_list),
        tuple(notes),
    )
    path = save_plan(plan, layout.edge_dir(change, edge))
    prepared = Prepared(
        inventory, edge, change, route, inspected, candidate, assessment, plan, path, waiting, files
    )
    prepared.advice = advice
    if route == "edge-request":
        _keep_request(prepared)
    return prepared


def _keep_request(prepared: Prepared) -> None:
    """Route edge-request: the request this change made on the Edge, as a file for the CA."""
    prepared.request = edge_request.keep_request(prepared.change, prepared.edge)
    if prepared.request:
        prepared.files["request"] = prepared.request["file"]


def apply(
    prepared: Prepared,
    approved_plan_sha256: str,
    *,
    take_over_lock: str = "",
    shell_factory: ShellFactory | None = None,
) -> ApplyResult:
    """Run the approved plan under the Edge's lock; the journal and the answers are kept."""
    journal = Journal(layout.journal_path(prepared.change, prepared.edge))
    chosen = approve(prepared.plan, approved_plan_sha256, prepared.edge_dir, journal)
    servers = [prepared.edge, *(s.server for s in chosen.plan.steps)]
    with ShellPool(prepared.inventory, servers, shell_factory) as shells:  # noqa: SIM117
        with EdgeLock(
            shells(prepared.edge),
            prepared.change,
            journal,
            plan_sha256=chosen.plan.sha256,
            take_over=take_over_lock,
        ):
            result = Engine(chosen.plan, shells, journal).apply()
    _keep_answers(prepared, result)
    if prepared.route == "edge-request":
        edge_request.settle(prepared.change, prepared.edge, chosen.plan, result)
        _keep_request(prepared)
    return result


def rollback_change(
    prepared: Prepared, *, take_over_lock: str = "", shell_factory: ShellFactory | None = None
) -> ApplyResult:
    """Revert what this change's journal says was done on this Edge, newest first."""
    journal = Journal(layout.journal_path(prepared.change, prepared.edge))
    servers = [prepared.edge] + [r["server"] for r in journal.read().events("step-done")]
    with ShellPool(prepared.inventory, servers, shell_factory) as shells:  # noqa: SIM117
        with EdgeLock(shells(prepared.edge), prepared.change, journal, take_over=take_over_lock):
            result = rollback(journal, shells)
    _keep_answers(prepared, result)
    return result


def _keep_answers(prepared: Prepared, result: ApplyResult) -> Path:
    """answers.json beside the phase's notebooks: every question and the answer given."""
    folder = layout.phase_dir(prepared.change, prepared.edge, PHASE)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"answers-{stamp}.json"
    path.write_text(json.dumps([a.to_dict() for a in result.answers], indent=1) + "\n")
    return path


def run(
    inventory: str | Path,
    edge: str = "",
    change: str = "",
    **options: Any,
) -> Prepared:
    """The notebook's entry point: resolve the inventory, default to its first Edge, prepare."""
    if not change:
        raise ConfigError(
            "change: give the change id (e.g. CHG-2026-0042); its evidence lives in "
            "outputs/<change>/"
        )
    loaded = resolve_inventory(inventory)
    return prepare(loaded, edge or loaded.edges[0].name, change, **options)
