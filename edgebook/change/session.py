"""Shells for a change: one per server, opened on first use, all closed at the end."""

from __future__ import annotations

from typing import Any

from edgebook.config import Inventory
from edgebook.exchange import connect
from edgebook.exchange.connect import DEFAULT_TIMEOUT_S, ShellFactory, resolve_credentials


class ShellPool:
    """shell_for(server) for the engine; a context manager that closes what it opened."""

    def __init__(
        self,
        inventory: Inventory,
        servers: list[str],
        factory: ShellFactory | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.inventory = inventory
        known = [inventory.server(name) for name in dict.fromkeys(servers)]
        self.factory = factory or connect.shell_factory(resolve_credentials(known), timeout)
        self.open: dict[str, Any] = {}

    def __call__(self, server: str) -> Any:
        name = self.inventory.server(server).name
        if name not in self.open:
            self.open[name] = self.factory(self.inventory, name)
        return self.open[name]

    def __enter__(self) -> ShellPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        while self.open:
            _, shell = self.open.popitem()
            shell.close()

    def answers(self) -> list[Any]:
        """Every question answered in the sessions opened so far."""
        return [a for shell in self.open.values() for a in getattr(shell, "answers", [])]
