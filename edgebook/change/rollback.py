"""Roll a change back from its journal: the undo calls journalled with each completed step,
newest first, each checked against the state journalled before it (docs/change-engine.md)."""

from __future__ import annotations

from typing import Any

from edgebook.change import journal as events
from edgebook.change.journal import Journal
from edgebook.change.outcome import (
    ApplyResult,
    ShellFor,
    StepFailed,
    StepOutcome,
    answers_of,
    read_all,
    run_calls,
)
from edgebook.change.step import Call, Check
from edgebook.change.values import PlanValueError, snapshot
from edgebook.exchange.questions import ExpectedQuestion, UnexpectedQuestion


def rollback(journal: Journal, shell_for: ShellFor, plans: set[str] | None = None) -> ApplyResult:
    """Revert the completed steps of the journal (of these plans when given), newest first, with
    their journalled undo calls; a step without undo is reported, not reverted. Stops at the
    first failing undo."""
    read = journal.read()
    reverted = {r["done_seq"] for r in read.events("step-rolled-back", "rollback-skipped")}
    scoped = [
        r
        for r in read.events(events.DONE, events.STARTED)
        if plans is None or r.get("plan_sha256") in plans
    ]
    done = [r for r in _completed_or_interrupted(scoped) if r["seq"] not in reverted]
    result = ApplyResult(done[-1]["plan_sha256"] if done else "")
    barrier = [
        r
        for r in read.events(events.STARTED)
        if r.get("final") and (plans is None or r.get("plan_sha256") in plans)
    ]
    if barrier:  # started, so perhaps done even if the journal could not say so
        step = barrier[-1]["step"]
        reason = (
            f"step {step} started and cannot be undone; undoing the steps before it would leave "
            "mail flow worse: finish the change forward instead (run again with the same "
            "approval)"
        )
        journal.append("rollback-stopped", step=step, reason=reason)
        result.outcomes.append(StepOutcome(step, barrier[-1]["server"], "not-reversible", reason))
        result.error = reason
        return result
    journal.append("rollback-started", steps=[r["step"] for r in reversed(done)])
    for record in reversed(done):
        step, server = record["step"], record["server"]
        if not record["undo"]:
            journal.append(
                "rollback-skipped", done_seq=record["seq"], step=step, reason=record["no_undo"]
            )
            result.outcomes.append(StepOutcome(step, server, "not-reversible", record["no_undo"]))
            continue
        shell = shell_for(server)
        questions = tuple(ExpectedQuestion(**q) for q in record["undo_questions"])
        if record["event"] == events.STARTED and not _took_effect(shell, record):
            journal.append(
                "rollback-skipped",
                done_seq=record["seq"],
                step=step,
                reason="interrupted before it took effect (its postcondition does not hold)",
            )
            result.outcomes.append(StepOutcome(step, server, "skipped", "had no effect"))
            continue
        try:
            ran = run_calls(shell, [Call.from_dict(c).command() for c in record["undo"]], questions)
            answers = answers_of(ran)
            result.answers += answers
            for answer in answers:
                journal.append("answer", step=step, rollback=True, **answer.to_dict())
            if ran.errors:
                raise StepFailed("; ".join(e.message for e in ran.errors))
            message = _verify_restored(shell, record)
        except (StepFailed, PlanValueError, UnexpectedQuestion) as exc:
            journal.append("rollback-failed", done_seq=record["seq"], step=step, error=str(exc))
            result.outcomes.append(StepOutcome(step, server, "failed", str(exc)))
            result.error = f"undoing step {step} on {server} failed: {exc}"
            return result
        journal.append("step-rolled-back", done_seq=record["seq"], step=step, check=message)
        result.outcomes.append(StepOutcome(step, server, "rolled-back", message))
    result.completed = True
    journal.append("rollback-completed")
    return result


def _completed_or_interrupted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The done records, plus the last started one when no record says it ended (a failure,
    a dropped connection or a kill while it ran: it may have taken effect)."""
    ended = {(r["plan_sha256"], r["step"]) for r in records if r["event"] == events.DONE}
    out = [r for r in records if r["event"] == events.DONE]
    last = records[-1] if records else None
    if (
        last is not None
        and last["event"] == events.STARTED
        and "post" in last
        and (last["plan_sha256"], last["step"]) not in ended
    ):
        out.append(last)
    return sorted(out, key=lambda r: r["seq"])


def _took_effect(shell: Any, record: dict[str, Any]) -> bool:
    """Whether an interrupted step's postcondition holds (then its undo runs)."""
    checks = [Check.from_dict(c) for c in record["post"]]
    outputs = read_all(shell, [c.read for c in checks], f"step {record['step']}: reading its state")
    return bool(checks) and all(c.holds(o) for c, o in zip(checks, outputs, strict=True))


def _verify_restored(shell: Any, record: dict[str, Any]) -> str:
    """Read the step's before-state again and compare it with the journalled one."""
    if not record.get("before_read"):
        return "undo ran (no state to compare)"
    call = Call.from_dict(record["before_read"])
    (output,) = read_all(shell, [call], f"step {record['step']}: reading the restored state")
    now = snapshot(output[0], call.select) if output else {}
    if now != record["before"]:
        raise StepFailed(
            f"the undo ran but the state differs from the journalled one: {now} != "
            f"{record['before']}"
        )
    return "state before the step restored"
