"""ExchangeShell: Exchange cmdlets over WinRM/PSRP with pypsrp's low-level API.

Two endpoint shapes (DESIGN.md principle 6):

* Mailbox: ``http(s)://fqdn/PowerShell``, configuration ``Microsoft.Exchange`` (NoLanguage):
  cmdlets with parameters only — this shell never sends a script.
* Edge: the default WinRM listener (``/wsman``, ``Microsoft.PowerShell``); the Exchange
  snap-in is added once per runspace pool, as the first statement of the first pipeline.

One runspace pool (min = max = 1, so session state persists) is opened lazily and reused for
every call; `run_batch` sends several statements in ONE pipeline (principle 7). Outputs are
normalised by edgebook.normalize. Errors written by cmdlets raise ExchangeCommandError (or are
returned with ``errors="return"``); transport failures raise ExchangeConnectionError.

Thread-safety: one shell per thread. A shell may move between threads (asyncio.to_thread),
but two threads using it at the same time get an EdgebookError.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan

from edgebook.config import EDGE, MAILBOX, CredentialRef, Inventory, WinRMEndpoint
from edgebook.errors import ConfigError, EdgebookError
from edgebook.exchange_types import EXCHANGE_SNAPIN
from edgebook.normalize import CommandError, command_error, normalize
from edgebook.secrets import Credential
from edgebook.shell_errors import (
    RESPONSE_ERRORS,
    TRANSPORT_ERRORS,
    ExchangeCommandError,
    ExchangeConnectionError,
    UnreadableResponse,
    connection_error,
)

log = logging.getLogger(__name__)

ErrorMode = Literal["raise", "return"]
_INT32 = range(-(2**31), 2**31)


@dataclass(frozen=True)
class Command:
    """One cmdlet with its parameters (a statement of a batched pipeline)."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


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
    """Wraps pypsrp's transport to count WSMan requests; everything else is delegated."""

    def __init__(self, inner: Any, stats: ShellStats) -> None:
        self._inner = inner
        self._stats = stats

    def send(self, message: bytes, **kwargs: Any) -> bytes:
        """Count and forward one WSMan request."""
        self._stats.wsman_requests += 1
        return self._inner.send(message, **kwargs)

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
    ) -> None:
        if role not in (MAILBOX, EDGE):
            raise ValueError(f"role must be {MAILBOX!r} or {EDGE!r}, not {role!r}")
        self.name = name
        self.winrm = winrm
        self.role = role
        self.lab = lab
        self.url = winrm.url
        self.operation_timeout = operation_timeout
        self.connection_timeout = connection_timeout
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
        try:
            yield
        finally:
            self._busy.release()

    def _ensure_pool(self) -> RunspacePool:
        if self._pool is not None:
            return self._pool
        wsman = self._wsman or self._build_wsman()
        if not isinstance(wsman.transport, _CountingTransport):
            wsman.transport = _CountingTransport(wsman.transport, self._stats)
        self._wsman = wsman
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
                raise ConfigError(f"{self.name}: winrm.{key} {path} does not exist")
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
            read_timeout=self.operation_timeout + 10,
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
        for command in statements:
            ps.add_cmdlet(command.name)
            for parameter, value in command.parameters.items():
                ps.add_parameter(parameter, _wire_value(command.name, parameter, value))
            ps.add_statement()
        self._stats.pipelines += 1
        self._stats.cmdlets += len(statements)
        self._stats.by_cmdlet.update(command.name for command in statements)
        try:
            output = ps.invoke()
            ps.close()
        except TRANSPORT_ERRORS as exc:
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
