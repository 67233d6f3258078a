"""Verification of what a probe collected: trust stores and the checks made against them.

A trust store is the CA file given, or the system's trusted roots (with the Windows store on
Windows), its clock fixed at a chosen moment if asked; stores are built once and shared,
cached on the CA files' paths and contents. Verification is OpenSSL path validation of the
chain as the connection received it, then the host name against the leaf's subjectAltName.
A bad CA file is a user error (EdgebookError); a chain that does not verify is a result.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import ssl
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from OpenSSL import crypto

from edgebook import certs
from edgebook.errors import EdgebookError

TRUST_STORES = 8  # cached X509Stores: one per CA set and verification moment in use


def is_ip(host: str) -> bool:
    """Whether host is an IPv4 or IPv6 address (not a DNS name)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _windows_roots() -> tuple[bytes, ...]:
    """The Windows trusted roots as DER (OpenSSL's default paths do not reach that store)."""
    return tuple(ssl.create_default_context().get_ca_certs(binary_form=True))


def trust_store(ca_file: str | Path | None, verify_at: datetime | None) -> crypto.X509Store:
    """The CA file given, else the system's trusted roots, checking validity at verify_at (None:
    at verification); a bad CA file is a user error. Stores are shared: never changed once
    built, cached on the CA files' paths and contents."""
    cafile: str | None
    capath: str | None
    if ca_file is not None:
        path = Path(ca_file)
        if not path.is_file():
            raise EdgebookError(f"CA file {path} does not exist: give a PEM file of trusted CAs")
        cafile, capath = str(path), None
    else:
        paths = ssl.get_default_verify_paths()
        cafile = paths.cafile if paths.cafile and Path(paths.cafile).is_file() else None
        capath = paths.capath if paths.capath and Path(paths.capath).is_dir() else None
    content = _digest(cafile) if cafile else b""
    at = None if verify_at is None else verify_at.astimezone(UTC).replace(tzinfo=None)
    return _built_store(cafile, capath, content, ca_file is None, at)


def _digest(path: str) -> bytes:
    """The CA file's SHA-256, read again only when the file's identity, size or times change
    (a fleet's probes share one file: the system bundle is some 200 KB)."""
    try:
        status = Path(path).stat()
        return _content_digest(
            path, (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
        )
    except OSError as exc:
        raise EdgebookError(f"cannot read the CA file {path}: {exc.strerror or exc}") from exc


@functools.lru_cache(maxsize=TRUST_STORES)
def _content_digest(path: str, _status: tuple[int, int, int, int]) -> bytes:
    return hashlib.sha256(Path(path).read_bytes()).digest()


@functools.lru_cache(maxsize=TRUST_STORES)
def _built_store(
    cafile: str | None, capath: str | None, content: bytes, system: bool, at: datetime | None
) -> crypto.X509Store:
    """A store of cafile and capath (content: cafile's digest, a cache key only), with the
    Windows roots for the system store and the time fixed at `at` (naive UTC) if given."""
    store = crypto.X509Store()
    if not system:
        try:
            store.load_locations(cafile)
        except crypto.Error as exc:
            raise EdgebookError(
                f"CA file {cafile} holds no PEM certificate ({exc}): give a PEM file of trusted CAs"
            ) from exc
    elif cafile or capath:
        store.load_locations(cafile, capath)
    if system and sys.platform == "win32":
        for der in _windows_roots():
            store.add_cert(crypto.X509.from_cryptography(x509.load_der_x509_certificate(der)))
    if at is not None:  # pyOpenSSL reads the fields as UTC
        store.set_time(at)
    return store


def hostname_error(leaf: x509.Certificate, name: str) -> str | None:
    """Why leaf is not valid for host name or IP address name (subjectAltName only), or None."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return f"hostname mismatch: the certificate has no subjectAltName (wanted {name})"
    ips = san.get_values_for_type(x509.IPAddress)
    dns_names = san.get_values_for_type(x509.DNSName)
    if is_ip(name):
        valid = ipaddress.ip_address(name) in ips
    else:
        valid = any(certs.matches_fqdn(pattern, name) for pattern in dns_names)
    if valid:
        return None
    named = ", ".join([*dns_names, *map(str, ips)]) or "no DNS name or IP address"
    return f"hostname mismatch: the certificate is not valid for {name} (it names {named})"


def verification_error(
    store: crypto.X509Store, name: str, sent: Sequence[crypto.X509], leaf: x509.Certificate
) -> str | None:
    """Why the chain as received (OpenSSL's own copies, leaf first, none converted) does not
    verify for name, or None: path validation of sent[0] with the rest as untrusted
    intermediates, then the host name against leaf (sent[0] as cryptography sees it)."""
    context = crypto.X509StoreContext(store, sent[0], sent[1:])
    try:
        context.verify_certificate()
    except crypto.X509StoreContextError as exc:
        where = exc.certificate.to_cryptography().subject if exc.certificate else None
        return f"{exc}" + (f" (at {certs.windows_name(where)})" if where else "")
    return hostname_error(leaf, name)
