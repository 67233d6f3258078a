"""Server TLS for the lab's listeners: SSLContexts for what a simulated service presents
right now (cached by its PEM), and the server side of a handshake."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

log = logging.getLogger(__name__)

CertSource = Callable[[], tuple[bytes, bytes] | None]
HANDSHAKE_TIMEOUT_S = 10.0
DRAIN_WAIT_S = 0.5  # for the rest of what a client whose handshake failed had sent
CLOSE_NOTIFY_WAIT_S = 1.0


class ContextCache:
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
        context = build_context(chain_pem, key_pem)
        with self._lock:
            self._cache[digest] = context
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return context


def build_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext | None:
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
    exchange_tls_versions(context)
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


def exchange_tls_versions(context: ssl.SSLContext) -> None:
    """TLS 1.2 only, as Exchange 2019 on Windows Server 2019 serves SMTP, LDAPS and WinRM (TLS
    1.3 needs Windows Server 2022 and CU15, and then for HTTPS only): a client that works here
    works against both."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2


def server_handshake(context: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """The server side of a TLS handshake on sock, within sock's timeout. On failure (OSError)
    the connection is closed gracefully: what the client sent is read first, so that the close
    is a FIN, not a reset that would cut the client's reading of the alert short."""
    tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except OSError:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(tls, socket.SHUT_WR)
            tls.settimeout(DRAIN_WAIT_S)
            while socket.socket.recv(tls, 65536):  # the raw bytes: TLS never started
                pass
        tls.close()
        raise
    return tls


def close(sock: socket.socket) -> None:
    """Close a connection; over TLS, say close_notify first (a peer that went away is fine)."""
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            sock.settimeout(CLOSE_NOTIFY_WAIT_S)
            sock.unwrap()
    sock.close()
