"""One SMTP session of a lab Edge's receive port, on a blocking socket in its own thread.

What Exchange's anonymous receive connector says (RFC 5321 with RFC 3207's STARTTLS, RFC 1870's
SIZE, RFC 2920's PIPELINING, RFC 2034's enhanced status codes), in Exchange's words where the
replies are known from sessions with Exchange 2016/2019. No AUTH (none is offered to anonymous
clients on the Internet-facing connector), no BDAT/CHUNKING, no DSN: the lab neither advertises
nor accepts them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import socket
import ssl
from collections.abc import Callable
from typing import Protocol

from edgebook.lab.net.latency import Turns, turn_reader
from edgebook.lab.net.tls_contexts import HANDSHAKE_TIMEOUT_S, close, server_handshake

log = logging.getLogger(__name__)

MAX_COMMAND_LINE = 512  # RFC 5321 4.5.3.1.4, with the CRLF
IDLE_TIMEOUT_S = 300.0  # a receive connector's ConnectionInactivityTimeout (00:05:00)
_ADDRESS = re.compile(r"(?i)(FROM|TO):\s*<([^<>]*)>\s*(.*)")
# commands whose reply is always the same
_FIXED_REPLIES = {
    "NOOP": ("250 2.0.0 OK",),
    "VRFY": ("252 2.1.5 Cannot VRFY user",),
    "AUTH": ("504 5.7.4 Unrecognized authentication type",),
    "HELP": (
        "214-This server supports the following commands:",
        "214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP",
    ),
}


class SmtpService(Protocol):
    """What a session needs of its listener (edgebook.lab.net.listeners.SmtpListener)."""

    fqdn: str
    max_message_size: int
    latency_s: float  # the simulated round trip (edgebook.lab.net.latency)

    def banner(self) -> str:
        """The 220 greeting text after the FQDN."""

    def tls_context(self) -> ssl.SSLContext | None:
        """The context of the certificate the service presents now (None: no usable one)."""

    def deliver(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
        """Hand one accepted message over (may raise: the client gets a 451)."""


class _Closed(Exception):
    """The client went away, or the session is over."""


class SmtpSession:
    """The dialogue of one connection; `sock` is the socket of the moment (TLS after STARTTLS),
    which the listener shuts down when it stops."""

    def __init__(self, service: SmtpService, sock: socket.socket, peer: str) -> None:
        self.service = service
        self.sock = sock
        self.peer = peer
        self._turns = Turns(service.latency_s)
        self._reader = turn_reader(sock, self._turns)
        self._tls = False
        self._greeted = False
        self._mail_from: str | None = None
        self._rcpt_tos: list[str] = []

    def run(self) -> None:
        """Greet, then answer commands until QUIT, the client's hang-up or the idle timeout."""
        self.sock.settimeout(IDLE_TIMEOUT_S)
        try:
            self._turns.arrived()  # the connection's opening
            self._reply(f"220 {self.service.fqdn} {self.service.banner()}")
            while self._command():
                pass
        except TimeoutError:
            with contextlib.suppress(OSError, ValueError):  # the peer went away
                self._reply("421 4.4.1 Connection timed out")
        except (_Closed, OSError) as exc:
            log.debug("lab SMTP listener: session with %s ended: %r", self.peer, exc)
        finally:
            self._close()

    def _command(self) -> bool:
        """Read and answer one command; False once the session is over."""
        line = self._reader.readline(MAX_COMMAND_LINE + 1)
        if not line:
            raise _Closed("the client closed the connection")
        if not line.endswith(b"\n"):
            if len(line) <= MAX_COMMAND_LINE:
                raise _Closed("the client closed the connection mid-line")
            self._skip_line()
            self._reply("500 5.5.6 Line too long")
            return True
        verb, _, argument = line.rstrip(b"\r\n").decode("utf-8", "replace").partition(" ")
        fixed = _FIXED_REPLIES.get(verb.upper())
        if fixed is not None:
            self._reply(*fixed)
            return True
        answer = _COMMANDS.get(verb.upper())
        if answer is None:
            self._reply(f"500 5.3.3 Unrecognized command '{verb}'")
            return True
        return answer(self, argument.strip())

    # --- the commands -------------------------------------------------------------------------

    def _ehlo(self, argument: str) -> bool:
        if not argument:
            self._reply("501 5.5.4 Invalid domain name")
            return True
        self._greeted = True
        self._reset()
        offers = [f"SIZE {self.service.max_message_size}", "PIPELINING", "ENHANCEDSTATUSCODES"]
        if not self._tls and self.service.tls_context() is not None:
            offers.append("STARTTLS")
        offers.append("8BITMIME")
        first = f"{self.service.fqdn} Hello [{self.peer}]"
        lines = [first, *offers]
        self._reply(*(f"250-{text}" for text in lines[:-1]), f"250 {lines[-1]}")
        return True

    def _helo(self, argument: str) -> bool:
        if not argument:
            self._reply("501 5.5.4 Invalid domain name")
            return True
        self._greeted = True
        self._reset()
        self._reply(f"250 {self.service.fqdn} Hello [{self.peer}]")
        return True

    def _starttls(self, argument: str) -> bool:
        if argument:
            self._reply("501 5.5.4 Syntax error, no parameters allowed")
            return True
        if not self._greeted:
            self._reply("503 5.5.2 Send hello first")
            return True
        if self._tls:
            self._reply("503 5.5.1 TLS already active")
            return True
        context = self.service.tls_context()  # the certificate of this very moment
        if context is None:
            self._reply("454 4.7.0 TLS not available due to temporary reason")
            return True
        self._reply("220 2.0.0 SMTP server ready")
        self._reader.close()
        self.sock.settimeout(HANDSHAKE_TIMEOUT_S)
        self._turns.arrived()  # the ClientHello
        try:
            tls = server_handshake(context, self.sock)
        except OSError as exc:
            raise _Closed(f"TLS handshake failed: {exc!r}") from exc
        self._turns.sent()
        tls.settimeout(IDLE_TIMEOUT_S)
        # RFC 3207: what came before the handshake is forgotten, EHLO included
        self.sock, self._reader = tls, turn_reader(tls, self._turns)
        self._tls, self._greeted = True, False
        self._reset()
        return True

    def _mail(self, argument: str) -> bool:
        if not self._greeted:
            self._reply("503 5.5.2 Send hello first")
            return True
        if self._mail_from is not None:
            self._reply("503 5.5.2 Sender already specified")
            return True
        parsed = _address(argument, "FROM")
        if parsed is None:
            self._reply("501 5.5.4 Invalid arguments")
            return True
        address, parameters = parsed
        for parameter in parameters:
            keyword, _, value = parameter.partition("=")
            keyword = keyword.upper()
            if keyword == "SIZE" and value.isdigit():
                if int(value) > self.service.max_message_size:
                    self._reply("552 5.3.4 Message size exceeds fixed maximum message size")
                    return True
            elif keyword != "BODY" or value.upper() not in ("7BIT", "8BITMIME"):
                self._reply(f"555 5.5.4 Unsupported option: {parameter}")
                return True
        self._mail_from = address
        self._reply("250 2.1.0 Sender OK")
        return True

    def _rcpt(self, argument: str) -> bool:
        if self._mail_from is None:
            self._reply("503 5.5.2 Need mail command")
            return True
        parsed = _address(argument, "TO")
        if parsed is None or not parsed[0]:
            self._reply("501 5.5.4 Invalid arguments")
            return True
        address, parameters = parsed
        if parameters:
            self._reply(f"555 5.5.4 Unsupported option: {parameters[0]}")
            return True
        self._rcpt_tos.append(address)
        self._reply("250 2.1.5 Recipient OK")
        return True

    def _data(self, argument: str) -> bool:
        if argument:
            self._reply("501 5.5.4 Syntax error, no parameters allowed")
            return True
        if self._mail_from is None:
            self._reply("503 5.5.2 Need mail command")
            return True
        if not self._rcpt_tos:
            self._reply("503 5.5.2 Need rcpt command")
            return True
        self._reply("354 Start mail input; end with <CRLF>.<CRLF>")
        data = self._message()
        mail_from, rcpt_tos = self._mail_from, self._rcpt_tos
        self._reset()
        if data is None:
            self._reply("552 5.3.4 Message size exceeds fixed maximum message size")
            return True
        try:
            self.service.deliver(mail_from, rcpt_tos, data)
        except Exception:
            log.exception("lab SMTP listener: on_message failed")
            self._reply("451 4.3.0 Message not queued: local error in processing")
            return True
        message_id = secrets.token_hex(8).upper()
        self._reply(f"250 2.6.0 <{message_id}@{self.service.fqdn}> Queued mail for delivery")
        return True

    def _rset(self, _argument: str) -> bool:
        self._reset()
        self._reply("250 2.0.0 Resetting")
        return True

    def _quit(self, _argument: str) -> bool:
        self._reply("221 2.0.0 Service closing transmission channel")
        return False

    # --- plumbing -----------------------------------------------------------------------------

    def _message(self) -> bytes | None:
        """The DATA up to <CRLF>.<CRLF>, dots unstuffed; None when it is over the size limit."""
        lines: list[bytes] = []
        size, too_big, line_start = 0, False, True
        while True:
            line = self._reader.readline(65536)
            if not line:
                raise _Closed("the client closed the connection during DATA")
            if line_start and line in (b".\r\n", b".\n"):
                return None if too_big else b"".join(lines)
            if line_start and line.startswith(b"."):
                line = line[1:]
            line_start = line.endswith(b"\n")
            size += len(line)
            if size > self.service.max_message_size:
                too_big = True
                lines.clear()
            elif not too_big:
                lines.append(line)

    def _skip_line(self) -> None:
        """Read and drop the rest of an overlong line."""
        while not (rest := self._reader.readline(65536)).endswith(b"\n"):
            if not rest:
                raise _Closed("the client closed the connection mid-line")

    def _reset(self) -> None:
        self._mail_from, self._rcpt_tos = None, []

    def _reply(self, *lines: str) -> None:
        self.sock.sendall("".join(f"{line}\r\n" for line in lines).encode("utf-8"))
        self._turns.sent()

    def _close(self) -> None:
        """Close the connection (over TLS with close_notify, as Exchange does)."""
        close(self.sock)


def _address(argument: str, keyword: str) -> tuple[str, list[str]] | None:
    """(address, ESMTP parameters) of `FROM:<a> P=V ...` or `TO:<a> ...`; None if malformed."""
    match = _ADDRESS.fullmatch(argument)
    if match is None or match.group(1).upper() != keyword:
        return None
    return match.group(2), match.group(3).split()


_COMMANDS: dict[str, Callable[[SmtpSession, str], bool]] = {
    "EHLO": SmtpSession._ehlo,
    "HELO": SmtpSession._helo,
    "STARTTLS": SmtpSession._starttls,
    "MAIL": SmtpSession._mail,
    "RCPT": SmtpSession._rcpt,
    "DATA": SmtpSession._data,
    "RSET": SmtpSession._rset,
    "QUIT": SmtpSession._quit,
}
