"""LabBackend: runs PSRP pipelines against the simulated organisation (edgebook.lab.winrm.protocol).

One invoke() is one transaction on the lab state: the simulation catches up with the lab clock
(an Edge's pipeline catches up that Edge only; a Mailbox pipeline, which sees every Edge through
EdgeSync, all of them), then each statement runs as a pipeline (a command's output is the next
command's input).
A terminating error stops the invocation; what ran before it stays done, as on a real server.
"""

from __future__ import annotations

import hmac
from typing import Any

from edgebook.exchange.wire_types import EXCHANGE_CONFIGURATION, EXCHANGE_SNAPIN
from edgebook.lab.cmdlets import REGISTRY
from edgebook.lab.cmdlets.base import Cmdlet, CmdletError, Context
from edgebook.lab.cmdlets.binding import bind, bind_input, check_mandatory
from edgebook.lab.cmdlets.faults import check_fault
from edgebook.lab.org import mailflow, pki
from edgebook.lab.org.model import Org, Server
from edgebook.lab.org.scenarios import password_hash
from edgebook.lab.org.store import LabStore, clock
from edgebook.lab.winrm.protocol import (
    CommandCall,
    ErrorInfo,
    Host,
    Invocation,
    Session,
    Statement,
)


def command_not_found(name: str) -> CmdletError:
    """PowerShell's CommandNotFoundException (terminating)."""
    return CmdletError(
        ErrorInfo(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
            "or operable program. Check the spelling of the name, or if a path was included, "
            "verify that the path is correct and try again.",
            "CommandNotFoundException",
            "ObjectNotFound",
            name,
            "System.Management.Automation.CommandNotFoundException",
            command=name,
        )
    )


def script_refused(session: Session, text: str) -> CmdletError:
    """NoLanguage refusal on Mailbox servers; the lab's own refusal on Edges."""
    if session.configuration_name == EXCHANGE_CONFIGURATION:
        return CmdletError(
            ErrorInfo(
                "The syntax is not supported by this runspace. This can occur if the runspace "
                "is in no-language mode.",
                "ScriptsNotAllowed",
                "ParserError",
                text,
                "System.Management.Automation.ParseException",
            )
        )
    return CmdletError(
        ErrorInfo(
            f"The edgebook lab runs cmdlets only and does not evaluate script text "
            f"({text[:60]!r}). Send each cmdlet with its parameters instead.",
            "LabScriptNotSupported",
            "NotImplemented",
            text,
            "System.Management.Automation.PSNotSupportedException",
        )
    )


class LabBackend:
    """The organisation of a LabStore behind the Backend protocol."""

    def __init__(self, store: LabStore) -> None:
        self.store = store

    def authenticate(self, server: str, username: str, password: str) -> bool:
        """Whether these are the lab administrator's credentials for this server."""
        org = self.store.read()
        found = org.find_server(server)
        if found is None:
            return False
        accepted = {found.admin_username.casefold()}
        if found.role == "Edge":
            accepted |= {"administrator", ".\\administrator"}
        else:
            accepted.add(f"administrator@{org.domain}".casefold())
        expected = org.auth_hash
        return username.casefold() in accepted and hmac.compare_digest(
            password_hash(org.auth_salt, password), expected
        )

    def credential(self, server: str) -> tuple[str, str] | None:
        """(username, password) of the lab administrator of this server (for NTLM)."""
        org = self.store.read()
        found = org.find_server(server)
        if found is None or not org.password_sealed:
            return None
        return found.admin_username, pki.unseal_bytes(org.secret, org.password_sealed).decode()

    def count_request(self, server: str) -> None:
        """Count one WSMan request to this server."""
        self.store.count(server, "requests")

    def invoke(
        self,
        session: Session,
        statements: list[Statement],
        input: list[Any],
        host: Host | None = None,
    ) -> Invocation:
        """Run the statements in one transaction on the lab state; questions go to host."""
        self.store.count(session.server, "pipelines")
        result = Invocation()
        edge_session = session.configuration_name != EXCHANGE_CONFIGURATION
        with self.store.transaction([session.server] if edge_session else None) as org:
            now = clock(org)
            server = org.server(session.server)
            mailflow.evaluate(org, now, [server] if edge_session else None)
            data = list(input)
            for statement in statements:
                try:
                    result.output.extend(
                        self._statement(org, server, session, statement, data, result, host)
                    )
                except CmdletError as exc:
                    result.terminating = exc.info
                    break
                data = []
        return result

    def _statement(
        self,
        org: Org,
        server: Server,
        session: Session,
        statement: Statement,
        data: list[Any],
        result: Invocation,
        host: Host | None,
    ) -> list[Any]:
        for call in statement:
            cmdlet = self._resolve(session, call)
            params, common = bind(cmdlet, call)
            ctx = Context(org, server, session, clock(org), cmdlet, common, host=host)
            try:
                data = self._run(ctx, params, data)
            finally:
                result.errors.extend(ctx.errors)
                result.warnings.extend(ctx.warnings)
        return data

    def _resolve(self, session: Session, call: CommandCall) -> Cmdlet:
        if call.is_script:
            raise script_refused(session, call.name)
        cmdlet = REGISTRY.get(call.name.strip().casefold())
        if cmdlet is None:
            raise command_not_found(call.name)
        if session.configuration_name == EXCHANGE_CONFIGURATION:
            if not cmdlet.exchange and not cmdlet.proxied:
                raise command_not_found(call.name)
        elif cmdlet.exchange and EXCHANGE_SNAPIN not in session.snapins:
            raise command_not_found(call.name)
        return cmdlet

    def _run(self, ctx: Context, params: dict[str, Any], data: list[Any]) -> list[Any]:
        if not data:
            return self._call(ctx, params)
        out: list[Any] = []
        for item in data:  # input that binds to no parameter is an error, never dropped
            bound = bind_input(ctx, params, item)
            if bound is not None:
                out.extend(self._call(ctx, bound))
        return out

    def _call(self, ctx: Context, params: dict[str, Any]) -> list[Any]:
        check_mandatory(ctx.cmdlet, params)
        check_fault(ctx)
        ctx.refuse_on_edge(params)
        return ctx.cmdlet.func(ctx, params)
