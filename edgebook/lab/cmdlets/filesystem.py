"""Get-Content and Remove-Item on an Edge's simulated filesystem (the subscription file), and
Remove-Item on Cert:\\LocalMachine\\My (deleting a certificate behind Exchange's back, F14)."""

from __future__ import annotations

import base64
from typing import Any

from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.cmdlets.subscriptions import file_key

OS_TASK = "Microsoft.PowerShell.Commands"
CERT_STORE = "cert:\\localmachine\\my\\"


def _missing(ctx: Context, path: str) -> None:
    ctx.write_error(
        f"Cannot find path '{path}' because it does not exist.",
        exception="System.Management.Automation.ItemNotFoundException",
        category="ObjectNotFound",
        target=path,
    )


def get_content(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Content: lines, one string (-Raw), or bytes (-Encoding Byte / -AsByteStream)."""
    out: list[Any] = []
    for path in params["Path"]:
        stored = ctx.server.files.get(file_key(path))
        if stored is None:
            _missing(ctx, path)
            continue
        data = base64.b64decode(stored)
        as_bytes = str(params.get("Encoding") or "").casefold() == "byte" or params.get(
            "AsByteStream"
        )
        if as_bytes:
            if params.get("ReadCount") == 0 or params.get("Raw"):
                out.append(data)
            else:
                out.extend(data)
        elif params.get("Raw"):
            out.append(data.decode("utf-8-sig"))
        else:
            out.extend(data.decode("utf-8-sig").splitlines())
    return out


def remove_item(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Remove-Item: a file of the simulated filesystem or Cert:\\LocalMachine\\My\\<thumbprint>."""
    for path in params["Path"]:
        key = file_key(path)
        if key.startswith(CERT_STORE):
            entry = ctx.server.certificate(key[len(CERT_STORE) :])
            if entry is None:
                _missing(ctx, path)
            elif not ctx.whatif:
                ctx.server.certificates.remove(entry)
            continue
        if key not in ctx.server.files:
            _missing(ctx, path)
        elif not ctx.whatif:
            del ctx.server.files[key]
    return []


CMDLETS = [
    Cmdlet(
        "Get-Content",
        get_content,
        [
            Param("Path", "strs", position=0, mandatory=True, aliases=("LiteralPath",)),
            Param("Raw", "bool"),
            Param("Encoding"),
            Param("ReadCount", "int"),
            Param("AsByteStream", "bool"),
        ],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet(
        "Remove-Item",
        remove_item,
        [
            Param("Path", "strs", position=0, mandatory=True, aliases=("LiteralPath",)),
            Param("Force", "bool"),
            Param("Recurse", "bool"),
        ],
        task=OS_TASK,
        exchange=False,
    ),
]
