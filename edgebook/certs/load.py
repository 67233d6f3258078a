"""Load certificates and keys from PEM, DER, PKCS#7 and PKCS#12 files, with clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from edgebook.certs import der
from edgebook.errors import EdgebookError
from edgebook.textfile import CERTIFICATE_LIMIT, read_bytes

FORMATS = "PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx/.p12)"

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]{1,64})-----")
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"}
_KEY_LABELS = {
    b"PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
}


class CertificateError(EdgebookError):
    """A certificate or key file cannot be used; the message names the file and the fix."""


@dataclass
class CertificateBundle:
    """A leaf certificate, the other certificates that came with it, and its key if present."""

    leaf: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)
    private_key: PrivateKeyTypes | None = None
    source: Path = field(default_factory=Path)

    @property
    def certificates(self) -> list[x509.Certificate]:
        """Leaf first, then the chain."""
        return [self.leaf, *self.chain]

    @property
    def unrelated(self) -> list[x509.Certificate]:
        """The certificates of the file that are not on the leaf's issuer path."""
        current = self.leaf
        for index, cert in enumerate(self.chain):
            if not _is_issuer_by_name(cert, current):
                return self.chain[index:]
            current = cert
        return []


def key_matches(private_key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """True when the private key belongs to the certificate's public key."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = private_key.public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == cert.public_key().public_bytes(serialization.Encoding.DER, spki)


def _is_issuer_by_name(parent: x509.Certificate, child: x509.Certificate) -> bool:
    return parent is not child and parent.subject == child.issuer and parent != child


def order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """Others ordered from the leaf's issuer upwards; unrelated certificates come last."""
    remaining = [c for c in others if c != leaf]
    ordered: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject:
        parents = [c for c in remaining if _is_issuer_by_name(c, current)]
        if not parents:
            break
        current = parents[0]
        ordered.append(current)
        remaining.remove(current)
    return ordered + remaining


def _unique(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    seen: list[x509.Certificate] = []
    for cert in certs:
        if cert not in seen:
            seen.append(cert)
    return seen


def _password_bytes(password: str | None) -> bytes | None:
    return None if password is None else password.encode("utf-8")


def _load_pem_key(block: bytes, path: Path, password: str | None) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(block, _password_bytes(password))
    except TypeError as exc:
        if password is None:
            raise CertificateError(
                f"{path}: the private key is encrypted: give its password (--password-env VAR)"
            ) from exc
        # A password was given for a key that is not encrypted: load it without.
        return serialization.load_pem_private_key(block, None)
    except ValueError as exc:
        if b"ENCRYPTED" in block or b"Proc-Type: 4,ENCRYPTED" in block:
            raise CertificateError(
                f"{path}: wrong password for the private key: check the password"
            ) from exc
        raise CertificateError(f"{path}: the private key block is damaged: {exc}") from exc


def _pem_blocks(data: bytes, path: Path) -> list[tuple[bytes, bytes]]:
    """(label, block) of every PEM block, in one pass; a BEGIN without its END is an error."""
    blocks = []
    position = 0
    while begin := _PEM_BEGIN.search(data, position):
        end_line = b"-----END " + begin.group(1) + b"-----"
        end = data.find(end_line, begin.end())
        if end < 0 or _PEM_BEGIN.search(data, begin.end(), end):
            raise CertificateError(
                f"{path}: a PEM block has no END line, so the file is truncated: copy it again"
            )
        position = end + len(end_line)
        blocks.append((begin.group(1), data[begin.start() : position]))
    return blocks


def _read_pem(
    data: bytes, path: Path, password: str | None
) -> tuple[list[x509.Certificate], PrivateKeyTypes | None]:
    certs: list[x509.Certificate] = []
    key: PrivateKeyTypes | None = None
    labels: list[str] = []
    for label, text in _pem_blocks(data, path):
        labels.append(label.decode("ascii"))
        try:
            if label in _CERT_LABELS:
                certs.append(x509.load_pem_x509_certificate(text.replace(b"TRUSTED ", b"")))
            elif label in _PKCS7_LABELS:
                certs.extend(pkcs7.load_pem_pkcs7_certificates(text))
        except ValueError as exc:
            raise CertificateError(
                f"{path}: the {label.decode()} block is damaged or truncated ({exc}): "
                "export the certificate again"
            ) from exc
        if label in _KEY_LABELS:
            if key is not None:
                raise CertificateError(f"{path}: more than one private key: keep only one")
            key = _load_pem_key(text, path, password)
    if not certs:
        found = ", ".join(labels) or "nothing"
        hint = (
            ": submit the request to your CA and use the issued certificate"
            if "CERTIFICATE REQUEST" in labels or "NEW CERTIFICATE REQUEST" in labels
            else ""
        )
        raise CertificateError(f"{path}: no certificate in this PEM file (found {found}){hint}")
    return certs, key


def _looks_like_pkcs12(data: bytes) -> bool:
    try:
        outer = der.single(data, der.SEQUENCE)
        first = der.children(outer.content)[0]
    except (der.DerError, IndexError):
        return False
    return first.tag == 0x02 and first.content == b"\x03"


def _read_pkcs12(
    data: bytes, path: Path, password: str | None
) -> tuple[list[x509.Certificate], PrivateKeyTypes | None]:
    attempts = [_password_bytes(password)] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            loaded = pkcs12.load_pkcs12(data, attempt)
        except ValueError:
            continue
        certs = [loaded.cert.certificate] if loaded.cert else []
        certs += [c.certificate for c in loaded.additional_certs]
        if not certs:
            raise CertificateError(f"{path}: the PKCS#12 file holds no certificate")
        return certs, loaded.key
    if password is None:
        raise CertificateError(
            f"{path}: the PKCS#12 file is protected by a password: give it with --password-env VAR"
        )
    raise CertificateError(
        f"{path}: wrong password for the PKCS#12 file (or the file is damaged): check the password"
    )


def _read_der(
    data: bytes, path: Path, password: str | None
) -> tuple[list[x509.Certificate], PrivateKeyTypes | None]:
    declared = der.declared_length(data)
    if data[:1] == b"\x30" and declared is not None and declared > len(data):
        raise CertificateError(
            f"{path}: the file is truncated ({len(data)} of {declared} bytes): copy it again"
        )
    if _looks_like_pkcs12(data):
        return _read_pkcs12(data, path, password)
    try:
        return [x509.load_der_x509_certificate(data)], None
    except ValueError:
        pass
    try:
        return list(pkcs7.load_der_pkcs7_certificates(data)), None
    except ValueError:
        pass
    try:
        serialization.load_der_private_key(data, _password_bytes(password))
    except (TypeError, ValueError):
        raise CertificateError(f"{path}: not a certificate: expected {FORMATS}") from None
    raise CertificateError(f"{path}: holds a private key but no certificate")


def _read_bytes(path: Path, what: str = "certificate file") -> bytes:
    data = read_bytes(path, what=what, limit=CERTIFICATE_LIMIT, error=CertificateError)
    if not data.strip():
        raise CertificateError(f"{path}: the file is empty: export the certificate again")
    return data


def read_file(
    path: str | Path, password: str | None = None
) -> tuple[list[x509.Certificate], PrivateKeyTypes | None]:
    """Every certificate in a file (file order, duplicates removed) and its private key."""
    path = Path(path)
    data = _read_bytes(path)
    if b"-----BEGIN" in data:
        certs, key = _read_pem(data, path, password)
    else:
        certs, key = _read_der(data, path, password)
    return _unique(certs), key


def load_certificates(path: str | Path, password: str | None = None) -> CertificateBundle:
    """Load a certificate file; the leaf is the key's certificate, else the one issuing none."""
    certs, key = read_file(path, password)
    leaf = None
    if key is not None:
        leaf = next((c for c in certs if key_matches(key, c)), None)
    if leaf is None:
        issuing = [c for c in certs if any(_is_issuer_by_name(c, other) for other in certs)]
        leaf = next((c for c in certs if c not in issuing), certs[0])
    return CertificateBundle(leaf, order_chain(leaf, certs), key, Path(path))


def load_certificate_list(path: str | Path) -> list[x509.Certificate]:
    """All certificates of a file (for --chain and --roots)."""
    return read_file(path)[0]


def load_private_key(path: str | Path, password: str | None) -> PrivateKeyTypes:
    """A private key from a PEM or DER key file (PKCS#8 or traditional, encrypted or not)."""
    path = Path(path)
    data = _read_bytes(path, "key file")
    if b"-----BEGIN" in data:
        blocks = [text for label, text in _pem_blocks(data, path) if label in _KEY_LABELS]
        if not blocks:
            raise CertificateError(f"{path}: no private key in this file")
        return _load_pem_key(blocks[0], path, password)
    try:
        return serialization.load_der_private_key(data, _password_bytes(password))
    except TypeError as exc:
        if password is not None:  # given for a key that is not encrypted
            return serialization.load_der_private_key(data, None)
        raise CertificateError(
            f"{path}: the private key is encrypted: give its passphrase"
        ) from exc
    except ValueError as exc:
        raise CertificateError(
            f"{path}: not a private key, or a wrong passphrase: check the file and the passphrase"
        ) from exc


def load_pem_certificates(path: str | Path, what: str = "CA file") -> list[x509.Certificate]:
    """The certificates of a PEM file: what OpenSSL (and so requests) reads as a CA file."""
    path = Path(path)
    data = _read_bytes(path, what)
    if b"-----BEGIN" not in data:
        kind = "binary (DER or PKCS#12)" if data[:1] == b"\x30" else "not PEM text"
        raise CertificateError(
            f"{path}: the {what} is {kind}, and only PEM is read here; convert it, e.g. "
            f"openssl x509 -inform der -in {path.name} -out {path.stem}.pem"
        )
    return _unique(_read_pem(data, path, None)[0])
