"""Questions Exchange asks before it acts, and the answers a plan gives them on purpose.

A cmdlet that asks (ShouldContinue / ShouldProcess) reaches a PSRP client as a host call
(PromptForChoice). edgebook's PSRP host answers only the questions a step expects, each with the
choice the plan names, records every answer, and refuses any other question: it never guesses
and never silences a question with -Force (docs/domain.md, "Questions Exchange asks").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgebook.errors import EdgebookError


@dataclass(frozen=True)
class ExpectedQuestion:
    """A question a step expects: matched on its message, answered with a labelled choice."""

    match: str  # a case-insensitive fragment of the message that identifies the question
    answer: str  # the label of the choice to pick, e.g. "No" or "Yes" ("&" accelerators ignored)
    why: str  # one line for the plan: why this answer

    def matches(self, message: str) -> bool:
        """Whether a question's message is this one."""
        return self.match.casefold() in message.casefold()

    def to_dict(self) -> dict[str, str]:
        """JSON-ready (the plan and its hash include it)."""
        return asdict(self)


@dataclass(frozen=True)
class AnsweredQuestion:
    """A question the server asked and what edgebook answered (journalled and recorded)."""

    server: str
    caption: str
    message: str
    choices: tuple[str, ...]
    answer: str  # the chosen label; "" when the question was refused (unexpected)
    expected: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "choices": list(self.choices)}


class UnexpectedQuestion(EdgebookError):
    """The server asked a question no step expected: the cmdlet was refused an answer."""

    def __init__(self, question: AnsweredQuestion) -> None:
        self.question = question
        super().__init__(
            f"{question.server} asked a question this step does not expect: "
            f"{question.caption!r} {question.message!r} (choices: "
            f"{', '.join(question.choices)}); edgebook did not answer it and the cmdlet did not "
            "run as asked. Review the plan: if the question is expected, the plan must say "
            "which answer to give"
        )
