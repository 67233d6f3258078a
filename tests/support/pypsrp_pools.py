"""Runspace pools an independent client (raw pypsrp, no edgebook shell) opens on the lab:
EDGE01 over Microsoft.PowerShell and EX01 over Microsoft.Exchange, in process."""

from __future__ import annotations

from typing import Any

from pypsrp.powershell import RunspacePool

from edgebook.exchange.wire_types import EDGE_SHAPE, MAILBOX_SHAPE
from edgebook.lab.backend import LabBackend
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.lab import PASSWORD


def open_pools(
    backend: LabBackend, host: Any = None, *, exchange_keys: bool = False
) -> tuple[list[WSManEndpoint], dict[str, RunspacePool]]:
    """The endpoints and an opened pool per server (with the session key when asked: what
    SecureString parameters need)."""
    endpoints: list[WSManEndpoint] = []
    pools: dict[str, RunspacePool] = {}
    for server, user, (path, configuration) in (
        ("EDGE01", "EDGE01\\Administrator", EDGE_SHAPE),
        ("EX01", "CONTOSO\\Administrator", MAILBOX_SHAPE),
    ):
        endpoint = WSManEndpoint(backend, server, path=path, configuration_names={configuration})
        endpoints.append(endpoint)
        pool = RunspacePool(
            connect_in_process(endpoint, user, PASSWORD),
            configuration_name=configuration,
            host=host,
        )
        pool.open()
        if exchange_keys:
            pool.exchange_keys()
        pools[server] = pool
    return endpoints, pools


def close_pools(endpoints: list[WSManEndpoint], pools: dict[str, RunspacePool]) -> None:
    """Close the pools, then the endpoints."""
    for pool in pools.values():
        pool.close()
    for endpoint in endpoints:
        endpoint.close()
