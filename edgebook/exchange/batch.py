"""Batches that survive a terminating error: what came after the failed cmdlet runs next."""

from __future__ import annotations

from typing import Any

from edgebook.exchange.command import Command
from edgebook.exchange.normalize import CommandError, PSRecord
from edgebook.exchange.shell import ExchangeShell


def run_all(shell: ExchangeShell, commands: list[Command]) -> tuple[list[Any], list[CommandError]]:
    """Run the commands as one batch; a terminating error stops a batch, so what came after
    the failed command runs in the next one (one more round trip only when something failed)."""
    records: list[Any] = []
    errors: list[CommandError] = []
    pending = list(commands)
    while pending:
        result = shell.run_batch(pending, errors="return")
        records += result.records
        errors += result.errors
        names = [command.name.casefold() for command in pending]
        stop = next((e for e in result.errors if e.terminating), None)
        if stop is None or not stop.cmdlet or stop.cmdlet.casefold() not in names:
            break
        pending = pending[names.index(stop.cmdlet.casefold()) + 1 :]
    return records, errors


def by_type(records: list[Any]) -> dict[str, list[PSRecord]]:
    """Batched outputs grouped by their first wire type name without PowerShell's view suffix:
    Get-EventLog names each entry System.Diagnostics.EventLogEntry#<log>/<source>/<id> (and
    Select-Object Selected.<that>), so its entries group as Selected.…EventLogEntry."""
    grouped: dict[str, list[PSRecord]] = {}
    for record in records:
        names = getattr(record, "type_names", None) or [type(record).__name__]
        grouped.setdefault(names[0].partition("#")[0], []).append(record)
    return grouped
