"""Windows services of the Edge (MSExchangeTransport, ADAM_MSExchange) and the snap-in cmdlets."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.org import mailflow
from edgebook.lab.org.model import ADAM, PAUSED, RUNNING, STOPPED, TRANSPORT
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject

STATUS_VALUES = {"Stopped": 1, "Running": 4, "Paused": 7}
DISPLAY = {TRANSPORT: "Microsoft Exchange Transport", ADAM: "Microsoft Exchange ADAM"}
# On an Edge, MSExchangeTransport depends on the AD LDS instance (lab's simplification: no other
# dependencies; docs/serialization.md).
DEPENDS_ON = {TRANSPORT: (ADAM,), ADAM: ()}
OS_TASK = "Microsoft.PowerShell.Commands"
SERVICE_EXCEPTION = "Microsoft.PowerShell.Commands.ServiceCommandException"
SERVICE_TYPES = [T.SERVICE_CONTROLLER, "System.ComponentModel.Component"]
SERVICE_TYPES += ["System.MarshalByRefObject", "System.Object"]
SERVICE_ARRAY = f"{T.SERVICE_CONTROLLER}[]"
SAFE_HANDLE_TYPES = [
    "SafeServiceHandle",
    "Microsoft.Win32.SafeHandles.SafeHandleZeroOrMinusOneIsInvalid",
    "System.Runtime.InteropServices.SafeHandle",
    "System.Runtime.ConstrainedExecution.CriticalFinalizerObject",
    "System.Object",
]
SERVICE_TYPE = "System.ServiceProcess.ServiceType"
START_MODE = "System.ServiceProcess.ServiceStartMode"


def service_object(name: str, services: Mapping[str, str]) -> ExObject:
    """A System.ServiceProcess.ServiceController as Get-Service writes it (capture
    E19-GetService.xml): Name and RequiredServices are PowerShell's alias properties (<MS>),
    ToString is the service name, the dependencies are ServiceControllers one level deep."""
    status = services.get(name, STOPPED)
    depended_on = ExList(SERVICE_ARRAY, [_related(n, services) for n in DEPENDS_ON[name]])
    properties = {
        **_common(name),
        "DependentServices": ExList(
            SERVICE_ARRAY, [_related(n, services) for n in _dependents(name)]
        ),
        "MachineName": ".",
        "ServiceName": name,
        "ServicesDependedOn": depended_on,
        "ServiceHandle": ExObject(
            SAFE_HANDLE_TYPES,
            {"IsInvalid": False, "IsClosed": False},
            to_string="SafeServiceHandle",
        ),
        "Status": ExEnum(T.SERVICE_CONTROLLER_STATUS, status, STATUS_VALUES[status]),
        "ServiceType": ExEnum(SERVICE_TYPE, "Win32OwnProcess", 16),
        "StartType": ExEnum(START_MODE, "Automatic", 2),
        "Site": None,
        "Container": None,
        "Name": name,
        "RequiredServices": depended_on,
    }
    return ExObject(SERVICE_TYPES, properties, to_string=name, notes=("Name", "RequiredServices"))


def _common(name: str) -> dict[str, Any]:
    return {
        "CanPauseAndContinue": name == TRANSPORT,
        "CanShutdown": True,
        "CanStop": True,
        "DisplayName": DISPLAY[name],
    }


def _dependents(name: str) -> list[str]:
    return [n for n, needs in DEPENDS_ON.items() if name in needs]


def _related(name: str, services: Mapping[str, str]) -> ExObject:
    """A dependency inside a ServiceController: serialised one level deeper, so its own
    collections hold names and its enums their text (as in the capture)."""
    depended_on = ExList(SERVICE_ARRAY, list(DEPENDS_ON[name]))
    properties = {
        **_common(name),
        "DependentServices": ExList(SERVICE_ARRAY, _dependents(name)),
        "MachineName": ".",
        "ServiceName": name,
        "ServicesDependedOn": depended_on,
        "ServiceHandle": "SafeServiceHandle",
        "Status": services.get(name, STOPPED),
        "ServiceType": "Win32OwnProcess",
        "StartType": "Automatic",
        "Site": None,
        "Container": None,
        "Name": name,
        "RequiredServices": depended_on,
    }
    return ExObject(SERVICE_TYPES, properties, to_string=name, notes=("Name", "RequiredServices"))


def _names(ctx: Context, params: dict[str, Any]) -> list[str]:
    """The services -Name selects: names or wildcard patterns (* ? [...]), as PowerShell's
    service cmdlets match them; a plain name that matches nothing is an error, a pattern is not."""
    wanted = params.get("Name") or list(DISPLAY)
    found: list[str] = []
    for item in wanted:
        text = str(item)
        if pattern := any(c in text for c in "*?["):
            matches = [n for n in DISPLAY if fnmatch.fnmatchcase(n.casefold(), text.casefold())]
        else:
            matches = [n for n in DISPLAY if n.casefold() == text.casefold()]
        if not matches and not pattern:
            ctx.write_error(
                f"Cannot find any service with service name '{item}'.",
                exception=SERVICE_EXCEPTION,
                category="ObjectNotFound",
                target=text,
            )
        found.extend(m for m in matches if m not in found)
    return found


def get_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Service."""
    return [service_object(n, ctx.server.services) for n in _names(ctx, params)]


def _start(ctx: Context, name: str) -> bool:
    server = ctx.server
    if any(
        f.server.casefold() == server.name.casefold() and f.service.casefold() == name.casefold()
        for f in ctx.org.service_failures
    ):
        ctx.write_error(
            f"Service '{DISPLAY[name]} ({name})' cannot be started due to the following error: "
            f"Cannot start service {name} on computer '.'.",
            exception=SERVICE_EXCEPTION,
            category="OpenError",
            target=name,
        )
        return False
    if name == ADAM:
        mailflow.start_adam(server, ctx.now)
    elif server.services.get(ADAM) != RUNNING:
        ctx.write_error(
            f"Service '{DISPLAY[name]} ({name})' cannot be started due to the following error: "
            f"Cannot start service {name} on computer '.'. The dependency service "
            f"{ADAM} is stopped.",
            exception=SERVICE_EXCEPTION,
            category="OpenError",
            target=name,
        )
        return False
    else:
        mailflow.start_transport(ctx.org, server, ctx.now)
    return True


def _control(ctx: Context, params: dict[str, Any], action: str) -> list[Any]:
    out = []
    for name in _names(ctx, params):
        state = ctx.server.services.get(name, STOPPED)
        if ctx.whatif:
            continue
        if action == "start" and state == STOPPED:
            _start(ctx, name)
        elif action in ("stop", "restart"):
            dependents = name == ADAM and ctx.server.services.get(TRANSPORT) != STOPPED
            if dependents and not params.get("Force"):
                ctx.write_error(
                    f"Cannot stop service '{DISPLAY[name]} ({name})' because it has dependent "
                    "services. It can only be stopped if the Force flag is set.",
                    exception=SERVICE_EXCEPTION,
                    category="InvalidOperation",
                    target=name,
                )
                continue
            mailflow.stop_service(ctx.server, name)  # ADAM takes transport down with it
            if action == "restart":
                _start(ctx, name)  # like PowerShell, dependents stopped with -Force stay stopped
        elif action in ("suspend", "resume"):
            if name != TRANSPORT:
                ctx.write_error(
                    f"Service '{DISPLAY[name]} ({name})' cannot be suspended because the service "
                    "does not support being suspended or resumed.",
                    exception=SERVICE_EXCEPTION,
                    category="CloseError",
                    target=name,
                )
                continue
            if action == "suspend" and state == RUNNING:
                ctx.server.services[name] = PAUSED
            elif action == "resume" and state == PAUSED:
                ctx.server.services[name] = RUNNING
        if params.get("PassThru"):
            out.append(service_object(name, ctx.server.services))
    return out


def start_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Start-Service."""
    return _control(ctx, params, "start")


def stop_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Stop-Service (-Force to stop ADAM with its dependent transport)."""
    return _control(ctx, params, "stop")


def restart_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Restart-Service (rebinds certificates)."""
    return _control(ctx, params, "restart")


def suspend_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Suspend-Service (transport stops accepting mail and drains its queues)."""
    return _control(ctx, params, "suspend")


def resume_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Resume-Service."""
    return _control(ctx, params, "resume")


SNAPIN = T.EXCHANGE_SNAPIN


def snapin_object() -> ExObject:
    """A PSSnapInInfo for the Exchange snap-in."""
    return ExObject(
        [T.PS_SNAPIN_INFO, "System.Object"],
        {
            "Name": SNAPIN,
            "IsDefault": False,
            "ApplicationBase": r"C:\Program Files\Microsoft\Exchange Server\V15\bin",
            "Description": "Admin Tasks for the Exchange Server",
            "PSVersion": "1.0",
            "Version": "15.0.0.0",
        },
        to_string=SNAPIN,
    )


def add_pssnapin(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Add-PSSnapin (only the Exchange snap-in is installed)."""
    for name in params.get("Name") or []:
        if name.casefold() != SNAPIN.casefold():
            ctx.write_error(
                f"The Windows PowerShell snap-in '{name}' is not installed on this computer.",
                exception="System.Management.Automation.PSArgumentException",
                category="InvalidArgument",
                target=name,
            )
        elif SNAPIN in ctx.session.snapins:
            ctx.write_error(
                f"Cannot add Windows PowerShell snap-in {SNAPIN} because it is already added. "
                "Verify the name of the snap-in, and then try again.",
                exception="System.Management.Automation.PSArgumentException",
                category="InvalidArgument",
                target=name,
            )
        else:
            ctx.session.snapins.add(SNAPIN)
    return [snapin_object()] if params.get("PassThru") else []


def get_pssnapin(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-PSSnapin (loaded snap-ins; -Registered lists the installed one)."""
    loaded = SNAPIN in ctx.session.snapins or bool(params.get("Registered"))
    wanted = params.get("Name")
    if wanted and not any(n.casefold() == SNAPIN.casefold() for n in wanted):
        loaded = False
    if wanted and not loaded:
        ctx.write_error(
            f"No Windows PowerShell snap-ins matching the pattern '{wanted[0]}' were found. Check "
            "the pattern and then try the command again.",
            exception="System.Management.Automation.PSArgumentException",
            category="InvalidArgument",
            target=wanted[0],
        )
    return [snapin_object()] if loaded else []


_SVC = [
    Param("Name", "strs", position=0, mandatory=True, pipeline=True, aliases=("ServiceName",)),
    Param("PassThru", "switch"),
    Param("Force", "switch"),
]
CMDLETS = [
    Cmdlet(
        "Get-Service",
        get_service,
        [Param("Name", "strs", position=0, aliases=("ServiceName",)), Param("ComputerName")],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet("Start-Service", start_service, _SVC, task=OS_TASK, exchange=False),
    Cmdlet(
        "Stop-Service",
        stop_service,
        [*_SVC, Param("NoWait", "switch")],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet("Restart-Service", restart_service, _SVC, task=OS_TASK, exchange=False),
    Cmdlet("Suspend-Service", suspend_service, _SVC, task=OS_TASK, exchange=False),
    Cmdlet("Resume-Service", resume_service, _SVC, task=OS_TASK, exchange=False),
    Cmdlet(
        "Add-PSSnapin",
        add_pssnapin,
        [Param("Name", "strs", position=0, mandatory=True), Param("PassThru", "switch")],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet(
        "Get-PSSnapin",
        get_pssnapin,
        [Param("Name", "strs", position=0), Param("Registered", "switch")],
        task=OS_TASK,
        exchange=False,
    ),
]
