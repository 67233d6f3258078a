"""The changes `edgebook lab` makes to a lab, applied alike by the daemon and to a stopped lab.

Each takes a store (the daemon's ResidentStore, or a LabStore on the folder of a stopped lab)
and JSON-ready arguments, and returns a JSON-ready result.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from edgebook.errors import EdgebookError
from edgebook.lab.cmdlets.faults import clear_faults, set_fault, set_service_failure
from edgebook.lab.org.model import ADAM
from edgebook.lab.org.store import LabStore


def _check_server(store: LabStore, name: str, service: str | None = None) -> None:
    """Refuse --server naming no server of the lab (or one without that service)."""
    org = store.read()
    server = org.find_server(name)
    if server is None:
        names = ", ".join(s.name for s in org.servers)
        raise EdgebookError(f"--server {name!r}: the lab has no such server; its servers: {names}")
    if service is not None and service.casefold() == ADAM.casefold() and server.role != "Edge":
        edges = ", ".join(s.name for s in org.servers if s.role == "Edge") or "none"
        raise EdgebookError(
            f"--service {service}: {server.name} is a {server.role} server and runs no "
            f"{ADAM}; name an Edge with --server ({edges})"
        )


def advance(store: LabStore, minutes: float) -> dict[str, Any]:
    """Move the lab clock forward."""
    return {"clock": store.advance(minutes).isoformat()}


def fault(
    store: LabStore,
    cmdlet: str,
    server: str | None = None,
    nth: int | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """Make a cmdlet fail; returns its canonical name and server."""
    if server is not None:
        _check_server(store, server)
    injected = set_fault(store, cmdlet, server=server, nth=nth, message=message)
    return {"cmdlet": injected.cmdlet, "server": injected.server}


def service_failure(store: LabStore, server: str, service: str) -> dict[str, Any]:
    """Make a service fail to start on a server."""
    _check_server(store, server, service)
    failure = set_service_failure(store, server, service)
    return {"server": failure.server, "service": failure.service}


def clear(store: LabStore) -> dict[str, Any]:
    """Remove every injected fault."""
    clear_faults(store)
    return {}


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "advance": advance,
    "fault": fault,
    "service-failure": service_failure,
    "clear-faults": clear,
}


def apply(store: LabStore, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one operation by name; EdgebookError for an unknown one or bad arguments."""
    operation = OPERATIONS.get(op)
    if operation is None:
        raise EdgebookError(f"unknown lab operation {op!r}; known: {', '.join(OPERATIONS)}")
    try:
        inspect.signature(operation).bind(store, **args)
    except TypeError as exc:
        raise EdgebookError(f"bad arguments for the lab operation {op!r}: {exc}") from None
    return operation(store, **args)
