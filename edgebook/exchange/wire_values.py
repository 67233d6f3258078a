"""Cmdlet parameter values as pypsrp must be given them to serialise what Exchange expects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pypsrp.serializer import TaggedValue

from edgebook.errors import EdgebookError
from edgebook.exchange.secure import SecureText

_INT32 = range(-(2**31), 2**31)
SECRET_PARAMETERS = frozenset({"password"})  # SecureString parameters: SecureText only


def has_secret(parameters: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any of these cmdlet parameter sets has a SecureText value."""
    return any(isinstance(value, SecureText) for each in parameters for value in each.values())


class Null:
    """PowerShell's $null as a parameter value, sent on purpose (an undo clearing a property
    that was empty): a bare None is refused as an accident."""

    def __repr__(self) -> str:
        return "$null"


NULL = Null()


def wire_value(cmdlet: str, parameter: str, value: Any) -> Any:
    """A parameter value pypsrp serialises correctly (no None, big ints as I64, dates as text,
    a SecureText as a SecureString)."""
    if isinstance(value, Null):
        return None  # pypsrp sends <Nil />
    if value is None:
        raise EdgebookError(
            f"{cmdlet} -{parameter}: the value is None; pass True/False for a switch, "
            "or leave the parameter out"
        )
    if isinstance(value, SecureText):
        return TaggedValue("SS", value.reveal())
    if parameter.casefold() in SECRET_PARAMETERS:
        raise EdgebookError(
            f"{cmdlet} -{parameter}: a secret must be a SecureText (sent as a SecureString), "
            f"not a {type(value).__name__}"
        )
    if isinstance(value, bool | str | bytes | TaggedValue):
        return value
    if isinstance(value, int):
        return value if value in _INT32 else TaggedValue("I64", value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [wire_value(cmdlet, parameter, item) for item in value]
    if isinstance(value, Mapping):
        return {key: wire_value(cmdlet, parameter, item) for key, item in value.items()}
    return value
