"""New-Item, Get-Content and Remove-Item on a server's simulated filesystem (the subscription
file, edgebook's change lock), and Remove-Item on Cert:\\LocalMachine\\My (deleting a
certificate behind Exchange's back, F14).

Folders: the usual ones of a Windows server exist (C:\\, C:\\ProgramData, C:\\temp, ...);
New-Item -ItemType Directory adds one (a key ending in a backslash). New-Item -ItemType File
fails, as Windows PowerShell does, when the file exists (unless -Force) or its folder does not:
that makes it an atomic create.
"""

from __future__ import annotations

import base64
from typing import Any

from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.cmdlets.subscriptions import file_key
from edgebook.lab.winrm.objects import ExObject

OS_TASK = "Microsoft.PowerShell.Commands"
CERT_STORE = "cert:\\localmachine\\my\\"
SYSTEM_FOLDERS = (
    "c:",
    "c:\\programdata",
    "c:\\temp",
    "c:\\windows",
    "c:\\windows\\temp",
    "c:\\users",
    "c:\\program files",
)


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


def _folder_exists(ctx: Context, key: str) -> bool:
    folder = key.rstrip("\\")
    return folder in SYSTEM_FOLDERS or folder + "\\" in ctx.server.files


def _item(kind: str, path: str, length: int = 0) -> ExObject:
    name = path.rstrip("\\").rsplit("\\", 1)[-1]
    if kind == "directory":
        return ExObject(
            ["System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.Object"],
            {"Name": name, "FullName": path},
            to_string=path,
        )
    return ExObject(
        ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.Object"],
        {"Name": name, "FullName": path, "Length": length},
        to_string=path,
    )


def new_item(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """New-Item -ItemType File|Directory -Path P [-Value V] [-Force]."""
    kind = str(params.get("ItemType") or "File").casefold()
    if kind not in ("file", "directory"):
        raise ctx.fail(
            f"The type '{params.get('ItemType')}' is not supported by this provider here; use "
            "File or Directory.",
            exception="System.Management.Automation.PSArgumentException",
            category="InvalidArgument",
        )
    out: list[Any] = []
    for path in params["Path"]:
        key = file_key(path).rstrip("\\")
        parent = key.rsplit("\\", 1)[0] if "\\" in key else ""
        if kind == "directory":
            exists = _folder_exists(ctx, key)
            if exists and not params.get("Force"):
                ctx.write_error(
                    f"An item with the specified name {path} already exists.",
                    exception="System.IO.IOException",
                    category="ResourceExists",
                    target=path,
                )
                continue
            if not _folder_exists(ctx, parent):
                ctx.write_error(
                    f"Could not find a part of the path '{path}'.",
                    exception="System.IO.DirectoryNotFoundException",
                    category="WriteError",
                    target=path,
                )
                continue
            if not exists and not ctx.whatif:
                ctx.server.files[key + "\\"] = ""
            out.append(_item("directory", path))
            continue
        if key in ctx.server.files and not params.get("Force"):
            ctx.write_error(
                f"The file '{path}' already exists.",
                exception="System.IO.IOException",
                category="WriteError",
                target=path,
            )
            continue
        if not _folder_exists(ctx, parent):
            ctx.write_error(
                f"Could not find a part of the path '{path}'.",
                exception="System.IO.DirectoryNotFoundException",
                category="WriteError",
                target=path,
            )
            continue
        data = str(params.get("Value") or "").encode("utf-8")
        if not ctx.whatif:
            ctx.server.files[key] = base64.b64encode(data).decode()
        out.append(_item("file", path, len(data)))
    return out


CMDLETS = [
    Cmdlet(
        "New-Item",
        new_item,
        [
            Param("Path", "strs", position=0, mandatory=True),
            Param("ItemType", aliases=("Type",)),
            Param("Value", "any"),
            Param("Force", "switch"),
            Param("Name"),
        ],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet(
        "Get-Content",
        get_content,
        [
            Param("Path", "strs", position=0, mandatory=True, aliases=("LiteralPath",)),
            Param("Raw", "switch"),
            Param("Encoding"),
            Param("ReadCount", "int"),
            Param("AsByteStream", "switch"),
        ],
        task=OS_TASK,
        exchange=False,
    ),
    Cmdlet(
        "Remove-Item",
        remove_item,
        [
            Param("Path", "strs", position=0, mandatory=True, aliases=("LiteralPath",)),
            Param("Force", "switch"),
            Param("Recurse", "switch"),
        ],
        task=OS_TASK,
        exchange=False,
    ),
]
