"""Parameter binding as PowerShell does it: names and prefixes, positions, parameter sets,
pipeline input, and the conversion of each value to the parameter's type (with PowerShell's
ParameterBindingException texts)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from edgebook.exchange.secure import SecureText
from edgebook.lab.cmdlets.base import (
    BINDING_EXCEPTION,
    COMMON,
    Cmdlet,
    CmdletError,
    Context,
    Param,
    binding_error,
)
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject, ExPrimitive
from edgebook.lab.winrm.protocol import CommandCall, ErrorInfo

AMBIGUOUS_SET = "Parameter set cannot be resolved using the specified named parameters."
INPUT_NOT_BOUND = (
    "The input object cannot be bound to any parameters for the command either because the "
    "command does not take pipeline input or the input and its properties do not match any of "
    "the parameters that take pipeline input."
)
NOT_SIMULATED = (
    "The edgebook lab does not simulate the {name} parameter of {cmdlet} ({why}). Leave it out, "
    "or check its effect on a real server."
)


def _match(cmdlet: Cmdlet, given: str) -> tuple[str, str]:
    """(canonical name, kind) of a parameter name as typed (unambiguous prefixes allowed)."""
    table: dict[str, tuple[str, str]] = {p.name: (p.name, p.kind) for p in cmdlet.params}
    for p in cmdlet.params:
        for alias in p.aliases:
            table[alias] = (p.name, p.kind)
    for name, kind in COMMON.items():
        table.setdefault(name, (name, kind))
    wanted = given.lstrip("-").casefold()
    exact = [v for k, v in table.items() if k.casefold() == wanted]
    if exact:
        return exact[0]
    prefixed = {v for k, v in table.items() if k.casefold().startswith(wanted)}
    if len(prefixed) == 1:
        return prefixed.pop()
    if len(prefixed) > 1:
        options = " ".join(f"-{n}" for n, _ in sorted(prefixed))
        raise binding_error(
            cmdlet,
            f"Parameter cannot be processed because the parameter name '{given}' is ambiguous. "
            f"Possible matches include: {options}.",
            "AmbiguousParameter",
        )
    raise binding_error(
        cmdlet,
        f"A parameter cannot be found that matches parameter name '{given}'.",
        "NamedParameterNotFound",
    )


def bind(cmdlet: Cmdlet, call: CommandCall) -> tuple[dict[str, Any], dict[str, Any]]:
    """(parameters, common parameters) of a call, coerced; ParameterBindingException on errors.

    Positional values go to the free positional parameters of the parameter sets the named ones
    leave, lowest position first (the default set's parameter when two share a position).
    """
    params: dict[str, Any] = {}
    common: dict[str, Any] = {}
    for given, value in call.parameters.items():
        name, kind = _match(cmdlet, given)
        param = cmdlet.param(name)
        if param is None:
            common[name] = (
                True if kind == "switch" and value is None else coerce(cmdlet, name, kind, value)
            )
        else:
            params[name] = convert(cmdlet, param, value)
    sets = candidate_sets(cmdlet, params)
    for value in call.arguments:
        free = [
            p
            for p in cmdlet.params
            if p.position is not None
            and p.name not in params
            and (not p.sets or sets is None or set(p.sets) & sets)
            and not any(
                q.position == p.position and q.name in params for q in cmdlet.params if q is not p
            )
        ]
        if not free:
            raise binding_error(
                cmdlet,
                f"A positional parameter cannot be found that accepts argument '{display(value)}'.",
                "PositionalParameterNotFound",
            )
        free.sort(key=lambda p: (p.position or 0, cmdlet.default_set not in p.sets))
        params[free[0].name] = convert(cmdlet, free[0], value)
        sets = candidate_sets(cmdlet, params)
    return params, common


def candidate_sets(cmdlet: Cmdlet, params: dict[str, Any]) -> set[str] | None:
    """The parameter sets the bound parameters leave (None: the cmdlet declares none)."""
    every = {s for p in cmdlet.params for s in p.sets}
    if not every:
        return None
    for name in params:
        param = cmdlet.param(name)
        if param is not None and param.sets:
            every &= set(param.sets)
    return every


def resolve_set(cmdlet: Cmdlet, params: dict[str, Any]) -> str | None:
    """The parameter set of a call (PowerShell's AmbiguousParameterSet when none or several)."""
    sets = candidate_sets(cmdlet, params)
    if sets is None:
        return None
    complete = {
        s
        for s in sets
        if all(
            params.get(p.name) is not None
            for p in cmdlet.params
            if p.mandatory and (not p.sets or s in p.sets)
        )
    }
    if cmdlet.default_set in sets and (cmdlet.default_set in complete or not complete):
        return cmdlet.default_set
    if len(complete) == 1:
        return complete.pop()
    if len(sets) == 1:
        return next(iter(sets))
    raise binding_error(cmdlet, AMBIGUOUS_SET, "AmbiguousParameterSet")


def check_mandatory(cmdlet: Cmdlet, params: dict[str, Any]) -> None:
    """Resolve the parameter set, then MissingMandatoryParameter (remote sessions cannot
    prompt), then the documented parameters the lab does not simulate."""
    chosen = resolve_set(cmdlet, params)
    missing = [
        p.name
        for p in cmdlet.params
        if p.mandatory
        and (not p.sets or chosen is None or chosen in p.sets)
        and params.get(p.name) is None
    ]
    if missing:
        raise binding_error(
            cmdlet,
            "Cannot process command because of one or more missing mandatory parameters: "
            f"{' '.join(missing)}.",
            "MissingMandatoryParameter",
        )
    refuse_unsimulated(cmdlet, params)


def bind_input(ctx: Context, params: dict[str, Any], item: Any) -> dict[str, Any] | None:
    """The parameters with one pipeline input object bound (by value, then by property name);
    None after writing PowerShell's InputObjectNotBound error when it binds to nothing."""
    sets = candidate_sets(ctx.cmdlet, params)
    piped = [
        p
        for p in ctx.cmdlet.params
        if p.pipeline
        and p.name not in params
        and (not p.sets or sets is None or set(p.sets) & sets)
    ]
    bound = dict(params)
    for param in piped:
        sets = candidate_sets(ctx.cmdlet, bound)  # what is bound so far narrows the sets
        if param.sets and sets is not None and not set(param.sets) & sets:
            continue
        value = _pipeline_value(item, param, first=param is piped[0])
        if value is None:
            continue
        try:
            bound[param.name] = convert(ctx.cmdlet, param, value)
        except CmdletError:
            continue  # PowerShell leaves a piped value that does not convert unbound
        if param.whole:
            break
    if len(bound) == len(params):
        ctx.errors.append(
            ctx.error_info(
                INPUT_NOT_BOUND,
                exception=BINDING_EXCEPTION,
                category="InvalidArgument",
                target=display(item),
                code="InputObjectNotBound",
            )
        )
        return None
    return bound


def _pipeline_value(item: Any, param: Param, first: bool) -> Any:
    """ValueFromPipeline (the whole object) or ValueFromPipelineByPropertyName."""
    if param.whole:
        return item
    if isinstance(item, ExObject):
        names = {param.name.casefold(), *(a.casefold() for a in param.aliases)}
        return next((v for k, v in item.properties.items() if k.casefold() in names), None)
    if isinstance(item, dict):
        return next(
            (v for k, v in item.items() if str(k).casefold() == param.name.casefold()), None
        )
    return item if first else None


def refuse_unsimulated(cmdlet: Cmdlet, params: dict[str, Any]) -> None:
    """Refuse a documented parameter the lab does not simulate (given, and not $false)."""
    for param in cmdlet.params:
        value = params.get(param.name)
        if param.unsimulated and value is not None and value is not False:
            task = f"{cmdlet.task}.{cmdlet.name.replace('-', '')}"
            raise CmdletError(
                ErrorInfo(
                    NOT_SIMULATED.format(
                        name=param.name, cmdlet=cmdlet.name, why=param.unsimulated
                    ),
                    f"LabParameterNotSimulated,{task}",
                    "NotImplemented",
                    param.name,
                    "System.Management.Automation.PSNotSupportedException",
                    command=cmdlet.name,
                )
            )


def display(value: Any) -> str:
    """How PowerShell prints a value in an error message."""
    if isinstance(value, ExObject):
        return value.to_string or str(value.properties.get("Identity", ""))
    if isinstance(value, bytes):
        return "System.Byte[]"
    if isinstance(value, list):
        return " ".join(display(v) for v in value)
    return str(value)


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?$")
NET_TYPES = {
    "switch": "System.Management.Automation.SwitchParameter",
    "bool": "System.Boolean",
    "int": "System.Int32",
    "bytes": "System.Byte[]",
    "timespan": "System.TimeSpan",
    "datetime": "System.DateTime",
}


def convert(cmdlet: Cmdlet, param: Param, value: Any) -> Any:
    """A value for a declared parameter: a switch given without a value is present; enum
    names are checked and spelt as declared."""
    if param.kind == "switch" and value is None:
        return True
    result = coerce(cmdlet, param.name, param.kind, value, param.net_type)
    if not param.values or result is None:
        return result
    if isinstance(result, list):
        return [_member(cmdlet, param, item) for item in result]
    if isinstance(result, dict):
        return {k: [_member(cmdlet, param, i) for i in v] for k, v in result.items()}
    return _member(cmdlet, param, result)


def _member(cmdlet: Cmdlet, param: Param, text: str) -> str:
    """An enum value (flags: "A, B"), spelt as declared."""
    names = []
    for part in str(text).split(","):
        wanted = part.strip()
        found = next((v for v in param.values if v.casefold() == wanted.casefold()), None)
        if found is None:
            raise binding_error(
                cmdlet,
                f"Cannot bind parameter '{param.name}'. Cannot convert value \"{text}\" to type "
                f'"{param.net_type}". Error: "Unable to match the identifier name {wanted} to a '
                "valid enumerator name. Specify one of the following enumerator names and try "
                f'again:\r\n{", ".join(param.values)}"',
                "CannotConvertArgumentNoMessage",
            )
        names.append(found)
    return ", ".join(names)


def coerce(cmdlet: Cmdlet, name: str, kind: str, value: Any, net_type: str = "") -> Any:
    """Convert a parameter value to what the cmdlet expects."""
    if kind == "secure" and value is not None:
        return _secure(cmdlet, name, value)
    try:
        return _coerce(kind, value)
    except (ValueError, TypeError) as exc:
        raise binding_error(
            cmdlet,
            f"Cannot bind parameter '{name}'. Cannot convert value \"{display(value)}\" to type "
            f'"{net_type or NET_TYPES.get(kind, "System.String")}". Error: "{exc}"',
            "CannotConvertArgumentNoMessage",
        ) from exc


_NET_VALUE_TYPES = {str: "System.String", int: "System.Int32", bytes: "System.Byte[]"}


def _secure(cmdlet: Cmdlet, name: str, value: Any) -> str:
    """A SecureString parameter takes a SecureString only (PowerShell converts no text to it);
    the lab hides the value PowerShell would echo in its message."""
    if isinstance(value, SecureText):
        return value.reveal()
    raise binding_error(
        cmdlet,
        f"Cannot process argument transformation on parameter '{name}'. Cannot convert the "
        f'"********" value of type "{_NET_VALUE_TYPES.get(type(value), "System.Object")}" to '
        'type "System.Security.SecureString".',
        "ParameterArgumentTransformationError",
    )


def _coerce(kind: str, value: Any) -> Any:
    if value is None or kind == "any":
        return value
    if isinstance(value, ExEnum):
        value = value.text
    if isinstance(value, ExPrimitive):  # PowerShell binds the wrapped value itself
        value = value.value
    if kind in ("bool", "switch"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        text = str(value).strip().lstrip("$").casefold()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError("Input string was not in a correct format.")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("Input string was not in a correct format.")
        return int(value)
    if kind == "bytes":
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, list) and all(isinstance(v, int) for v in value):
            return bytes(value)
        raise ValueError("Input string was not in a correct format.")
    if kind == "strs":
        items = value.items if isinstance(value, ExList) else value
        items = items if isinstance(items, list | tuple) else [items]
        return [display(v) for v in items]
    if kind == "mvp":
        if isinstance(value, dict):
            change = {str(k).casefold(): v for k, v in value.items()}
            unknown = set(change) - {"add", "remove"}
            if unknown:
                raise ValueError(
                    f"The hashtable may only contain the keys Add and Remove, not {unknown}"
                )
            return {k: _coerce("strs", v) if v is not None else [] for k, v in change.items()}
        return _coerce("strs", value)
    if kind == "timespan":
        if isinstance(value, dt.timedelta):
            return value
        match = _TIMESPAN.match(str(value).strip())
        if not match:
            raise ValueError("String was not recognized as a valid TimeSpan.")
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if kind == "datetime":
        return parse_datetime(value)
    if isinstance(value, ExObject):
        return display(value)
    if isinstance(value, list) and len(value) == 1:
        return _coerce(kind, value[0])
    return str(value)


def parse_datetime(value: Any) -> dt.datetime:
    """A DateTime parameter: aware datetime, ISO-8601, or "MM/dd/yyyy HH:mm:ss" (UTC if naive)."""
    if isinstance(value, dt.datetime):
        result = value
    else:
        text = str(value).strip()
        try:
            result = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y"):
                try:
                    result = dt.datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
            else:
                raise ValueError("String was not recognized as a valid DateTime.") from None
    return result if result.tzinfo else result.replace(tzinfo=dt.UTC)
