"""Utility cmdlets of Windows PowerShell the runbooks use: Get-Date (Edge), Select-Object (also
on Exchange's /PowerShell endpoint)."""

from __future__ import annotations

from typing import Any

from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject

UTILITY_TASK = "Microsoft.PowerShell.Commands"
PS_CUSTOM_OBJECT = ["System.Management.Automation.PSCustomObject", "System.Object"]


def get_date(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Date: the server's clock (the lab clock)."""
    return [ctx.now]


def select_object(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Select-Object -Property: a PSCustomObject typed 'Selected.<type>' whose note properties
    are those of the live object (what its serialised form may lack, as with certificates),
    as remoting sends them (depth_one)."""
    item = params.get("InputObject")
    names = params.get("Property") or []
    if not isinstance(item, ExObject) or not names:
        return [] if item is None else [item]
    properties = {}
    for name in names:
        found = next((key for key in item.properties if key.casefold() == name.casefold()), name)
        properties[found] = depth_one(item.properties.get(found))
    return [
        ExObject(
            [f"Selected.{item.type_names[0]}", *PS_CUSTOM_OBJECT],
            properties,
            notes=tuple(properties),
        )
    ]


def depth_one(value: Any) -> Any:
    """A PSCustomObject's property value as PowerShell remoting serialises it: at depth 1 (no
    type data raises a PSCustomObject's) each property is written at depth 0, where an object
    (an enum too) goes as its ToString() and a collection is kept with its items at depth 0
    (PowerShell's serialization.cs, WriteOneObject); strings, numbers, dates and byte[] as they
    are. The lab's Selected object holds what goes on the wire (lab's choice): no runbook pipes
    a projected object on to another cmdlet, where PowerShell would still bind the live values."""
    if isinstance(value, ExObject | ExEnum):
        return str(value)
    if isinstance(value, ExList):
        return ExList(value.type_name, [depth_one(item) for item in value.items])
    return value


CMDLETS = [
    Cmdlet("Get-Date", get_date, [], task=UTILITY_TASK, exchange=False),
    Cmdlet(
        "Select-Object",
        select_object,
        [
            Param("Property", "strs", position=0),
            Param("InputObject", "any", pipeline=True, whole=True),
        ],
        task=UTILITY_TASK,
        exchange=False,
        proxied=True,  # Exchange's /PowerShell proxies Select-Object (docs/serialization.md)
    ),
]
