"""Certificate requests with encrypted keys, and PFX assembly for the import on Windows."""

from __future__ import annotations

from pathlib import Path

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgebook.certs.chain import directly_issued_by
from edgebook.certs.load import CertificateError, key_matches, order_chain
from edgebook.certs.names import parse_windows_name, subject_name
from edgebook.fileio import write_new

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "p256", "p384")
_CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1}
GeneratedKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_PFX_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    dsa.DSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def new_private_key(key_type: str = "rsa2048") -> GeneratedKey:
    """A fresh private key of one of KEY_TYPES."""
    if key_type not in KEY_TYPES:
        raise CertificateError(f"unknown key type {key_type!r}: use one of {', '.join(KEY_TYPES)}")
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type]())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))


def dns_name(name: str) -> str:
    """A SAN DNS name as stored: IDNA A-labels, lower case, a wildcard only as *.; else an error."""
    text = name.strip().rstrip(".")
    wildcard = text.startswith("*.")
    host = text[2:] if wildcard else text
    if not host or "*" in host or any(ch.isspace() for ch in host) or ".." in host:
        raise CertificateError(
            f"invalid DNS name {name!r}: give host names like mail.contoso.com "
            "(a wildcard only as the whole left-most label, *.contoso.com)"
        )
    try:
        host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise CertificateError(
            f"invalid DNS name {name!r}: {exc}; give host names like mail.contoso.com"
        ) from None
    if len(host) > 253:
        raise CertificateError(
            f"invalid DNS name {name[:40]!r}...: {len(host)} characters, at most 253 allowed"
        )
    return ("*." if wildcard else "") + host.lower()


def generate_csr(
    subject: str, dns_names: list[str], key_type: str = "rsa2048"
) -> tuple[x509.CertificateSigningRequest, GeneratedKey]:
    """A SHA-256 CSR for subject ('CN=..., O=..., C=DE') with the DNS names as SAN, and its key."""
    if not dns_names:
        raise CertificateError("no DNS name given: list every FQDN the Edge answers to (--dns)")
    names = list(dict.fromkeys(dns_name(n) for n in dns_names))
    name = parse_windows_name(subject)
    key = new_private_key(key_type)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _passphrase_bytes(passphrase: str) -> bytes:
    if not passphrase:
        raise CertificateError("an empty passphrase is not accepted: give a real one")
    return passphrase.encode("utf-8")


def write_private_key(key: PrivateKeyTypes, path: str | Path, passphrase: str) -> Path:
    """Write the key as encrypted PKCS#8 PEM, mode 0600, never over an existing file."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase_bytes(passphrase)),
    )
    return write_new(path, data, 0o600, error=CertificateError)


def write_csr(csr: x509.CertificateSigningRequest, path: str | Path) -> Path:
    """Write the CSR as PEM (mode 0644), never over an existing file."""
    return write_new(
        path, csr.public_bytes(serialization.Encoding.PEM), 0o644, error=CertificateError
    )


def _ordered_chain(cert: x509.Certificate, chain: list[x509.Certificate]) -> list[x509.Certificate]:
    ordered = order_chain(cert, chain)
    child = cert
    for parent in ordered:
        if not directly_issued_by(child, parent):
            raise CertificateError(
                f"the chain certificate {subject_name(parent)} did not issue "
                f"{subject_name(child)}: give only the CA certificates of this certificate's path"
            )
        child = parent
    return ordered


def build_pfx(
    key: PrivateKeyTypes,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    passphrase: str,
    friendly_name: str | None = None,
    *,
    aes256: bool = False,
) -> bytes:
    """A PKCS#12 of key, certificate and chain (ordered leaf -> root) under the passphrase.

    The default encryption (3DES/SHA-1 MAC) imports on every Windows Server; aes256=True
    gives AES-256/SHA-256, which needs Windows Server 2019 or newer.
    """
    if not key_matches(key, cert):
        raise CertificateError(
            f"the private key does not belong to the certificate {subject_name(cert)}: "
            "use the key generated with this certificate's request"
        )
    if not isinstance(key, _PFX_KEYS):
        raise CertificateError(
            f"the private key is {type(key).__name__.removesuffix('PrivateKey')}, which a PFX "
            "cannot hold: request the certificate with an RSA or ECDSA key"
        )
    ordered = _ordered_chain(cert, chain)
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if aes256:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(
            hashes.SHA256()
        )
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(
            hashes.SHA1()
        )
    encryption = builder.kdf_rounds(50000).build(_passphrase_bytes(passphrase))
    name = friendly_name.encode("utf-8") if friendly_name else None
    return pkcs12.serialize_key_and_certificates(name, key, cert, ordered or None, encryption)


def write_pfx(pfx: bytes, path: str | Path) -> Path:
    """Write PFX bytes with mode 0600, never over an existing file."""
    return write_new(path, pfx, 0o600, error=CertificateError)
