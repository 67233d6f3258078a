"""The certificate files Import- and Export-ExchangeCertificate read and write: Base64 text
(-----BEGIN ...-----) and DER, PKCS#7, PKCS#12, requests."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgebook.lab.org import pki

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.DOTALL)


def unarmored(data: bytes) -> bytes:
    """Base64 text files (-----BEGIN CERTIFICATE-----, -----BEGIN PKCS7-----, what
    Export-ExchangeCertificate writes without -BinaryEncoded) as their DER bytes: the first
    block, or every CERTIFICATE block of a chain as a PKCS#7; other data unchanged."""
    blocks = _PEM_BLOCK.findall(data)
    if not blocks:
        return data
    try:
        ders = [base64.b64decode(b"".join(body.split()), validate=True) for _, body in blocks]
    except binascii.Error:
        return data
    certs = [der for (label, _), der in zip(blocks, ders, strict=True) if label == b"CERTIFICATE"]
    if len(certs) > 1:
        try:
            chain = [x509.load_der_x509_certificate(der) for der in certs]
        except ValueError:
            return ders[0]
        from cryptography.hazmat.primitives.serialization import pkcs7

        return pkcs7.serialize_certificates(chain, serialization.Encoding.DER)
    return ders[0]


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#7 or of a single X.509 certificate (DER); [] for neither."""
    try:
        return pki.read_pkcs7(data)
    except ValueError:
        pass
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        return []


def looks_pkcs12(data: bytes) -> bool:
    """PFX = SEQUENCE { version INTEGER 3, ... } (PKCS#7 starts with an OID instead)."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    header = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[header : header + 3] == b"\x02\x01\x03"


def request_text(der: bytes) -> str:
    """A request as -GenerateRequest returns it: Base64 text (Microsoft's docs), framed as
    Windows' certificate enrollment frames a request (the lab's choice: the docs show none)."""
    return armored(der, "NEW CERTIFICATE REQUEST")


def armored(der: bytes, label: str) -> str:
    """Base64 text framed by -----BEGIN/END label-----, 64 characters a line, CRLF."""
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\r\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def is_ca(cert: x509.Certificate) -> bool:
    """Whether a certificate of a file is a CA's (basic constraints), not the one imported."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
