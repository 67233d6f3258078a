"""Phase 03 tests without sockets: the unmodified pypsrp client (ExchangeShell) talks to the
lab's WSMan endpoints in process, the lab's listener state stands in for the TLS probes, and
phase 02 is applied first the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509

from edgebook.certs import thumbprint
from edgebook.config import Inventory, load_inventory
from edgebook.exchange.shell import ExchangeShell
from edgebook.exchange.wire_types import EDGE_SHAPE, MAILBOX_SHAPE
from edgebook.lab import control
from edgebook.lab.backend import LabBackend
from edgebook.lab.folder import lab_password
from edgebook.lab.org.listener_state import listener_state
from edgebook.lab.org.store import LabStore, clock
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.wsman import WSManEndpoint
from edgebook.phases import prepare
from edgebook.phases.resubscribe import Options

CHANGE = "CHG-0303"
FAST = Options(drain_timeout=30, sync_timeout=30, poll_every=0.2)  # the lab answers at once


class InProcessLab:
    """A lab folder driven in process: shells, probes, counters."""

    def __init__(
        self, directory: Path, scenario: str = "seed-incident", *, create: bool = True
    ) -> None:
        if create:
            control.create(directory, scenario)
            control.start(directory)  # writes inventory.yaml (its ports are not used here)
            control.stop(directory)
        self.directory = directory
        self.store = LabStore(directory)
        self.backend = LabBackend(self.store)
        self.password, _ = lab_password(directory)
        self.inventory: Inventory = load_inventory(directory / "inventory.yaml")
        self.dropped: set[str] = set()  # servers whose next connection attempt fails

    def factory(self, inventory: Inventory, name: str) -> ExchangeShell:
        """A shell factory (edgebook.exchange.connect.ShellFactory) without sockets."""
        server = inventory.server(name)
        org_server = self.store.read().server(server.name)
        path, configuration = MAILBOX_SHAPE if org_server.role == "Mailbox" else EDGE_SHAPE
        endpoint = WSManEndpoint(
            self.backend, server.name, path=path, configuration_names={configuration}
        )
        wsman = connect_in_process(endpoint, org_server.admin_username, self.password)
        return ExchangeShell(
            server.name, server.winrm, None, role=server.role, lab=True, wsman=wsman
        )

    def probe(self, edge: str, kind: str) -> str | None:
        """The thumbprint the Edge's SMTP or LDAPS listener presents now."""
        org = self.store.read()
        state = listener_state(org, edge, kind, clock(org))  # type: ignore[arg-type]
        if state.certificate is None:
            return None
        return thumbprint(x509.load_pem_x509_certificates(state.certificate[0])[0])

    def pipelines(self) -> dict[str, int]:
        """Pipelines run per server so far (the lab's counters)."""
        return {k: v.get("pipelines", 0) for k, v in self.store.counters().items()}

    def prepare(self, edge: str, change: str = CHANGE) -> Any:
        """Phase 02 planned and applied for an Edge (the certificate staged on EX01)."""
        planned = prepare.prepare(self.inventory, edge, change, shell_factory=self.factory)
        result = prepare.apply(planned, planned.plan.sha256, shell_factory=self.factory)
        assert result.completed, result.error
        return planned

    def ok(self, server: str, cmdlet: str, **params: Any) -> list[Any]:
        """Run one cmdlet in its own shell (a consultant's console)."""
        with self.factory(self.inventory, server) as shell:
            return shell.run(cmdlet, **params)
