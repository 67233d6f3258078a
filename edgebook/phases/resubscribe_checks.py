"""Why phase 03 refuses: the checks it makes before it changes anything, each a list of problems.

When planning: the prepared certificate again (its PFX, or the certificate phase 02 completed on
the Edge; its names for this Edge and its validity; a TlsCertificateName that would not
replicate, F4), and the Mailbox servers whose default certificate breaks EdgeSync to this Edge
(F22, which makes the plan resubscribe). When applying: another Edge of the change is mid-way
through its phase 03 or has transport stopped (never two Edges drained at once), and a
subscription file read too long ago to import (F8). An empty list means go on; the phase turns
problems into its refusal (edgebook.phases.resubscribe).
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgebook import certs
from edgebook.change.journal import Journal
from edgebook.config import Inventory
from edgebook.evidence import layout
from edgebook.exchange.command import Command
from edgebook.findings import Severity
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import resubscribe_steps as rs
from edgebook.phases.prepare_certificate import load_pfx, validate
from edgebook.phases.resubscribe_source import PreparedCertificate, on_edge
from edgebook.rules.edgesync import DECRYPT_FAILED


def certificate_problems(
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


def f22_problems(edge: Any, org: Any) -> list[str]:
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


def other_edges_busy(
    inventory: Inventory, edge: str, change: str, shells: Any, phase: str
) -> list[str]:
    """Never two Edges drained at once, and the next Edge only after this one verified: another
    Edge's plan of this phase started in this change and not completed, or its transport not
    running, is a problem."""
    problems = []
    for other in inventory.edges:
        if other.name == edge:
            continue
        journal = Journal(layout.journal_path(change, other.name)).read()
        started = [r for r in journal.records if r["event"] in ("apply-started", "apply-completed")]
        last = started[-1] if started else None
        if last is not None and last["event"] == "apply-started":
            stored = layout.edge_dir(change, other.name) / "plans"
            planned = json.loads((stored / f"{last['plan_sha256']}.json").read_text())["phase"]
            if planned == phase:
                problems.append(
                    f"{other.name}'s phase 03 in change {change} started and has not "
                    f"completed: finish it (run again with its approval) or roll it back first"
                )
        shell = shells(other.name)
        result = shell.run_batch(
            [Command("Get-Service", {"Name": rs.TRANSPORT}).select(["Name", "Status"])],
            errors="return",
        )
        status = next((str(r.get("Status")) for r in result.records if isinstance(r, dict)), "?")
        if status != "Running" or result.errors:
            problems.append(
                f"{other.name}: {rs.TRANSPORT} is {status}: never two Edges drained at once; "
                "bring it back first"
            )
    return problems


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
