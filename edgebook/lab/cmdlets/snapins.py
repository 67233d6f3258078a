"""Add-PSSnapin and Get-PSSnapin of Windows PowerShell 5.1 on the Edge (the Exchange snap-in
is the one registered; Microsoft.PowerShell.Core is always loaded)."""

from __future__ import annotations

import fnmatch
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.winrm.objects import ExObject

OS_TASK = "Microsoft.PowerShell.Commands"
SNAPIN = T.EXCHANGE_SNAPIN
# Since Windows PowerShell 3.0 the one core snap-in, loaded in every session and not registered
# (Get-PSSnapin's documentation: "By default, only the Microsoft.PowerShell.Core snap-in is
# added to the session")
CORE_SNAPIN = "Microsoft.PowerShell.Core"
ARGUMENT_EXCEPTION = "System.Management.Automation.PSArgumentException"
NO_MATCH = (
    "No Windows PowerShell snap-ins matching the pattern '{0}' were found. Check the pattern "
    "and then try the command again."
)


def core_snapin_object() -> ExObject:
    """A PSSnapInInfo for Microsoft.PowerShell.Core as Windows PowerShell 5.1 describes it (the
    PSVersion is the engine's; the lab names no Windows build: 5.1 alone, lab's choice)."""
    return ExObject(
        [T.PS_SNAPIN_INFO, "System.Object"],
        {
            "Name": CORE_SNAPIN,
            "IsDefault": True,
            "ApplicationBase": r"C:\Windows\System32\WindowsPowerShell\v1.0",
            "Description": (
                "This Windows PowerShell snap-in contains cmdlets used to manage components of "
                "Windows PowerShell."
            ),
            "PSVersion": "5.1",
            "Version": "3.0.0.0",
        },
        to_string=CORE_SNAPIN,
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


def _loaded(ctx: Context) -> list[str]:
    """The snap-ins in the session, in the order Get-PSSnapin lists them."""
    return [CORE_SNAPIN, *(n for n in [SNAPIN] if n in ctx.session.snapins)]


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
    """Get-PSSnapin: the loaded snap-ins, Microsoft.PowerShell.Core first, then the Exchange
    snap-in once added; -Registered: the registered ones (the Exchange snap-in, never the core
    one). -Name takes names and wildcard patterns; one that matches nothing is an error."""
    available = [SNAPIN] if params.get("Registered") else _loaded(ctx)
    wanted = params.get("Name")
    found = list(available) if not wanted else []
    for pattern in wanted or []:
        matched = _matches(pattern, available)
        if not matched:
            _no_match(ctx, pattern)
        found.extend(matched)
    return [core_snapin_object() if n == CORE_SNAPIN else snapin_object() for n in found]


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
