"""ExchangeShell: Exchange cmdlets over WinRM/PSRP with pypsrp's low-level API.

Two endpoint shapes (DESIGN.md principle 6):

* Mailbox: ``http(s)://fqdn/PowerShell``, configuration ``Microsoft.Exchange`` (NoLanguage):
  cmdlets with parameters only — this shell never sends a script.
* Edge: the default WinRM listener (``/wsman``, ``Microsoft.PowerShell``); the Exchange
  snap-in is added once per runspace pool, as the first statement of the first pipeline.

One runspace pool (min = max = 1, so session state persists) is opened lazily and reused for
every call; `run_batch` sends several statements in ONE pipeline (principle 7). Outputs are
normalised by edgebook.exchange.normalize. Errors written by cmdlets raise
ExchangeCommandError (or are returned with ``errors="return"``); transport failures raise
ExchangeConnectionError.

Time bounds: each HTTP request waits at most connection_timeout to connect and
operation_timeout + 10 s for the answer, and is never retried (pypsrp would retry a Receive
five times with growing pauses: minutes). Each call (`open`, `run`, `run_batch`, the session
opening included; a password prompt excepted) ends within call_timeout plus a few seconds (a
last poll, stopping the pipeline): a cmdlet that never finishes is stopped and reported as
ExchangeConnectionError.

Thread-safety: one shell per thread. A shell may move between threads (asyncio.to_thread),
but two threads using it at the same time get an EdgebookError.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan

from edgebook.config import EDGE, MAILBOX, CredentialRef, Inventory, WinRMEndpoint
from edgebook.errors import ConfigError, EdgebookError
from edgebook.exchange import wire_log
from edgebook.exchange.errors import (
    RESPONSE_ERRORS,
    TRANSPORT_ERRORS,
    CallTimeout,
    ExchangeCommandError,
    ExchangeConnectionError,
    UnreadableResponse,
    connection_error,
)
from edgebook.exchange.normalize import CommandError, command_error, normalize
from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.secrets import Credential

log = logging.getLogger(__name__)
wire_log.install()  # no NTLM token or PSRP payload in anybody's debug log

ErrorMode = Literal["raise", "return"]
_INT32 = range(-(2**31), 2**31)
READ_MARGIN_S = 10  # an answer may come this long after the WSMan OperationTimeout
CALL_GRACE_S = 2.0  # a request may end this long after the call timeout (a last poll)
STOP_GRACE_S = 5.0  # time left to stop a pipeline that ran past the call timeout


@dataclass(frozen=True)
class Command:
    """One cmdlet with its parameters (a statement of a batched pipeline); `then` pipes its
    output into further cmdlets of the same statement (e.g. Select-Object)."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    then: tuple[Command, ...] = ()

    def chain(self) -> tuple[Command, ...]:
        """This command and the ones it pipes into, in order."""
        return (self, *self.then)


@dataclass(frozen=True)
class Result:
    """Outputs, errors and warnings of one pipeline (``errors="return"``)."""

    records: list[Any]
    errors: list[CommandError]
    warnings: list[str]


@dataclass
class ShellStats:
    """Round-trip counters of one shell (one server)."""

    server: str
    cmdlets: int = 0
    pipelines: int = 0
    wsman_requests: int = 0
    by_cmdlet: Counter[str] = field(default_factory=Counter)


class _CountingTransport:
    """Wraps pypsrp's transport: counts WSMan requests, bounds each by the call's deadline and
    turns off pypsrp's retries after a read timeout; everything else is delegated."""

    def __init__(self, inner: Any, stats: ShellStats, remaining: Callable[[], float | None]):
        self._inner = inner
        self._stats = stats
        self._remaining = remaining

    def send(self, message: bytes, **kwargs: Any) -> bytes:
        """Count and forward one WSMan request, within what is left of the call's time."""
        kwargs["retries_on_read_timeout"] = 0
        left = self._remaining()
        if left is not None:
            timeout = kwargs.get("timeout") or (
                getattr(self._inner, "connection_timeout", left),
                getattr(self._inner, "read_timeout", left),
            )
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            limit = left + CALL_GRACE_S
            kwargs["timeout"] = (min(connect, limit), min(read, limit))
        self._stats.wsman_requests += 1
        try:
            return self._inner.send(message, **kwargs)
        except requests.exceptions.Timeout:
            self._remaining()  # when the call's time is up, CallTimeout says so
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


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
        connection_timeout: int = 15,
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
        self._pool: RunspacePool | None = None
        self._snapin_loaded = False
        self._stats = ShellStats(name)
        self._busy = threading.Lock()
        _check_endpoint(name, winrm, lab)

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
        """Close the runspace pool (WSMan Delete) and the connection; safe to call twice."""
        pool, self._pool = self._pool, None
        self._snapin_loaded = False
        if pool is not None:
            try:
                pool.close()
            except TRANSPORT_ERRORS as exc:
                log.debug("%s: closing the session failed: %s", self.name, type(exc).__name__)
        if self._wsman is not None:
            self._wsman.close()

    @overload
    def run(
        self, cmdlet: str, *, errors: Literal["raise"] = ..., **parameters: Any
    ) -> list[Any]: ...

    @overload
    def run(self, cmdlet: str, *, errors: Literal["return"], **parameters: Any) -> Result: ...

    def run(self, cmdlet: str, *, errors: ErrorMode = "raise", **parameters: Any) -> Any:
        """Run one cmdlet; returns its normalised outputs (or a Result with errors="return")."""
        return self.run_batch([Command(cmdlet, parameters)], errors=errors)

    @overload
    def run_batch(
        self, commands: Sequence[Command], *, errors: Literal["raise"] = ...
    ) -> list[Any]: ...

    @overload
    def run_batch(self, commands: Sequence[Command], *, errors: Literal["return"]) -> Result: ...

    def run_batch(self, commands: Sequence[Command], *, errors: ErrorMode = "raise") -> Any:
        """Run the commands as statements of ONE pipeline; outputs in order, all statements."""
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        if not commands:
            raise ValueError("run_batch needs at least one command")
        with self._exclusive():
            result = self._invoke(list(commands))
        self.last_warnings = result.warnings
        if errors == "return":
            return result
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

    def _ensure_pool(self) -> RunspacePool:
        if self._pool is not None:
            return self._pool
        if self._wsman is None:
            self._wsman = self._build_wsman()
            if self._deadline is not None:  # time spent at a password prompt does not count
                self._deadline = time.monotonic() + self.call_timeout
        wsman = self._wsman
        if not isinstance(wsman.transport, _CountingTransport):
            wsman.transport = _CountingTransport(wsman.transport, self._stats, self._remaining)
        pool = RunspacePool(
            wsman,
            configuration_name=self.winrm.configuration_name,
            min_runspaces=1,
            max_runspaces=1,
        )
        try:
            pool.open()
        except TRANSPORT_ERRORS as exc:
            raise self._connection_error(exc) from None
        self._pool = pool
        return pool

    def _build_wsman(self) -> WSMan:
        for key in ("ca_file", "certificate_pem", "certificate_key_pem"):
            path: Path | None = getattr(self.winrm, key)
            if path is not None and not path.is_file():
                problem = "is a folder, not a file" if path.is_dir() else "does not exist"
                raise ConfigError(f"{self.name}: winrm.{key} {path} {problem}")
        username = password = None
        credential = self._credential
        if isinstance(credential, CredentialRef):
            credential = credential.resolve(what=f"{self.name} ({self.url})")
        if credential is not None:
            username, password = credential.username, credential.password
        key_password = None
        if self.winrm.certificate_key_password is not None:
            key_password = (
                CredentialRef("", self.winrm.certificate_key_password)
                .resolve(what=f"{self.name} certificate key")
                .password
            )
        http = self.winrm.scheme == "http"
        return WSMan(
            self.winrm.host,
            port=self.winrm.port,
            path=self.winrm.path,
            ssl=not http,
            auth=self.winrm.auth,
            username=username,
            password=password,
            cert_validation=self.winrm.cert_validation,
            encryption="never" if http and self.winrm.auth == "basic" else "auto",
            operation_timeout=self.operation_timeout,
            connection_timeout=self.connection_timeout,
            read_timeout=self.operation_timeout + READ_MARGIN_S,
            no_proxy=self.winrm.is_loopback,
            certificate_pem=_str(self.winrm.certificate_pem),
            certificate_key_pem=_str(self.winrm.certificate_key_pem),
            certificate_key_password=key_password,
        )

    def _invoke(self, commands: list[Command]) -> Result:
        pool = self._ensure_pool()
        load_snapin = self.role == EDGE and not self._snapin_loaded
        statements = [Command("Add-PSSnapin", {"Name": EXCHANGE_SNAPIN})] if load_snapin else []
        statements += commands
        ps = PowerShell(pool)
        for statement in statements:
            for command in statement.chain():
                ps.add_cmdlet(command.name)
                for parameter, value in command.parameters.items():
                    ps.add_parameter(parameter, _wire_value(command.name, parameter, value))
            ps.add_statement()
        self._stats.pipelines += 1
        self._stats.cmdlets += len(statements)
        self._stats.by_cmdlet.update(command.name for command in statements)
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
        return Result([normalize(item) for item in output], errors, warnings)

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
        ps.close()
        return ps.output

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


def _check_endpoint(name: str, winrm: WinRMEndpoint, lab: bool) -> None:
    """Refuse Basic or certificate authentication over plain http (lab loopback excepted)."""
    if winrm.scheme != "http" or winrm.auth not in ("basic", "certificate"):
        return
    if winrm.auth == "basic" and lab and winrm.is_loopback:
        return
    raise ConfigError(
        f"{name} ({winrm.url}): {winrm.auth} authentication over plain http is refused "
        "(the credentials would cross the network readable); use scheme https, or kerberos/"
        "ntlm/negotiate which encrypt the messages"
    )


def _is_snapin_error(error: CommandError) -> bool:
    return error.fully_qualified_error_id.startswith("AddPSSnapIn") or (
        EXCHANGE_SNAPIN.lower() in error.message.lower()
    )


def _wire_value(cmdlet: str, parameter: str, value: Any) -> Any:
    """A parameter value pypsrp serialises correctly (no None, big ints as I64, dates as text)."""
    if value is None:
        raise EdgebookError(
            f"{cmdlet} -{parameter}: the value is None; pass True/False for a switch, "
            "or leave the parameter out"
        )
    if isinstance(value, bool | str | bytes | TaggedValue):
        return value
    if isinstance(value, int):
        return value if value in _INT32 else TaggedValue("I64", value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_wire_value(cmdlet, parameter, item) for item in value]
    if isinstance(value, Mapping):
        return {key: _wire_value(cmdlet, parameter, item) for key, item in value.items()}
    return value


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
