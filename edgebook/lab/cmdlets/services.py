"""Get-Service and the service control cmdlets of Windows PowerShell 5.1 (Start-, Stop-,
Restart-, Suspend-, Resume-Service) on the Edge's MSExchangeTransport and ADAM_MSExchange, with
PowerShell's parameter sets (Name, DisplayName, InputObject), wildcards, -Include/-Exclude, and
its error records (ServiceCommandBase); the ServiceController objects: serviceobjects."""

from __future__ import annotations

import fnmatch
from typing import Any

from edgebook.lab.cmdlets import snapins
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.cmdlets.binding import display
from edgebook.lab.cmdlets.serviceobjects import DISPLAY, dependents, service_object
from edgebook.lab.org import mailflow
from edgebook.lab.org.model import ADAM, PAUSED, RUNNING, STOPPED, TRANSPORT

OS_TASK = "Microsoft.PowerShell.Commands"
SERVICE_EXCEPTION = "Microsoft.PowerShell.Commands.ServiceCommandException"
WILDCARDS = "*?["
LOCAL = (".", "localhost", "127.0.0.1")


class Spelt(str):
    """A service's name (the str) as a call spelt it: PowerShell 5.1 makes the ServiceController
    of a -Name without wildcards with ServiceController(name), which keeps that spelling as
    ServiceName (a service name in another case) or DisplayName (a display name)."""

    service_name: str
    display_name: str


def _spelt(name: str, text: str) -> Spelt:
    spelt = Spelt(name)
    by_display = text.casefold() == DISPLAY[name].casefold()
    spelt.service_name = name if by_display else text
    spelt.display_name = text if by_display else DISPLAY[name]
    return spelt


def _spelling(name: str) -> tuple[str, str]:
    """(ServiceName, DisplayName) of a selected service."""
    if isinstance(name, Spelt):
        return name.service_name, name.display_name
    return name, DISPLAY[name]


def _object(name: str, services: dict[str, str]) -> Any:
    return service_object(name, services, *_spelling(name))


def _label(name: str) -> str:
    """How PowerShell names a service in its messages: 'Display Name (ServiceName)'."""
    service_name, display_name = _spelling(name)
    return f"{display_name} ({service_name})"


def _error(ctx: Context, name: str, text: str, code: str, category: str) -> None:
    target = name.service_name if isinstance(name, Spelt) else name
    ctx.write_error(text, exception=SERVICE_EXCEPTION, category=category, target=target, code=code)


def _wild(text: str) -> bool:
    return any(c in text for c in WILDCARDS)


def _like(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value.casefold(), pattern.casefold())


def _check_computer(ctx: Context, params: dict[str, Any]) -> None:
    """-ComputerName: the local server only (the lab has no remote service control)."""
    local = {*LOCAL, ctx.server.name.casefold(), ctx.server.fqdn.casefold()}
    remote = [c for c in params.get("ComputerName") or [] if c.casefold() not in local]
    if remote:
        raise ctx.fail(
            f"The edgebook lab does not simulate the ComputerName parameter of "
            f"{ctx.cmdlet.name} for another computer ('{remote[0]}'). Run the cmdlet on that "
            "server, or leave -ComputerName out.",
            exception="System.Management.Automation.PSNotSupportedException",
            category="NotImplemented",
            target=remote[0],
            code="LabParameterNotSimulated",
        )


def _by_name(ctx: Context, patterns: list[str]) -> list[str]:
    """-Name: service names or wildcard patterns; a plain name may also be a display name (as
    ServiceController resolves it); a plain name that matches nothing is an error."""
    found: list[str] = []
    for text in patterns:
        if _wild(text):
            matches = sorted((n for n in DISPLAY if _like(n, text)), key=str.casefold)
        else:
            matches = [
                _spelt(n, text)
                for n in DISPLAY
                if text.casefold() in (n.casefold(), DISPLAY[n].casefold())
            ]
            if not matches:
                _error(
                    ctx,
                    text,
                    f"Cannot find any service with service name '{text}'.",
                    "NoServiceFoundForGivenName",
                    "ObjectNotFound",
                )
        found.extend(m for m in matches if m not in found)
    return found


def _by_display_name(ctx: Context, patterns: list[str]) -> list[str]:
    found: list[str] = []
    for text in patterns:
        matches = sorted((n for n in DISPLAY if _like(DISPLAY[n], text)), key=str.casefold)
        if not matches and not _wild(text):
            _error(
                ctx,
                text,
                f"Cannot find any service with display name '{text}'.",
                "NoServiceFoundForGivenDisplayName",
                "ObjectNotFound",
            )
        found.extend(m for m in matches if m not in found)
    return found


def _by_object(ctx: Context, items: list[Any]) -> list[str]:
    """-InputObject: ServiceControllers (their ServiceName); a piped string is a name."""
    found: list[str] = []
    for item in items:
        if isinstance(item, str):
            found.extend(n for n in _by_name(ctx, [item]) if n not in found)
            continue
        properties = getattr(item, "properties", {})
        name = str(properties.get("ServiceName") or properties.get("Name") or display(item))
        known = next((n for n in DISPLAY if n.casefold() == name.casefold()), None)
        if known is None:
            _error(
                ctx,
                name,
                f"Cannot find any service with service name '{name}'.",
                "NoServiceFoundForGivenName",
                "ObjectNotFound",
            )
        elif known not in found:
            found.append(_spelt(known, name))
    return found


def select(ctx: Context, params: dict[str, Any]) -> list[str]:
    """The services a call selects (PowerShell's MatchingServices), -Include/-Exclude applied to
    the service names (to the display names with -DisplayName), sorted by service name as
    MatchingServices sorts them (whatever the order they were named in)."""
    if params.get("InputObject") is not None:
        value = params["InputObject"]
        names = _by_object(ctx, value if isinstance(value, list) else [value])
    elif params.get("DisplayName"):
        names = _by_display_name(ctx, params["DisplayName"])
    else:
        names = _by_name(ctx, params.get("Name") or ["*"])
    by_display = bool(params.get("DisplayName"))

    def key(name: str) -> str:
        return DISPLAY[name] if by_display else name

    if params.get("Include"):
        names = [n for n in names if any(_like(key(n), p) for p in params["Include"])]
    if params.get("Exclude"):
        names = [n for n in names if not any(_like(key(n), p) for p in params["Exclude"])]
    return sorted(names, key=str.casefold)


def get_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Service (-DependentServices / -RequiredServices: those of the selected services)."""
    _check_computer(ctx, params)
    out: list[Any] = []
    services = ctx.server.services
    for name in select(ctx, params):
        if not params.get("DependentServices") and not params.get("RequiredServices"):
            out.append(_object(name, services))
            continue
        if params.get("DependentServices"):
            out.extend(service_object(n, services) for n in dependents(name))
        if params.get("RequiredServices"):
            out.extend(service_object(n, services) for n in _required(name))
    return out


def _required(name: str) -> list[str]:
    return [ADAM] if name == TRANSPORT else []


def _start(ctx: Context, name: str) -> bool:
    """StartService: the SCM starts a stopped dependency first; a paused service is not
    started (PowerShell waits for Running and gives up)."""
    server = ctx.server
    state = server.services.get(name, STOPPED)
    if state == RUNNING:
        return True
    if state == PAUSED:
        _error(
            ctx,
            name,
            f"Failed to start service '{_label(name)}'.",
            "StartServiceFailed",
            "OpenError",
        )
        return False
    broken = {
        f.service.casefold()
        for f in ctx.org.service_failures
        if f.server.casefold() == server.name.casefold()
    }
    chain = [*(r for r in _required(name) if server.services.get(r) != RUNNING), name]
    if any(n.casefold() in broken for n in chain):
        _error(
            ctx,
            name,
            f"Service '{_label(name)}' cannot be started due to the following error: Cannot "
            f"start service {name} on computer '.'.",
            "CouldNotStartService",
            "OpenError",
        )
        return False
    for n in chain:
        if n == ADAM:
            mailflow.start_adam(server, ctx.now)
        else:
            mailflow.start_transport(ctx.org, server, ctx.now)
    _waited(ctx, name, "start")
    return True


def _waited(ctx: Context, name: str, verb: str) -> None:
    """DoWaitForStatus's warning, written every 2 seconds the service is still pending: the
    lab's transport takes longer than that to start or stop (once), AD LDS less (never)."""
    if name == TRANSPORT:
        ctx.warn(f"Waiting for service '{_label(name)}' to {verb}...")


def _stop(ctx: Context, name: str, force: bool) -> list[str] | None:
    """DoStopService: the services stopped (the running dependents first), None after an
    error. Dependents that are not stopped need -Force; paused ones stop but are not listed."""
    waiting = [n for n in dependents(name) if ctx.server.services.get(n, STOPPED) != STOPPED]
    if waiting and not force:
        _error(
            ctx,
            name,
            f"Cannot stop service '{_label(name)}' because it has dependent services. It can "
            "only be stopped if the Force flag is set.",
            "ServiceHasDependentServices",
            "InvalidOperation",
        )
        return None
    running = [n for n in waiting if ctx.server.services.get(n) == RUNNING]
    was = ctx.server.services.get(name, STOPPED)
    mailflow.stop_service(ctx.server, str(name))
    if was != STOPPED:
        _waited(ctx, name, "stop")
    return [*running, name]


def _pause(ctx: Context, name: str, resume: bool) -> bool:
    """DoPauseService / DoResumeService: PowerShell writes the specific error, then the
    general one with the ServiceController's exception text."""
    state = ctx.server.services.get(name, STOPPED)
    verb, word, control = (
        ("resumed", "Resume", "resume") if resume else ("suspended", "Suspend", "pause")
    )
    if state == STOPPED:
        reason, why = "NotRunning", "it is not currently running"
    elif name != TRANSPORT:
        reason, why = "NotSupported", "the service does not support being suspended or resumed"
    else:
        ctx.server.services[str(name)] = RUNNING if resume else PAUSED
        return True
    label = _label(name)
    _error(
        ctx,
        name,
        f"Service '{label}' cannot be {verb} because {why}.",
        f"CouldNot{word}Service{reason}",
        "CloseError",
    )
    _error(
        ctx,
        name,
        f"Service '{label}' cannot be {verb} due to the following error: Cannot {control} "
        f"{name} service on computer '.'.",
        f"CouldNot{word}Service",
        "CloseError",
    )
    return False


def _control(ctx: Context, params: dict[str, Any], action: str) -> list[Any]:
    out: list[str] = []
    for name in select(ctx, params):
        if not ctx.should_process(
            f'Performing the operation "{ctx.cmdlet.name}" on target "{_label(name)}".'
        ):
            continue
        if action == "start":
            done = [name] if _start(ctx, name) else []
        elif action in ("stop", "restart"):
            done = _stop(ctx, name, bool(params.get("Force"))) or []
            if action == "restart":
                # PowerShell's RestartServiceCommand starts again every service DoStopService
                # stopped: the dependents that were running (a paused one stops and stays
                # stopped), then the service itself
                done = [n for n in done if _start(ctx, n)]
        else:
            done = [name] if _pause(ctx, name, resume=action == "resume") else []
        out.extend(done)
    if not params.get("PassThru"):
        return []
    return [_object(n, ctx.server.services) for n in out]


def start_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Start-Service (a running service: nothing to do, no error)."""
    return _control(ctx, params, "start")


def stop_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Stop-Service (-Force to stop ADAM with its dependent transport)."""
    return _control(ctx, params, "stop")


def restart_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Restart-Service (rebinds certificates; with -Force the running dependents it stopped
    start again, paused ones stay stopped)."""
    return _control(ctx, params, "restart")


def suspend_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Suspend-Service (transport stops accepting mail and drains its queues)."""
    return _control(ctx, params, "suspend")


def resume_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Resume-Service."""
    return _control(ctx, params, "resume")


def _selection(mandatory: bool) -> list[Param]:
    """-Name / -DisplayName / -InputObject in their parameter sets, -Include, -Exclude."""
    return [
        Param(
            "Name",
            "strs",
            position=0,
            mandatory=mandatory,
            pipeline=True,
            aliases=("ServiceName",),
            sets=("Default",),
        ),
        Param("DisplayName", "strs", mandatory=True, sets=("DisplayName",)),
        Param(
            "InputObject",
            "any",
            position=0,
            mandatory=mandatory,
            pipeline=True,
            whole=True,
            sets=("InputObject",),
        ),
        Param("Include", "strs"),
        Param("Exclude", "strs"),
    ]


_CONTROL = [*_selection(mandatory=True), Param("PassThru", "switch")]
NO_WAIT = (
    "the lab's services stop at once; with -NoWait a real service may still be StopPending "
    "when the next command runs"
)


def _control_cmdlet(name: str, func: Any, extra: list[Param]) -> Cmdlet:
    return Cmdlet(
        name, func, [*_CONTROL, *extra], task=OS_TASK, exchange=False, default_set="InputObject"
    )


CMDLETS = [
    Cmdlet(
        "Get-Service",
        get_service,
        [
            *_selection(mandatory=False),
            Param("DependentServices", "switch", aliases=("DS",)),
            Param("RequiredServices", "switch", aliases=("SDO", "ServicesDependedOn")),
            Param("ComputerName", "strs", aliases=("Cn",)),
        ],
        task=OS_TASK,
        exchange=False,
        default_set="Default",
    ),
    _control_cmdlet("Start-Service", start_service, []),
    _control_cmdlet(
        "Stop-Service",
        stop_service,
        [Param("Force", "switch"), Param("NoWait", "switch", unsimulated=NO_WAIT)],
    ),
    _control_cmdlet("Restart-Service", restart_service, [Param("Force", "switch")]),
    _control_cmdlet("Suspend-Service", suspend_service, []),
    _control_cmdlet("Resume-Service", resume_service, []),
    *snapins.CMDLETS,
]
