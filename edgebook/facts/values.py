"""Readers for Exchange property values as the shell returns them, tolerant of absence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Callable, Iterable, Mapping
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


def pem_certificate(text: Any, where: str = "a certificate") -> x509.Certificate | None:
    """The certificate of a PEM text written by pem() (None stays None); FactsError when the
    text is not one."""
    return None if text is None else certificate(text, where)


def certificate(text: Any, where: str) -> x509.Certificate:
    """The certificate of a PEM text written by pem(); FactsError naming where it is not one."""
    if not isinstance(text, str):
        raise unreadable(where, f"is {type(text).__name__}, not PEM text of a certificate")
    try:
        return x509.load_pem_x509_certificate(text.encode("ascii"))
    except ValueError as exc:
        raise unreadable(where, f"is not PEM text of a certificate ({exc})") from None


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


# --- reading facts back from their JSON ----------------------------------------------------


def unreadable(where: str, problem: str) -> FactsError:
    """The error for saved facts that cannot be read back, naming the place in the document."""
    return FactsError(
        f"the saved facts cannot be read back: {where} {problem}. Give the 'facts' of "
        "`edgebook inspect --json` or of notebook 01's records, unchanged"
    )


def mapping(data: Any, where: str) -> Mapping[str, Any]:
    """The data as a JSON object, or FactsError naming where it was expected."""
    if not isinstance(data, Mapping):
        raise unreadable(where, f"is {type(data).__name__}, not a JSON object")
    return data


def items(data: Any, where: str) -> list[Any]:
    """The data as a JSON array, or FactsError naming where it was expected."""
    if not isinstance(data, list | tuple):
        raise unreadable(where, f"is {type(data).__name__}, not a JSON array")
    return list(data)


def _scalar(value: Any, kind: type, where: str) -> Any:
    if kind is dt.datetime:
        found = moment(value) if isinstance(value, str) else None
        if found is None:
            raise unreadable(where, f"is {value!r}, not an ISO 8601 time")
        return found
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise unreadable(where, f"is {value!r}, not {kind.__name__}")


def from_json_value(value: Any, hint: Any, where: str) -> Any:
    """A field's value from its JSON form, by its type hint (facts with from_dict nested)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (arm,) = (a for a in args if a is not type(None))
        return from_json_value(value, arm, where)
    if origin is tuple:
        return tuple(
            from_json_value(x, args[0], f"{where}[{i}]") for i, x in enumerate(items(value, where))
        )
    if origin is list:
        return [
            from_json_value(x, args[0], f"{where}[{i}]") for i, x in enumerate(items(value, where))
        ]
    if origin is dict:
        return {
            _scalar(k, args[0], f"{where} key"): from_json_value(x, args[1], f"{where}.{k}")
            for k, x in mapping(value, where).items()
        }
    reader: Callable[..., Any] | None = getattr(hint, "from_dict", None)
    if reader is not None:
        return reader(value, where=where)
    return _scalar(value, hint, where)


def from_json(cls: type, data: Any, where: str, **given: Any) -> Any:
    """A fact dataclass from its JSON form (to_json()'s, or a to_dict() with extra keys):
    each field by its type hint, except those given; FactsError names a bad or missing one."""
    data = mapping(data, where)
    hints = typing.get_type_hints(cls)
    values = dict(given)
    for item in dataclasses.fields(cls):
        if item.name in given or not item.init:
            continue
        if item.name not in data:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise unreadable(f"{where}.{item.name}", "is missing")
            continue
        values[item.name] = from_json_value(
            data[item.name], hints[item.name], f"{where}.{item.name}"
        )
    return cls(**values)
