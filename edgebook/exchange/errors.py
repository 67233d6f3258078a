"""The shell's exceptions, and one clear message for every transport failure."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError

import requests
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from spnego.exceptions import SpnegoError

from edgebook.errors import EdgebookError
from edgebook.exchange.wire_types import EDGE_SHAPE, MAILBOX_SHAPE

if TYPE_CHECKING:
    from edgebook.exchange.normalize import CommandError


class UnreadableResponse(Exception):
    """A pipeline answer pypsrp failed to deserialise; the original exception is the cause."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.__cause__ = original


class CallTimeout(Exception):
    """A call (session opening or pipeline) ran past the shell's call_timeout."""

    def __init__(self, seconds: float, *, stopped: bool = False) -> None:
        super().__init__(f"no complete answer within {seconds:g} s")
        self.seconds = seconds
        self.stopped = stopped  # a running pipeline was stopped: the session is still usable


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    CallTimeout,
    WinRMError,
    requests.RequestException,
    SpnegoError,
    OSError,
)
# What pypsrp's deserializer raises on an answer it cannot read (e.g. an empty <BA/>).
RESPONSE_ERRORS: tuple[type[BaseException], ...] = (TypeError, ValueError, KeyError, ParseError)
RESOURCE_NOT_FOUND = 0x8033803B
SHELL_NOT_FOUND = 0x8033805B
ACCESS_DENIED = 5


class ExchangeConnectionError(EdgebookError):
    """A server could not be reached or refused the session (names server, URL and cause)."""

    def __init__(self, server: str, url: str, cause: str, original: BaseException) -> None:
        super().__init__(f"{server} ({url}): {cause}")
        self.server = server
        self.url = url
        self.cause = cause
        self.original = original


class ExchangeCommandError(EdgebookError):
    """Cmdlets wrote errors (terminating or not); `.errors` lists them all, `.result` the rest."""

    def __init__(self, server: str, errors: list[CommandError], result: Any = None) -> None:
        if len(errors) == 1:
            text = str(errors[0])
        else:
            lines = "\n".join(f"  - {error}" for error in errors)
            text = f"{server}: {len(errors)} errors:\n{lines}"
        super().__init__(text)
        self.server = server
        self.errors = errors
        self.result = result

    @property
    def cmdlet(self) -> str | None:
        """The cmdlet of the first error."""
        return self.errors[0].cmdlet

    @property
    def fully_qualified_error_id(self) -> str:
        """FullyQualifiedErrorId of the first error."""
        return self.errors[0].fully_qualified_error_id

    @property
    def category(self) -> str:
        """ErrorCategory name of the first error."""
        return self.errors[0].category

    @property
    def target(self) -> str | None:
        """Target of the first error."""
        return self.errors[0].target


def connection_error(
    server: str,
    url: str,
    exc: BaseException,
    *,
    auth: str,
    configuration_name: str,
    username: str | None,
    reference: str | None,
    timeout: float,
) -> ExchangeConnectionError:
    """Translate a pypsrp/requests/spnego exception into one clear ExchangeConnectionError."""
    if isinstance(exc, AuthenticationError):
        who = f" (user {username}, password from {reference})" if reference else ""
        cause = (
            f"authentication failed (401) — check the credential{who} and that {auth} "
            "authentication is enabled on the endpoint"
        )
    elif isinstance(exc, WSManFaultError):
        cause = _fault(exc, configuration_name)
    elif isinstance(exc, WinRMTransportError):
        cause = _http(exc)
    elif isinstance(exc, requests.exceptions.SSLError):
        cause = _tls(exc)
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        cause = f"no connection within {timeout:g} s (timeout) — is the port open from here?"
    elif isinstance(exc, requests.exceptions.Timeout):
        cause = "the server did not answer in time (read timeout)"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        cause = _unreachable(exc)
    elif isinstance(exc, SpnegoError):
        cause = (
            f"{auth} authentication could not be set up ({_first_line(exc)}); for kerberos "
            "install pyspnego[kerberos] and check DNS/SPN, or choose ntlm"
        )
    elif isinstance(exc, CallTimeout):
        cause = (
            f"no complete answer within {exc.seconds:g} s (the call timeout) — the server, "
            "the network or a cmdlet is too slow: check the server, or allow more time"
        )
    elif isinstance(exc, UnreadableResponse):
        cause = f"the server's answer could not be read ({_first_line(exc.__cause__ or exc)})"
    elif isinstance(exc, WinRMError):
        cause = f"WinRM protocol error: {_first_line(exc)}"
    else:
        cause = f"network error: {_first_line(exc)}"
    return ExchangeConnectionError(server, url, cause, exc)


def _fault(exc: WSManFaultError, configuration_name: str) -> str:
    code = int(exc.code) if str(exc.code).isdigit() else None
    reason = _first_line(exc.reason or "no reason given")
    if code == RESOURCE_NOT_FOUND:
        return (
            f"the endpoint has no PowerShell configuration {configuration_name} "
            f"(WSMan fault 0x8033803B); Mailbox servers use path {MAILBOX_SHAPE[0]} with "
            f"{MAILBOX_SHAPE[1]}, Edges path {EDGE_SHAPE[0]} with {EDGE_SHAPE[1]}"
        )
    if code == SHELL_NOT_FOUND:
        return "the session no longer exists on the server (WSMan fault 0x8033805B); retry"
    if code == ACCESS_DENIED:
        return (
            "access denied (WSMan fault 5): the account must be a local administrator "
            "(local accounts other than Administrator need LocalAccountTokenFilterPolicy=1)"
        )
    code_text = f"{code:#x}" if code is not None else str(exc.code)
    return f"WSMan fault {code_text}: {reason}"


def _http(exc: WinRMTransportError) -> str:
    if exc.code == 404:
        return "HTTP 404: no WinRM endpoint at this path — check winrm.path and winrm.port"
    body = " ".join(str(exc.response_text or "").split())[:200]
    return f"HTTP {exc.code} from the server{': ' + body if body else ''}"


def _tls(exc: BaseException) -> str:
    text = " ".join(str(item) for item in _chain(exc))
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = "hostname mismatch" if "match" in text.lower() else "untrusted certificate"
        return (
            f"TLS certificate verification failed ({detail}) — set winrm.ca_file to the CA "
            "that issued the WinRM listener's certificate, and use the name it was issued to"
        )
    return f"TLS handshake failed — is this port really https? ({_first_line(exc)[:160]})"


def _unreachable(exc: BaseException) -> str:
    chain = _chain(exc)
    text = " ".join(str(item) for item in chain)
    if any(isinstance(item, ConnectionRefusedError) for item in chain) or (
        "refused" in text.lower()
    ):
        return "connection refused — nothing listens on this port (is the WinRM listener set up?)"
    if any(isinstance(item, socket.gaierror) for item in chain) or any(
        marker in text
        for marker in ("Name or service not known", "getaddrinfo", "name resolution", "nodename")
    ):
        return "the host name does not resolve (DNS) — check winrm.host"
    if "unreachable" in text.lower() or "No route to host" in text:
        return "the network is unreachable from here (routing or firewall)"
    return f"cannot connect: {_first_line(exc)[:200]}"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and exceptions held in args or .reason."""
    seen: list[BaseException] = []
    pending: list[Any] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or any(item is known for known in seen):
            continue
        seen.append(item)
        pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
        pending.extend(item.args)
    return seen


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
