"""Distinguished names exactly as Windows renders them, and Exchange's TlsCertificateName.

Windows shows `X509Certificate2.Subject` / `.Issuer` through CertNameToStr with
CERT_X500_NAME_STR and CERT_NAME_STR_REVERSE_FLAG. The rendering here works on the DER bytes
(not on cryptography's decoded values) so that string types decode as Windows decodes them.
"""

from __future__ import annotations

import functools
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from edgebook.certs import der
from edgebook.certs.load import CertificateError

# The X.500 key names CertNameToStr prints (CERT_X500_NAME_STR); any other OID is printed
# as OID.<dotted>. The TPM names come from Windows' RDN OID table (TPM attestation keys).
X500_KEYS: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "E",
    "2.5.4.6": "C",
    "2.5.4.8": "S",
    "2.5.4.9": "STREET",
    "2.5.4.12": "T",
    "2.5.4.42": "G",
    "2.5.4.43": "I",
    "2.5.4.4": "SN",
    "0.9.2342.19200300.100.1.25": "DC",
    "2.5.4.5": "SERIALNUMBER",
    "2.5.4.13": "Description",
    "2.5.4.17": "PostalCode",
    "2.5.4.18": "POBox",
    "2.5.4.20": "Phone",
    "2.5.4.24": "X21Address",
    "2.5.4.46": "dnQualifier",
    "2.23.133.2.1": "TPMManufacturer",
    "2.23.133.2.2": "TPMModel",
    "2.23.133.2.3": "TPMVersion",
}

# Extra spellings CertStrToName accepts when parsing (case-insensitive).
KEY_ALIASES: dict[str, str] = {
    "EMAIL": "E",
    "ST": "S",
    "TITLE": "T",
    "GN": "G",
    "GIVENNAME": "G",
    "INITIALS": "I",
}

TLS_NAME_MAX = 256

# Characters that make CertNameToStr wrap a value in quotes. A carriage return is not one
# of them (only at either end, as whitespace).
_QUOTE_TRIGGERS = frozenset(',+="\n<>#;')
_QUOTABLE_WHITESPACE = frozenset(" \t\n\v\f\r")

_LATIN1_TAGS = {0x12, 0x13, 0x15, 0x16, 0x1A}  # Numeric, Printable, Videotex, IA5, Visible
_UTF8_STRING = 0x0C
_T61_STRING = 0x14
_UNIVERSAL_STRING = 0x1C
_BMP_STRING = 0x1E


def _decode_value(value: der.Tlv) -> tuple[str, bool]:
    """The printed text of one attribute value, and whether it is text (quotable)."""
    content = value.content
    if value.tag in _LATIN1_TAGS:
        text = content.decode("latin-1")
    elif value.tag == _UTF8_STRING:
        text = content.decode("utf-8", errors="replace")
    elif value.tag == _BMP_STRING:
        text = content.decode("utf-16-be", errors="replace")
    elif value.tag == _UNIVERSAL_STRING:
        text = content.decode("utf-32-be", errors="replace")
    elif value.tag == _T61_STRING:
        # Windows tries UTF-8 first and falls back to 8-bit characters.
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = content.decode("latin-1")
    elif value.tag == der.OCTET_STRING:
        return "#" + content.hex().upper(), False
    else:
        return "#" + value.encoded.hex().upper(), False
    return text.rstrip("\0"), True


def needs_quoting(value: str) -> bool:
    """True when CertNameToStr wraps the value in double quotes."""
    return (
        not value
        or value[0] in _QUOTABLE_WHITESPACE
        or value[-1] in _QUOTABLE_WHITESPACE
        or any(ch in _QUOTE_TRIGGERS for ch in value)
    )


def _render_value(text: str, quotable: bool) -> str:
    if quotable and needs_quoting(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def key_name(oid: str) -> str:
    """The X.500 key Windows prints for an attribute OID, or OID.<dotted>."""
    return X500_KEYS.get(oid, f"OID.{oid}")


def _name_der(name: x509.Name | bytes) -> bytes:
    return name if isinstance(name, bytes) else name.public_bytes()


def windows_rdns(name: x509.Name | bytes) -> list[list[tuple[str, str]]]:
    """RDNs in stored (ASN.1) order, each a list of (key, rendered value) in stored order."""
    try:
        sequence = der.single(_name_der(name), der.SEQUENCE)
        rdns = []
        for rdn in der.children(sequence.content):
            if rdn.tag != der.SET:
                raise der.DerError("an RDN is not a SET")
            attributes = []
            for atv in der.children(rdn.content):
                parts = der.children(atv.content)
                if atv.tag != der.SEQUENCE or len(parts) != 2:
                    raise der.DerError("an attribute is not SEQUENCE { type, value }")
                if parts[0].tag != der.OBJECT_IDENTIFIER:
                    raise der.DerError("an attribute type is not an OID")
                text, quotable = _decode_value(parts[1])
                key = key_name(der.decode_oid(parts[0].content))
                attributes.append((key, _render_value(text, quotable)))
            rdns.append(attributes)
    except der.DerError as exc:
        raise CertificateError(f"cannot read a distinguished name: {exc}") from exc
    return rdns


def windows_name(name: x509.Name | bytes) -> str:
    """The name as Windows shows X509Certificate2.Subject/.Issuer (CN first).

    An x509.Name is re-encoded by cryptography; for a certificate use subject_name() and
    issuer_name(), which read the bytes exactly as stored.
    """
    return _windows_name(_name_der(name))


@functools.lru_cache(maxsize=1024)
def _windows_name(name_der: bytes) -> str:
    """windows_name of a Name's DER, cached: inspect renders the same certificates' names for
    the facts, the rules and the probes of every Edge."""
    return ", ".join(
        " + ".join(f"{key}={value}" for key, value in rdn)
        for rdn in reversed(windows_rdns(name_der))
    )


@functools.lru_cache(maxsize=1024)
def _tbs_names(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """The issuer and subject Name DER exactly as stored in the certificate (cached, as
    _windows_name)."""
    tbs = der.single(cert.tbs_certificate_bytes, der.SEQUENCE)
    fields = der.children(tbs.content)
    if fields and fields[0].tag == der.CONTEXT_0:
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    return fields[2].encoded, fields[4].encoded


def subject_name(cert: x509.Certificate) -> str:
    """The certificate's subject as Windows renders it."""
    return windows_name(_tbs_names(cert)[1])


def issuer_name(cert: x509.Certificate) -> str:
    """The certificate's issuer as Windows renders it."""
    return windows_name(_tbs_names(cert)[0])


def tls_certificate_name(cert: x509.Certificate) -> str:
    """Exchange's TlsCertificateName for the certificate: <I>{issuer}<S>{subject}."""
    return f"<I>{issuer_name(cert)}<S>{subject_name(cert)}"


@functools.lru_cache(maxsize=1024)
def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 thumbprint as Exchange shows it: 40 upper-case hex characters (cached)."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split text at separator occurrences that are outside double-quoted values."""
    parts: list[str] = []
    start = pos = 0
    while (hit := text.find(separator, pos)) >= 0:
        quote = text.find('"', pos, hit)
        if quote >= 0:  # skip the quoted value; an unterminated one runs to the end
            close = text.find('"', quote + 1)
            if close < 0:
                break
            pos = close + 1
            continue
        parts.append(text[start:hit])
        pos = start = hit + len(separator)
    parts.append(text[start:])
    return parts


_TAG_I = re.compile(r"^\s*<i>", re.IGNORECASE)


def _not_a_tls_name(text: object) -> CertificateError:
    return CertificateError(
        f"invalid TlsCertificateName {text!r}: it must look like '<I>issuer<S>subject'"
    )


def parse_tls_certificate_name(text: str) -> tuple[str, str]:
    """(issuer, subject) of a TlsCertificateName; tags are case-insensitive."""
    if not isinstance(text, str):
        raise _not_a_tls_name(text)
    return _parse_tls_certificate_name(text)


@functools.lru_cache(maxsize=1024)
def _parse_tls_certificate_name(text: str) -> tuple[str, str]:
    """parse_tls_certificate_name of a string, cached: the rules ask for each connector's name
    once per certificate and per Edge."""
    if not _TAG_I.match(text):
        raise _not_a_tls_name(text)
    body = _TAG_I.sub("", text, count=1)
    # Find the <S> tag outside quoted values, whatever its case.
    lowered = body.replace("<S>", "<s>")
    pieces = _split_unquoted(lowered, "<s>")
    if len(pieces) != 2:
        raise CertificateError(
            f"invalid TlsCertificateName {text!r}: expected exactly one <S> tag after the issuer"
        )
    issuer = body[: len(pieces[0])].strip()
    subject = body[len(pieces[0]) + 3 :].strip()
    if not issuer or not subject:
        raise CertificateError(
            f"invalid TlsCertificateName {text!r}: the issuer and the subject must not be empty"
        )
    if not (_tags_only_quoted(issuer) and _tags_only_quoted(subject)):
        raise CertificateError(f"invalid TlsCertificateName {text!r}: a tag appears twice")
    return issuer, subject


def _tags_only_quoted(text: str) -> bool:
    lowered = text.lower()
    return all(len(_split_unquoted(lowered, tag)) == 1 for tag in ("<i>", "<s>"))


def tls_name_matches(text: str, cert: x509.Certificate) -> bool:
    """True when a stored TlsCertificateName designates this certificate (case-insensitive)."""
    issuer, subject = parse_tls_certificate_name(text)
    return issuer.casefold() == issuer_name(cert).casefold() and (
        subject.casefold() == subject_name(cert).casefold()
    )


_DOTTED_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_KEY_OIDS = {key.upper(): oid for oid, key in X500_KEYS.items()}


def _oid_for_key(key: str, text: str) -> str:
    upper = key.upper()
    upper = KEY_ALIASES.get(upper, upper)
    if upper in _KEY_OIDS:
        return _KEY_OIDS[upper]
    dotted = key[4:] if upper.startswith("OID.") else key
    if _DOTTED_OID.match(dotted):
        return dotted
    known = ", ".join(X500_KEYS.values())
    raise CertificateError(
        f"unknown attribute {key!r} in the name {text!r}: use one of {known} or OID.<dotted>"
    )


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """The value of a quoted string starting at pos (the opening quote) and the end position."""
    chars: list[str] = []
    i = pos + 1
    while i < len(text):
        if text[i] == '"':
            if text.startswith('""', i):
                chars.append('"')
                i += 2
                continue
            return "".join(chars), i + 1
        chars.append(text[i])
        i += 1
    raise CertificateError(f"unterminated quoted value in the name {text!r}: close the quote")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def parse_windows_rdns(text: str) -> list[list[tuple[str, str]]]:
    """RDNs of a Windows-style name ('CN=a, O=b'), in string order, as (oid, value) lists."""
    if not text or not text.strip():
        raise CertificateError("the name is empty: give it like 'CN=edge.contoso.com, O=Contoso'")
    rdns: list[list[tuple[str, str]]] = [[]]
    pos = 0
    while True:
        pos = _skip_space(text, pos)
        equals = text.find("=", pos)
        key = text[pos:equals].strip() if equals >= 0 else ""
        if not key or any(ch in key for ch in ',;+"'):
            raise CertificateError(f"expected KEY=value at position {pos + 1} of the name {text!r}")
        oid = _oid_for_key(key, text)
        pos = _skip_space(text, equals + 1)
        if pos < len(text) and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
            pos = _skip_space(text, pos)
        else:
            end = pos
            while end < len(text) and text[end] not in ",;+":
                end += 1
            value = text[pos:end].strip()
            pos = end
            if '"' in value:
                raise CertificateError(
                    f"stray quote in the value {value!r} of the name {text!r}: "
                    'quote the whole value and double inner quotes ("a ""b""")'
                )
            if value.startswith("#"):
                raise CertificateError(
                    f"the value {value!r} starts with '#', which Windows reads as hex: quote it"
                )
        rdns[-1].append((oid, value))
        if pos >= len(text):
            break
        if text[pos] in ",;":
            rdns.append([])
        elif text[pos] != "+":
            raise CertificateError(
                f"unexpected {text[pos]!r} at position {pos + 1} of the name {text!r}: "
                "separate attributes with ', ' and quote values that contain special characters"
            )
        pos += 1
        if text[pos:].strip() == "" and text[pos - 1] in ",;":
            rdns.pop()
            break
    return rdns


def parse_windows_name(text: str) -> x509.Name:
    """An x509.Name from a Windows-style string (the reverse of windows_name)."""
    rdns = parse_windows_rdns(text)
    try:
        return x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [x509.NameAttribute(x509.ObjectIdentifier(oid), value) for oid, value in rdn]
                )
                for rdn in reversed(rdns)
            ]
        )
    except ValueError as exc:
        raise CertificateError(f"cannot build the name {text!r}: {exc}") from exc
