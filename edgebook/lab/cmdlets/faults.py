"""Injected faults: a cmdlet fails (optionally only its Nth call, optionally on one server), or
a service fails to start."""

from __future__ import annotations

from typing import Any

from edgebook.errors import EdgebookError
from edgebook.lab.cmdlets import REGISTRY
from edgebook.lab.cmdlets.base import Context
from edgebook.lab.org.model import ADAM, TRANSPORT, Fault, ServiceFailure


def set_fault(
    store: Any,
    cmdlet: str,
    server: str | None = None,
    nth: int | None = None,
    message: str | None = None,
) -> Fault:
    """Make a cmdlet fail (its Nth call from now when nth is given; on one server if given).

    Refused for a name that is not one of the lab's cmdlets: such a fault would never fire.
    """
    known = REGISTRY.get(str(cmdlet).strip().casefold())
    if known is None:
        names = ", ".join(sorted(c.name for c in REGISTRY.values()))
        raise EdgebookError(f"the lab has no cmdlet {cmdlet!r}; its cmdlets: {names}")
    if nth is not None and nth < 1:
        raise EdgebookError(f"--nth must be 1 or more, got {nth}")
    with store.transaction(()) as org:
        if server is not None:
            server = org.server(server).name
        fault = Fault(cmdlet=known.name, server=server, nth=nth, message=message)
        org.faults.append(fault)
    return fault


def set_service_failure(store: Any, server: str, service: str) -> ServiceFailure:
    """Make a service (MSExchangeTransport or ADAM_MSExchange) fail to start on a server."""
    if service.casefold() not in (TRANSPORT.casefold(), ADAM.casefold()):
        raise EdgebookError(f"unknown service {service!r}; use {TRANSPORT} or {ADAM}")
    with store.transaction(()) as org:
        name = org.server(server).name
        canonical = TRANSPORT if service.casefold() == TRANSPORT.casefold() else ADAM
        failure = ServiceFailure(name, canonical)
        org.service_failures.append(failure)
    return failure


def clear_faults(store: Any) -> None:
    """Remove every injected fault and service failure."""
    with store.transaction(()) as org:
        org.faults.clear()
        org.service_failures.clear()


def check_fault(ctx: Context) -> None:
    """Raise the injected error if a fault matches this call (counts the calls)."""
    for fault in ctx.org.faults:
        if fault.cmdlet.casefold() != ctx.cmdlet.name.casefold():
            continue
        if fault.server is not None and fault.server.casefold() != ctx.server.name.casefold():
            continue
        fault.calls += 1
        if fault.nth is None or fault.calls == fault.nth:
            message = fault.message or (
                f"The lab injected a failure into {ctx.cmdlet.name} on {ctx.server.name}."
            )
            raise ctx.fail(
                message, exception="Microsoft.Exchange.Data.DataSourceOperationException"
            )
