"""Phase 02's route edge-request: the request made on the Edge by New-ExchangeCertificate
-GenerateRequest (the key never leaves it, F5), its text kept for the CA, and the certificate
the CA issued matched to the pending request and completed there.

The cmdlet returns the request's text only; the engine journals it with the step
(`text` of its `step-done`), and this module writes it to
outputs/<change>/<EDGE>/certificate/<EDGE>-<request>.req. Completing the request consumes it:
the request step's undo (remove the pending request) then has nothing left to remove, so the
journal says so (`rollback-skipped`, `superseded_by`) and a rollback does not try.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebook.change import journal as events
from edgebook.change.journal import Journal
from edgebook.change.outcome import ApplyResult
from edgebook.change.plan import Plan
from edgebook.evidence import layout
from edgebook.phases.prepare_certificate import (
    Candidate,
    PrepareRefused,
    cert_file,
    load_issued,
    read_request,
    write_request,
)


def request_step(edge: str) -> str:
    """The id of the step that makes the request on this Edge."""
    return f"request-{edge.lower()}"


def complete_step(edge: str) -> str:
    """The id of the step that completes it there."""
    return f"complete-{edge.lower()}"


def _settled(records: list[dict[str, Any]]) -> set[int]:
    return {
        r["done_seq"] for r in records if r["event"] in ("step-rolled-back", "rollback-skipped")
    }


def _pending_of(record: dict[str, Any]) -> str:
    """The pending request's thumbprint, from the undo journalled with the request step."""
    undo = record.get("undo") or [{}]
    return str(undo[0].get("params", {}).get("Thumbprint", ""))


def journalled(change: str, edge: str) -> dict[str, Any] | None:
    """The newest request this change made on the Edge and still owns (neither rolled back nor
    completed): its step-done record (text, undo)."""
    read = Journal(layout.journal_path(change, edge)).read()
    settled = _settled(read.records)
    made = [
        r
        for r in read.events(events.DONE)
        if r["step"] == request_step(edge) and r["seq"] not in settled and r.get("text")
    ]
    return made[-1] if made else None


def keep_request(change: str, edge: str) -> dict[str, Any] | None:
    """The journalled request as a file for the CA, and what the records say of it."""
    record = journalled(change, edge)
    if record is None:
        return None
    text = "\n".join(record["text"])
    request = read_request(text, f"the request journalled for {edge} (seq {record['seq']})")
    pending = _pending_of(record)
    folder = layout.edge_dir(change, edge) / "certificate"
    path = write_request(request, folder / f"{edge}-{pending[:12] or record['seq']}.req")
    return {
        "file": str(path),
        "pending_thumbprint": pending,
        "subject": request.subject.rfc4514_string(),
        "text": text,
    }


def issued(
    edge: str, change: str, certificate: str, chain: str, facts: Any
) -> tuple[Candidate, str, dict[str, str]]:
    """The certificate the CA issued, matched to the Edge's pending request by its public key
    (or already completed there): the candidate, the pending request's thumbprint ("" when
    completed already) and the bare certificate file for the Mailbox server."""
    cert, chain_certs = load_issued(
        Path(certificate), Path(chain) if chain else None, "edge-request"
    )
    key = cert.public_key()
    pending = [
        c
        for c in facts.certificates
        if c.status == "PendingRequest" and c.cert is not None and c.cert.public_key() == key
    ]
    folder = layout.edge_dir(change, edge) / "certificate"
    file = cert_file(cert, chain_certs, folder)
    candidate = Candidate(cert, chain_certs, file, None, "edge-request", True)
    completed = facts.certificate(candidate.thumbprint)
    if pending:
        return candidate, pending[0].thumbprint, {"certificate": file.path}
    if completed is not None and completed.has_private_key:
        return candidate, "", {"certificate": file.path}
    raise PrepareRefused(
        f"{certificate}: no pending request on {edge} holds this certificate's key; it was "
        "not issued for the request made there"
    )


def settle(change: str, edge: str, plan: Plan, result: ApplyResult) -> None:
    """Once the completion step is done (or found done): the request steps whose pending
    request it consumed are journalled as needing no rollback (nothing left to remove)."""
    step = complete_step(edge)
    completion = next((s for s in plan.steps if s.id == step), None)
    if completion is None or not any(
        o.step == step and o.status in ("done", "skipped") for o in result.outcomes
    ):
        return
    pending = str(completion.pre[0].where["Thumbprint"])
    journal = Journal(layout.journal_path(change, edge))
    read = journal.read()
    settled = _settled(read.records)
    for record in read.events(events.DONE):
        if (
            record["step"] == request_step(edge)
            and record["seq"] not in settled
            and _pending_of(record).upper() == pending.upper()
        ):
            journal.append(
                "rollback-skipped",
                done_seq=record["seq"],
                step=record["step"],
                superseded_by=step,
                reason=(
                    f"the pending request {pending} was completed on {edge}: nothing is left to "
                    "remove (the completed certificate has no undo)"
                ),
            )
