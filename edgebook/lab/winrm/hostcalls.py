"""Questions a lab cmdlet asks the PSRP client: a PipelineHostCall (PromptForChoice) and a wait.

The pipeline's worker thread sends the host call and blocks; the client's PipelineHostResponse
(a WSMan Send on the "pr" stream) wakes it with the chosen index or with the error the client's
host method raised (the response's "me"), which becomes the cmdlet's error as in PowerShell.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psrpcore import PipelineHostResponseEvent, ServerHostRequestor, ServerPipeline
from psrpcore.types import ChoiceDescription, PSInvocationState

from edgebook.lab.winrm.protocol import Choice, ErrorInfo, HostError

HOST_ANSWER_TIMEOUT_S = 60.0  # the lab stops waiting for the answer to a question after this
PIPELINE_STOPPED = ErrorInfo(
    message="The pipeline has been stopped.",
    fully_qualified_error_id="PipelineStopped",
    category="OperationStopped",
    exception_type="System.Management.Automation.PipelineStoppedException",
)
NO_ANSWER = ErrorInfo(
    message=(
        f"The client did not answer the question within {HOST_ANSWER_TIMEOUT_S:.0f} seconds "
        "(the edgebook lab stops waiting then; PowerShell would wait until the pipeline is "
        "stopped)."
    ),
    fully_qualified_error_id="LabHostCallTimedOut",
    category="OperationTimeout",
    exception_type="System.TimeoutException",
)


@dataclass
class Run:
    """A pipeline's worker as the requests see it: finished, or waiting for an answer."""

    done: bool = False
    asking: int | None = None  # the call id of the host call it waits on
    answer: PipelineHostResponseEvent | None = None


class PipelineHost:
    """The client's host UI for one pipeline: a question is a PipelineHostCall and a wait."""

    def __init__(
        self,
        changed: threading.Condition,
        flush: Callable[[], None],
        pipe: ServerPipeline,
        run: Run,
    ) -> None:
        self._changed = changed  # the shell's lock and condition (its state changed)
        self._flush = flush  # queues what psrpcore has to send, and notifies
        self._pipe = pipe
        self._run = run

    def prompt_for_choice(
        self, caption: str, message: str, choices: Sequence[Choice], default: int
    ) -> int:
        """Send PromptForChoice and wait for the client's answer (HostError without one)."""
        pipe, run = self._pipe, self._run
        described = [ChoiceDescription(Label=c.label, HelpMessage=c.help) for c in choices]
        with self._changed:
            if pipe.state != PSInvocationState.Running:
                raise HostError(PIPELINE_STOPPED)
            run.answer = None
            run.asking = ServerHostRequestor(pipe).prompt_for_choice(
                caption, message, described, default
            )
            self._flush()
            deadline = time.monotonic() + HOST_ANSWER_TIMEOUT_S
            try:
                while run.answer is None:
                    if pipe.state != PSInvocationState.Running:
                        raise HostError(PIPELINE_STOPPED)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise HostError(NO_ANSWER)
                    self._changed.wait(left)
            finally:
                run.asking = None
            answer = run.answer
        if answer.error is not None:
            raise HostError(_refusal(answer.error))
        try:
            return int(answer.result)
        except (TypeError, ValueError):
            raise HostError(_refusal(None)) from None


def _refusal(record: Any) -> ErrorInfo:
    """The error a cmdlet gets when the client's host method failed (the host response's me)."""
    exception = getattr(record, "Exception", None)
    message = getattr(exception, "Message", None) or (
        str(record) if record is not None else "The host returned no valid answer."
    )
    return ErrorInfo(
        message=str(message),
        fully_qualified_error_id="RemoteHostCallFailed",
        category="InvalidOperation",
        exception_type="System.Management.Automation.RemoteException",
    )
