"""ExchangeShell: Exchange cmdlets over WinRM/PSRP with pypsrp's low-level API.

Two endpoint shapes (docs/domain.md §3):

* Mailbox: ``http(s)://fqdn/PowerShell``, configuration ``Microsoft.Exchange`` (NoLanguage):
  cmdlets with parameters only — this shell never sends a script.
* Edge: the default WinRM listener (``/wsman``, ``Microsoft.PowerShell``); the Exchange
  snap-in is added once per runspace pool, as the first statement of the first pipeline.

One runspace pool (min = max = 1, so session state persists) is opened lazily and reused for
every call; `run_batch` sends several statements (Commands, edgebook.exchange.command) in ONE
pipeline (principle 7). Outputs are normalised by edgebook.exchange.normalize. Errors written
by cmdlets raise ExchangeCommandError (or are returned with ``errors="return"``); transport
failures raise ExchangeConnectionError.

Time bounds: each HTTP request waits at most connection_timeout to connect and
operation_timeout + 10 s for the answer (edgebook.exchange.wsman_connection), and is never
retried (pypsrp would retry a Receive five times with growing pauses: minutes). Each call
(`open`, `run`, `run_batch`, the session opening included; a password prompt excepted) ends
within call_timeout plus a few seconds (a last poll, stopping the pipeline): a cmdlet that
never finishes is stopped and reported as ExchangeConnectionError.

Questions: the shell declares a host UI (edgebook.exchange.host). A cmdlet that asks (Exchange's
ShouldContinue / ShouldProcess) is answered only from the ``questions`` the call passes; any
other question is refused (the cmdlet does not act) and raised as UnexpectedQuestion, or
returned in Result.answers. Secrets (SecureText) travel as SecureStrings, encrypted with the
session key exchanged once per session.

Thread-safety: one shell per thread. A shell may move between threads (asyncio.to_thread),
but two threads using it at the same time get an EdgebookError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Literal, overload

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell
from pypsrp.wsman import WSMan

from edgebook.config import EDGE, MAILBOX, CredentialRef, Inventory, WinRMEndpoint
from edgebook.errors import EdgebookError
from edgebook.exchange import wire_log
from edgebook.exchange.command import Command, Result, add_statements
from edgebook.exchange.counting import CountingTransport, ShellStats
from edgebook.exchange.errors import (
    RESPONSE_ERRORS,
    TRANSPORT_ERRORS,
    CallTimeout,
    ExchangeCommandError,
    ExchangeConnectionError,
    UnreadableResponse,
    connection_error,
)
from edgebook.exchange.host import HostedRunspacePool, QuestionHost
from edgebook.exchange.normalize import CommandError, command_error, normalize, tolerate_references
from edgebook.exchange.pipeline_message import write_pipelines
from edgebook.exchange.questions import AnsweredQuestion, ExpectedQuestion, UnexpectedQuestion
from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.exchange.wire_values import has_secret, wire_value
from edgebook.exchange.wsman_connection import build_wsman, check_endpoint
from edgebook.secrets import Credential

log = logging.getLogger(__name__)
wire_log.install()  # no NTLM token or PSRP payload in anybody's debug log

ErrorMode = Literal["raise", "return"]
STOP_GRACE_S = 5.0  # time left to stop a pipeline that ran past the call timeout


class ExchangeShell:
    """A session to one Exchange server (Mailbox or Edge shape); use as a context manager."""

    def __init__(
        self,
        name: str,
        winrm: WinRMEndpoint,
        credential: Credential | CredentialRef | None,
        *,
        role: str,
        lab: bool = False,
        wsman: WSMan | None = None,
        operation_timeout: int = 20,
        connection_timeout: float = 15,
        call_timeout: float = 300.0,
    ) -> None:
        if role not in (MAILBOX, EDGE):
            raise ValueError(f"role must be {MAILBOX!r} or {EDGE!r}, not {role!r}")
        self.name = name
        self.winrm = winrm
        self.role = role
        self.lab = lab
        self.url = winrm.url
        if operation_timeout < 1 or connection_timeout <= 0 or call_timeout <= 0:
            raise ValueError("timeouts must be positive (operation_timeout at least 1 s)")
        self.operation_timeout = operation_timeout
        self.connection_timeout = connection_timeout
        self.call_timeout = call_timeout
        self._deadline: float | None = None
        self.last_warnings: list[str] = []
        self._credential = credential
        self._wsman = wsman
        self._pool: HostedRunspacePool | None = None
        self._host = QuestionHost(name)
        self._snapin_loaded = False
        self._finished: PowerShell | None = None  # its Terminate not sent yet
        self._stats = ShellStats(name)
        self._busy = threading.Lock()
        check_endpoint(name, winrm, lab)

    @classmethod
    def for_server(cls, inventory: Inventory, server_name: str, **kwargs: Any) -> ExchangeShell:
        """A shell for a server of the inventory (Mailbox or Edge, by name)."""
        server = inventory.server(server_name)
        return cls(
            server.name,
            server.winrm,
            server.credential,
            role=server.role,
            lab=inventory.lab,
            **kwargs,
        )

    def __enter__(self) -> ExchangeShell:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._pool is not None else "closed"
        return f"ExchangeShell({self.name!r}, {self.role}, {self.url}, {state})"

    @property
    def answers(self) -> list[AnsweredQuestion]:
        """Every question this session was asked, answered or refused, in order."""
        return list(self._host.answers)

    @property
    def stats(self) -> ShellStats:
        """A snapshot of the counters (cmdlets, pipelines, WSMan requests)."""
        snapshot = ShellStats(**{**vars(self._stats), "by_cmdlet": Counter()})
        snapshot.by_cmdlet.update(self._stats.by_cmdlet)
        return snapshot

    def open(self) -> None:
        """Open the runspace pool now (otherwise the first call opens it)."""
        with self._exclusive():
            self._ensure_pool()

    def close(self) -> None:
        """Close the runspace pool (WSMan Delete, which also ends a finished pipeline not yet
        terminated) and the connection; safe to call twice."""
        pool, self._pool = self._pool, None
        self._finished = None
        self._snapin_loaded = False
        if pool is not None:
            try:
                pool.close()
            except TRANSPORT_ERRORS as exc:
                log.debug("%s: closing the session failed: %s", self.name, type(exc).__name__)
            # each pipeline refers back to the pool: dropping them frees the commands and
            # outputs now (some 800 objects a session) instead of in a cyclic collection
            pool.pipelines.clear()
        if self._wsman is not None:
            self._wsman.close()

    @overload
    def run(
        self,
        cmdlet: str,
        *,
        errors: Literal["raise"] = ...,
        questions: Sequence[ExpectedQuestion] = ...,
        **parameters: Any,
    ) -> list[Any]: ...

    @overload
    def run(
        self,
        cmdlet: str,
        *,
        errors: Literal["return"],
        questions: Sequence[ExpectedQuestion] = ...,
        **parameters: Any,
    ) -> Result: ...

    def run(
        self,
        cmdlet: str,
        *,
        errors: ErrorMode = "raise",
        questions: Sequence[ExpectedQuestion] = (),
        **parameters: Any,
    ) -> Any:
        """Run one cmdlet; returns its normalised outputs (or a Result with errors="return").

        questions are the questions this call expects, each answered with the choice it names.
        """
        return self.run_batch([Command(cmdlet, parameters)], errors=errors, questions=questions)

    @overload
    def run_batch(
        self,
        commands: Sequence[Command],
        *,
        errors: Literal["raise"] = ...,
        questions: Sequence[ExpectedQuestion] = ...,
    ) -> list[Any]: ...

    @overload
    def run_batch(
        self,
        commands: Sequence[Command],
        *,
        errors: Literal["return"],
        questions: Sequence[ExpectedQuestion] = ...,
    ) -> Result: ...

    def run_batch(
        self,
        commands: Sequence[Command],
        *,
        errors: ErrorMode = "raise",
        questions: Sequence[ExpectedQuestion] = (),
    ) -> Any:
        """Run the commands as statements of ONE pipeline; outputs in order, all statements.

        A question none of `questions` expects is refused (the cmdlet does not act): with
        errors="raise" it raises UnexpectedQuestion once the pipeline has ended.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        if not commands:
            raise ValueError("run_batch needs at least one command")
        expected = tuple(questions)
        if not all(isinstance(question, ExpectedQuestion) for question in expected):
            raise ValueError("questions must be ExpectedQuestion objects")
        for command in commands:  # bad values are refused before anything is sent
            for step in command.chain():
                for parameter, value in step.parameters.items():
                    wire_value(step.name, parameter, value)
        with self._exclusive():
            result = self._invoke(list(commands), expected)
        self.last_warnings = result.warnings
        if errors == "return":
            return result
        refused = [answer for answer in result.answers if not answer.expected]
        if refused:
            raise UnexpectedQuestion(refused[0])
        if result.errors:
            raise ExchangeCommandError(self.name, result.errors, result)
        return result.records

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            raise EdgebookError(
                f"{self.name}: this ExchangeShell is already in use by another thread; "
                "use one shell per thread"
            )
        self._deadline = time.monotonic() + self.call_timeout
        try:
            yield
        finally:
            self._deadline = None
            self._busy.release()

    def _remaining(self) -> float | None:
        """Seconds left of the running call (None outside a call); past the end: CallTimeout."""
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise CallTimeout(self.call_timeout)
        return left

    def _ensure_pool(self) -> HostedRunspacePool:
        if self._pool is not None:
            return self._pool
        if self._wsman is None:
            self._wsman = build_wsman(
                self.name,
                self.winrm,
                self._credential,
                operation_timeout=self.operation_timeout,
                connection_timeout=self.connection_timeout,
            )
            if self._deadline is not None:  # time spent at a password prompt does not count
                self._deadline = time.monotonic() + self.call_timeout
        wsman = self._wsman
        if not isinstance(wsman.transport, CountingTransport):
            # pypsrp types WSMan.transport as its HTTP class; WSMan only calls send() and close()
            # on it, which the wrapper delegates
            wsman.transport = CountingTransport(  # type: ignore[assignment]
                wsman.transport, self._stats, self._remaining
            )
        pool = HostedRunspacePool(
            wsman,
            host=self._host,
            configuration_name=self.winrm.configuration_name,
            min_runspaces=1,
            max_runspaces=1,
            session_key_timeout_ms=int(min(self.call_timeout, 60) * 1000),
        )
        tolerate_references(pool._serializer)  # Exchange's nested objects (normalize.py)
        write_pipelines(pool)  # CREATE_PIPELINE written directly (pipeline_message.py)
        try:
            pool.open()
        except TRANSPORT_ERRORS as exc:
            raise self._connection_error(exc) from None
        self._pool = pool
        return pool

    def _invoke(self, commands: list[Command], questions: tuple[ExpectedQuestion, ...]) -> Result:
        pool = self._ensure_pool()
        self._terminate_finished(pool)
        load_snapin = self.role == EDGE and not self._snapin_loaded
        statements = [Command("Add-PSSnapin", {"Name": EXCHANGE_SNAPIN})] if load_snapin else []
        statements += commands
        if has_secret(step.parameters for command in commands for step in command.chain()):
            try:
                pool.exchange_keys()  # once per session; SecureStrings need the session key
            except TRANSPORT_ERRORS as exc:
                self._pool = None
                self._snapin_loaded = False
                raise self._connection_error(exc) from None
        ps = PowerShell(pool)
        add_statements(ps, statements)
        self._stats.pipelines += 1
        self._stats.cmdlets += len(statements)
        self._stats.by_cmdlet.update(command.name for command in statements)
        asked = len(self._host.answers)
        self._host.expected = questions
        try:
            output = self._complete(ps)
        except TRANSPORT_ERRORS as exc:
            if not (isinstance(exc, CallTimeout) and exc.stopped):
                self._pool = None  # the session is in an unknown state: reopen next time
                self._snapin_loaded = False
            raise self._connection_error(exc) from None
        except RESPONSE_ERRORS as exc:  # pypsrp could not read the answer (malformed CLIXML)
            self._pool = None
            self._snapin_loaded = False
            raise self._connection_error(UnreadableResponse(exc)) from None
        finally:
            self._host.expected = ()
        answers = self._host.answers[asked:]
        failed = ps.state == PSInvocationState.FAILED
        errors = [
            command_error(
                record, self.name, terminating=failed and index == len(ps.streams.error) - 1
            )
            for index, record in enumerate(ps.streams.error)
        ]
        if load_snapin:
            errors = self._snapin_outcome(errors)
        warnings = [str(getattr(record, "message", record)) for record in ps.streams.warning]
        for warning in warnings:
            log.info("%s: warning: %s", self.name, warning)
        return Result([normalize(item) for item in output], errors, warnings, answers)

    def _complete(self, ps: PowerShell) -> list[Any]:
        """Invoke and poll until the pipeline ends; past the call timeout, stop it."""
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            assert self._deadline is not None
            left = self._deadline - time.monotonic()
            if left <= 0:
                self._deadline = time.monotonic() + STOP_GRACE_S
                try:
                    ps.stop()
                except TRANSPORT_ERRORS:
                    raise CallTimeout(self.call_timeout) from None
                raise CallTimeout(self.call_timeout, stopped=True)
            # The server answers a poll within its OperationTimeout (whole seconds, 1 at least).
            ps.poll_invoke(timeout=max(1, min(self.operation_timeout, int(left))))
        self._finished = ps  # terminated before the next pipeline, or by the pool's Delete
        return ps.output

    def _terminate_finished(self, pool: HostedRunspacePool) -> None:
        """Send the WSMan Terminate of the last finished pipeline, now that another follows
        (a session's last pipeline needs none: Delete ends it, one round trip fewer)."""
        finished, self._finished = self._finished, None
        if finished is None or finished.runspace_pool is not pool:
            return
        try:
            finished.close()
        except TRANSPORT_ERRORS as exc:
            self._pool = None
            self._snapin_loaded = False
            raise self._connection_error(exc) from None

    def _snapin_outcome(self, errors: list[CommandError]) -> list[CommandError]:
        """Drop 'already added' from the snap-in load; a failed load comes first, explained."""
        snapin_errors = [error for error in errors if _is_snapin_error(error)]
        failures = [
            error for error in snapin_errors if "already added" not in error.message.lower()
        ]
        if not failures:
            self._snapin_loaded = True
            return [error for error in errors if error not in snapin_errors]
        explained = [
            replace(
                error,
                cmdlet="Add-PSSnapin",
                message=(
                    f"{error.message} (the Exchange snap-in could not be loaded: is this an "
                    "Edge Transport server with Exchange installed, and is the account a "
                    "local administrator?)"
                ),
            )
            for error in failures
        ]
        return explained + [error for error in errors if error not in snapin_errors]

    def _connection_error(self, exc: BaseException) -> ExchangeConnectionError:
        credential = self._credential
        reference = credential.password if isinstance(credential, CredentialRef) else None
        username = credential.username if credential is not None else None
        return connection_error(
            self.name,
            self.url,
            exc,
            auth=self.winrm.auth,
            configuration_name=self.winrm.configuration_name,
            username=username,
            reference=reference,
            timeout=self.connection_timeout,
        )


def _is_snapin_error(error: CommandError) -> bool:
    return error.fully_qualified_error_id.startswith("AddPSSnapIn") or (
        EXCHANGE_SNAPIN.lower() in error.message.lower()
    )
