"""Utility cmdlets of Windows PowerShell the runbooks use: Get-Date (Edge), Select-Object (also
on Exchange's /PowerShell endpoint)."""

from __future__ import annotations

import calendar
import datetime as dt
import fnmatch
import functools
import re
from collections.abc import Callable
from typing import Any

from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.cmdlets.dateformat import net_format, u_format
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject, ExPrimitive

UTILITY_TASK = "Microsoft.PowerShell.Commands"
PS_CUSTOM_OBJECT = ["System.Management.Automation.PSCustomObject", "System.Object"]
ARGUMENT_EXCEPTION = "System.Management.Automation.PSArgumentException"
VALIDATION_EXCEPTION = "System.Management.Automation.ParameterBindingValidationException"
# Get-Date's ValidateRange of each part of the date
RANGES = {
    "Year": (1, 9999),
    "Month": (1, 12),
    "Day": (1, 31),
    "Hour": (0, 23),
    "Minute": (0, 59),
    "Second": (0, 59),
    "Millisecond": (0, 999),
}
# Microsoft.PowerShell.Commands.DisplayHintType: its members in order (Date = 0, Time = 1,
# DateTime = 2; GetDateCommand.cs)
DISPLAY_HINT_TYPE = "Microsoft.PowerShell.Commands.DisplayHintType"
DISPLAY_HINTS = ("Date", "Time", "DateTime")
WILDCARD = re.compile(r"[*?\[]")  # a Select-Object name with one of these is a pattern
ACROSS_OBJECTS = (
    "the lab runs Select-Object once per input object, so it cannot count, skip or compare "
    "across the objects of a pipeline"
)


def _check_range(ctx: Context, name: str, value: int) -> None:
    low, high = RANGES[name]
    if low <= value <= high:
        return
    if value < low:
        detail = (
            f"The {value} argument is less than the minimum allowed range of {low}. Supply an "
            f"argument that is greater than or equal to {low} and then try the command again."
        )
    else:
        detail = (
            f"The {value} argument is greater than the maximum allowed range of {high}. Supply "
            f"an argument that is less than or equal to {high} and then try the command again."
        )
    raise ctx.fail(
        f"Cannot validate argument on parameter '{name}'. {detail}",
        exception=VALIDATION_EXCEPTION,
        category="InvalidData",
        target=str(value),
        code="ParameterArgumentValidationError",
    )


def _add_months(when: dt.datetime, months: int) -> dt.datetime:
    """DateTime.AddMonths: the day is kept, or the month's last day when it has fewer."""
    index = when.year * 12 + when.month - 1 + months
    year, month = divmod(index, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


def with_display_hint(when: dt.datetime, hint: str) -> ExPrimitive:
    """The DateTime Get-Date writes: PowerShell wraps it in a PSObject with a DisplayHint note
    property (GetDateCommand.ProcessRecord), which remoting sends as <Obj> holding the <DT> and
    the note in <MS> (serialization.cs, WritePrimitiveTypePSObjectWithNotes)."""
    hint_value = ExEnum(DISPLAY_HINT_TYPE, hint, DISPLAY_HINTS.index(hint))
    return ExPrimitive(when, {"DisplayHint": hint_value})


def get_date(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Date: the server's clock (the lab clock, a server in UTC) or -Date, with -Year ..
    -Millisecond set as PowerShell does (by adding the difference); -Format / -UFormat
    return the text, else the DateTime with its DisplayHint (default DateTime)."""
    when: dt.datetime = params.get("Date") or ctx.now
    for name in RANGES:
        if params.get(name) is not None:
            _check_range(ctx, name, params[name])
    if params.get("Year") is not None:
        when = _add_months(when, 12 * (params["Year"] - when.year))
    if params.get("Month") is not None:
        when = _add_months(when, params["Month"] - when.month)
    steps = {"Day": "days", "Hour": "hours", "Minute": "minutes", "Second": "seconds"}
    for name, unit in steps.items():
        if params.get(name) is not None:
            current = getattr(when, name.lower())
            when += dt.timedelta(**{unit: params[name] - current})
    if params.get("Millisecond") is not None:
        when = when.replace(microsecond=params["Millisecond"] * 1000)
    if params.get("UFormat") is not None:
        return [u_format(when, params["UFormat"])]
    if params.get("Format") is not None:
        try:
            return [net_format(when, params["Format"])]
        except ValueError as exc:
            raise ctx.fail(
                str(exc), exception="System.FormatException", category="NotSpecified"
            ) from None
    return [with_display_hint(when, params.get("DisplayHint") or "DateTime")]


def _table(item: Any) -> tuple[str, dict[str, Any]]:
    """(.NET type, properties) of an input object as Select-Object reads it: a wrapped
    primitive's (Get-Date's DateTime) without its note properties (lab's choice,
    docs/lab-scenarios.md)."""
    if isinstance(item, ExObject):
        return item.type_names[0], item.properties
    if isinstance(item, ExPrimitive):
        return _table(item.value)
    if isinstance(item, str):
        return "System.String", {"Length": len(item)}
    if isinstance(item, bool):
        return "System.Boolean", {}
    if isinstance(item, int):
        return "System.Int32", {}
    if isinstance(item, dt.datetime):
        names = ("Year", "Month", "Day", "Hour", "Minute", "Second", "DayOfYear")
        values = {n: getattr(item, n.lower(), None) for n in names}
        values["DayOfYear"] = item.timetuple().tm_yday
        values["Millisecond"] = item.microsecond // 1000
        values["DayOfWeek"] = item.strftime("%A")
        values["Date"] = item.replace(hour=0, minute=0, second=0, microsecond=0)
        return "System.DateTime", values
    if isinstance(item, bytes):
        return "System.Byte[]", {"Length": len(item)}
    return "System.Object", {}


def _calculated(ctx: Context, spec: dict[Any, Any]) -> tuple[str, str]:
    """(name, source property) of @{Name=..; Expression='Property'}: a script block
    expression is refused, the lab runs no script."""
    keys = {str(k).casefold(): v for k, v in spec.items()}
    label = next((keys[k] for k in ("name", "n", "label", "l") if k in keys), None)
    source = next((keys[k] for k in ("expression", "e") if k in keys), None)
    if not isinstance(source, str):
        raise ctx.fail(
            "The edgebook lab does not simulate calculated properties of Select-Object whose "
            "Expression is a script block; give the property name as a string "
            "(@{Name='N'; Expression='Property'}), or select the property itself.",
            exception="System.Management.Automation.PSNotSupportedException",
            category="NotImplemented",
            code="LabParameterNotSimulated",
        )
    return str(label if label is not None else source), source


@functools.lru_cache(maxsize=256)
def _pattern(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """A casefolded name's match against any of the casefolded wildcard patterns (fnmatchcase's
    syntax: *, ?, [...]), compiled once into one regular expression."""
    either = "|".join(f"(?:{fnmatch.translate(p.casefold())})" for p in patterns)
    return re.compile(either).match


def _selected(ctx: Context, item: Any, wanted: list[Any], excluded: list[str]) -> ExObject:
    type_name, table = _table(item)
    folded = [(key, key.casefold()) for key in table]
    index: dict[str, str] = {}  # casefolded name -> the first property of that name
    for key, fold in folded:
        index.setdefault(fold, key)
    is_excluded = _pattern(tuple(excluded)) if excluded else None
    properties: dict[str, Any] = {}
    for entry in wanted:
        if isinstance(entry, dict):
            pairs = [_calculated(ctx, entry)]
            explicit = True
        elif WILDCARD.search(name := str(entry)):
            match = _pattern((name,))
            pairs = [(k, k) for k, fold in folded if match(fold)]
            explicit = False
        else:
            found = index.get(name.casefold(), name)
            pairs, explicit = [(found, found)], True
        for label, source in pairs:
            if is_excluded is not None and is_excluded(label.casefold()):
                continue
            if label in properties:
                if explicit:
                    ctx.write_error(
                        f'The property cannot be processed because the property "{label}" '
                        "already exists.",
                        exception="System.Management.Automation.PSArgumentException",
                        category="InvalidOperation",
                        target=display_text(item),
                        code="AlreadyExistingUserSpecifiedPropertyNoExpand",
                    )
                continue
            properties[label] = depth_one(table.get(index.get(source.casefold(), source)))
    return ExObject(
        [f"Selected.{type_name}", *PS_CUSTOM_OBJECT], properties, notes=tuple(properties)
    )


def display_text(item: Any) -> str:
    """An input object as an error record's target shows it."""
    return item.to_string or "" if isinstance(item, ExObject) else str(item)


def _expand(ctx: Context, item: Any, name: str) -> list[Any]:
    """-ExpandProperty: the property's value; a collection's items one by one."""
    _, table = _table(item)
    key = next((k for k in table if k.casefold() == name.casefold()), None)
    if key is None:
        ctx.write_error(
            f'Property "{name}" cannot be found.',
            exception=ARGUMENT_EXCEPTION,
            category="InvalidArgument",
            target=display_text(item),
            code="ExpandPropertyNotFound",
        )
        return []
    value = table[key]
    if isinstance(value, ExList):
        return list(value.items)
    if isinstance(value, list):
        return value
    return [value]


def select_object(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Select-Object -Property (names, wildcards, @{Name=;Expression='Property'}) and
    -ExcludeProperty: a PSCustomObject typed 'Selected.<type>' whose note properties are those
    of the live object (what its serialised form may lack, as with certificates), as remoting
    sends them (depth_one); -ExpandProperty: the value itself. Without either: the object."""
    item = params.get("InputObject")
    wanted = params.get("Property")
    wanted = wanted if isinstance(wanted, list) else [] if wanted is None else [wanted]
    expand = params.get("ExpandProperty")
    if item is None:
        return []
    if expand is not None:
        if wanted:
            raise ctx.fail(
                "The edgebook lab does not simulate -ExpandProperty together with -Property "
                "(PowerShell adds the selected properties to the expanded object). Use one of "
                "them.",
                exception="System.Management.Automation.PSNotSupportedException",
                category="NotImplemented",
                code="LabParameterNotSimulated",
            )
        return _expand(ctx, item, expand)
    if not wanted:
        return [item]  # -ExcludeProperty alone has no effect in PowerShell 5.1
    return [_selected(ctx, item, wanted, params.get("ExcludeProperty") or [])]


def depth_one(value: Any) -> Any:
    """A PSCustomObject's property value as PowerShell remoting serialises it: at depth 1 (no
    type data raises a PSCustomObject's) each property is written at depth 0, where an object
    (an enum too) goes as its ToString() and a collection is kept with its items at depth 0
    (PowerShell's serialization.cs, WriteOneObject); strings, numbers, dates and byte[] as they
    are. The lab's Selected object holds what goes on the wire (lab's choice): no runbook pipes
    a projected object on to another cmdlet, where PowerShell would still bind the live values."""
    if isinstance(value, ExObject | ExEnum):
        return str(value)
    if isinstance(value, ExList):
        return ExList(value.type_name, [depth_one(item) for item in value.items])
    return value


def _range(name: str) -> Param:
    return Param(name, "int")


CMDLETS = [
    Cmdlet(
        "Get-Date",
        get_date,
        [
            # ValueFromPipeline and ValueFromPipelineByPropertyName (alias LastWriteTime)
            Param("Date", "datetime", position=0, pipeline=True, aliases=("LastWriteTime",)),
            *(_range(n) for n in RANGES),
            Param("Format", sets=("net",)),
            Param("UFormat", sets=("UFormat",)),
            Param("DisplayHint", values=DISPLAY_HINTS, net_type=DISPLAY_HINT_TYPE),
        ],
        task=UTILITY_TASK,
        exchange=False,
        default_set="net",
    ),
    Cmdlet(
        "Select-Object",
        select_object,
        [
            Param("Property", "any", position=0),
            Param("InputObject", "any", pipeline=True, whole=True),
            Param("ExpandProperty"),
            Param("ExcludeProperty", "strs"),
            *(
                Param(name, kind, unsimulated=ACROSS_OBJECTS)
                for name, kind in (
                    ("First", "int"),
                    ("Last", "int"),
                    ("Skip", "int"),
                    ("SkipLast", "int"),
                    ("Index", "strs"),
                    ("Unique", "switch"),
                    ("Wait", "switch"),
                )
            ),
        ],
        task=UTILITY_TASK,
        exchange=False,
        proxied=True,  # Exchange's /PowerShell proxies Select-Object (docs/serialization.md)
    ),
]
