"""The System.ServiceProcess.ServiceController objects of the Edge's Windows services
(MSExchangeTransport, ADAM_MSExchange) as Get-Service and the other service cmdlets write them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.org.model import ADAM, STOPPED, TRANSPORT
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject

STATUS_VALUES = {"Stopped": 1, "Running": 4, "Paused": 7}
DISPLAY = {TRANSPORT: "Microsoft Exchange Transport", ADAM: "Microsoft Exchange ADAM"}
# On an Edge, MSExchangeTransport depends on the AD LDS instance (lab's simplification: no other
# dependencies; docs/serialization.md).
DEPENDS_ON = {TRANSPORT: (ADAM,), ADAM: ()}
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


def service_object(
    name: str,
    services: Mapping[str, str],
    service_name: str | None = None,
    display_name: str | None = None,
) -> ExObject:
    """A System.ServiceProcess.ServiceController as Get-Service writes it (capture
    E19-GetService.xml): Name and RequiredServices are PowerShell's alias properties (<MS>),
    ToString is the service name, the dependencies are ServiceControllers one level deep.
    service_name / display_name: the spelling the controller was made with (services.Spelt)."""
    service_name = service_name or name
    status = services.get(name, STOPPED)
    depended_on = ExList(SERVICE_ARRAY, [_related(n, services) for n in DEPENDS_ON[name]])
    properties = {
        **_common(name, status),
        "DisplayName": display_name or DISPLAY[name],
        "DependentServices": ExList(
            SERVICE_ARRAY, [_related(n, services) for n in dependents(name)]
        ),
        "MachineName": ".",
        "ServiceName": service_name,
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
        "Name": service_name,
        "RequiredServices": depended_on,
    }
    return ExObject(
        SERVICE_TYPES, properties, to_string=service_name, notes=("Name", "RequiredServices")
    )


def _common(name: str, status: str) -> dict[str, Any]:
    """The Can* properties are the controls the service accepts now (SERVICE_STATUS
    dwControlsAccepted): none while it is stopped ("CanStop will be set false if the service is
    not running", PowerShell's DoStopService)."""
    running = status != STOPPED
    return {
        "CanPauseAndContinue": running and name == TRANSPORT,
        "CanShutdown": running,
        "CanStop": running,
        "DisplayName": DISPLAY[name],
    }


def dependents(name: str) -> list[str]:
    return [n for n, needs in DEPENDS_ON.items() if name in needs]


def _related(name: str, services: Mapping[str, str]) -> ExObject:
    """A dependency inside a ServiceController: serialised one level deeper, so its own
    collections hold names and its enums their text (as in the capture)."""
    depended_on = ExList(SERVICE_ARRAY, list(DEPENDS_ON[name]))
    properties = {
        **_common(name, services.get(name, STOPPED)),
        "DependentServices": ExList(SERVICE_ARRAY, dependents(name)),
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
