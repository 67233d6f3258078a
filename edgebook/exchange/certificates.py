"""Certificates as a remote client must read them (issue #13).

Over remote PowerShell an ExchangeCertificate arrives as X509Certificate2's type data serialises
it: `RawData` and Exchange's opaque `SerializationData`, nothing else. So the identity of a
certificate (thumbprint, names, validity, SAN, EKU, key, signature) comes from RawData, parsed
here with `cryptography`; Exchange's own view (Services, Status, private key, RootCAType,
FriendlyName) only from a server-side projection, `Get-ExchangeCertificate | Select-Object
-Property …`, which both the Edge's and the Mailbox's (/PowerShell) endpoints run. A projected
value that did not arrive stays None: unknown, never a default.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from edgebook import certs
from edgebook.certs.identity import CertificateIdentity
from edgebook.errors import EdgebookError
from edgebook.exchange.command import Command
from edgebook.exchange.wire_types import (
    EXCHANGE_CERTIFICATE,
    SELECTED_EXCHANGE_CERTIFICATE,
    SERVICE_FLAGS,
)

# Exchange's view of a certificate: only a server-side projection carries these.
EXCHANGE_VIEW = (
    "Services",
    "Status",
    "HasPrivateKey",
    "PrivateKeyExportable",
    "RootCAType",
    "FriendlyName",
)
PROJECTED = ("Thumbprint", "RawData", *EXCHANGE_VIEW)
CERTIFICATE_TYPES = (SELECTED_EXCHANGE_CERTIFICATE, EXCHANGE_CERTIFICATE)


class CertificateReadError(EdgebookError):
    """A Get-ExchangeCertificate record cannot be read as a certificate."""


def read_certificates(thumbprint: str | None = None, server: str | None = None) -> Command:
    """`Get-ExchangeCertificate [-Thumbprint T] [-Server S] | Select-Object -Property …`."""
    params: dict[str, Any] = {}
    if thumbprint:
        params["Thumbprint"] = checked_thumbprint(thumbprint)
    if server:
        params["Server"] = server
    return Command("Get-ExchangeCertificate", params).select(PROJECTED)


def checked_thumbprint(text: str) -> str:
    """A thumbprint as Exchange writes it (upper-case hex, no spaces); CertificateReadError
    when it is not 40 hex digits."""
    found = str(text).replace(" ", "").upper()
    if len(found) != 40 or any(c not in "0123456789ABCDEF" for c in found):
        raise CertificateReadError(
            f"{text!r} is not a certificate thumbprint: give the 40 hex digits of its SHA-1"
        )
    return found


def is_certificate_record(record: Any) -> bool:
    """Whether a shell record is a certificate (plain or projected Get-ExchangeCertificate)."""
    names: Sequence[str] = getattr(record, "type_names", ()) or ()
    return bool(names) and names[0] in CERTIFICATE_TYPES


@dataclass(frozen=True)
class ExchangeView:
    """What Exchange says of a certificate; None is unknown (the property did not arrive)."""

    services: tuple[str, ...] | None = None
    status: str | None = None
    has_private_key: bool | None = None
    private_key_exportable: bool | None = None
    root_ca_type: str | None = None
    friendly_name: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ExchangeView:
        """From the projected properties of a record (absent ones stay unknown)."""
        return cls(
            services=_services(_get(record, "Services")),
            status=_text(_get(record, "Status")),
            has_private_key=_boolean(_get(record, "HasPrivateKey")),
            private_key_exportable=_boolean(_get(record, "PrivateKeyExportable")),
            root_ca_type=_text(_get(record, "RootCAType")),
            friendly_name=_text(_get(record, "FriendlyName"), empty=""),
        )

    def missing(self) -> tuple[str, ...]:
        """The Exchange properties that are unknown, by their Exchange names."""
        values = (
            self.services,
            self.status,
            self.has_private_key,
            self.private_key_exportable,
            self.root_ca_type,
            self.friendly_name,
        )
        return tuple(
            name for name, value in zip(EXCHANGE_VIEW, values, strict=True) if value is None
        )


@dataclass(frozen=True)
class RemoteCertificate(CertificateIdentity):
    """A certificate read from Exchange: its identity from RawData, Exchange's view apart."""

    cert: x509.Certificate
    view: ExchangeView

    @property
    def not_before(self) -> dt.datetime:
        """Start of validity (UTC)."""
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        """End of validity (UTC)."""
        return self.cert.not_valid_after_utc

    @property
    def dns_names(self) -> tuple[str, ...]:
        """The SAN's DNS names (Exchange's CertificateDomains)."""
        return tuple(certs.dns_names(self.cert))

    @property
    def eku(self) -> tuple[str, ...]:
        """Extended key usages by name ('serverAuth'); empty without the extension."""
        return tuple(certs.eku_names(self.cert))

    @property
    def key(self) -> str:
        """The public key, e.g. 'RSA 2048'."""
        return certs.key_description(self.cert)

    @property
    def signature_hash(self) -> str | None:
        """The signature's hash algorithm ('sha256')."""
        return certs.signature_hash(self.cert)

    @property
    def is_self_signed(self) -> bool:
        """Whether the certificate signed itself."""
        return certs.is_self_signed(self.cert)

    @property
    def tls_certificate_name(self) -> str:
        """`<I>issuer<S>subject`, as a connector's TlsCertificateName names it."""
        return certs.tls_certificate_name(self.cert)


def parse_certificate(record: Mapping[str, Any]) -> RemoteCertificate:
    """A Get-ExchangeCertificate record (plain or projected) as a RemoteCertificate."""
    stated = _text(_get(record, "Thumbprint"))
    raw = _get(record, "RawData")
    if raw is None or raw == b"" or raw == "":
        raise CertificateReadError(
            f"certificate {stated or '?'}: the record has no RawData; read certificates with "
            "edgebook.exchange.certificates.read_certificates() (RawData is what Exchange sends)"
        )
    cert = _certificate(raw, stated or "?")
    if stated and stated.replace(" ", "").upper() != certs.thumbprint(cert):
        raise CertificateReadError(
            f"certificate {stated}: its RawData has thumbprint {certs.thumbprint(cert)}; the "
            "record is inconsistent, read it again"
        )
    return RemoteCertificate(cert, ExchangeView.from_record(record))


def parse_certificates(records: Iterable[Mapping[str, Any]]) -> list[RemoteCertificate]:
    """parse_certificate of each certificate record (others are skipped)."""
    return [parse_certificate(r) for r in records if is_certificate_record(r)]


def _get(record: Mapping[str, Any], name: str) -> Any:
    if name in record:
        return record[name]
    wanted = name.casefold()
    return next((v for k, v in record.items() if str(k).casefold() == wanted), None)


def _text(value: Any, empty: str | None = None) -> str | None:
    if value is None:
        return None
    found = str(value).strip()
    return found if found else empty


def _boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().casefold()
    return {"true": True, "false": False}.get(word)


def _services(value: Any) -> tuple[str, ...] | None:
    """AllowedServices as names ('IMAP, POP, SMTP', a list, or the flags integer)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(name for name, bit in SERVICE_FLAGS.items() if value & bit)
    items = value if isinstance(value, list | tuple) else [value]
    canonical = {name.casefold(): name for name in SERVICE_FLAGS}
    names = [part.strip() for item in items for part in str(item).split(",")]
    return tuple(canonical.get(n.casefold(), n) for n in names if n and n.casefold() != "none")


def _certificate(value: Any, label: str) -> x509.Certificate:
    data = value
    if isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise CertificateReadError(
                f"certificate {label}: RawData is neither bytes nor base64 text"
            ) from exc
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        data = bytes(value)
    try:
        return x509.load_der_x509_certificate(bytes(data))
    except (ValueError, TypeError) as exc:
        raise CertificateReadError(
            f"certificate {label}: RawData is not a DER certificate ({exc})"
        ) from exc
