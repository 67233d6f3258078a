"""The lab's PKI: CAs issuing real X.509 certificates, sealed private keys, PFX files."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import os
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgebook import certs
from edgebook.certs import parse_windows_name
from edgebook.errors import EdgebookError

KeyPair = tuple[x509.Certificate, rsa.RSAPrivateKey]


def new_key(size: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def seal_bytes(secret: bytes, data: bytes) -> str:
    """Data encrypted with the lab key (AES-GCM), base64."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(secret).encrypt(nonce, data, b"edgebook-lab")).decode()


def unseal_bytes(secret: bytes, sealed: str) -> bytes:
    """The data of seal_bytes()."""
    raw = base64.b64decode(sealed)
    return AESGCM(secret).decrypt(raw[:12], raw[12:], b"edgebook-lab")


def seal(secret: bytes, key: rsa.RSAPrivateKey) -> str:
    """The private key encrypted with the lab key, base64."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return seal_bytes(secret, der)


def unseal(secret: bytes, sealed: str) -> rsa.RSAPrivateKey:
    """The private key from seal()."""
    return _unseal(secret, sealed)


@functools.lru_cache(maxsize=256)
def _unseal(secret: bytes, sealed: str) -> rsa.RSAPrivateKey:
    der = unseal_bytes(secret, sealed)  # authenticated (AES-GCM): a key the lab made itself,
    # so OpenSSL's RSA key check (40 ms a key) is skipped
    key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EdgebookError("a lab private key is not RSA")
    return key


@functools.lru_cache(maxsize=1024)
def load(der_b64: str) -> x509.Certificate:
    """The certificate from its base64 DER (cached)."""
    return x509.load_der_x509_certificate(base64.b64decode(der_b64))


def der_b64(cert: x509.Certificate) -> str:
    """The certificate's DER, base64."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def pem(cert: x509.Certificate) -> bytes:
    """The certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (for in-memory TLS contexts only)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def parse_name(text: str) -> x509.Name:
    """A Windows-format DN ("CN=..., O=..., C=US") as an x509.Name."""
    return parse_windows_name(text)


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer_key: CertificateIssuerPrivateKeyTypes,
) -> x509.CertificateBuilder:
    """Names, key, random serial, validity, SKI and AKI: what every certificate here starts from."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


def make_ca(
    subject: x509.Name,
    not_before: dt.datetime,
    not_after: dt.datetime,
    parent: KeyPair | None = None,
) -> KeyPair:
    """A root CA (parent None) or an issuing CA signed by parent."""
    key = new_key()
    issuer_name, signer = (parent[0].subject, parent[1]) if parent else (subject, key)
    builder = (
        certificate_builder(subject, issuer_name, key.public_key(), not_before, not_after, signer)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(signer, hashes.SHA256()), key


def issue(
    subject: x509.Name,
    domains: list[str],
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: KeyPair | None = None,
    key: rsa.RSAPrivateKey | None = None,
    key_size: int = 2048,
    ip_addresses: Sequence[str] = (),
) -> KeyPair:
    """A TLS server certificate (serverAuth + clientAuth EKU); self-signed when issuer is None."""
    key = key or new_key(key_size)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = certificate_builder(
        subject, issuer_name, key.public_key(), not_before, not_after, signer
    )
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        critical=False,
    ).add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=True,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    alternative: list[x509.GeneralName] = [x509.DNSName(d) for d in domains]
    alternative += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if alternative:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative), critical=False)
    return builder.sign(signer, hashes.SHA256()), key


def csr(
    subject: x509.Name, domains: list[str], key: rsa.RSAPrivateKey
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request as New-ExchangeCertificate -GenerateRequest makes it."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if domains:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def pfx(
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
    password: str,
    friendly_name: str = "",
) -> bytes:
    """A PKCS#12 file with the key, the certificate and its chain, protected by password."""
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode() or None,
        key,
        cert,
        chain or None,
        serialization.BestAvailableEncryption(password.encode()),
    )


def read_pfx(
    data: bytes, password: str | None
) -> tuple[x509.Certificate | None, rsa.RSAPrivateKey | None, list[x509.Certificate]]:
    """(certificate, key, additional certificates) of a PKCS#12 file; ValueError if unreadable."""
    key, cert, extra = pkcs12.load_key_and_certificates(
        data, password.encode() if password else None
    )
    if key is not None and not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("only RSA keys are supported")
    return cert, key, list(extra)


def pfx_friendly_name(data: bytes, password: str | None) -> str:
    """The friendlyName attribute of a PKCS#12 file's certificate ("" without one): what Windows
    keeps as the certificate's FriendlyName when it imports the file."""
    loaded = pkcs12.load_pkcs12(data, password.encode() if password else None)
    name = loaded.cert.friendly_name if loaded.cert else None
    return name.decode("utf-8", "replace") if name else ""


def read_pkcs7(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#7 (DER or PEM); ValueError if unreadable."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return pkcs7.load_pem_pkcs7_certificates(data)
    return pkcs7.load_der_pkcs7_certificates(data)


def domains_of(cert: x509.Certificate) -> list[str]:
    """The CN then the SAN DNS names, without duplicates (CertificateDomains)."""
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return list(dict.fromkeys(names))


def has_server_auth(cert: x509.Certificate) -> bool:
    """Whether the certificate allows TLS server authentication (no EKU = any purpose)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.SERVER_AUTH in eku


@functools.lru_cache(maxsize=4096)
def is_self_signed(cert: x509.Certificate) -> bool:
    """The one self-signed test for the lab's callers (edgebook.certs'), remembered per
    certificate: it verifies a signature, and every Get-ExchangeCertificate asks again."""
    return certs.is_self_signed(cert)


def matches_domain(cert: x509.Certificate, fqdn: str) -> bool:
    """Whether the FQDN is one of the CertificateDomains (CN and SAN; edgebook.certs' RFC 6125
    matching, a wildcard covers one whole left-most label)."""
    try:
        return any(certs.matches_fqdn(name, fqdn) for name in domains_of(cert))
    except certs.CertificateError:  # not a host name (blank, a wildcard, ...): matches none
        return False
