"""What every lab cmdlet is made of: parameter specs, binding as PowerShell does it, the context
a cmdlet runs in, and the errors it writes."""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from edgebook.exchange.secure import SecureText
from edgebook.lab.org.model import Org, Server
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject
from edgebook.lab.winrm.protocol import (
    Choice,
    CommandCall,
    ErrorInfo,
    Host,
    HostError,
    Session,
)

COMMON = {
    "ErrorAction": "any",
    "WarningAction": "any",
    "InformationAction": "any",
    "Verbose": "bool",
    "Debug": "bool",
    "WhatIf": "bool",
    "Confirm": "bool",
    "ErrorVariable": "any",
    "WarningVariable": "any",
    "InformationVariable": "any",
    "OutVariable": "any",
    "OutBuffer": "any",
    "PipelineVariable": "any",
}
BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"
HOST_EXCEPTION = "System.Management.Automation.Host.HostException"

# PowerShell's confirmation prompt (MshCommandRuntime.InquireHelper, CommandBaseStrings): in a
# remote session there is no "&Suspend" choice; the default is Yes.
CONFIRM_CAPTION = "Confirm"
SHOULD_PROCESS_QUERY = "Are you sure you want to perform this action?"
YES, YES_TO_ALL, NO, NO_TO_ALL = CHOICES = (
    Choice("&Yes", "Continue with only the next step of the operation."),
    Choice("Yes to &All", "Continue with all the steps of the operation."),
    Choice("&No", "Skip this operation and proceed with the next operation."),
    Choice("No to A&ll", "Skip this operation and all subsequent operations."),
)
NOT_INTERACTIVE = (
    "A command that prompts the user failed because the host program or the command type does "
    "not support user interaction. The host was attempting to request confirmation with the "
    "following message: {message}"
)


class CmdletError(Exception):
    """An error a cmdlet writes; terminating ones stop the invocation."""

    def __init__(self, info: ErrorInfo, terminating: bool = True) -> None:
        super().__init__(info.message)
        self.info = info
        self.terminating = terminating


@dataclass
class Param:
    """A cmdlet parameter: its kind drives coercion ("str", "bool", "int", "bytes", "strs",
    "mvp" (list or @{Add=..;Remove=..}), "secure", "timespan", "datetime", "any")."""

    name: str
    kind: str = "str"
    position: int | None = None
    mandatory: bool = False
    pipeline: bool = False  # ValueFromPipelineByPropertyName
    whole: bool = False  # ValueFromPipeline: the whole input object (e.g. -InputObject)
    aliases: tuple[str, ...] = ()


@dataclass
class Cmdlet:
    """A cmdlet of the lab."""

    name: str
    func: Callable[[Context, dict[str, Any]], list[Any]]
    params: list[Param] = field(default_factory=list)
    task: str = "Microsoft.Exchange.Management.SystemConfigurationTasks"
    exchange: bool = True  # an Exchange cmdlet (snap-in on the Edge); else an OS cmdlet
    proxied: bool = False  # an OS cmdlet Exchange's /PowerShell endpoint offers too


@dataclass
class Context:
    """What a cmdlet sees: the organisation, the local server, the session and the lab time."""

    org: Org
    server: Server
    session: Session
    now: dt.datetime
    cmdlet: Cmdlet
    common: dict[str, Any] = field(default_factory=dict)
    errors: list[ErrorInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    host: Host | None = None  # the client's host UI (None: it declared none)
    to_all: dict[str, bool] = field(default_factory=dict)  # "Yes/No to All" given to this cmdlet

    @property
    def whatif(self) -> bool:
        """Whether -WhatIf was given (changes are skipped)."""
        return bool(self.common.get("WhatIf"))

    def should_process(self, confirmation: str, *, high_impact: bool = False) -> bool:
        """ShouldProcess: asks "Are you sure…" when -Confirm is given, or for a high-impact
        cmdlet unless -Confirm:$false; False means: skip the action (also under -WhatIf)."""
        confirm = self.common.get("Confirm")
        if self.whatif:
            return False
        if confirm is False or (confirm is None and not high_impact):
            return True
        return self._ask("process", CONFIRM_CAPTION, f"{SHOULD_PROCESS_QUERY}\n{confirmation}")

    def should_continue(self, query: str, caption: str = CONFIRM_CAPTION) -> bool:
        """ShouldContinue (Yes / Yes to All / No / No to All): neither -Confirm:$false nor
        -WhatIf answers it; a cmdlet that has -Force skips the call itself."""
        return self._ask("continue", caption, query)

    def _ask(self, kind: str, caption: str, message: str) -> bool:
        if kind in self.to_all:
            return self.to_all[kind]
        if self.host is None:
            raise CmdletError(
                self.error_info(
                    NOT_INTERACTIVE.format(message=message),
                    exception=HOST_EXCEPTION,
                    category="NotImplemented",
                    code="HostFunctionNotImplemented",
                )
            )
        try:
            index = self.host.prompt_for_choice(caption, message, CHOICES, 0)
        except HostError as exc:
            raise CmdletError(replace(exc.info, command=self.cmdlet.name)) from None
        if not 0 <= index < len(CHOICES):
            raise self.fail(
                f"The host answered the question with choice {index}, which was not offered.",
                exception=HOST_EXCEPTION,
            )
        choice = CHOICES[index]
        if choice in (YES_TO_ALL, NO_TO_ALL):
            self.to_all[kind] = choice is YES_TO_ALL
        return choice in (YES, YES_TO_ALL)

    def error_info(
        self,
        message: str,
        exception: str = "Microsoft.Exchange.Configuration.Tasks.TaskException",
        category: str = "InvalidOperation",
        target: str | None = None,
        code: str | None = None,
    ) -> ErrorInfo:
        """An ErrorRecord as Exchange writes it (FullyQualifiedErrorId "<code>,<task class>")."""
        code = code or f"{zlib.crc32(message.encode()) & 0xFFFFFFFF:08X}"
        task = f"{self.cmdlet.task}.{self.cmdlet.name.replace('-', '')}"
        fqid = (
            f"[Server={self.server.name}] {code},{task}"
            if self.cmdlet.exchange
            else f"{code},{task}"
        )
        return ErrorInfo(message, fqid, category, target, exception, command=self.cmdlet.name)

    def fail(self, message: str, **kwargs: Any) -> CmdletError:
        """A terminating error to raise."""
        return CmdletError(self.error_info(message, **kwargs), terminating=True)

    def write_error(self, message: str, **kwargs: Any) -> None:
        """A non-terminating error (ErrorAction decides what becomes of it)."""
        info = self.error_info(message, **kwargs)
        action = str(self.common.get("ErrorAction", "Continue")).casefold()
        if action == "stop":
            raise CmdletError(info, terminating=True)
        if action not in ("silentlycontinue", "ignore"):
            self.errors.append(info)

    def warn(self, text: str) -> None:
        """A warning (WarningAction decides what becomes of it)."""
        action = str(self.common.get("WarningAction", "Continue")).casefold()
        if action == "stop":
            raise CmdletError(
                ErrorInfo(
                    "The running command stopped because the preference variable "
                    '"WarningPreference" or common parameter is set to Stop: ' + text,
                    "ActionPreferenceStop",
                    "OperationStopped",
                    None,
                    "System.Management.Automation.ActionPreferenceStopException",
                )
            )
        if action not in ("silentlycontinue", "ignore"):
            self.warnings.append(text)


def binding_error(
    cmdlet: Cmdlet, message: str, error_id: str, category: str = "InvalidArgument"
) -> CmdletError:
    """A ParameterBindingException as PowerShell raises it (terminating)."""
    task = f"{cmdlet.task}.{cmdlet.name.replace('-', '')}"
    return CmdletError(ErrorInfo(message, f"{error_id},{task}", category, None, BINDING_EXCEPTION))


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
    """(parameters, common parameters) of a call, coerced; ParameterBindingException on errors."""
    params: dict[str, Any] = {}
    common: dict[str, Any] = {}
    for given, value in call.parameters.items():
        name, kind = _match(cmdlet, given)
        target = common if name in COMMON else params
        target[name] = coerce(cmdlet, name, kind, value)
    positional = sorted(
        (p for p in cmdlet.params if p.position is not None), key=lambda p: p.position or 0
    )
    free = [p for p in positional if p.name not in params]
    for value in call.arguments:
        if not free:
            raise binding_error(
                cmdlet,
                f"A positional parameter cannot be found that accepts argument '{display(value)}'.",
                "PositionalParameterNotFound",
            )
        param = free.pop(0)
        params[param.name] = coerce(cmdlet, param.name, param.kind, value)
    return params, common


def check_mandatory(cmdlet: Cmdlet, params: dict[str, Any]) -> None:
    """MissingMandatoryParameter (remote sessions cannot prompt)."""
    missing = [p.name for p in cmdlet.params if p.mandatory and params.get(p.name) is None]
    if missing:
        raise binding_error(
            cmdlet,
            "Cannot process command because of one or more missing mandatory parameters: "
            f"{' '.join(missing)}.",
            "MissingMandatoryParameter",
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
    "bool": "System.Management.Automation.SwitchParameter",
    "int": "System.Int32",
    "bytes": "System.Byte[]",
    "timespan": "System.TimeSpan",
    "datetime": "System.DateTime",
}


def coerce(cmdlet: Cmdlet, name: str, kind: str, value: Any) -> Any:
    """Convert a parameter value to what the cmdlet expects."""
    if kind == "secure" and value is not None:
        return _secure(cmdlet, name, value)
    try:
        return _coerce(kind, value)
    except (ValueError, TypeError) as exc:
        raise binding_error(
            cmdlet,
            f"Cannot bind parameter '{name}'. Cannot convert value \"{display(value)}\" to type "
            f'"{NET_TYPES.get(kind, "System.String")}". Error: "{exc}"',
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
    if kind == "bool":
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
