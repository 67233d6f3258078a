"""Apply a plan step by step with a journal, resume after a failure, roll back from the journal.

Per step (three round trips on the step's server): one pipeline reads the postconditions, the
preconditions and the state the undo needs; one runs the step's cmdlets, answering the
questions the step expects; one reads the postconditions back. A step whose postcondition
already holds is skipped (that is how a rerun resumes); a step journalled done whose
postcondition no longer holds stops the run (someone changed it since). Rollback runs the
undo calls journalled with each completed step, newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgebook.change import journal as events
from edgebook.change.journal import Journal
from edgebook.change.plan import Plan
from edgebook.change.step import Call, Check, Step
from edgebook.change.values import Output, PlanValueError, canonical, snapshot
from edgebook.errors import EdgebookError
from edgebook.exchange.questions import AnsweredQuestion, ExpectedQuestion, UnexpectedQuestion

ShellFor = Callable[[str], Any]  # server name -> an open shell (ExchangeShell or alike)


class StepFailed(EdgebookError):
    """A step could not run or did not reach its postcondition; the journal says where."""


@dataclass
class StepOutcome:
    """What happened to one step."""

    step: str
    server: str
    status: str  # "done", "skipped", "failed", "rolled-back", "not-reversible"
    message: str = ""


@dataclass
class ApplyResult:
    """The outcome of applying (or rolling back) a plan."""

    plan_sha256: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    answers: list[AnsweredQuestion] = field(default_factory=list)
    completed: bool = False
    error: str | None = None

    def rows(self) -> list[dict[str, str]]:
        """One row per step, for a table."""
        return [vars(o) for o in self.outcomes]


def _run(shell: Any, calls: list[Any], questions: tuple[ExpectedQuestion, ...]) -> Any:
    """One pipeline; expected questions passed only when the step has any."""
    extra = {"questions": questions} if questions else {}
    return shell.run_batch(calls, errors="return", **extra)


def _answers(result: Any) -> list[AnsweredQuestion]:
    return list(getattr(result, "answers", None) or [])


class Engine:
    """Applies one plan (or rolls back one journal) through shells, one server at a time."""

    def __init__(self, plan: Plan, shell_for: ShellFor, journal: Journal) -> None:
        self.plan = plan
        self.shell_for = shell_for
        self.journal = journal

    def apply(self) -> ApplyResult:
        """Run every step not done yet; stop at the first failure (the journal says where)."""
        sha = self.plan.sha256
        result = ApplyResult(sha)
        read = self.journal.read()
        done = {r["step"] for r in read.events(events.DONE, plan=sha)}
        self.journal.append("apply-started", plan_sha256=sha, resumed=sorted(done))
        for step in self.plan.steps:
            try:
                outcome = self._step(step, step.id in done, result)
            except (StepFailed, PlanValueError, UnexpectedQuestion) as exc:
                self.journal.append(events.FAILED, plan_sha256=sha, step=step.id, error=str(exc))
                result.outcomes.append(StepOutcome(step.id, step.server, "failed", str(exc)))
                result.error = f"step {step.id} on {step.server} failed: {exc}"
                self.journal.append("apply-stopped", plan_sha256=sha, step=step.id)
                return result
            result.outcomes.append(outcome)
        result.completed = True
        self.journal.append("apply-completed", plan_sha256=sha)
        return result

    def _step(self, step: Step, journalled_done: bool, result: ApplyResult) -> StepOutcome:
        sha = self.plan.sha256
        shell = self.shell_for(step.server)
        reads = [c.read for c in step.post] + [c.read for c in step.pre]
        reads += [step.before] if step.before else []
        first = self._read(shell, reads, f"step {step.id}: reading its conditions")
        post_now = self._holds(step.post, first[: len(step.post)])
        if post_now:
            self.journal.append(
                events.SKIPPED,
                plan_sha256=sha,
                step=step.id,
                reason="its postcondition already holds",
            )
            return StepOutcome(step.id, step.server, "skipped", "postcondition already holds")
        if journalled_done:
            raise StepFailed(
                f"the journal says it was done, but its postcondition no longer holds "
                f"({_says(step.post)}): something changed it since; inspect before going on"
            )
        pre = first[len(step.post) : len(step.post) + len(step.pre)]
        failing = [c.says for c, out in zip(step.pre, pre, strict=True) if not c.holds(out)]
        if failing:
            raise StepFailed(f"precondition not met: {'; '.join(failing)}; nothing was run")
        before = snapshot(first[-1][0], step.before.select) if step.before and first[-1] else {}
        if step.before and not first[-1]:
            raise StepFailed(f"the state before the step ({step.before.text()}) returned nothing")
        self.journal.append(
            events.STARTED,
            plan_sha256=sha,
            step=step.id,
            server=step.server,
            calls=[c.to_dict() for c in step.calls],
            before=before,
        )
        ran = _run(shell, [c.command() for c in step.calls], step.questions)
        answers = _answers(ran)
        result.answers += answers
        for answer in answers:
            self.journal.append("answer", plan_sha256=sha, step=step.id, **answer.to_dict())
        if ran.errors:
            raise StepFailed("; ".join(e.message for e in ran.errors))
        output = snapshot(ran.records[0], _output_properties(step)) if ran.records else {}
        after = self._read(shell, [c.read for c in step.post], f"step {step.id}: reading back")
        if not self._holds(step.post, after):
            raise StepFailed(f"ran, but its postcondition does not hold: {_says(step.post)}")
        state = {"before": before, "output": output}
        undo = [c.filled(state).to_dict() for c in step.undo]
        self.journal.append(
            events.DONE,
            plan_sha256=sha,
            step=step.id,
            server=step.server,
            before=before,
            after=[
                [snapshot(r, tuple(c.where)) for r in out if isinstance(r, dict)]
                for c, out in zip(step.post, after, strict=True)
            ],
            undo=undo,
            before_read=step.before.to_dict() if step.before else None,
            undo_questions=[q.to_dict() for q in step.undo_questions],
            no_undo=step.no_undo,
        )
        return StepOutcome(step.id, step.server, "done")

    def _read(self, shell: Any, reads: list[Call], what: str) -> list[list[Any]]:
        """The output of each read; a read repeated by several checks runs once."""
        return read_all(shell, reads, what)

    @staticmethod
    def _holds(checks: tuple[Check, ...], outputs: list[list[Any]]) -> bool:
        return all(c.holds(out) for c, out in zip(checks, outputs, strict=True))


def read_all(shell: Any, reads: list[Call], what: str) -> list[list[Any]]:
    """The output of each read (one pipeline per distinct read: outputs of a batch cannot be
    told apart by statement); errors stop with StepFailed."""
    cache: dict[bytes, list[Any]] = {}
    outputs = []
    for call in reads:
        key = canonical(call.to_dict())
        if key not in cache:
            ran = shell.run_batch([call.command()], errors="return")
            if ran.errors:
                raise StepFailed(f"{what}: {'; '.join(e.message for e in ran.errors)}")
            cache[key] = list(ran.records)
        outputs.append(cache[key])
    return outputs


def rollback(journal: Journal, shell_for: ShellFor) -> ApplyResult:
    """Revert the completed steps of the journal, newest first, with their journalled undo
    calls; a step without undo is reported, not reverted. Stops at the first failing undo."""
    read = journal.read()
    reverted = {r["done_seq"] for r in read.events("step-rolled-back", "rollback-skipped")}
    done = [r for r in read.events(events.DONE) if r["seq"] not in reverted]
    result = ApplyResult(done[-1]["plan_sha256"] if done else "")
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
        try:
            ran = _run(shell, [Call.from_dict(c).command() for c in record["undo"]], questions)
            answers = _answers(ran)
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


def _says(checks: tuple[Check, ...]) -> str:
    return "; ".join(c.says for c in checks)


def _output_properties(step: Step) -> tuple[str, ...]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Output):
            found.append(value.property)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for call in step.undo:
        walk(dict(call.params))
    return tuple(dict.fromkeys(found))
