"""What applying or rolling back a plan produced, and the two ways both talk to a shell: one
pipeline of calls answering the expected questions, and reads batched by wire type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgebook.change import reads as reads_module
from edgebook.change.step import Call
from edgebook.errors import EdgebookError
from edgebook.exchange.questions import AnsweredQuestion, ExpectedQuestion

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


def run_calls(shell: Any, calls: list[Any], questions: tuple[ExpectedQuestion, ...]) -> Any:
    """One pipeline; expected questions passed only when the step has any."""
    extra = {"questions": questions} if questions else {}
    return shell.run_batch(calls, errors="return", **extra)


def answers_of(result: Any) -> list[AnsweredQuestion]:
    """The questions a pipeline asked and the answers given."""
    return list(getattr(result, "answers", None) or [])


def read_all(shell: Any, reads: list[Call], what: str) -> list[list[Any]]:
    """The output of each read (batched by wire type, docs/change-engine.md); errors stop with
    StepFailed."""
    return reads_module.outputs(reads_module.read_all(shell, reads, failure(what)), reads)


def failure(what: str) -> Callable[[str], StepFailed]:
    """The error a failed read raises, saying what was being read."""
    return lambda text: StepFailed(f"{what}: {text}")
