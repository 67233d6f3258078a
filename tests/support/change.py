"""A small fake Exchange for the change engine's unit tests: a few cmdlets over a dict, a shell
with run_batch(commands, errors=, questions=) that answers questions like edgebook's PSRP host,
and failure injection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgebook.change.reads import OUTPUT_TYPES
from edgebook.exchange.command import Command
from edgebook.exchange.normalize import CommandError, PSRecord
from edgebook.exchange.questions import AnsweredQuestion, UnexpectedQuestion
from edgebook.exchange.secure import SecureText
from edgebook.exchange.wire_values import Null

LOCK_FILE = r"c:\programdata\edgebook\change.lock"


@dataclass
class FakeResult:
    records: list[Any]
    errors: list[CommandError]
    warnings: list[str]
    answers: list[AnsweredQuestion] = field(default_factory=list)


@dataclass
class World:
    """The state the fake cmdlets read and change."""

    certificates: dict[str, dict[str, str]] = field(default_factory=dict)  # server -> thumb -> svc
    defaults: dict[str, str] = field(default_factory=dict)
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=lambda: {"MSExchangeTransport": "Running"})
    files: dict[str, str] = field(default_factory=dict)
    fail: dict[str, str] = field(default_factory=dict)  # cmdlet -> error message (once)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    secrets_seen: list[str] = field(default_factory=list)


class FakeShell:
    """One server's session on the fake world."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.answers: list[AnsweredQuestion] = []

    def run_batch(
        self, commands: list[Command], *, errors: str = "raise", questions: tuple = ()
    ) -> FakeResult:
        result = FakeResult([], [], [])
        for command in commands:
            self.world.calls.append((self.name, command.name, dict(command.parameters)))
            params = {  # $null arrives as null, as through the real shell (wire_value)
                k: None if isinstance(v, Null) else v for k, v in command.parameters.items()
            }
            try:
                records = getattr(self, "_" + command.name.replace("-", "_").lower())(
                    params, questions, result
                )
            except _Error as exc:
                result.errors.append(
                    CommandError(
                        self.name,
                        command.name,
                        str(exc),
                        "Fake",
                        "InvalidOperation",
                        terminating=exc.terminating,
                    )
                )
                if exc.terminating:
                    break
                continue
            if command.then:  # piped into Select-Object: tagged like Exchange's Selected.<type>
                kind = OUTPUT_TYPES.get(command.name.casefold(), command.name)
                records = [PSRecord(dict(r), (f"Selected.{kind}",)) for r in records]
            result.records += records
        self.answers += result.answers
        return result

    def _check_fail(self, name: str) -> None:
        if name in self.world.fail:
            raise _Error(self.world.fail.pop(name))

    def _ask(self, message: str, questions: tuple, result: FakeResult) -> str:
        for question in questions:
            if question.matches(message):
                answer = AnsweredQuestion(
                    self.name, "Confirm", message, ("Yes", "No"), question.answer, True
                )
                result.answers.append(answer)
                return question.answer
        refused = AnsweredQuestion(self.name, "Confirm", message, ("Yes", "No"), "", False)
        result.answers.append(refused)
        raise UnexpectedQuestion(refused)

    # --- certificates -----------------------------------------------------------------------
    def _store(self, params: dict[str, Any]) -> dict[str, str]:
        return self.world.certificates.setdefault(params.get("Server") or self.name, {})

    def _get_exchangecertificate(self, params, questions, result):
        return [PSRecord({"Thumbprint": t, "Services": s}) for t, s in self._store(params).items()]

    def _import_exchangecertificate(self, params, questions, result):
        self._check_fail("Import-ExchangeCertificate")
        password = params.get("Password")
        if password is not None:
            assert isinstance(password, SecureText), "a password must travel as a SecureString"
            self.world.secrets_seen.append(password.reveal())
        thumb = params["FileData"].decode()
        store = self._store(params)
        if thumb in store:
            raise _Error(f"A certificate with the thumbprint {thumb} already exists.", True)
        store[thumb] = "None"
        return [PSRecord({"Thumbprint": thumb, "Services": "None"})]

    def _remove_exchangecertificate(self, params, questions, result):
        self._check_fail("Remove-ExchangeCertificate")
        thumb = params["Thumbprint"]
        if self._ask(f"Remove certificate {thumb}?", questions, result) == "Yes":
            self._store(params).pop(thumb)
        return []

    def _enable_exchangecertificate(self, params, questions, result):
        answer = self._ask("Overwrite the existing default SMTP certificate?", questions, result)
        self._store(params)[params["Thumbprint"]] = "SMTP"
        if answer == "Yes":
            self.world.defaults[self.name] = params["Thumbprint"]
        return []

    def _get_transportservice(self, params, questions, result):
        server = params.get("Identity") or self.name
        return [
            PSRecord(
                {
                    "Name": server,
                    "InternalTransportCertificateThumbprint": self.world.defaults.get(server, ""),
                }
            )
        ]

    # --- connectors and services ------------------------------------------------------------
    def _get_sendconnector(self, params, questions, result):
        connector = self.world.connectors[params["Identity"]]
        return [PSRecord({"Identity": params["Identity"], **connector})]

    def _set_sendconnector(self, params, questions, result):
        self._check_fail("Set-SendConnector")
        connector = self.world.connectors[params["Identity"]]
        for key, value in params.items():
            if key == "Identity":
                continue
            if isinstance(value, dict):
                connector[key] = sorted(set(connector[key]) | set(value.get("Add", [])))
            else:
                connector[key] = value
        return []

    def _get_service(self, params, questions, result):
        return [PSRecord({"Name": params["Name"], "Status": self.world.services[params["Name"]]})]

    def _suspend_service(self, params, questions, result):
        self.world.services[params["Name"]] = "Paused"
        return []

    def _resume_service(self, params, questions, result):
        self.world.services[params["Name"]] = "Running"
        return []

    # --- files (the lock) -------------------------------------------------------------------
    def _new_item(self, params, questions, result):
        path = params["Path"].casefold()
        if params["ItemType"] == "Directory":
            return [PSRecord({"FullName": params["Path"]})]
        if path in self.world.files:
            raise _Error(f"The file '{params['Path']}' already exists.")
        self.world.files[path] = params["Value"]
        return [PSRecord({"FullName": params["Path"]})]

    def _get_content(self, params, questions, result):
        path = params["Path"].casefold()
        if path not in self.world.files:
            raise _Error(f"Cannot find path '{params['Path']}' because it does not exist.")
        return [self.world.files[path]]

    def _remove_item(self, params, questions, result):
        path = params["Path"].casefold()
        if path not in self.world.files:
            raise _Error(f"Cannot find path '{params['Path']}' because it does not exist.")
        del self.world.files[path]
        return []


class _Error(Exception):
    def __init__(self, message: str, terminating: bool = False) -> None:
        super().__init__(message)
        self.terminating = terminating


def shells(world: World) -> Any:
    """shell_for(server) over one world."""
    opened: dict[str, FakeShell] = {}

    def shell_for(server: str) -> FakeShell:
        return opened.setdefault(server, FakeShell(world, server))

    return shell_for
