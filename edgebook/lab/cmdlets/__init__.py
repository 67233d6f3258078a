"""The lab's cmdlets, by name."""

from __future__ import annotations

from edgebook.lab.cmdlets import (
    certificates,
    connectors,
    filesystem,
    queues,
    services,
    subscriptions,
    synchronization,
    transport,
    utility,
)
from edgebook.lab.cmdlets.base import Cmdlet

REGISTRY: dict[str, Cmdlet] = {
    cmdlet.name.casefold(): cmdlet
    for module in (
        certificates,
        connectors,
        filesystem,
        queues,
        services,
        subscriptions,
        synchronization,
        transport,
        utility,
    )
    for cmdlet in module.CMDLETS
}
