"""Apply a plan step by step with a journal, and resume after a failure (rollback: rollback.py).

A step reads its postconditions, its preconditions and the state its undo needs; then one
pipeline runs its cmdlets, answering the questions it expects, reads its postconditions back
and, when the next step runs on the same server, reads what that step needs too (where wire
types tell the outputs apart: edgebook.change.reads). The next step uses those reads instead of
reading again: nothing ran on its server since. So a step costs one round trip after a step of
its server, two after a step elsewhere or as the first. Only what the last pipeline of a done
or skipped step read is handed on (a Wait step's last poll); a failure or a new run drops it.
A step whose postcondition already holds is skipped (that is how a rerun resumes); a step
journalled done whose postcondition no longer holds stops the run (someone changed it since).
A Wait step polls its postcondition until it holds or its timeout passes (journalled
`wait-timed-out` with the state read). Probes check from here what an Edge presents. Bytes a
step keeps (`keeps`) stay in memory for the steps that use them (`Carried`): never journalled;
a new run reads them anew.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgebook.change import journal as events
from edgebook.change import reads as reads_module
from edgebook.change.journal import Journal
from edgebook.change.outcome import (
    ApplyResult,
    ShellFor,
    StepFailed,
    StepOutcome,
    answers_of,
    failure,
    read_all,
)
from edgebook.change.plan import Plan
from edgebook.change.reads import Seen, run_then_read
from edgebook.change.step import Call, Check, Step
from edgebook.change.step import Probe as StepProbe
from edgebook.change.values import (
    Carried,
    Output,
    PlanValueError,
    appeared,
    placeholders,
    snapshot,
)
from edgebook.exchange.errors import ExchangeConnectionError
from edgebook.exchange.questions import UnexpectedQuestion


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
        self._ahead: list[Call] = []  # the reads of the next step when on the same server
        self._seen: Seen = {}  # what the last reads on this step's server found (nothing since)

    def apply(self) -> ApplyResult:
        """Run every step not done yet; stop at the first failure (the journal says where)."""
        sha = self.plan.sha256
        result = ApplyResult(sha)
        read = self.journal.read()
        undone = {r["done_seq"] for r in read.events("step-rolled-back", "rollback-skipped")}
        done = {r["step"] for r in read.events(events.DONE, plan=sha) if r["seq"] not in undone}
        self.interrupted = _interrupted(read.records, sha)
        self.journal.append("apply-started", plan_sha256=sha, resumed=sorted(done))
        seen: Seen = {}
        for index, step in enumerate(self.plan.steps):
            self._ahead = reads_module.following(self.plan.steps, index)
            self._seen = seen
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
            seen = self._seen if self._ahead else {}  # carried only to the next step there
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
            users = [s for s in self.plan.steps if step.keeps in _carried(s)]
            if users and all(u.id in done for u in users):
                needed = users[0].id
                return self._skip(step, f"the steps that needed its output are done ({needed})")
            if step.keeps in self.kept:
                return self._skip(step, f"its {step.keeps} is in memory")
            if users and all(u.id in done or self._interrupted_and_holds(u) for u in users):
                # making it anew would undo what the interrupted step did with the first one
                # (a second subscription file replaces the credentials the first one carried)
                return self._skip(
                    step, f"an interrupted run of {users[-1].id} used its output and took effect"
                )
        elif step.once and step.id in done:
            return self._skip(step, "the journal says it was done")
        shell = self.shell_for(step.server)
        reads = reads_module.condition_reads(step)
        missing = [c for c in reads if reads_module.key(c) not in self._seen]
        if missing:  # what the previous step's pipeline did not carry
            found = self._look(shell, missing, f"step {step.id}: reading its conditions")
            self._seen = {**self._seen, **found}
        first = reads_module.outputs(self._seen, reads)
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
            # a postcondition that held before the step proves nothing if the step is interrupted
            **({"held": True} if step.once and self._holds(step, first[: len(step.post)]) else {}),
        )
        state = {"carried": {k: v.data for k, v in self.kept.items()}}
        commands = [c.command(state) for c in step.calls]
        post_reads = [c.read for c in step.post]
        self._seen = {}  # the step changes the server: what was read before is stale
        ran = run_then_read(shell, step, commands, self._ahead)
        own = ran.own
        answers = answers_of(ran.result)
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
        if ran.seen is None:
            ran.seen = self._look(shell, post_reads, f"step {step.id}: reading back")
        self._seen = ran.seen
        after = self._until_holds(step, shell, reads_module.outputs(ran.seen, post_reads))
        made = appeared(step, first, after)
        undo = [
            c.filled({"before": before, "output": output, "appeared": made}).to_dict()
            for c in step.undo
        ]
        texts = [r for r in own if isinstance(r, str)] if step.journals_text else []
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
            **({"text": texts} if texts else {}),  # e.g. the request -GenerateRequest returns
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
            self._seen = self._look(shell, reads, f"step {step.id}: waiting for {step.wait.what}")
            after = reads_module.outputs(self._seen, reads)
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

    def _interrupted_and_holds(self, step: Step) -> bool:
        """Whether a step an earlier run started and never ended took effect (a once-step whose
        postcondition did not hold when it started, and holds now)."""
        if not (step.once and step.id in self.interrupted):
            return False
        reads = [c.read for c in step.post]
        shell = self.shell_for(step.server)
        outputs = read_all(shell, reads, f"step {step.id}: reading its state")
        return self._holds(step, outputs)

    def _look(self, shell: Any, reads: list[Call], what: str) -> Seen:
        """The reads' outputs, the next step's reads riding along where they fit."""
        return reads_module.read_all(shell, reads, failure(what), self._ahead)

    def _holds(self, step: Step, outputs: list[list[Any]]) -> bool:
        checks = all(c.holds(out) for c, out in zip(step.post, outputs, strict=True))
        return checks and all(self._probe_holds(p) for p in step.probes)

    def _probe_holds(self, probe: StepProbe) -> bool:
        if self.probe is None:
            raise StepFailed(f"{probe.says}: no probe was given to check it from here")
        return (self.probe(probe.server, probe.kind) or "").upper() == probe.thumbprint.upper()


def _carried(step: Step) -> list[str]:
    """The names of the kept data the step's calls use."""
    return list(dict.fromkeys(p.name for p in placeholders(step.calls, Carried)))


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


def _interrupted(records: list[dict[str, Any]], sha: str) -> set[str]:
    """Steps of this plan whose outcome is unknown: started, then the process died or the
    connection dropped (counted from the last rollback on: it reset them). A step whose
    postcondition already held when it started is not among them: it runs again."""
    since = max((i for i, r in enumerate(records) if r["event"] == "rollback-started"), default=-1)
    found: set[str] = set()
    held: set[str] = set()
    for record in records[since + 1 :]:
        if record.get("plan_sha256") != sha or "step" not in record:
            continue
        step = record["step"]
        if record["event"] == events.STARTED:
            (held.add if record.get("held") else held.discard)(step)
        if record["event"] == events.STARTED or (
            record["event"] == events.FAILED and record.get("unknown")
        ):
            (found.discard if step in held else found.add)(step)
        elif record["event"] in (events.DONE, events.FAILED):
            found.discard(step)
    return found


def _started_undo(step: Step, before: dict[str, Any]) -> list[dict[str, Any]]:
    """The undo of a step as it starts (none when it needs the step's output)."""
    if _output_properties(step):
        return []
    try:
        return [c.filled({"before": before, "output": {}}).to_dict() for c in step.undo]
    except PlanValueError:
        return []


def _says(checks: tuple[Check, ...]) -> str:
    return "; ".join(c.says for c in checks)


def _output_properties(step: Step) -> tuple[str, ...]:
    """The properties of the step's output its undo needs."""
    return tuple(dict.fromkeys(p.property for p in placeholders(step.undo, Output)))
