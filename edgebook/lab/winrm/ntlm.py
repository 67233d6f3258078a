"""Server-side Negotiate/NTLM for the lab's WinRM endpoint, and WinRM message encryption.

A real Edge server (workgroup, DMZ) is reached with NTLM: over HTTP the SOAP bodies are sealed
with the NTLM session (`multipart/encrypted; protocol="application/HTTP-SPNEGO-session-encrypted"`,
MS-WSMV 2.2.9.1), over HTTPS they travel as is. NTLM authenticates a TCP connection, not a
request, so the HTTP server keeps one NegotiateSession per connection and endpoint.

pyspnego's acceptor (plain NTLM and SPNEGO-wrapped NTLM) reads its user database from the file
named by NTLM_USER_FILE. The lab never writes its password to disk: while a lab context steps,
a context-local hook answers pyspnego's lookup with the one Account of the server, whose NT hash
is computed in memory. Outside such a step pyspnego behaves exactly as without the hook.
"""

from __future__ import annotations

import contextvars
import re
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import spnego
import spnego._ntlm as _spnego_ntlm
from spnego._ntlm_raw.crypto import ntowfv1
from spnego.exceptions import ErrorCode, SpnegoError

from edgebook.errors import EdgebookError

SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = "Encrypted Boundary"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="{BOUNDARY}"'
NEGOTIATE = "Negotiate"

_STORE = "<edgebook lab account, in memory>"
_ACCOUNT: contextvars.ContextVar[Account | None] = contextvars.ContextVar(
    "edgebook_lab_ntlm_account", default=None
)
_HOOK_LOCK = threading.Lock()
_NO_LM_HASH = b"\x00" * 16  # like Windows' NoLMHash policy: LM responses never match
_LENGTH = re.compile(rb"Length=(\d+)")
_OCTET_STREAM = re.compile(rb"[ \t]*Content-Type:[ \t]*application/octet-stream[ \t]*\r\n", re.I)
_PARAM = re.compile(r';\s*([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')


class NegotiateError(Exception):
    """The Negotiate handshake failed (the endpoint answers 401)."""


class EncryptionError(Exception):
    """An encrypted body is malformed or does not decrypt (the endpoint answers 400)."""


@dataclass(frozen=True)
class Account:
    """The account NTLM checks on one server: the names it answers to and its NT hash."""

    username: str  # canonical form, e.g. EDGE01\Administrator (the shell's owner)
    user: str  # upper-cased user part
    domains: frozenset[str]  # upper-cased domain parts accepted ("" and "." included)
    nt_hash: bytes = field(repr=False)

    @classmethod
    def of(cls, server: str, username: str, password: str) -> Account:
        """The account for username/password on server; DOMAIN\\user, .\\user and user match."""
        domain, _, user = username.rpartition("\\")
        domains = {"", ".", server.upper(), domain.upper()}
        return cls(username, user.upper(), frozenset(domains), ntowfv1(password))

    def matches(self, domain: str | None, user: str) -> bool:
        """Whether the (domain, user) an NTLM client sent names this account."""
        return user.upper() == self.user and (domain or "").upper() in self.domains


def ensure_supported() -> None:
    """Install the in-memory account lookup into pyspnego, or explain why it cannot be."""
    with _HOOK_LOCK:
        current = getattr(_spnego_ntlm, "_get_credential", None)
        if getattr(current, "_edgebook_hook", False):
            return
        original_file = getattr(_spnego_ntlm, "_get_credential_file", None)
        if not callable(current) or not callable(original_file):
            raise EdgebookError(
                f"pyspnego {metadata.version('pyspnego')} no longer looks NTLM accounts "
                "up through spnego._ntlm._get_credential; the lab cannot offer NTLM with it. Use "
                "Basic authentication (the endpoint's default) or install pyspnego 0.10-0.12."
            )
        _spnego_ntlm._get_credential_file = _hooked_file(original_file)
        _spnego_ntlm._get_credential = _hooked_lookup(current)


def _hooked_file(original: Callable[[], str | None]) -> Callable[[], str | None]:
    def credential_file() -> str | None:
        return _STORE if _ACCOUNT.get() is not None else original()

    return credential_file


def _hooked_lookup(original: Callable[..., Any]) -> Callable[..., Any]:
    def credential(
        store: str | None, domain: str | None = None, username: str | None = None
    ) -> tuple[str | None, str | None, bytes, bytes]:
        account = _ACCOUNT.get()
        if account is None or store != _STORE:
            return original(store, domain, username)
        if not username or not account.matches(domain, username):
            raise SpnegoError(ErrorCode.failure, context_msg="Unknown user for this lab server")
        return domain, username, _NO_LM_HASH, account.nt_hash

    credential._edgebook_hook = True  # type: ignore[attr-defined]
    return credential


class NegotiateSession:
    """The security context of one HTTP connection to one endpoint."""

    def __init__(self, server: str, *, tls: bool) -> None:
        self.server = server
        self.tls = tls
        self.user: str | None = None  # the account's name once the handshake completed
        self._context: Any = None

    @property
    def authenticated(self) -> bool:
        """Whether a handshake completed on this connection (and its keys are usable)."""
        return self.user is not None

    def step(self, token: bytes, account: Account | None) -> bytes | None:
        """Feed one Authorization token; return the token for WWW-Authenticate (or None).

        A first-leg token (NTLM NEGOTIATE or SPNEGO NegTokenInit) starts a new handshake.
        Raises NegotiateError when the token or the credentials are wrong.
        """
        if not token:
            self.reset()
            raise NegotiateError("the Authorization header has no Negotiate token")
        if _starts_handshake(token) or self._context is None:
            self.reset()
            self._context = spnego.server(
                hostname=self.server,
                service="host",
                protocol="negotiate",
                options=spnego.NegotiateOptions.use_negotiate,
            )
        if account is None:
            self.reset()
            raise NegotiateError(f"{self.server} has no account that NTLM can check")
        scope = _ACCOUNT.set(account)
        try:
            out_token = self._context.step(token)
        except Exception as exc:  # a wrong password or a malformed token: both are a 401
            self.reset()
            raise NegotiateError(f"the Negotiate token was refused: {exc}") from None
        finally:
            _ACCOUNT.reset(scope)
        if self._context.complete:
            self.user = account.username
        return out_token

    def reset(self) -> None:
        """Forget the handshake (the next request must authenticate again)."""
        self._context = None
        self.user = None

    def unwrap(self, body: bytes, content_type: str) -> bytes:
        """The SOAP message inside an encrypted body (raises EncryptionError)."""
        if not self.authenticated:
            raise EncryptionError("the connection has no NTLM session to decrypt with")
        params = content_type_params(content_type)
        if params.get("protocol", "").lower() != SPNEGO_ENCRYPTED.lower():
            raise EncryptionError(
                f"only {SPNEGO_ENCRYPTED} is supported, not {params.get('protocol') or 'none'}"
            )
        boundary = params.get("boundary")
        if not boundary:
            raise EncryptionError("the Content-Type has no boundary")
        message = b""
        try:
            for signature, sealed, length in _encrypted_parts(body, boundary.encode()):
                plain = self._context.unwrap_winrm(signature, sealed)
                if len(plain) != length:
                    raise EncryptionError(f"decrypted {len(plain)} bytes, expected {length}")
                message += plain
        except (SpnegoError, EncryptionError) as exc:
            self.reset()  # the sealing state is lost: the client must authenticate again
            raise EncryptionError(f"the encrypted body was refused: {exc}") from None
        return message

    def wrap(self, message: bytes) -> tuple[str, bytes]:
        """(Content-Type, body) of message sealed for the client."""
        if not self.authenticated:
            raise EncryptionError("the connection has no NTLM session to encrypt with")
        wrapped = self._context.wrap_winrm(message)
        length = len(message) + wrapped.padding_length
        head = (
            f"--{BOUNDARY}\r\n"
            f"\tContent-Type: {SPNEGO_ENCRYPTED}\r\n"
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}\r\n"
            f"--{BOUNDARY}\r\n"
            "\tContent-Type: application/octet-stream\r\n"
        ).encode()
        body = head + struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data
        return ENCRYPTED_CONTENT_TYPE, body + f"--{BOUNDARY}--\r\n".encode()


def is_encrypted(content_type: str) -> bool:
    """Whether a Content-Type announces a WinRM-encrypted body."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("multipart/encrypted", "multipart/x-multi-encrypted")


def content_type_params(content_type: str) -> dict[str, str]:
    """The parameters of a Content-Type header (names lower-cased, quotes removed)."""
    return {
        match.group(1).lower(): match.group(2) if match.group(2) is not None else match.group(3)
        for match in _PARAM.finditer(content_type)
    }


def _starts_handshake(token: bytes) -> bool:
    # NTLM NEGOTIATE_MESSAGE, or a GSS-API InitialContextToken ([APPLICATION 0]) = NegTokenInit
    return token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00") or token[:1] == b"\x60"


def _encrypted_parts(body: bytes, boundary: bytes) -> Iterator[tuple[bytes, bytes, int]]:
    """(signature, sealed data, plain length) of each part of a multipart/encrypted body."""
    marker = b"--" + boundary + b"\r\n"
    end = b"--" + boundary + b"--"
    position = 0
    parts = 0
    while not body.startswith(end, position):
        if not body.startswith(marker, position):
            raise EncryptionError(f"expected the boundary at byte {position}")
        data_marker = body.find(marker, position + len(marker))
        length = _LENGTH.search(body, position, data_marker) if data_marker > 0 else None
        if length is None:
            raise EncryptionError("a part has no OriginalContent with a Length")
        octet = _OCTET_STREAM.match(body, data_marker + len(marker))
        if octet is None:
            raise EncryptionError("a part has no application/octet-stream payload")
        position = octet.end()
        if len(body) < position + 4:
            raise EncryptionError("a part ends before its signature length")
        (signature_length,) = struct.unpack_from("<I", body, position)
        position += 4
        signature = body[position : position + signature_length]
        position += signature_length
        plain_length = int(length.group(1))
        sealed = body[position : position + plain_length]
        position += plain_length
        if len(signature) != signature_length or len(sealed) != plain_length:
            raise EncryptionError("a part is shorter than its Length")
        parts += 1
        yield signature, sealed, plain_length
    if parts == 0:
        raise EncryptionError("the body has no encrypted part")
