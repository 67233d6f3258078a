"""Add-PSSnapin and Get-PSSnapin of Windows PowerShell 5.1 on the Edge (the Exchange snap-in
is the one registered)."""

from __future__ import annotations

import fnmatch
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.winrm.objects import ExObject

OS_TASK = "Microsoft.PowerShell.Commands"
SNAPIN = T.EXCHANGE_SNAPIN
ARGUMENT_EXCEPTION = "System.Management.Automation.PSArgumentException"
NO_MATCH = (
    "No Windows PowerShell snap-ins matching the pattern '{0}' were found. Check the pattern "
    "and then try the command again."
)


def snapin_object() -> ExObject:
    """A PSSnapInInfo for the Exchange snap-in."""
    return ExObject(
        [T.PS_SNAPIN_INFO, "System.Object"],
        {
            "Name": SNAPIN,
            "IsDefault": False,
            "ApplicationBase": r"C:\Program Files\Microsoft\Exchange Server\V15\bin",
            "Description": "Admin Tasks for the Exchange Server",
            "PSVersion": "1.0",
            "Version": "15.0.0.0",
        },
        to_string=SNAPIN,
    )


def _matches(pattern: str, names: list[str]) -> list[str]:
    if any(c in pattern for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n.casefold(), pattern.casefold())]
    return [n for n in names if n.casefold() == pattern.casefold()]


def _no_match(ctx: Context, pattern: str) -> None:
    ctx.write_error(
        NO_MATCH.format(pattern),
        exception=ARGUMENT_EXCEPTION,
        category="InvalidArgument",
        target=pattern,
        code="NoPSSnapInsFound",
    )


def add_pssnapin(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Add-PSSnapin: a name, or a wildcard pattern over the registered snap-ins (a pattern that
    matches nothing is an error only with -PassThru, as in PowerShell 5.1)."""
    out: list[Any] = []
    for pattern in params["Name"]:
        if any(c in pattern for c in "*?["):
            names = _matches(pattern, [SNAPIN])
            if not names and params.get("PassThru"):
                _no_match(ctx, pattern)
        else:
            names = [pattern]
        for name in names:
            if name.casefold() != SNAPIN.casefold():
                problem = (
                    f"The Windows PowerShell snap-in '{name}' is not installed on this computer."
                )
            elif SNAPIN in ctx.session.snapins:
                problem = (
                    f"Cannot add Windows PowerShell snap-in {SNAPIN} because it is already "
                    "added. Verify the name of the snap-in, and then try again."
                )
            else:
                if not ctx.should_process(SNAPIN):
                    continue
                ctx.session.snapins.add(SNAPIN)
                if params.get("PassThru"):
                    out.append(snapin_object())
                continue
            ctx.write_error(
                problem,
                exception=ARGUMENT_EXCEPTION,
                category="InvalidArgument",
                target=name,
                code="AddPSSnapInRead",
            )
    return out


def get_pssnapin(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-PSSnapin: the Exchange snap-in once added (-Registered: installed); -Name takes
    names and wildcard patterns, one that matches nothing is an error."""
    # PowerShell 5.1 lists Microsoft.PowerShell.Core among the loaded snap-ins too; the lab
    # leaves it out (lab's choice, pinned by tests/test_lab_cmdlets.py).
    loaded = SNAPIN in ctx.session.snapins or bool(params.get("Registered"))
    available = [SNAPIN] if loaded else []
    wanted = params.get("Name")
    if not wanted:
        return [snapin_object() for _ in available]
    out: list[Any] = []
    for pattern in wanted:
        found = _matches(pattern, available)
        if not found:
            _no_match(ctx, pattern)
        out.extend(snapin_object() for _ in found)
    return out


CMDLETS = [
    Cmdlet(
        "Add-PSSnapin",
        add_pssnapin,
        [Param("Name", "strs", position=0, mandatory=True), Param("PassThru", "switch")],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet(
        "Get-PSSnapin",
        get_pssnapin,
        [Param("Name", "strs", position=0), Param("Registered", "switch")],
        task=OS_TASK,
        exchange=False,
    ),
]
