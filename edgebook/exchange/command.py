"""The command model of the Exchange client: what a pipeline sends and what it returns.

A Command is one cmdlet with its parameters, optionally piped into further cmdlets (one
statement of a batched pipeline); a Result is what a pipeline gave back (outputs, errors,
warnings, answered questions); add_statements writes Commands into a pypsrp PowerShell with
their parameter values as the wire needs them. Steps, plans and reads build Commands without
needing the session that runs them (edgebook.exchange.shell).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pypsrp.powershell import PowerShell

from edgebook.exchange.normalize import CommandError
from edgebook.exchange.questions import AnsweredQuestion
from edgebook.exchange.wire_values import wire_value


@dataclass(frozen=True)
class Command:
    """One cmdlet with its parameters (a statement of a batched pipeline); `then` pipes its
    output into further cmdlets of the same statement (e.g. Select-Object)."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    then: tuple[Command, ...] = ()

    def chain(self) -> tuple[Command, ...]:
        """This command and the ones it pipes into, in order."""
        return (self, *self.then)

    def select(self, properties: Iterable[str]) -> Command:
        """This command piped into `Select-Object -Property properties`: projected on the
        server, only those properties cross the wire (as `Selected.<type>` objects)."""
        projection = Command("Select-Object", {"Property": list(properties)})
        return Command(self.name, self.parameters, (*self.then, projection))


@dataclass(frozen=True)
class Result:
    """Outputs, errors, warnings and answered questions of one pipeline (``errors="return"``)."""

    records: list[Any]
    errors: list[CommandError]
    warnings: list[str]
    answers: list[AnsweredQuestion] = field(default_factory=list)


def add_statements(ps: PowerShell, statements: list[Command]) -> None:
    """Add each statement (a Command and what it pipes into) to a pypsrp PowerShell, its
    parameter values as the wire needs them."""
    for statement in statements:
        for command in statement.chain():
            ps.add_cmdlet(command.name)
            for parameter, value in command.parameters.items():
                ps.add_parameter(parameter, wire_value(command.name, parameter, value))
        ps.add_statement()
