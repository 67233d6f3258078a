"""Throw-away test PKI built with cryptography: CAs, leaves and files in every format.

Every certificate starts from the lab's builder (edgebook.lab.org.pki.certificate_builder:
names, serial, validity, SKI, AKI). This module adds what only tests need and the lab must
never make: EC and weak keys, SHA-1/MD5 signatures, leaves without EKU, a validity relative to
now. Nothing here is a real key; everything is generated per test run. Typical use:

    root = make_ca(name((NameOID.COUNTRY_NAME, "US"), (NameOID.COMMON_NAME, "Test Root")))
    ica = make_ca(name((NameOID.COMMON_NAME, "Test ICA")), issuer=root)
    leaf = make_leaf(ica, name((NameOID.COMMON_NAME, "edge.contoso.test")), ["edge.contoso.test"])
    write_pfx(tmp_path / "edge.pfx", leaf, [ica, root], "pw")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    x448,
    x25519,
)
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgebook.lab.org.pki import certificate_builder

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# Real-world names, rebuilt from their attributes (ASN.1 order: C first).
DIGICERT_G2 = (
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
    (NameOID.COMMON_NAME, "DigiCert Global CA G2"),
)
LETS_ENCRYPT_R11 = (
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.ORGANIZATION_NAME, "Let's Encrypt"),
    (NameOID.COMMON_NAME, "R11"),
)
SEED_SUBJECT = (
    (NameOID.COUNTRY_NAME, "DE"),
    (NameOID.STATE_OR_PROVINCE_NAME, "North Rhine-Westphalia"),
    (NameOID.LOCALITY_NAME, "hoevelhof"),
    (NameOID.ORGANIZATION_NAME, "msxfaq"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
    (NameOID.COMMON_NAME, "hybrid.msxfaq.de"),
)

NameSpec = x509.Name | Sequence[tuple[x509.ObjectIdentifier, str]]


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKeyTypes


def name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """An x509.Name from (oid, value) pairs in ASN.1 order, one RDN each."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _as_name(spec: NameSpec) -> x509.Name:
    return spec if isinstance(spec, x509.Name) else name(*spec)


def make_key(key_type: str = "p256") -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A new key: 'rsa1024'..'rsa4096', 'p192', 'p256', 'p384'."""
    curves = {"p192": ec.SECP192R1(), "p256": ec.SECP256R1(), "p384": ec.SECP384R1()}
    if key_type in curves:
        return ec.generate_private_key(curves[key_type])
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))


# Private keys that sign certificates here; PKCS#12 holds exactly these kinds too.
_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)
# Public keys a certificate here may carry: the signing kinds plus X25519/X448.
_SUBJECT_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
    dsa.DSAPublicKey,
    x25519.X25519PublicKey,
    x448.X448PublicKey,
)
# The hashes cryptography signs certificates with (SHA-1 and MD5 are re-signed by hand).
_SIGNATURE_HASHES = (
    hashes.SHA224,
    hashes.SHA256,
    hashes.SHA384,
    hashes.SHA512,
    hashes.SHA3_224,
    hashes.SHA3_256,
    hashes.SHA3_384,
    hashes.SHA3_512,
)


def _signing_key(key: PrivateKeyTypes) -> CertificateIssuerPrivateKeyTypes:
    """The key as a certificate signer; ValueError for kinds that cannot sign (X25519, DH...)."""
    if not isinstance(key, _SIGNING_KEYS):
        raise ValueError(f"a {type(key).__name__} cannot sign certificates")
    return key


def _subject_key(key: PrivateKeyTypes) -> CertificatePublicKeyTypes:
    """The public key a certificate carries for this private key."""
    public = key.public_key()
    if not isinstance(public, _SUBJECT_KEYS):
        raise ValueError(f"a certificate here cannot carry a {type(public).__name__}")
    return public


def _builder(
    subject: x509.Name,
    issuer: Issued | None,
    key: PrivateKeyTypes,
    days_valid: int,
    not_before_offset: float,
) -> x509.CertificateBuilder:
    """The lab's builder, signed by issuer (None: self-signed), valid from NOW + offset days."""
    not_before = NOW + dt.timedelta(days=not_before_offset)
    return certificate_builder(
        subject,
        issuer.cert.subject if issuer else subject,
        _subject_key(key),
        not_before,
        not_before + dt.timedelta(days=days_valid),
        _signing_key(issuer.key if issuer else key),
    )


# AlgorithmIdentifier DER of RSA PKCS#1 v1.5 signatures; all the same length.
_RSA_SIG_ALG = {
    "sha256": bytes.fromhex("300d06092a864886f70d01010b0500"),
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "md5": bytes.fromhex("300d06092a864886f70d0101040500"),
}


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _sign(
    builder: x509.CertificateBuilder, signer: PrivateKeyTypes, algorithm: hashes.HashAlgorithm
) -> x509.Certificate:
    """Sign normally, or re-sign with SHA-1/MD5 (which cryptography refuses) for RSA signers."""
    if algorithm.name not in {"sha1", "md5"}:
        if not isinstance(algorithm, _SIGNATURE_HASHES):
            raise ValueError(f"certificates are not signed with {algorithm.name} here")
        return builder.sign(_signing_key(signer), algorithm)
    if not isinstance(signer, rsa.RSAPrivateKey):
        raise ValueError("legacy signature hashes are only built for RSA issuers")
    modern = builder.sign(signer, hashes.SHA256())
    tbs = modern.tbs_certificate_bytes.replace(
        _RSA_SIG_ALG["sha256"], _RSA_SIG_ALG[algorithm.name], 1
    )
    signature = signer.sign(tbs, padding.PKCS1v15(), algorithm)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + _RSA_SIG_ALG[algorithm.name] + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


def make_ca(
    subject: NameSpec,
    *,
    issuer: Issued | None = None,
    days_valid: int = 3650,
    not_before_offset: float = -30,
    key_type: str = "p256",
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> Issued:
    """A CA certificate: self-signed root without issuer, else an intermediate."""
    key = make_key(key_type)
    builder = _builder(_as_name(subject), issuer, key, days_valid, not_before_offset)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    builder = builder.add_extension(
        x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
    )
    signer = issuer.key if issuer else key
    return Issued(_sign(builder, signer, hash_algorithm or hashes.SHA256()), key)


def make_leaf(
    issuer_ca: Issued | None,
    subject: NameSpec,
    dns_names: Iterable[str] = (),
    *,
    days_valid: int = 365,
    not_before_offset: float = -1,
    key_type: str = "p256",
    eku: Sequence[x509.ObjectIdentifier] | None = (SERVER_AUTH, CLIENT_AUTH),
    hash_algorithm: hashes.HashAlgorithm | None = None,
    key: PrivateKeyTypes | None = None,
) -> Issued:
    """A TLS server certificate; issuer_ca None makes it self-signed; eku None omits EKU."""
    key = key or make_key(key_type)
    builder = _builder(_as_name(subject), issuer_ca, key, days_valid, not_before_offset)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    names = list(dns_names)
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), False)
    signer = issuer_ca.key if issuer_ca else key
    return Issued(_sign(builder, signer, hash_algorithm or hashes.SHA256()), key)


def pem(cert: x509.Certificate) -> bytes:
    """PEM bytes of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKeyTypes, password: str | None = None) -> bytes:
    """PKCS#8 PEM of a key, encrypted when a password is given."""
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_pem(
    path: Path,
    *certs: x509.Certificate,
    key: PrivateKeyTypes | None = None,
    password: str | None = None,
) -> Path:
    """Certificates (and optionally a key) as one PEM file."""
    data = b"".join(pem(c) for c in certs)
    if key is not None:
        data = key_pem(key, password) + data
    path.write_bytes(data)
    return path


def write_der(path: Path, cert: x509.Certificate) -> Path:
    """One certificate as DER (.cer)."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return path


def write_p7b(path: Path, certs: Sequence[x509.Certificate], *, as_pem: bool = False) -> Path:
    """Certificates as a degenerate PKCS#7 (.p7b), DER unless as_pem."""
    encoding = serialization.Encoding.PEM if as_pem else serialization.Encoding.DER
    path.write_bytes(pkcs7.serialize_certificates(list(certs), encoding))
    return path


def write_pfx(
    path: Path, leaf: Issued, chain: Sequence[Issued | x509.Certificate], password: str | None
) -> Path:
    """Key, certificate and chain as PKCS#12; password None writes it unencrypted."""
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    cas = [c.cert if isinstance(c, Issued) else c for c in chain]
    if not isinstance(leaf.key, _SIGNING_KEYS):
        raise ValueError(f"a PFX cannot hold a {type(leaf.key).__name__}")
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(b"test", leaf.key, leaf.cert, cas or None, encryption)
    )
    return path
