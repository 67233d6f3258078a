"""One TLS client context per certificate settings, shared by the WSMan sessions of a process.

Left alone, urllib3 builds a new SSLContext for every HTTPS connection and loads the CA bundle
(and the client certificate and key) into it: about 1 ms of CPU per WSMan session. Here a
connection takes the context of its settings from a process-wide cache instead. The cache is
keyed on everything the context is made of: the verification mode, TLS versions, hostname
checks, file paths and key password that requests and pypsrp hand to urllib3, and what urllib3
reads at every connect: the bytes of the CA, certificate and key files and SSLKEYLOGFILE. A
file that changes gets a new context at the next connect, and the old one goes. A CA folder
(OpenSSL reads it during each handshake) and proxied connections keep urllib3's own context.
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import requests
from pypsrp._pool_manager import DisableNewConnectionsContext, NewConnectionDisabled
from urllib3 import connectionpool
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import SSLError
from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs, resolve_ssl_version


@dataclass(frozen=True)
class TlsSettings:
    """What urllib3 builds a connection's SSLContext from (the files by path)."""

    cert_reqs: int | str | None
    ssl_version: int | str | None
    ssl_minimum_version: int | None
    ssl_maximum_version: int | None
    assert_hostname: str | bool | None  # urllib3 turns the context's hostname check off for it
    assert_fingerprint: str | None
    ca_certs: str | None
    ca_cert_data: str | bytes | None
    cert_file: str | None
    key_file: str | None
    key_password: str | None = field(repr=False)  # a secret: never in a repr or a log

    def inputs(self) -> tuple[str | bytes | None, ...]:
        """What else the context is made of, read now: urllib3's key log file (SSLKEYLOGFILE)
        and the bytes of the CA, certificate and key files (None where none is named)."""
        try:
            files = (self.ca_certs, self.cert_file, self.key_file)
            contents = (Path(path).read_bytes() if path else None for path in files)
            return (os.environ.get("SSLKEYLOGFILE"), *contents)
        except OSError as exc:  # as urllib3 reports a CA bundle it cannot load
            raise SSLError(exc) from exc


_contexts: dict[TlsSettings, tuple[tuple[str | bytes | None, ...], ssl.SSLContext]] = {}
_lock = threading.Lock()


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The shared SSLContext for settings and their current inputs (built on a miss)."""
    inputs = settings.inputs()
    with _lock:
        cached = _contexts.get(settings)
        if cached is not None and cached[0] == inputs:
            return cached[1]
        context = _build_context(settings)
        if settings.inputs() == inputs:  # nothing changed while it was built
            _contexts[settings] = (inputs, context)
        else:
            _contexts.pop(settings, None)
        return context


def _build_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context urllib3 would build for one connection (util.ssl_.ssl_wrap_socket)."""
    context = create_urllib3_context(
        ssl_version=resolve_ssl_version(settings.ssl_version),
        ssl_minimum_version=settings.ssl_minimum_version,
        ssl_maximum_version=settings.ssl_maximum_version,
        cert_reqs=resolve_cert_reqs(settings.cert_reqs),
    )
    if settings.ca_certs or settings.ca_cert_data:
        try:
            context.load_verify_locations(settings.ca_certs, None, settings.ca_cert_data)
        except OSError as exc:
            raise SSLError(exc) from exc
    else:
        context.load_default_certs()
    if settings.cert_file:
        password = settings.key_password
        context.load_cert_chain(
            settings.cert_file,
            settings.key_file,
            password if password is not None else _password_required,
        )
    return context


def _password_required() -> str:
    """OpenSSL asks for a password only for an encrypted key: refuse, as urllib3 does."""
    raise SSLError("Client private key is encrypted, password is required")


class SharedContextConnection(HTTPSConnection):
    """An HTTPS connection that takes its SSLContext from client_context at each connect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls: TlsSettings | None = None
        if self.ssl_context is None and self.ca_cert_dir is None:
            self._tls = TlsSettings(**{f.name: getattr(self, f.name) for f in fields(TlsSettings)})
            # loaded into the shared context, not again by urllib3 at every connect
            self.ca_certs = self.ca_cert_data = self.cert_file = self.key_file = None
            self.key_password = None

    def connect(self) -> None:
        """Connect (pypsrp's "no new connection" context refuses, as its own adapter does)."""
        if DisableNewConnectionsContext.current() is not None:
            raise NewConnectionDisabled()
        if self._tls is not None:
            self.ssl_context = client_context(self._tls)
        super().connect()


class HTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
    """urllib3's HTTPS pool, with connections that share their SSLContext (named as urllib3's:
    the name is in the text of connection errors)."""

    ConnectionCls = SharedContextConnection


class SharedContextAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose direct HTTPS connections share their SSLContext; it carries the
    client certificate key's password as pypsrp's HTTPS adapter does."""

    def __init__(self, *, max_retries: Any, key_password: str | None) -> None:
        self._key_password = key_password
        super().__init__(max_retries=max_retries)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """requests' pool manager, with the key password and HTTPSConnectionPool for https."""
        if self._key_password is not None:
            pool_kwargs["key_password"] = self._key_password
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        classes = {**self.poolmanager.pool_classes_by_scheme, "https": HTTPSConnectionPool}
        self.poolmanager.pool_classes_by_scheme = classes


def share_tls_contexts(session: requests.Session, key_password: str | None) -> None:
    """Mount SharedContextAdapter for https on a session pypsrp built, with pypsrp's retries."""
    pypsrps = cast(requests.adapters.HTTPAdapter, session.get_adapter("https://"))
    retries = pypsrps.max_retries
    session.mount("https://", SharedContextAdapter(max_retries=retries, key_password=key_password))
