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
restarting the listener. Sources and ``on_message`` are called from the listener's own
event-loop thread: they must be thread-safe and quick.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, TLSSetupException, syntax
from cryptography.hazmat.primitives import serialization

from edgebook.errors import EdgebookError
from edgebook.lab.net.ldap_lite import LdapProtocolError, LdapResponder, split_message

log = logging.getLogger(__name__)

CertSource = Callable[[], tuple[bytes, bytes] | None]
RunningSource = Callable[[], bool]
MessageSink = Callable[[str, list[str], bytes], None]
Clock = Callable[[], datetime]

HANDSHAKE_TIMEOUT_S = 10.0
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


class _ContextCache:
    """Server SSLContexts for the source's current (chain, key), cached by a hash of the PEM."""

    def __init__(self, source: CertSource, size: int = 16) -> None:
        self._source = source
        self._size = size
        self._cache: OrderedDict[str, ssl.SSLContext | None] = OrderedDict()
        self._lock = threading.Lock()

    def current(self) -> ssl.SSLContext | None:
        """The context presenting the source's certificate now, or None without a usable one."""
        material = self._source()
        if material is None:
            return None
        chain_pem, key_pem = material
        digest = hashlib.sha256(chain_pem + b"\0" + key_pem).hexdigest()
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return self._cache[digest]
        context = _build_context(chain_pem, key_pem)
        with self._lock:
            self._cache[digest] = context
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return context


def _build_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext | None:
    """A server context for this chain and key (None, logged, when they do not load).

    The stdlib loads keys only from files: the key is written encrypted with a one-time
    password into a private temporary directory that is removed at once.
    """
    try:
        # the lab's own key (load_cert_chain below still checks it against the certificate);
        # OpenSSL's RSA key check would cost 40 ms a context
        key = serialization.load_pem_private_key(
            key_pem, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError) as exc:
        log.warning("lab listener: the private key does not load: %s", exc)
        return None
    password = secrets.token_bytes(32)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="edgebook-tls-") as folder:
        chain_file, key_file = Path(folder, "chain.pem"), Path(folder, "key.pem")
        chain_file.write_bytes(chain_pem)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(encrypted)
        try:
            context.load_cert_chain(chain_file, key_file, password=password)
        except ssl.SSLError as exc:
            log.warning("lab listener: the certificate chain and key do not load: %s", exc)
            return None
    return context


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Keep normal disconnects and failed handshakes off stderr; report anything else."""
    exception = context.get("exception")
    if isinstance(exception, OSError | EOFError):
        log.debug("lab listener: %s: %s", context.get("message"), exception)
        return
    loop.default_exception_handler(context)


class _LoopListener:
    """An asyncio server running in its own thread; subclasses create the server."""

    def __init__(self, host: str, port: int, running: RunningSource | None) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._running = running or _always_running
        self._transports: set[asyncio.Transport] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: OSError | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when created with port 0)."""
        if self._port is None:
            raise EdgebookError(f"{type(self).__name__} is not started: call start() first")
        return self._port

    def start(self) -> None:
        """Start listening; returns once the port accepts connections."""
        if self._thread is not None:
            raise EdgebookError(f"{type(self).__name__} on {self.host} is already started")
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise EdgebookError(
                f"{type(self).__name__} cannot listen on {self.host}:{self._requested_port}: "
                f"{self._start_error.strerror or self._start_error}; choose another port"
            )

    def stop(self) -> None:
        """Close the port and every open connection; returns when the thread has ended."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join()
        self._thread = None
        self._port = None

    def __enter__(self) -> _LoopListener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _create_server(self) -> asyncio.Server:
        raise NotImplementedError

    def _track(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream connection, never datagrams
        self._transports.add(transport)

    def _untrack(self, transport: asyncio.BaseTransport | None) -> None:
        if isinstance(transport, asyncio.Transport):
            self._transports.discard(transport)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_quiet_exception_handler)
        try:
            server = await self._create_server()
        except OSError as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        self._stop_event = asyncio.Event()
        self._ready.set()
        await self._stop_event.wait()
        server.close()
        for transport in list(self._transports):
            transport.abort()
        await server.wait_closed()


# --- SMTP -------------------------------------------------------------------------------------


class _ServiceUnavailable(asyncio.Protocol):
    """What a stopped transport service answers: 421 and the connection closes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(SERVICE_UNAVAILABLE)
        transport.close()


class _EdgeHandler:
    """aiosmtpd hooks: Exchange's EHLO greeting, delivery to on_message, quiet failures."""

    def __init__(self, fqdn: str, on_message: MessageSink) -> None:
        self._fqdn = fqdn
        self._on_message = on_message

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Exchange's first line ``250-<fqdn> Hello [<client ip>]``; no AUTH (none is served)."""
        session.host_name = hostname
        peer = session.peer[0] if session.peer else "unknown"
        kept = [line for line in responses[1:] if not line.startswith("250-AUTH")]
        return [f"250-{self._fqdn} Hello [{peer}]", *kept]

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        """Hand the message to on_message and answer as Exchange does when it queues mail."""
        data = envelope.original_content or b""
        try:
            self._on_message(envelope.mail_from or "", list(envelope.rcpt_tos), data)
        except Exception:
            log.exception("lab SMTP listener: on_message failed")
            return "451 4.3.0 Message not queued: local error in processing"
        message_id = secrets.token_hex(8).upper()
        return f"250 2.6.0 <{message_id}@{self._fqdn}> Queued mail for delivery"

    async def handle_exception(self, error: Exception) -> str:
        """A failed STARTTLS handshake is normal on the internet; anything else is logged."""
        if isinstance(error, TLSSetupException):
            log.debug("lab SMTP listener: TLS handshake failed: %r", error.__cause__)
        else:
            log.exception("lab SMTP listener: session error", exc_info=error)
        return "451 4.3.0 Local error in processing"


class _EdgeSmtp(SMTP):
    """aiosmtpd's SMTP that asks the service for its certificate at each EHLO and STARTTLS."""

    def __init__(
        self,
        listener: SmtpListener,
        handler: _EdgeHandler,
        banner: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._listener = listener
        super().__init__(
            handler,
            hostname=listener.fqdn,
            ident=banner,
            tls_context=listener._contexts.current(),
            data_size_limit=listener.max_message_size,
            loop=loop,
        )

    def _refresh_tls_offer(self) -> None:
        if not self._tls_protocol:
            self.tls_context = self._listener._contexts.current()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Track the raw connection so stop() can close it."""
        if self._original_transport is None:
            self._listener._track(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        """Forget the connection."""
        self._listener._untrack(self._original_transport or self.transport)
        super().connection_lost(error)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """EHLO, offering STARTTLS only while the service has a usable certificate."""
        self._refresh_tls_offer()
        await super().smtp_EHLO(hostname)

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        """STARTTLS presenting the certificate the service has at this very moment."""
        self._refresh_tls_offer()
        await super().smtp_STARTTLS(arg)


class SmtpListener(_LoopListener):
    """An Edge's SMTP receive port: Exchange's banner, opportunistic STARTTLS, real sockets.

    Mail is accepted with or without STARTTLS (Exchange's default) and handed to
    ``on_message(mail_from, rcpt_tos, data)``.
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
    ) -> None:
        super().__init__(host, port, running)
        self.fqdn = fqdn
        self._contexts = _ContextCache(cert_source)
        self._handler = _EdgeHandler(fqdn, on_message)
        self._clock = clock or (lambda: datetime.now().astimezone())

    def banner(self) -> str:
        """The 220 greeting text after the FQDN, with the (lab) clock's current date."""
        return f"Microsoft ESMTP MAIL Service ready at {exchange_date(self._clock())}"

    def _new_protocol(self) -> asyncio.BaseProtocol:
        if not self._running():
            return _ServiceUnavailable()
        loop = asyncio.get_running_loop()
        return _EdgeSmtp(self, self._handler, self.banner(), loop)

    async def _create_server(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(self._new_protocol, self.host, self._requested_port)


# --- LDAPS ------------------------------------------------------------------------------------


class _LdapsConnection(asyncio.Protocol):
    """One LDAPS client: TLS with the certificate of the moment, then LDAP messages."""

    def __init__(self, listener: LdapsListener) -> None:
        self._listener = listener
        self._raw: asyncio.Transport | None = None
        self._tls: asyncio.Transport | None = None
        self._buffer = b""
        self._idle: asyncio.TimerHandle | None = None
        self._handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Close at once when the service is stopped or has no certificate; else start TLS."""
        assert isinstance(transport, asyncio.Transport)
        self._raw = transport
        transport.pause_reading()
        self._listener._track(transport)
        listener = self._listener
        context = listener._contexts.current() if listener._running() else None
        if context is None:
            self.connection_lost(None)
            transport.close()
            return
        self._handshake = asyncio.get_running_loop().create_task(
            self._start_tls(transport, context)
        )

    async def _start_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:
            log.debug("lab LDAPS listener: TLS handshake failed: %r", exc)
            self.connection_lost(exc)
            transport.abort()
            return
        self._tls = tls
        self._answer_buffered()

    def _reset_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(LDAP_IDLE_TIMEOUT_S, self._close)

    def _close(self) -> None:
        if self._tls is not None:
            self._tls.close()

    def data_received(self, data: bytes) -> None:
        """Collect LDAP bytes; they are answered once the TLS transport is known."""
        self._buffer += data
        if self._tls is not None:
            self._answer_buffered()

    def _answer_buffered(self) -> None:
        """Answer every complete LDAP message; close on unbind or on anything not LDAP."""
        assert self._tls is not None
        self._reset_idle()
        try:
            while (split := split_message(self._buffer)) is not None:
                message, self._buffer = split
                reply = self._listener.responder.answer(message)
                if reply is None:
                    self._close()
                    return
                self._tls.write(reply)
        except LdapProtocolError as exc:
            log.debug("lab LDAPS listener: closing: %s", exc)
            self._close()

    def eof_received(self) -> bool:
        """The client closed its side: close ours."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        if self._idle is not None:
            self._idle.cancel()
        self._listener._untrack(self._raw)


class LdapsListener(_LoopListener):
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
    ) -> None:
        super().__init__(host, port, running)
        self._contexts = _ContextCache(cert_source)
        self.responder = LdapResponder(
            dns_host_name=dns_host_name, clock=clock or (lambda: datetime.now().astimezone())
        )

    async def _create_server(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _LdapsConnection(self), self.host, self._requested_port
        )
