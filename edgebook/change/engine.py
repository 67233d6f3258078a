"""Apply a plan step by step with a journal, resume after a failure, roll back from the journal.

Per step (two round trips on the step's server when the reads can be told apart by wire type,
edgebook.change.reads): one pipeline reads the postconditions, the preconditions and the state
the undo needs; one runs the step's cmdlets, answering the questions the step expects, and
reads the postconditions back. A step whose postcondition already holds is skipped (that is how
a rerun resumes); a step journalled done whose postcondition no longer holds stops the run
(someone changed it since). A Wait step polls its postcondition until it holds or its timeout
passes (journalled `wait-timed-out` with the state read). Probes check from here what an Edge
presents. Bytes a step keeps (`keeps`) stay in memory for the steps that use them (`Carried`):
never journalled; a new run reads them anew. Rollback runs the undo calls journalled with each
completed step, newest first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgebook.change import journal as events
from edgebook.change import reads as reads_module
from edgebook.change.journal import Journal
from edgebook.change.plan import Plan
from edgebook.change.reads import run_then_read
from edgebook.change.step import Call, Check, Step
from edgebook.change.step import Probe as StepProbe
from edgebook.change.values import Carried, Output, PlanValueError, snapshot
from edgebook.errors import EdgebookError
from edgebook.exchange.errors import ExchangeConnectionError
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


@dataclass
class Kept:
    """Bytes a step read, kept in memory for a later step (never journalled)."""

    data: bytes
    at: float  # the engine clock when it was read


Probe = Callable[[str, str], "str | None"]  # (server, "smtp"|"ldaps") -> thumbprint presented
Progress = Callable[[str, str, float, float, str], None]  # step, what, elapsed, timeout, state
KeptCheck = Callable[[str, bytes, float], "str | None"]  # name, data, age (s) -> refusal


class Engine:
    """Applies one plan (or rolls back one journal) through shells, one server at a time."""

    def __init__(
        self,
        plan: Plan,
        shell_for: ShellFor,
        journal: Journal,
        *,
        probe: Probe | None = None,
        progress: Progress | None = None,
        check_kept: KeptCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.shell_for = shell_for
        self.journal = journal
        self.probe = probe
        self.progress = progress
        self.check_kept = check_kept
        self.clock = clock
        self.sleep = sleep
        self.kept: dict[str, Kept] = {}
        self.interrupted: set[str] = set()  # started in an earlier run, never ended

    def apply(self) -> ApplyResult:
        """Run every step not done yet; stop at the first failure (the journal says where)."""
        sha = self.plan.sha256
        result = ApplyResult(sha)
        read = self.journal.read()
        undone = {r["done_seq"] for r in read.events("step-rolled-back", "rollback-skipped")}
        done = {r["step"] for r in read.events(events.DONE, plan=sha) if r["seq"] not in undone}
        self.interrupted = _interrupted(read.records, sha)
        self.journal.append("apply-started", plan_sha256=sha, resumed=sorted(done))
        for step in self.plan.steps:
            try:
                outcome = self._step(step, done, result)
            except ExchangeConnectionError as exc:
                lost = (
                    f"the connection to {step.server} was lost ({exc}); whether the step ran is "
                    "unknown: run again with the same approval (each step reads the state first)"
                )
                self.journal.append(
                    events.FAILED, plan_sha256=sha, step=step.id, error=lost, unknown=True
                )
                result.outcomes.append(StepOutcome(step.id, step.server, "failed", lost))
                result.error = f"step {step.id} on {step.server} failed: {lost}"
                self.journal.append("apply-stopped", plan_sha256=sha, step=step.id)
                return result
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

    def _skip(self, step: Step, reason: str) -> StepOutcome:
        self.journal.append(
            events.SKIPPED, plan_sha256=self.plan.sha256, step=step.id, reason=reason
        )
        return StepOutcome(step.id, step.server, "skipped", reason)

    def _step(self, step: Step, done: set[str], result: ApplyResult) -> StepOutcome:
        sha = self.plan.sha256
        if step.keeps:
            users = [s.id for s in self.plan.steps if step.keeps in _carried(s)]
            if users and all(u in done for u in users):
                return self._skip(step, f"the steps that needed its output are done ({users[0]})")
            if step.keeps in self.kept:
                return self._skip(step, f"its {step.keeps} is in memory")
        elif step.once and step.id in done:
            return self._skip(step, "the journal says it was done")
        shell = self.shell_for(step.server)
        reads = [c.read for c in step.post] + [c.read for c in step.pre]
        reads += [step.before] if step.before else []
        first = self._read(shell, reads, f"step {step.id}: reading its conditions")
        if not (step.keeps or step.once) and self._holds(step, first[: len(step.post)]):
            return self._skip(step, "its postcondition already holds")
        interrupted = step.once and step.id in self.interrupted
        if interrupted and self._holds(step, first[: len(step.post)]):
            return self._skip(step, "an interrupted run did it: its postcondition holds")
        if step.id in done and not (step.keeps or step.once):
            raise StepFailed(
                f"the journal says it was done, but its postcondition no longer holds "
                f"({_says(step.post)}): something changed it since; inspect before going on"
            )
        pre = first[len(step.post) : len(step.post) + len(step.pre)]
        failing = [c.says for c, out in zip(step.pre, pre, strict=True) if not c.holds(out)]
        if failing:
            raise StepFailed(f"precondition not met: {'; '.join(failing)}; nothing was run")
        self._check_carried(step)
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
            final=step.final,
            post=[c.to_dict() for c in step.post],
            undo=_started_undo(step, before),
            undo_questions=[q.to_dict() for q in step.undo_questions],
            no_undo=step.no_undo,
        )
        state = {"carried": {k: v.data for k, v in self.kept.items()}}
        commands = [c.command(state) for c in step.calls]
        post_reads = [c.read for c in step.post]
        ran, own, after = run_then_read(shell, commands, step.questions, post_reads)
        answers = _answers(ran)
        result.answers += answers
        for answer in answers:
            self.journal.append("answer", plan_sha256=sha, step=step.id, **answer.to_dict())
        if ran.errors:
            raise StepFailed("; ".join(e.message for e in ran.errors))
        if step.keeps:
            data = next((r for r in own if isinstance(r, bytes | bytearray)), None)
            if not data:
                raise StepFailed(f"ran, but returned no {step.keeps} to keep")
            self.kept[step.keeps] = Kept(bytes(data), self.clock())
        records = [r for r in own if isinstance(r, dict)]
        output = snapshot(records[0], _output_properties(step)) if records else {}
        if after is None:
            after = self._read(shell, post_reads, f"step {step.id}: reading back")
        after = self._until_holds(step, shell, after)
        undo = [c.filled({"before": before, "output": output}).to_dict() for c in step.undo]
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
            final=step.final,
        )
        done.add(step.id)
        return StepOutcome(step.id, step.server, "done")

    def _until_holds(self, step: Step, shell: Any, after: list[list[Any]]) -> list[list[Any]]:
        """The read-back once the postcondition holds: at once, or polled for a Wait step."""
        if self._holds(step, after):
            return after
        if step.wait is None:
            raise StepFailed(
                f"ran, but its postcondition does not hold: {_unmet(step, after) or _probes(step)}"
            )
        start = self.clock()
        reads = [c.read for c in step.post]
        while True:
            elapsed = self.clock() - start
            state = _unmet(step, after) or _probes(step)
            if self.progress:
                self.progress(step.id, step.wait.what, elapsed, step.wait.timeout_s, state)
            if elapsed >= step.wait.timeout_s:
                self.journal.append(
                    "wait-timed-out",
                    plan_sha256=self.plan.sha256,
                    step=step.id,
                    waited_s=round(elapsed, 1),
                    state=state,
                )
                raise StepFailed(
                    f"{step.wait.what} did not happen within {step.wait.timeout_s:g} s; "
                    f"now: {state}"
                )
            self.sleep(min(step.wait.every_s, max(step.wait.timeout_s - elapsed, 0.0)))
            after = self._read(shell, reads, f"step {step.id}: waiting for {step.wait.what}")
            if self._holds(step, after):
                if self.progress:
                    done_in = self.clock() - start
                    self.progress(step.id, step.wait.what, done_in, step.wait.timeout_s, "done")
                return after

    def _check_carried(self, step: Step) -> None:
        """Data from an earlier step must be in memory and still usable (F8 for a file)."""
        for name in _carried(step):
            kept = self.kept.get(name)
            if kept is None:
                raise StepFailed(
                    f"the {name} an earlier step read is not in memory; run again: that step "
                    "reads it anew first"
                )
            refusal = (
                self.check_kept(name, kept.data, self.clock() - kept.at)
                if self.check_kept
                else None
            )
            if refusal:
                del self.kept[name]
                raise StepFailed(f"{refusal}; nothing was run. Run again: a new one is made")

    def _read(self, shell: Any, reads: list[Call], what: str) -> list[list[Any]]:
        """The output of each read, batched where outputs can be told apart."""
        return read_all(shell, reads, what)

    def _holds(self, step: Step, outputs: list[list[Any]]) -> bool:
        checks = all(c.holds(out) for c, out in zip(step.post, outputs, strict=True))
        return checks and all(self._probe_holds(p) for p in step.probes)

    def _probe_holds(self, probe: StepProbe) -> bool:
        if self.probe is None:
            raise StepFailed(f"{probe.says}: no probe was given to check it from here")
        return (self.probe(probe.server, probe.kind) or "").upper() == probe.thumbprint.upper()


def read_all(shell: Any, reads: list[Call], what: str) -> list[list[Any]]:
    """The output of each read (batched by wire type, docs/change-engine.md); errors stop with
    StepFailed."""
    return reads_module.read_all(shell, reads, lambda text: StepFailed(f"{what}: {text}"))


def _carried(step: Step) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Carried):
            found.append(value.name)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for call in step.calls:
        walk(dict(call.params))
    return list(dict.fromkeys(found))


def _unmet(step: Step, outputs: list[list[Any]]) -> str:
    """The postconditions that do not hold, with what was read."""
    parts = []
    for check, out in zip(step.post, outputs, strict=True):
        if not check.holds(out):
            seen = [snapshot(r, tuple(check.where)) for r in out if isinstance(r, dict)]
            parts.append(f"{check.says} (read: {_brief(seen)})")
    return "; ".join(parts)


def _probes(step: Step) -> str:
    return "; ".join(p.says for p in step.probes)


def _brief(seen: list[dict[str, Any]]) -> str:
    text = ", ".join(
        "{" + ", ".join(f"{k}={v}" for k, v in item.items()) + "}" for item in seen[:8]
    )
    return (text or "nothing") + (f" and {len(seen) - 8} more" if len(seen) > 8 else "")


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


def _interrupted(records: list[dict[str, Any]], sha: str) -> set[str]:
    """Steps of this plan whose outcome is unknown: started, then the process died or the
    connection dropped (counted from the last rollback on: it reset them)."""
    since = max((i for i, r in enumerate(records) if r["event"] == "rollback-started"), default=-1)
    found: set[str] = set()
    for record in records[since + 1 :]:
        if record.get("plan_sha256") != sha or "step" not in record:
            continue
        if record["event"] == events.STARTED or (
            record["event"] == events.FAILED and record.get("unknown")
        ):
            found.add(record["step"])
        elif record["event"] in (events.DONE, events.FAILED):
            found.discard(record["step"])
    return found


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


def _started_undo(step: Step, before: dict[str, Any]) -> list[dict[str, Any]]:
    """The undo of a step as it starts (none when it needs the step's output)."""
    if _output_properties(step):
        return []
    try:
        return [c.filled({"before": before, "output": {}}).to_dict() for c in step.undo]
    except PlanValueError:
        return []


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
