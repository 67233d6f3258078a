"""Shells for the servers of an inventory: credentials resolved once, every wait bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from edgebook.config import Inventory, Server
from edgebook.exchange.shell import ExchangeShell
from edgebook.secrets import Credential

DEFAULT_TIMEOUT_S = 300.0  # the most one server's read may take (WinRM call timeout)

ShellFactory = Callable[[Inventory, str], ExchangeShell]


def resolve_credentials(servers: Iterable[Server]) -> dict[str, Credential | None]:
    """The password of every server, resolved one after the other before any thread starts:
    prompts do not interleave, and a missing secret stops the run before any connection. A
    reference shared by several servers (same user) is resolved once."""
    resolved: dict[tuple[str, str], Credential] = {}
    credentials: dict[str, Credential | None] = {}
    for server in servers:
        reference = server.credential
        if reference is None:
            credentials[server.name] = None
            continue
        key = (reference.username, reference.password)
        if key not in resolved:
            resolved[key] = reference.resolve(what=f"{server.name} ({server.winrm.url})")
        credentials[server.name] = resolved[key]
    return credentials


def shell_factory(
    credentials: dict[str, Credential | None], timeout: float = DEFAULT_TIMEOUT_S
) -> ShellFactory:
    """Shells with the resolved credentials and every wait bounded by timeout seconds."""

    def factory(inventory: Inventory, name: str) -> ExchangeShell:
        server = inventory.server(name)
        return ExchangeShell(
            server.name,
            server.winrm,
            credentials[server.name],
            role=server.role,
            lab=inventory.lab,
            call_timeout=timeout,
            connection_timeout=min(15.0, timeout),
            operation_timeout=max(1, min(20, int(timeout))),
        )

    return factory
