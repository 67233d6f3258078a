"""Client probes: the certificates an Edge presents on SMTP (STARTTLS) and on LDAPS (50636).

Certificates are collected without verification, exactly as the server sends them (pyOpenSSL:
the standard library of Python 3.11 gives only the leaf), so bad certificates are seen too.
Verification (edgebook.probe_verification: OpenSSL path validation against a CA file or the
system store, then the host name against the subjectAltName) is reported separately. The wire
dialogues (SMTP up to STARTTLS, the TLS handshake) live here. Network trouble never raises: the
result carries the error. One timeout bounds the whole probe (connect, dialogue, handshake);
only name resolution is left to the system resolver's own limits.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto

from edgebook import certs
from edgebook.errors import EdgebookError
from edgebook.probe_verification import is_ip, trust_store, verification_error

SMTP_PORT = 25
LDAPS_PORT = 50636
_MAX_REPLY = 64 * 1024
QUIT_WAIT_S = 1.0
EHLO_NAME = "edgebook.invalid"
# Probes wait on the network, not the CPU: an SMTP probe is five round trips (banner, EHLO,
# STARTTLS, the handshake, QUIT), so over a WAN 16 workers made a 20-Edge fleet's 40 probes
# queue behind each other (at 100 ms: 2.0x the 1-Edge inspect's time, 1.6-1.7x with one each).
PROBE_WORKERS = 64


def certificate_dict(cert: x509.Certificate) -> dict[str, Any]:
    """JSON-ready facts of one certificate, PEM included."""
    return {
        "subject": certs.subject_name(cert),
        "issuer": certs.issuer_name(cert),
        "thumbprint": certs.thumbprint(cert),
        "serial_number": f"{cert.serial_number:X}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "dns_names": certs.dns_names(cert),
        "pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }


@dataclass
class TlsProbe:
    """What a TLS endpoint presented; ok means a certificate was collected (valid or not)."""

    kind: ClassVar[str] = "tls"

    target: str
    ok: bool = False
    error: str | None = None
    leaf: x509.Certificate | None = None
    chain: list[x509.Certificate] = field(default_factory=list)  # as sent, leaf first
    tls_version: str | None = None
    cipher: str | None = None
    verified: bool = False
    verify_error: str | None = None
    elapsed_s: float = 0.0

    @property
    def thumbprint(self) -> str | None:
        """The leaf's SHA-1 thumbprint (upper-case hex), None without a leaf."""
        return certs.thumbprint(self.leaf) if self.leaf is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; certificates as subject, issuer, thumbprint, validity and PEM."""
        return {
            "kind": self.kind,
            "target": self.target,
            "ok": self.ok,
            "error": self.error,
            "thumbprint": self.thumbprint,
            "leaf": certificate_dict(self.leaf) if self.leaf is not None else None,
            "chain": [certificate_dict(cert) for cert in self.chain],
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "verified": self.verified,
            "verify_error": self.verify_error,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class SmtpProbe(TlsProbe):
    """An SMTP STARTTLS probe: also the banner and the EHLO reply lines as received."""

    kind: ClassVar[str] = "smtp"

    banner: str | None = None
    ehlo: list[str] = field(default_factory=list)
    starttls_offered: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with banner, EHLO lines and whether STARTTLS was offered."""
        return {
            **super().to_dict(),
            "banner": self.banner,
            "ehlo": self.ehlo,
            "starttls_offered": self.starttls_offered,
        }


@dataclass
class LdapsProbe(TlsProbe):
    """An LDAPS (direct TLS) probe."""

    kind: ClassVar[str] = "ldaps"


@dataclass(frozen=True)
class ProbeTarget:
    """One probe to run: kind, host, port (default 25 or 50636), and how to verify."""

    kind: Literal["smtp", "ldaps"]
    host: str
    port: int | None = None
    server_name: str | None = None
    ca_file: str | Path | None = None
    verify_at: datetime | None = None


class _Failure(Exception):
    """Ends a probe with this error text."""


class _Deadline:
    """One time budget for a whole probe; each step asks what is left."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.monotonic()
        self.stage = "connecting"

    def remaining(self) -> float:
        left = self.start + self.timeout - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> _Failure:
        return _Failure(f"timed out after {self.timeout:.1f} s ({self.stage})")

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _connect(host: str, port: int, deadline: _Deadline) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=deadline.remaining())
    except ConnectionRefusedError as exc:
        raise _Failure("connection refused") from exc
    except TimeoutError as exc:
        raise deadline.expired() from exc
    except socket.gaierror as exc:
        raise _Failure(f"cannot resolve {host}: {exc.strerror}") from exc
    except OSError as exc:
        raise _Failure(f"connection failed: {exc.strerror or exc}") from exc


class _SmtpDialogue:
    """The clear-text part of an SMTP session, line by line, within the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buffer = b""

    def _line(self) -> str:
        while b"\n" not in self._buffer:
            if len(self._buffer) > _MAX_REPLY:
                raise _Failure(f"not an SMTP server: no line end in {_MAX_REPLY} bytes")
            self._sock.settimeout(self._deadline.remaining())
            try:
                data = self._sock.recv(4096)
            except TimeoutError as exc:
                raise self._deadline.expired() from exc
            except OSError as exc:
                raise _Failure(f"connection lost ({self._deadline.stage}): {exc}") from exc
            if not data:
                raise _Failure(f"connection closed by server ({self._deadline.stage})")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self) -> tuple[int, list[str]]:
        """One (possibly multi-line) reply: its code and its lines as received (64 KiB at most)."""
        lines = [self._line()]
        size = len(lines[0])
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            if size > _MAX_REPLY:
                raise _Failure(
                    f"not an SMTP server: a reply of more than {_MAX_REPLY} bytes "
                    f"({self._deadline.stage})"
                )
            lines.append(self._line())
            size += len(lines[-1])
        code = lines[-1][:3]
        if not code.isdigit():
            raise _Failure(f"not an SMTP reply: {lines[-1][:80]!r}")
        return int(code), lines

    def command(self, text: str) -> tuple[int, list[str]]:
        """Send one command and read its reply."""
        self._sock.settimeout(self._deadline.remaining())
        try:
            self._sock.sendall(text.encode("ascii") + b"\r\n")
        except TimeoutError as exc:
            raise self._deadline.expired() from exc
        except OSError as exc:
            raise _Failure(f"connection lost ({self._deadline.stage}): {exc}") from exc
        return self.reply()


def _wait(sock: socket.socket, deadline: _Deadline, *, write: bool) -> None:
    readable, writable, _ = select.select(
        [] if write else [sock], [sock] if write else [], [], deadline.remaining()
    )
    if not readable and not writable:
        raise deadline.expired()


def _ssl_error_text(exc: SSL.Error) -> str:
    if isinstance(exc, SSL.ZeroReturnError):
        return "connection closed by server"
    if isinstance(exc, SSL.SysCallError):
        code = exc.args[0] if exc.args else -1
        if code == errno.ECONNRESET:
            return "connection reset by server"
        return "connection closed by server" if code in (-1, 0) else f"{exc.args[-1]}"
    reasons = [entry[2] for entry in (exc.args[0] if exc.args else []) if len(entry) == 3]
    return "; ".join(reasons) or str(exc)


@functools.lru_cache(maxsize=1)
def _client_context() -> SSL.Context:
    """The one TLS client context of every probe: any protocol from TLS 1.0, any cipher, any
    certificate. Shared by the probes' threads; never changed once made."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    context.set_min_proto_version(SSL.TLS1_VERSION)
    context.set_cipher_list(b"ALL:!aNULL:!eNULL:@SECLEVEL=0")
    return context


def _handshake(sock: socket.socket, sni: str | None, deadline: _Deadline) -> SSL.Connection:
    """A TLS client handshake that accepts any certificate (collection, not verification)."""
    connection = SSL.Connection(_client_context(), sock)
    if sni:
        try:
            connection.set_tlsext_host_name(sni.encode("idna"))
        except UnicodeError as exc:
            raise _Failure(f"{sni!r} is not a valid DNS name for SNI ({exc})") from exc
    connection.set_connect_state()
    sock.setblocking(False)
    deadline.stage = "during the TLS handshake"
    while True:
        try:
            connection.do_handshake()
            return connection
        except SSL.WantReadError:
            _wait(sock, deadline, write=False)
        except SSL.WantWriteError:
            _wait(sock, deadline, write=True)
        except SSL.Error as exc:
            raise _Failure(f"TLS handshake failed: {_ssl_error_text(exc)}") from exc


def _bare(host: str) -> str:
    """An IPv6 literal without its URL brackets ([::1] -> ::1); other hosts unchanged."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _sni(host: str, server_name: str | None) -> str | None:
    name = server_name or host
    return None if is_ip(name) else name


def _collect(probe: TlsProbe, connection: SSL.Connection) -> list[crypto.X509]:
    """Record what the connection received; returns OpenSSL's own copies of the chain, leaf
    first. On a client the received chain starts with the server's certificate (OpenSSL's
    SSL_get_peer_cert_chain: the very object get_peer_certificate gives), so the leaf is
    converted once, as chain[0]."""
    sent = connection.get_peer_cert_chain() or []
    probe.chain = [cert.to_cryptography() for cert in sent]
    probe.leaf = probe.chain[0] if probe.chain else None
    probe.tls_version = connection.get_protocol_version_name()
    probe.cipher = connection.get_cipher_name()
    probe.ok = probe.leaf is not None
    if not probe.ok:
        probe.error = "the server sent no certificate"
    return sent


def _verify(probe: TlsProbe, store: crypto.X509Store, name: str, sent: list[crypto.X509]) -> None:
    """Path validation of the chain as received, then the host name."""
    assert probe.leaf is not None
    probe.verify_error = verification_error(store, name, sent, probe.leaf)
    probe.verified = probe.verify_error is None


def _close(connection: SSL.Connection | None, sock: socket.socket | None) -> None:
    if connection is not None:
        with contextlib.suppress(SSL.Error):
            connection.shutdown()
    if sock is not None:
        sock.close()


def _quit_smtp(connection: SSL.Connection, sock: socket.socket, deadline: _Deadline) -> None:
    """Say QUIT over TLS and wait briefly for the 221 (RFC 5321 4.1.1.10: the client SHOULD);
    a server that does not answer is fine. Over TLS 1.3 the server's session tickets may come
    first: the wait reads past them."""
    with contextlib.suppress(SSL.Error, OSError, _Failure):
        until = time.monotonic() + min(deadline.remaining(), QUIT_WAIT_S)
        connection.sendall(b"QUIT\r\n")
        while (left := until - time.monotonic()) > 0:
            if not connection.pending() and not select.select([sock], [], [], left)[0]:
                return
            try:
                if connection.recv(1024):
                    return  # the 221 (or whatever the server says last)
            except SSL.WantReadError:
                continue  # a session ticket, no reply yet


def smtp_certificate(
    host: str,
    port: int = SMTP_PORT,
    timeout: float = 10.0,
    *,
    ehlo_name: str = EHLO_NAME,
    server_name: str | None = None,
    ca_file: str | Path | None = None,
    verify_at: datetime | None = None,
) -> SmtpProbe:
    """Banner, EHLO, STARTTLS: the certificate chain as sent, then its verification and QUIT.

    verify_at checks validity at another moment (the lab's clock); default now.
    """
    store = trust_store(ca_file, verify_at)
    return _smtp(host, port, timeout, store, ehlo_name=ehlo_name, server_name=server_name)


def _smtp(
    host: str,
    port: int,
    timeout: float,
    store: crypto.X509Store,
    *,
    ehlo_name: str = EHLO_NAME,
    server_name: str | None,
) -> SmtpProbe:
    host = _bare(host)
    probe = SmtpProbe(target=_target(host, port))
    deadline = _Deadline(timeout)
    sock: socket.socket | None = None
    connection: SSL.Connection | None = None
    try:
        sock = _connect(host, port, deadline)
        dialogue = _SmtpDialogue(sock, deadline)
        deadline.stage = "waiting for the SMTP banner"
        code, lines = dialogue.reply()
        probe.banner = "\n".join(lines)
        if code != 220:
            raise _Failure(f"server refused the session: {lines[-1]}")
        deadline.stage = "waiting for the EHLO reply"
        code, probe.ehlo = dialogue.command(f"EHLO {ehlo_name}")
        if code != 250:
            raise _Failure(f"EHLO refused: {probe.ehlo[-1]}")
        keywords = {line[4:].split(" ")[0].upper() for line in probe.ehlo[1:]}
        probe.starttls_offered = "STARTTLS" in keywords
        if not probe.starttls_offered:
            with contextlib.suppress(_Failure):
                dialogue.command("QUIT")
            raise _Failure("STARTTLS not offered")
        deadline.stage = "waiting for the STARTTLS reply"
        code, lines = dialogue.command("STARTTLS")
        if code != 220:
            raise _Failure(f"STARTTLS refused: {lines[-1]}")
        connection = _handshake(sock, _sni(host, server_name), deadline)
        sent = _collect(probe, connection)
        if probe.ok:
            _verify(probe, store, server_name or host, sent)
        deadline.stage = "waiting for the QUIT reply"
        _quit_smtp(connection, sock, deadline)
    except _Failure as exc:
        probe.error = probe.error or str(exc)
    finally:
        _close(connection, sock)
        probe.elapsed_s = deadline.elapsed()
    return probe


def ldaps_certificate(
    host: str,
    port: int = LDAPS_PORT,
    timeout: float = 10.0,
    *,
    server_name: str | None = None,
    ca_file: str | Path | None = None,
    verify_at: datetime | None = None,
) -> LdapsProbe:
    """Direct TLS (LDAPS, AD LDS on 50636): the certificate chain as sent and its verification."""
    return _ldaps(host, port, timeout, trust_store(ca_file, verify_at), server_name=server_name)


def _ldaps(
    host: str, port: int, timeout: float, store: crypto.X509Store, *, server_name: str | None
) -> LdapsProbe:
    host = _bare(host)
    probe = LdapsProbe(target=_target(host, port))
    deadline = _Deadline(timeout)
    sock: socket.socket | None = None
    connection: SSL.Connection | None = None
    try:
        sock = _connect(host, port, deadline)
        connection = _handshake(sock, _sni(host, server_name), deadline)
        sent = _collect(probe, connection)
        if probe.ok:
            _verify(probe, store, server_name or host, sent)
    except _Failure as exc:
        probe.error = str(exc)
    finally:
        _close(connection, sock)
        probe.elapsed_s = deadline.elapsed()
    return probe


def _check_kind(target: ProbeTarget) -> None:
    if target.kind not in ("smtp", "ldaps"):
        raise EdgebookError(
            f"probe target {target.host}: kind {target.kind!r} is not smtp or ldaps"
        )


def _run(target: ProbeTarget, timeout: float, store: crypto.X509Store) -> TlsProbe:
    """One probe of a checked target, verified against store (its CA file and moment)."""
    if target.kind == "smtp":
        port = target.port or SMTP_PORT
        return _smtp(target.host, port, timeout, store, server_name=target.server_name)
    port = target.port or LDAPS_PORT
    return _ldaps(target.host, port, timeout, store, server_name=target.server_name)


def probe(target: ProbeTarget, timeout: float = 10.0) -> TlsProbe:
    """Run one probe described by a ProbeTarget."""
    _check_kind(target)
    return _run(target, timeout, trust_store(target.ca_file, target.verify_at))


@functools.cache
def _workers() -> ThreadPoolExecutor:
    """The probes' threads, kept for the process and shared by concurrent calls (PROBE_WORKERS
    probes at once in all): a thread's first TLS handshake pays OpenSSL's and the allocator's
    per-thread set-up, some 0.5 ms of CPU, which new threads paid again on every call."""
    return ThreadPoolExecutor(max_workers=PROBE_WORKERS, thread_name_prefix="edgebook-probe")


os.register_at_fork(after_in_child=_workers.cache_clear)  # the parent's threads are not here


def probe_many(targets: Sequence[ProbeTarget], timeout: float = 10.0) -> list[TlsProbe]:
    """Run probes concurrently; results in the order of targets. Each trust store (CA file
    and moment) is built once for all the probes that use it, and a bad kind or CA file is
    raised before any probe starts (the first in the order of targets)."""
    stores: dict[tuple[str | Path | None, datetime | None], crypto.X509Store] = {}
    for target in targets:
        _check_kind(target)
        key = (target.ca_file, target.verify_at)
        if key not in stores:
            stores[key] = trust_store(*key)
    return list(_workers().map(lambda t: _run(t, timeout, stores[t.ca_file, t.verify_at]), targets))
