"""The contract between the lab's WSMan/PSRP endpoint and the simulated organisation.

The endpoint (edgebook.lab.winrm.wsman) decodes PSRP pipelines into Statement lists and calls
Backend.invoke; the organisation (edgebook.lab.backend) runs them and returns an Invocation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class CommandCall:
    """One command of a pipeline: a cmdlet (or a script text, which NoLanguage refuses)."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)  # -Name value (switch: True)
    arguments: list[Any] = field(default_factory=list)  # positional values
    is_script: bool = False


# A statement is a pipeline: the output of each command is the input of the next.
Statement = list[CommandCall]


@dataclass
class ErrorInfo:
    """An ErrorRecord's essentials, as Exchange writes them."""

    message: str
    fully_qualified_error_id: str
    category: str = "NotSpecified"  # System.Management.Automation.ErrorCategory name
    target: str | None = None
    exception_type: str = "System.Exception"
    command: str | None = None  # the command that wrote it (the record's Activity)


@dataclass
class Invocation:
    """What a pipeline produced: output objects, non-terminating errors, a terminating error."""

    output: list[Any] = field(default_factory=list)
    errors: list[ErrorInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    terminating: ErrorInfo | None = None


@dataclass
class Session:
    """Per-runspace-pool state on the endpoint side (e.g. which snap-ins are loaded)."""

    server: str
    configuration_name: str
    snapins: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Choice:
    """One choice of a PromptForChoice question (a ChoiceDescription: "&Yes" and its help)."""

    label: str
    help: str = ""


class HostError(Exception):
    """A host call that brought no answer (the client refused it, or the pipeline stopped)."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class Host(Protocol):
    """The client's host UI as a pipeline reaches it (PSRP host calls); None when it has none."""

    def prompt_for_choice(
        self, caption: str, message: str, choices: Sequence[Choice], default: int
    ) -> int:
        """Ask the client; the index of the chosen choice. HostError when no answer came."""
        ...


class Backend(Protocol):
    """Runs pipelines for a server of the lab."""

    def invoke(
        self,
        session: Session,
        statements: list[Statement],
        input: list[Any],
        host: Host | None = None,
    ) -> Invocation:
        """Run the statements in order (input feeds the first command of the first); cmdlets
        that ask a question ask it through host (None: the client declared no host UI)."""
        ...

    def authenticate(self, server: str, username: str, password: str) -> bool:
        """Whether these credentials may open a shell on this server."""
        ...

    def count_request(self, server: str) -> None:
        """Count one WSMan request to this server (readable by tests and benchmarks)."""
        ...


@runtime_checkable
class CredentialSource(Protocol):
    """Optional Backend extension that NTLM (Negotiate) authentication needs.

    NTLM never sends the password, so the endpoint cannot call authenticate(); it checks the
    client's NTLM response against this account instead (its NT hash is computed in memory).
    A Backend without this method can only serve Basic authentication.
    """

    def credential(self, server: str) -> tuple[str, str] | None:
        """(username, password) of the account allowed on this server, or None if there is none.

        username is the canonical name, e.g. EDGE01\\Administrator; NTLM clients may also use
        .\\Administrator or Administrator (case-insensitive).
        """
        ...
