"""Certification path building with signature checks, against given or system roots."""

from __future__ import annotations

import functools
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

MAX_DEPTH = 8


def _verify_legacy(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Verify signatures cryptography's helper refuses (SHA-1, MD5): Windows still checks them."""
    key = parent.public_key()
    algorithm = child.signature_hash_algorithm
    parameters = child.signature_algorithm_parameters
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            if not isinstance(parameters, padding.AsymmetricPadding):
                parameters = padding.PKCS1v15()  # md5WithRSAEncryption has no parameters here
            key.verify(child.signature, child.tbs_certificate_bytes, parameters, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(parameters, ec.ECDSA):
            key.verify(child.signature, child.tbs_certificate_bytes, parameters)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def directly_issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """True when parent's subject is child's issuer and parent's key verifies child's signature.

    Cached (a certificate hashes and compares by its DER): a fleet's chains share their CAs,
    and inspect asks again for the facts, the rules and the probes of every Edge."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (TypeError, InvalidSignature):
        return False
    except ValueError:
        return _verify_legacy(child, parent)
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    """True when the certificate names itself as issuer and its own key signed it."""
    return cert.issuer == cert.subject and directly_issued_by(cert, cert)


def _load_pem_bundle(path: Path) -> list[x509.Certificate]:
    try:
        with warnings.catch_warnings():
            # Some distributions ship old roots with non-positive serial numbers.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return []


@functools.lru_cache(maxsize=1)
def system_roots() -> tuple[x509.Certificate, ...]:
    """The operating system's trusted roots (OpenSSL default paths), possibly empty."""
    paths = ssl.get_default_verify_paths()
    roots: list[x509.Certificate] = []
    if paths.cafile:
        roots += _load_pem_bundle(Path(paths.cafile))
    if not roots and paths.capath and Path(paths.capath).is_dir():
        for entry in sorted(Path(paths.capath).iterdir()):
            if entry.is_file() and entry.suffix in {".pem", ".crt", ".0"}:
                roots += _load_pem_bundle(entry)
    return tuple(roots)


@dataclass
class ChainResult:
    """The outcome of path building from a leaf towards a trusted root."""

    path: list[x509.Certificate]
    trusted: bool
    missing_issuer: x509.Name | None = None
    bad_signature: list[x509.Certificate] = field(default_factory=list)


def _extend(
    path: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
) -> list[x509.Certificate] | None:
    current = path[-1]
    if current in roots:
        return path
    for root in roots:
        if directly_issued_by(current, root):
            return [*path, root]
    if len(path) > MAX_DEPTH:
        return None
    for candidate in intermediates:
        if candidate not in path and directly_issued_by(current, candidate):
            found = _extend([*path, candidate], intermediates, roots)
            if found:
                return found
    return None


def build_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
) -> ChainResult:
    """A verified path leaf -> root, or where and why building it stopped."""
    found = _extend([leaf], intermediates, roots)
    if found:
        return ChainResult(found, True)
    # Diagnose: follow names as far as they go and note signatures that do not verify.
    path = [leaf]
    bad: list[x509.Certificate] = []
    pool = [*intermediates, *roots]
    while len(path) <= MAX_DEPTH:
        current = path[-1]
        if current.issuer == current.subject:
            return ChainResult(path, False, None, bad)
        named = [c for c in pool if c.subject == current.issuer and c not in path]
        verified = [c for c in named if directly_issued_by(current, c)]
        bad += [c for c in named if c not in verified]
        if not verified:
            return ChainResult(path, False, current.issuer, bad)
        path.append(verified[0])
    return ChainResult(path, False, None, bad)
