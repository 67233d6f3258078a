"""Readers for Exchange property values as the shell returns them, tolerant of absence."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509

from edgebook.errors import EdgebookError
from edgebook.exchange.wire_types import SERVICE_FLAGS

Record = Mapping[str, Any]


class FactsError(EdgebookError):
    """A record cannot be turned into facts (a required property is missing or unreadable)."""


def get(record: Record, name: str) -> Any:
    """The property's value or None when absent; the exact name first, then any case."""
    if name in record:
        return record[name]
    wanted = name.casefold()
    return next((v for k, v in record.items() if k.casefold() == wanted), None)


def text(value: Any) -> str:
    """The value's text, stripped; '' for None."""
    return "" if value is None else str(value).strip()


def texts(value: Any) -> tuple[str, ...]:
    """A MultiValuedProperty as non-empty strings (a single value gives a 1-tuple)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return (text(value),)
    return tuple(t for t in (text(v) for v in value) if t)


def boolean(value: Any) -> bool | None:
    """A Boolean (also from 'True'/'False' text); None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return value
    word = text(value).casefold()
    if word in {"true", "1", "yes"}:
        return True
    if word in {"false", "0", "no"}:
        return False
    return None


def integer(value: Any) -> int | None:
    """An integer, or None when absent or unreadable."""
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def moment(value: Any) -> dt.datetime | None:
    """An aware datetime (naive values are taken as UTC); ISO 8601 text is accepted."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        found = value
    else:
        try:
            found = dt.datetime.fromisoformat(text(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 text of a datetime, or None."""
    return value.isoformat() if value else None


def thumbprint(value: Any) -> str:
    """A thumbprint as Exchange shows it: upper-case hex without spaces."""
    return text(value).replace(" ", "").upper()


def tls_name(value: Any) -> str | None:
    """A TlsCertificateName as text, from a string or an SmtpX509Identifier's properties."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        issuer = text(get(value, "CertificateIssuer"))
        subject = text(get(value, "CertificateSubject"))
        return f"<I>{issuer}<S>{subject}" if issuer or subject else None
    return text(value) or None


def services(value: Any) -> tuple[str, ...]:
    """AllowedServices as names, from 'IMAP, POP, SMTP', a list of names or the flags integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(name for name, bit in SERVICE_FLAGS.items() if value & bit)
    canonical = {name.casefold(): name for name in SERVICE_FLAGS}
    names = [part.strip() for item in texts(value) for part in item.split(",")]
    return tuple(canonical.get(n.casefold(), n) for n in names if n and n.casefold() != "none")


def certificate(value: Any, thumb: str) -> x509.Certificate | None:
    """The X.509 certificate of a RawData value (bytes, a byte list or base64 text), if any."""
    if value is None or value == "":
        return None
    data = value
    if isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise FactsError(
                f"certificate {thumb or '?'}: RawData is neither bytes nor base64 text"
            ) from exc
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        data = bytes(value)
    try:
        return x509.load_der_x509_certificate(bytes(data))
    except ValueError as exc:
        raise FactsError(
            f"certificate {thumb or '?'}: RawData is not a DER certificate ({exc})"
        ) from exc


def to_json(fact: Any) -> dict[str, Any]:
    """A flat fact dataclass, JSON-ready: its fields in order, datetimes ISO 8601, tuples lists."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(fact):
        value = getattr(fact, item.name)
        if isinstance(value, dt.datetime):
            value = iso(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[item.name] = value
    return out
