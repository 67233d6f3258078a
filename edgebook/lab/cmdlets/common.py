"""Helpers the lab cmdlets share: where a cmdlet may run, server targeting, enum values."""

from __future__ import annotations

from typing import Any

from edgebook.lab.cmdlets.base import CmdletError, Context
from edgebook.lab.org.model import Server
from edgebook.lab.winrm.objects import MVP_STRING, ExEnum, ExList

NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
INVALID_OPERATION = "System.InvalidOperationException"


def enum(type_name: str, members: list[str], text: str) -> ExEnum:
    """An enum value whose integer is its index in members."""
    return ExEnum(type_name, text, members.index(text) if text in members else 0)


def mvp(items: list[Any]) -> ExList:
    """A MultiValuedProperty of strings."""
    return ExList(MVP_STRING, list(items))


def mailbox_only(ctx: Context) -> None:
    """Refuse to run on an Edge (tasks that need the EdgeSync service or the organisation)."""
    if ctx.server.role == "Edge":
        raise ctx.fail(
            f"{ctx.cmdlet.name} can only be run on a Mailbox server (a server with the Hub "
            "Transport role). The Microsoft Exchange EdgeSync service doesn't run on an Edge "
            "Transport server.",
            exception=INVALID_OPERATION,
        )


def not_on_subscribed_edge(ctx: Context) -> None:
    """Refuse changes to replicated configuration on a subscribed Edge."""
    if ctx.server.role == "Edge" and ctx.org.subscription(ctx.server.name) is not None:
        raise ctx.fail(
            f"The {ctx.cmdlet.name} cmdlet can't be run on this Edge Transport server because "
            "it is subscribed to the Exchange organization: its send connectors are replicated "
            "by EdgeSync and are read-only here. Run the cmdlet on a Mailbox server; EdgeSync "
            "replicates the change to this server.",
            exception=INVALID_OPERATION,
        )


def target_server(ctx: Context, name: str | None) -> Server:
    """The server a -Server parameter names (the local one when absent)."""
    if not name:
        return ctx.server
    found = ctx.org.find_server(name)
    local = ctx.server
    if found is None or (local.role == "Edge" and found is not local):
        raise ctx.fail(
            f"The operation couldn't be performed because object '{name}' couldn't be found on "
            f"'{local.fqdn}'.",
            exception=NOT_FOUND,
            category="NotSpecified",
            target=name,
        )
    if found.role == "Edge" and found is not local:
        raise ctx.fail(
            f"The Edge Transport server {found.name} isn't reachable from the Exchange "
            f"organization for this task. Run {ctx.cmdlet.name} on {found.name} itself.",
            exception=INVALID_OPERATION,
            target=name,
        )
    return found


def not_found(ctx: Context, what: str, identity: str) -> CmdletError:
    """Exchange's ManagementObjectNotFoundException for an identity."""
    return ctx.fail(
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        f"'{ctx.server.fqdn}'.",
        exception=NOT_FOUND,
        category="NotSpecified",
        target=identity,
    )
