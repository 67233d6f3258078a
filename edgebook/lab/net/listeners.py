"""Real TLS listeners on loopback for a lab Edge: SMTP with STARTTLS and LDAPS (AD LDS).

A listener never holds a certificate of its own. It asks its sources, which the lab wires to
its simulated services:

* ``cert_source()`` returns ``(PEM chain leaf first, PEM private key)`` of the certificate the
  service presents right now, or None when it has no usable certificate.
* ``running()`` says whether the service is running (default: always).

SMTP asks ``running()`` when a client connects (stopped: ``421 4.3.2 Service not available``
and the connection is closed) and ``cert_source()`` at every EHLO (STARTTLS is offered only
with a certificate) and at every STARTTLS, just before the handshake. LDAPS asks both when a
client connects (stopped or no certificate: the connection is closed before any TLS). So
restarting a service in the simulation changes what the next handshake presents, without
restarting the listener. Sources and ``on_message`` are called from the connections' threads:
they must be thread-safe and quick.

Each connection has a thread and a blocking ssl socket: the handshake's work is OpenSSL's,
done without the interpreter lock, which the daemon's WSMan endpoints need meanwhile (asyncio's
TLS, which the listeners used before, ran a handshake's records through Python: a 20-Edge
inspect's 40 probes held the lock about 1.4 ms each instead of a fraction of that).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

from edgebook.errors import EdgebookError
from edgebook.lab.net.latency import Turns
from edgebook.lab.net.ldap_lite import LdapProtocolError, LdapResponder, split_message
from edgebook.lab.net.smtp_session import SmtpSession
from edgebook.lab.net.tls_contexts import (
    HANDSHAKE_TIMEOUT_S,
    CertSource,
    ContextCache,
    close,
    server_handshake,
)
from edgebook.lab.serving import QuietServer

log = logging.getLogger(__name__)

RunningSource = Callable[[], bool]
MessageSink = Callable[[str, list[str], bytes], None]
Clock = Callable[[], datetime]

LDAP_IDLE_TIMEOUT_S = 900.0  # AD LDS MaxConnIdleTime
SERVICE_UNAVAILABLE = b"421 4.3.2 Service not available\r\n"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _always_running() -> bool:
    return True


def exchange_date(moment: datetime) -> str:
    """A date as Exchange's SMTP banner shows it: ``Tue, 7 Nov 2023 09:12:34 +0100``."""
    moment = moment if moment.tzinfo else moment.astimezone()
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day} {_MONTHS[moment.month - 1]} "
        f"{moment:%Y %H:%M:%S} {moment:%z}"
    )


class _Connection(Protocol):
    """A connection as stop() sees it: the socket of the moment (TLS once upgraded)."""

    sock: socket.socket


class _Server(QuietServer, socketserver.ThreadingTCPServer):
    """Accepts connections and runs each in its own thread; stop() also ends open ones."""

    daemon_threads = True  # stop() ends them: no connection keeps the daemon from exiting
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], serve: Callable[[socket.socket, str], None]):
        self._serve = serve
        self._open: set[_Connection] = set()
        self._open_lock = threading.Lock()
        self._closing = False
        super().__init__(address, socketserver.BaseRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection (in its own thread)."""
        self._serve(request, client_address[0])

    @contextlib.contextmanager
    def tracked(self, connection: _Connection) -> Iterator[None]:
        """While the block runs, closing the server ends the connection."""
        with self._open_lock:
            self._open.add(connection)
            closing = self._closing
        if closing:  # accepted just before the port closed
            _end(connection)
        try:
            yield
        finally:
            with self._open_lock:
                self._open.discard(connection)

    def server_close(self) -> None:
        """Close the port and end every open connection (their threads then finish)."""
        super().server_close()
        with self._open_lock:
            self._closing = True
            still_open = list(self._open)
        for connection in still_open:
            _end(connection)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A session that fails is logged by the session; keep the rest off stderr."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def _end(connection: _Connection) -> None:
    """Shut a connection's socket down: the thread blocked reading it wakes up and ends."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)


class _Listener:
    """A TCP listener with a thread per connection; subclasses serve the connections."""

    def __init__(
        self, host: str, port: int, running: RunningSource | None, latency_s: float
    ) -> None:
        self.host = host
        self.latency_s = latency_s  # the simulated round trip (edgebook.lab.net.latency)
        self._requested_port = port
        self._running = running or _always_running
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when created with port 0)."""
        if self._server is None:
            raise EdgebookError(f"{type(self).__name__} is not started: call start() first")
        port: int = self._server.server_address[1]
        return port

    def start(self) -> None:
        """Start listening; returns once the port accepts connections."""
        if self._server is not None:
            raise EdgebookError(f"{type(self).__name__} on {self.host} is already started")
        try:
            server = _Server((self.host, self._requested_port), self._accepted)
        except OSError as exc:
            raise EdgebookError(
                f"{type(self).__name__} cannot listen on {self.host}:{self._requested_port}: "
                f"{exc.strerror or exc}; choose another port"
            ) from None
        self._server = server
        self._thread = threading.Thread(target=server.serve, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the port and end every open connection."""
        if self._server is None or self._thread is None:
            return
        self._server.stop()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> _Listener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accepted(self, sock: socket.socket, peer: str) -> None:
        raise NotImplementedError

    def _tracked(self, connection: _Connection) -> contextlib.AbstractContextManager[None]:
        """While the block runs, stop() ends the connection."""
        assert self._server is not None  # connections come only while started
        return self._server.tracked(connection)


# --- SMTP -------------------------------------------------------------------------------------


class SmtpListener(_Listener):
    """An Edge's SMTP receive port: Exchange's banner, opportunistic STARTTLS, real sockets.

    Mail is accepted with or without STARTTLS (Exchange's default) and handed to
    ``on_message(mail_from, rcpt_tos, data)``. The dialogue: edgebook.lab.net.smtp_session.
    """

    max_message_size = 37_748_736  # Exchange's default MaxMessageSize (36 MB)

    def __init__(
        self,
        cert_source: CertSource,
        on_message: MessageSink,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fqdn: str,
        running: RunningSource | None = None,
        clock: Clock | None = None,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(host, port, running, latency_s)
        self.fqdn = fqdn
        self._contexts = ContextCache(cert_source)
        self._on_message = on_message
        self._clock = clock or (lambda: datetime.now().astimezone())

    def banner(self) -> str:
        """The 220 greeting text after the FQDN, with the (lab) clock's current date."""
        return f"Microsoft ESMTP MAIL Service ready at {exchange_date(self._clock())}"

    def tls_context(self) -> ssl.SSLContext | None:
        """The context of the certificate the service presents now (None: no usable one)."""
        return self._contexts.current()

    def deliver(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
        """Hand one accepted message to on_message."""
        self._on_message(mail_from, rcpt_tos, data)

    def _accepted(self, sock: socket.socket, peer: str) -> None:
        if not self._running():
            Turns(self.latency_s).arrived()
            with contextlib.suppress(OSError):
                sock.sendall(SERVICE_UNAVAILABLE)
            return
        session = SmtpSession(self, sock, peer)
        with self._tracked(session):
            session.run()


# --- LDAPS ------------------------------------------------------------------------------------


class _LdapsConnection:
    """One LDAPS client: TLS with the certificate of the moment, then LDAP messages."""

    def __init__(self, listener: LdapsListener, sock: socket.socket, turns: Turns) -> None:
        self.listener = listener
        self.sock = sock
        self.turns = turns

    def run(self, context: ssl.SSLContext) -> None:
        """Handshake, then answer every LDAP message until unbind, hang-up or idle timeout."""
        self.sock.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            self.sock = server_handshake(context, self.sock)
        except OSError as exc:
            log.debug("lab LDAPS listener: TLS handshake failed: %r", exc)
            return
        self.turns.sent()
        self.sock.settimeout(LDAP_IDLE_TIMEOUT_S)
        buffer = b""
        try:
            while data := self.sock.recv(65536):
                self.turns.arrived()
                buffer += data
                while (split := split_message(buffer)) is not None:
                    message, buffer = split
                    reply = self.listener.responder.answer(message)
                    if reply is None:  # unbind
                        return
                    self.sock.sendall(reply)
                    self.turns.sent()
        except LdapProtocolError as exc:
            log.debug("lab LDAPS listener: closing: %s", exc)
        except OSError as exc:  # the client went away, or the idle timeout
            log.debug("lab LDAPS listener: connection ended: %r", exc)
        finally:
            close(self.sock)  # with close_notify, as AD LDS sends it


class LdapsListener(_Listener):
    """AD LDS's LDAPS port (50636 on an Edge): direct TLS, then edgebook.lab.net.ldap_lite."""

    def __init__(
        self,
        cert_source: CertSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        running: RunningSource | None = None,
        dns_host_name: str | None = None,
        clock: Clock | None = None,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(host, port, running, latency_s)
        self._contexts = ContextCache(cert_source)
        self.responder = LdapResponder(
            dns_host_name=dns_host_name, clock=clock or (lambda: datetime.now().astimezone())
        )

    def _accepted(self, sock: socket.socket, peer: str) -> None:
        """Closed at once when the service is stopped or has no certificate; else TLS."""
        turns = Turns(self.latency_s)
        turns.arrived()  # the connection's opening (the ClientHello)
        context = self._contexts.current() if self._running() else None
        if context is None:
            return
        connection = _LdapsConnection(self, sock, turns)
        with self._tracked(connection):
            connection.run(context)
