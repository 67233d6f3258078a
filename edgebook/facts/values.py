"""Readers for Exchange property values as the shell returns them, tolerant of absence."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgebook.errors import EdgebookError

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


def pem(cert: x509.Certificate | None) -> str | None:
    """A certificate as PEM text (public data), or None."""
    if cert is None:
        return None
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def pem_certificate(text: Any) -> x509.Certificate | None:
    """The certificate of a PEM text written by pem(); FactsError when it is not one."""
    if text is None:
        return None
    try:
        return x509.load_pem_x509_certificate(str(text).encode("ascii"))
    except ValueError as exc:
        raise FactsError(f"a certificate in the facts is not PEM text ({exc})") from None


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
