"""CREATE_PIPELINE messages edgebook sends the lab: every first fragment of a WSMan Command the
lab receives while inspect, phase 02, phase 03 (resubscribe route) and phase 04's planning run
on EDGE01 of a seed-incident lab in process, with the pipeline id and the pool's cipher (the
session key its SecureStrings are encrypted with); and the exact form of a decoded request."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from psrpcore.types import PSCryptoProvider

from edgebook.evidence import layout
from edgebook.exchange.secure import SecureText
from edgebook.lab.winrm.pipeline_reader import PipelineRequest
from edgebook.lab.winrm.runspace import ShellRunspace
from edgebook.phases import inspect, resubscribe, verify
from edgebook.phases.resubscribe import Options
from tests.support.resubscribe import CHANGE, InProcessLab

EDGE = "EDGE01"
Received = tuple[bytes, uuid.UUID, PSCryptoProvider]


def phase_messages(folder: Path) -> list[Received]:
    """The CreatePipeline fragments the lab receives from the phases (a new lab in folder)."""
    received: list[Received] = []
    original = ShellRunspace.create_pipeline

    def record(shell: ShellRunspace, command_id: str, fragment: bytes) -> None:
        received.append((fragment, uuid.UUID(command_id), shell._pool._cipher))
        original(shell, command_id, fragment)

    outputs = {layout.OUTPUTS_ENV: str(folder / "outputs")}
    with (
        mock.patch.object(ShellRunspace, "create_pipeline", record),
        mock.patch.dict(os.environ, outputs),
    ):
        _run_phases(InProcessLab(folder / "lab"))
    return received


def _run_phases(lab: InProcessLab) -> None:
    inspect.inspect(lab.inventory, shell_factory=lab.factory)
    lab.prepare(EDGE)
    options = Options(
        replace_default_certificate=True,
        remove_subscription_first=False,
        drain_timeout=30,
        sync_timeout=30,
        poll_every=0.2,
    )
    planned = resubscribe.plan(lab.inventory, EDGE, CHANGE, options, shell_factory=lab.factory)
    result: Any = resubscribe.apply(
        planned, planned.plan.sha256, shell_factory=lab.factory, probe=lab.probe
    )
    if not result.completed:
        raise RuntimeError(f"phase 03 did not complete: {result.error}")
    verify.plan_verification(lab.inventory, EDGE, CHANGE, shell_factory=lab.factory)


def canonical(value: Any) -> Any:
    """A value's exact form (types, order, a SecureText's text): equal forms, identical values."""
    if isinstance(value, SecureText):
        return ("SecureText", value.reveal())
    if isinstance(value, dict):
        return ("dict", [(canonical(key), canonical(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [canonical(item) for item in value])
    return (type(value).__qualname__, repr(value))


def form(request: PipelineRequest) -> Any:
    """A request's exact form: each command's name, kind, parameters and statement end."""
    commands = [
        (c.name, c.is_script, [(n, canonical(v)) for n, v in c.parameters], c.end_of_statement)
        for c in request.commands
    ]
    return commands, request.no_input, request.host
