"""Parameter binding as PowerShell does it: names and prefixes, positions, parameter sets,
pipeline input, and the conversion of each value to the parameter's type (with PowerShell's
ParameterBindingException texts)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from edgebook.exchange.secure import SecureText
from edgebook.lab.cmdlets.base import (
    ACTION_PREFERENCES,
    BINDING_EXCEPTION,
    COMMON,
    COMMON_ALIASES,
    SHOULD_PROCESS,
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
ALREADY_BOUND = (
    "Cannot bind parameter because parameter '{name}' is specified more than once. To provide "
    "multiple values to parameters that can accept multiple values, use the array syntax. For "
    'example, "-parameter value1,value2,value3".'
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
    common = {n: k for n, k in COMMON.items() if cmdlet.should_process or n not in SHOULD_PROCESS}
    for name, kind in common.items():
        table.setdefault(name, (name, kind))
    for alias, name in COMMON_ALIASES.items():
        if name in common:
            table.setdefault(alias, (name, common[name]))
    wanted = given.lstrip("-").casefold()
    exact = [v for k, v in table.items() if k.casefold() == wanted]
    if exact:
        return exact[0]
    prefixed = {v for k, v in table.items() if k.casefold().startswith(wanted)}
    declared = {v for v in prefixed if cmdlet.param(v[0]) is not None}
    if len(declared) == 1 < len(prefixed):  # the cmdlet's own parameter wins over a common one
        return declared.pop()
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
        if name in params or name in common:  # e.g. -ErrorAction and -ea, -Identity and -Ident
            raise binding_error(cmdlet, ALREADY_BOUND.format(name=given), "ParameterAlreadyBound")
        param = cmdlet.param(name)
        if param is None:
            common[name] = _common(cmdlet, name, kind, value)
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


# .NET's TimeSpan.Parse (invariant culture): "d", "[d.]hh:mm[:ss[.fffffff]]" or
# "d:hh:mm:ss[.fffffff]"; hours 0-23, minutes and seconds 0-59.
_CLOCK = re.compile(r"^(\d+):(\d+)(?::(\d+)(?:\.(\d+))?)?$")
_DAYS_CLOCK = re.compile(r"^(\d+)[.:](\d+:\d+(?::\d+(?:\.\d+)?)?)$")
TIMESPAN_FORMAT = "String was not recognized as a valid TimeSpan."
TIMESPAN_OVERFLOW = (
    "The TimeSpan could not be parsed because at least one of the numeric components is out of "
    "range or contains too many digits."
)
NET_TYPES = {
    "switch": "System.Management.Automation.SwitchParameter",
    "bool": "System.Boolean",
    "int": "System.Int32",
    "bytes": "System.Byte[]",
    "timespan": "System.TimeSpan",
    "datetime": "System.DateTime",
}


def _common(cmdlet: Cmdlet, name: str, kind: str, value: Any) -> Any:
    """A common parameter's value: a switch given without a value is present; the -*Action
    parameters take an ActionPreference (name or number), spelt as declared."""
    if kind == "switch" and value is None:
        return True
    if kind != "action":
        return coerce(cmdlet, name, kind, value)
    if isinstance(value, ExPrimitive):
        value = value.value
    if isinstance(value, ExEnum):
        value = value.text
    numbered = isinstance(value, int) and not isinstance(value, bool)
    if numbered and value in range(len(ACTION_PREFERENCES)):  # the enum's integer value
        return ACTION_PREFERENCES[value]
    param = Param(
        name,
        values=ACTION_PREFERENCES,
        net_type="System.Management.Automation.ActionPreference",
    )
    return _member(cmdlet, param, str(value))


def convert(cmdlet: Cmdlet, param: Param, value: Any) -> Any:
    """A value for a declared parameter: a switch given without a value is present (a Boolean
    is refused: PowerShell's HandleNullParameterForSpecialTypes); enum names are checked and
    spelt as declared."""
    if param.kind == "switch" and value is None:
        return True
    if param.kind == "bool" and value is None:  # a Boolean is no switch: $null is refused
        raise binding_error(
            cmdlet,
            f"Cannot bind argument to parameter '{param.name}' because it is null.",
            "ParameterArgumentValidationErrorNullNotAllowed",
        )
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
    if kind in ("bool", "switch") and value is not None:
        return _boolean(cmdlet, name, kind, value)
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
_NET_ARGUMENT_TYPES = {
    **_NET_VALUE_TYPES,
    float: "System.Double",
    list: "System.Object[]",
    dict: "System.Collections.Hashtable",
    dt.datetime: "System.DateTime",
    dt.timedelta: "System.TimeSpan",
}


def _boolean(cmdlet: Cmdlet, name: str, kind: str, value: Any) -> bool:
    """A Boolean or SwitchParameter takes a Boolean or a number (0 is $false), nothing else: not
    even the text "true" (PowerShell's ParameterBinderBase.CoerceTypeAsNeeded)."""
    if isinstance(value, ExPrimitive):
        value = value.value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, ExObject):
        given = "System.Management.Automation.PSCustomObject"
    else:
        given = _NET_ARGUMENT_TYPES.get(type(value), "System.Object")
    raise binding_error(
        cmdlet,
        f"Cannot convert '{given}' to the type '{NET_TYPES[kind]}' required by parameter "
        f"'{name}'. ",
        "CannotConvertArgument",
    )


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
    if kind == "int":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return round(value)  # PowerShell converts a number to Int32 by rounding
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("Input string was not in a correct format.")  # .NET's Int32.Parse
        return int(text)
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
        return _timespan(value)
    if kind == "datetime":
        return parse_datetime(value)
    if isinstance(value, ExObject):
        return display(value)
    if isinstance(value, list) and len(value) == 1:
        return _coerce(kind, value[0])
    return str(value)


def _timespan(value: Any) -> dt.timedelta:
    """A TimeSpan parameter: a TimeSpan, a number (of ticks, as PowerShell converts it) or text
    as .NET's TimeSpan.Parse reads it ("24:00:00" overflows: 24 is no hour; "1440" is days)."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.timedelta(microseconds=value / 10)
    text = str(value).strip()
    sign = -1 if text.startswith("-") else 1
    text = text.removeprefix("-")
    days, clock = "0", text
    joined = _DAYS_CLOCK.match(text)
    if text.isdigit():
        days, clock = text, "0:0"
    elif joined and (text.count(":") == 3 or "." in text.split(":", 1)[0]):
        days, clock = joined.groups()
    match = _CLOCK.match(clock)
    if not match or not days.isdigit():
        raise ValueError(TIMESPAN_FORMAT)
    hours, minutes, seconds, fraction = match.groups()
    fraction = fraction or ""
    if (
        int(hours) > 23
        or int(minutes) > 59
        or int(seconds or 0) > 59
        or len(fraction) > 7
        or int(days) > 10675199
    ):
        raise ValueError(TIMESPAN_OVERFLOW)
    return sign * dt.timedelta(
        days=int(days),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int(fraction.ljust(7, "0")) // 10,
    )


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
