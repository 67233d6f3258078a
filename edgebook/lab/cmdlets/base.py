"""What every lab cmdlet is made of: parameter specs, the context a cmdlet runs in, and the
errors it writes (binding itself: edgebook.lab.cmdlets.binding)."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from edgebook.lab.org.model import Org, Server
from edgebook.lab.winrm.protocol import (
    Choice,
    ErrorInfo,
    Host,
    HostError,
    Session,
)

COMMON = {
    "ErrorAction": "action",
    "WarningAction": "action",
    "InformationAction": "action",
    "Verbose": "switch",
    "Debug": "switch",
    "WhatIf": "switch",
    "Confirm": "switch",
    "ErrorVariable": "any",
    "WarningVariable": "any",
    "InformationVariable": "any",
    "OutVariable": "any",
    "OutBuffer": "any",
    "PipelineVariable": "any",
}
# The aliases PowerShell declares on the common parameters (CommonParameters and
# ShouldProcessParameters: `-ea 0`, `-wi`, `-cf:$false` ...).
COMMON_ALIASES = {
    "ea": "ErrorAction",
    "wa": "WarningAction",
    "infa": "InformationAction",
    "vb": "Verbose",
    "db": "Debug",
    "wi": "WhatIf",
    "cf": "Confirm",
    "ev": "ErrorVariable",
    "wv": "WarningVariable",
    "iv": "InformationVariable",
    "ov": "OutVariable",
    "ob": "OutBuffer",
    "pv": "PipelineVariable",
}
SHOULD_PROCESS = ("WhatIf", "Confirm")  # only on cmdlets that declare SupportsShouldProcess
# Cmdlets of the lab without SupportsShouldProcess besides the Get- ones (PowerShell 5.1's
# syntax lists no -WhatIf/-Confirm for them; Microsoft's Exchange pages list them for every
# Exchange cmdlet here but the Get- ones).
NO_SHOULD_PROCESS = frozenset({"Add-PSSnapin", "Select-Object"})
# System.Management.Automation.ActionPreference in Windows PowerShell 5.1 (member order = value).
ACTION_PREFERENCES = ("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend")
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
# Microsoft's -DomainController section of the cmdlets that refuse it on an Edge Transport server.
EDGE_DOMAIN_CONTROLLER = (
    "The DomainController parameter isn't supported on Edge Transport servers. An Edge "
    "Transport server uses the local instance of Active Directory Lightweight Directory "
    "Services (AD LDS) to read and write data."
)


class CmdletError(Exception):
    """An error a cmdlet writes; terminating ones stop the invocation."""

    def __init__(self, info: ErrorInfo, terminating: bool = True) -> None:
        super().__init__(info.message)
        self.info = info
        self.terminating = terminating


@dataclass
class Param:
    """A cmdlet parameter: its kind drives coercion ("str", "switch" (a SwitchParameter), "bool"
    (a Boolean value), "int", "bytes", "strs", "mvp" (list or @{Add=..;Remove=..}), "secure",
    "timespan", "datetime", "any"); `values` are the names of an enum type `net_type`."""

    name: str
    kind: str = "str"
    position: int | None = None
    mandatory: bool = False
    pipeline: bool = False  # ValueFromPipelineByPropertyName
    whole: bool = False  # ValueFromPipeline: the whole input object (e.g. -InputObject)
    aliases: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()  # the parameter sets it belongs to (none: all of them)
    values: tuple[str, ...] = ()  # enum member names (case-insensitive; flags joined by ",")
    net_type: str = ""  # the .NET type PowerShell names in conversion errors
    unsimulated: str = ""  # why the lab refuses this documented parameter (empty: simulated)
    # Microsoft's text (or the lab's wording of its sentence) when its page says the parameter
    # isn't supported / can't be used on an Edge Transport server: given on an Edge, the cmdlet
    # fails with it before it does anything.
    not_on_edge: str = ""


# -DomainController as the Exchange cmdlets declare it whose pages say it isn't supported on an
# Edge (the lab has one directory: elsewhere any domain controller is it).
DOMAIN_CONTROLLER = Param("DomainController", not_on_edge=EDGE_DOMAIN_CONTROLLER)


@dataclass
class Cmdlet:
    """A cmdlet of the lab."""

    name: str
    func: Callable[[Context, dict[str, Any]], list[Any]]
    params: list[Param] = field(default_factory=list)
    task: str = "Microsoft.Exchange.Management.SystemConfigurationTasks"
    exchange: bool = True  # an Exchange cmdlet (snap-in on the Edge); else an OS cmdlet
    proxied: bool = False  # an OS cmdlet Exchange's /PowerShell endpoint offers too
    default_set: str | None = None  # DefaultParameterSetName
    # SupportsShouldProcess (-WhatIf and -Confirm exist); None: every cmdlet but the Get- ones
    # and NO_SHOULD_PROCESS.
    should_process: bool | None = None

    def __post_init__(self) -> None:
        if self.should_process is None:
            self.should_process = not (
                self.name.startswith("Get-") or self.name in NO_SHOULD_PROCESS
            )

    def param(self, name: str) -> Param | None:
        """The declared parameter with this canonical name."""
        return next((p for p in self.params if p.name == name), None)


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

    def refuse_on_edge(self, params: dict[str, Any]) -> None:
        """On an Edge Transport server, fail (InvalidOperation) with Microsoft's text for a
        given parameter its page says isn't supported or can't be used there (Param.not_on_edge)."""
        if self.server.role != "Edge":
            return
        for param in self.cmdlet.params:
            value = params.get(param.name)
            if param.not_on_edge and value is not None and value != "":
                raise self.fail(
                    param.not_on_edge,
                    exception="System.InvalidOperationException",
                    target=str(value),
                )

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
        task = task_class(self.cmdlet)
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
    return CmdletError(
        ErrorInfo(message, f"{error_id},{task_class(cmdlet)}", category, None, BINDING_EXCEPTION)
    )


def task_class(cmdlet: Cmdlet) -> str:
    """The class an ErrorRecord names: Exchange's task (…SystemConfigurationTasks.
    GetExchangeCertificate) or PowerShell's command (…Commands.GetServiceCommand)."""
    name = f"{cmdlet.task}.{cmdlet.name.replace('-', '')}"
    return name if cmdlet.exchange else f"{name}Command"
