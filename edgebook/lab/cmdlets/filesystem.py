"""New-Item, Get-Content and Remove-Item on a server's simulated filesystem (the subscription
file, edgebook's change lock), and Remove-Item on Cert:\\LocalMachine\\My (deleting a
certificate behind Exchange's back, F14), with Windows PowerShell 5.1's parameters.

Folders: the usual ones of a Windows server exist (C:\\, C:\\ProgramData, C:\\temp, ...);
New-Item -ItemType Directory adds one (a key ending in a backslash) and the folders above it.
New-Item -ItemType File fails, as Windows PowerShell does, when the file exists (unless -Force)
or its folder does not (unless -Force, which creates it): that makes it an atomic create.
-Path takes no wildcards here (the lab refuses them: it does not expand them); -LiteralPath
reads the path as it is.
"""

from __future__ import annotations

import base64
from typing import Any

from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.org.model import Server
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
ENCODINGS = (
    "Unknown",
    "String",
    "Unicode",
    "Byte",
    "BigEndianUnicode",
    "UTF8",
    "UTF7",
    "UTF32",
    "Ascii",
    "Default",
    "Oem",
    "BigEndianUTF32",
)
CODECS = {
    "Unicode": "utf-16-le",
    "BigEndianUnicode": "utf-16-be",
    "UTF8": "utf-8-sig",
    "UTF7": "utf-7",
    "UTF32": "utf-32-le",
    "BigEndianUTF32": "utf-32-be",
    "Ascii": "ascii",
}
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
HAS_CHILDREN = (
    "The item at {0} has children and the Recurse parameter was not specified. If you "
    "continue, all children will be removed with the item. Are you sure you want to continue?"
)


def file_key(path: str) -> str:
    """How a Windows path is looked up in a server's simulated filesystem."""
    return path.strip().strip('"').replace("/", "\\").casefold()


def folder_exists(server: Server, key: str) -> bool:
    """Whether a folder (a path as file_key makes it) exists on the server."""
    folder = key.rstrip("\\")
    return folder in SYSTEM_FOLDERS or folder + "\\" in server.files


def _missing(ctx: Context, path: str) -> None:
    ctx.write_error(
        f"Cannot find path '{path}' because it does not exist.",
        exception="System.Management.Automation.ItemNotFoundException",
        category="ObjectNotFound",
        target=path,
        code="PathNotFound",
    )


def _paths(ctx: Context, params: dict[str, Any]) -> list[str]:
    """-LiteralPath as given; -Path without wildcard characters (refused: not simulated)."""
    if params.get("LiteralPath"):  # a piped item's PSPath names its provider
        return [p.split("::", 1)[-1] for p in params["LiteralPath"]]
    paths = list(params.get("Path") or [])
    wild = next((p for p in paths if any(c in p for c in "*?[")), None)
    if wild is not None:
        raise ctx.fail(
            f"The edgebook lab does not expand wildcards in -Path of {ctx.cmdlet.name} "
            f"('{wild}'). Name the file itself, or use -LiteralPath for a name that holds "
            "* ? or [.",
            exception="System.Management.Automation.PSNotSupportedException",
            category="NotImplemented",
            target=wild,
            code="LabParameterNotSimulated",
        )
    return paths


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding in CODECS:
        return data.decode(CODECS[encoding], errors="replace")
    codec = next((c for bom, c in BOMS if data.startswith(bom)), "utf-8")
    return data.decode(codec, errors="replace")


def _chunks(items: list[Any], count: int, as_bytes: bool) -> list[Any]:
    """-ReadCount: 1 writes each line (byte), 0 all in one array, N arrays of N."""
    if count == 1:
        return items
    size = len(items) if count <= 0 else count
    groups = [items[i : i + size] for i in range(0, len(items), size or 1)] or [[]]
    return [bytes(g) if as_bytes else g for g in groups]


def get_content(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Content: lines, one string (-Raw), or bytes (-Encoding Byte), -ReadCount,
    -TotalCount (first N) and -Tail (last N) as in PowerShell 5.1."""
    out: list[Any] = []
    encoding = params.get("Encoding")
    as_bytes = encoding == "Byte"
    for path in _paths(ctx, params):
        key = file_key(path)
        stored = ctx.server.files.get(key)
        if stored is None:
            _missing(ctx, path)
            continue
        data = base64.b64decode(stored)
        if params.get("Raw"):
            out.append(data if as_bytes else _decode(data, encoding))
            continue
        items: list[Any] = list(data) if as_bytes else _decode(data, encoding).splitlines()
        if params.get("TotalCount") is not None and params["TotalCount"] >= 0:
            items = items[: params["TotalCount"]]
        if params.get("Tail") is not None and params["Tail"] >= 0:
            items = items[len(items) - params["Tail"] :] if params["Tail"] else []
        read_count = params.get("ReadCount")
        out.extend(_chunks(items, 1 if read_count is None else read_count, as_bytes))
    return out


def _children(ctx: Context, folder: str) -> list[str]:
    return [k for k in ctx.server.files if k.startswith(folder + "\\") and k != folder + "\\"]


def remove_item(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Remove-Item: a file or folder of the simulated filesystem (a folder with items needs
    -Recurse, else PowerShell asks) or Cert:\\LocalMachine\\My\\<thumbprint>."""
    for path in _paths(ctx, params):
        key = file_key(path).rstrip("\\")
        if key.startswith(CERT_STORE):
            entry = ctx.server.certificate(key[len(CERT_STORE) :])
            if entry is None:
                _missing(ctx, path)
            elif ctx.should_process(
                f'Performing the operation "Remove certificate" on target "Item: {path} "'
            ):
                ctx.server.certificates.remove(entry)
            continue
        if key in ctx.server.files:
            if ctx.should_process(f'Performing the operation "Remove File" on target "{path}".'):
                del ctx.server.files[key]
            continue
        if key + "\\" not in ctx.server.files:
            _missing(ctx, path)
            continue
        if not ctx.should_process(
            f'Performing the operation "Remove Directory" on target "{path}".'
        ):
            continue
        inside = _children(ctx, key)
        asked = inside and not params.get("Recurse")
        if asked and not ctx.should_continue(HAS_CHILDREN.format(path)):
            continue
        for child in [*inside, key + "\\"]:
            del ctx.server.files[child]
    return []


def _make_folders(ctx: Context, key: str) -> None:
    """Create a folder and the ones above it that are missing (Directory.CreateDirectory)."""
    parts = key.split("\\")
    for i in range(1, len(parts) + 1):
        folder = "\\".join(parts[:i])
        if not folder_exists(ctx.server, folder):
            ctx.server.files[folder + "\\"] = ""


def _item(ctx: Context, kind: str, path: str, length: int = 0) -> ExObject:
    """A DirectoryInfo / FileInfo as New-Item writes it (the properties a runbook reads)."""
    full = path.rstrip("\\")
    name = full.rsplit("\\", 1)[-1]
    parent = full.rsplit("\\", 1)[0] if "\\" in full else ""
    common = {
        "Name": name,
        "FullName": full,
        "Exists": True,
        "Extension": "." + name.rsplit(".", 1)[1] if "." in name else "",
        "CreationTime": ctx.now,
        "LastWriteTime": ctx.now,
        "PSPath": f"Microsoft.PowerShell.Core\\FileSystem::{full}",
        "PSIsContainer": kind == "directory",
    }
    if kind == "directory":
        return ExObject(
            ["System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.Object"],
            {**common, "Mode": "d-----", "Attributes": "Directory"},
            to_string=full,
        )
    return ExObject(
        ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.Object"],
        {
            **common,
            "Mode": "-a----",
            "Attributes": "Archive",
            "Length": length,
            "DirectoryName": parent,
        },
        to_string=full,
    )


def _create_file(ctx: Context, params: dict[str, Any], path: str, key: str) -> Any:
    parent = key.rsplit("\\", 1)[0] if "\\" in key else ""
    force = bool(params.get("Force"))
    if key + "\\" in ctx.server.files or (key in ctx.server.files and not force):
        ctx.write_error(
            f"The file '{path}' already exists.",
            exception="System.IO.IOException",
            category="WriteError",
            target=path,
            code="NewItemIOError",
        )
        return None
    if not folder_exists(ctx.server, parent) and not force:
        ctx.write_error(
            f"Could not find a part of the path '{path}'.",
            exception="System.IO.DirectoryNotFoundException",
            category="WriteError",
            target=path,
            code="NewItemIOError",
        )
        return None
    data = str(params.get("Value") or "").encode("utf-8")
    if not ctx.should_process(
        f'Performing the operation "Create File" on target "Destination: {path}".'
    ):
        return None
    _make_folders(ctx, parent)
    ctx.server.files[key] = base64.b64encode(data).decode()
    return _item(ctx, "file", path, len(data))


def _create_folder(ctx: Context, params: dict[str, Any], path: str, key: str) -> Any:
    folder = folder_exists(ctx.server, key)
    if key in ctx.server.files or (folder and not params.get("Force")):
        ctx.write_error(
            f"An item with the specified name {path} already exists.",
            exception="System.IO.IOException",
            category="ResourceExists",
            target=path,
            code="DirectoryExist",
        )
        return None
    if folder:  # -Force: the folder that is there
        return _item(ctx, "directory", path)
    if not ctx.should_process(
        f'Performing the operation "Create Directory" on target "Destination: {path}".'
    ):
        return None
    _make_folders(ctx, key)
    return _item(ctx, "directory", path)


def new_item(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """New-Item -ItemType File|Directory -Path P [-Name N] [-Value V] [-Force]."""
    kind = str(params.get("ItemType") or "File").casefold()
    if kind not in ("file", "directory"):
        raise ctx.fail(
            f"The edgebook lab does not simulate items of type '{params.get('ItemType')}' "
            "(SymbolicLink, Junction, HardLink); use File or Directory.",
            exception="System.Management.Automation.PSNotSupportedException",
            category="NotImplemented",
            code="LabParameterNotSimulated",
        )
    out: list[Any] = []
    for folder in params["Path"]:
        path = folder.rstrip("\\") + "\\" + params["Name"] if params.get("Name") else folder
        key = file_key(path).rstrip("\\")
        create = _create_folder if kind == "directory" else _create_file
        item = create(ctx, params, path, key)
        if item is not None:
            out.append(item)
    return out


def _path_params(mandatory: bool = True) -> list[Param]:
    return [
        Param("Path", "strs", position=0, mandatory=mandatory, pipeline=True, sets=("Path",)),
        Param(
            "LiteralPath",
            "strs",
            mandatory=True,
            pipeline=True,
            aliases=("PSPath",),
            sets=("LiteralPath",),
        ),
    ]


CMDLETS = [
    Cmdlet(
        "New-Item",
        new_item,
        [
            Param("Path", "strs", position=0, mandatory=True),
            Param("ItemType", aliases=("Type",)),
            Param("Value", "any", pipeline=True),
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
            *_path_params(),
            Param("Raw", "switch"),
            Param(
                "Encoding",
                values=ENCODINGS,
                net_type="Microsoft.PowerShell.Commands.FileSystemCmdletProviderEncoding",
            ),
            Param("ReadCount", "int"),
            Param("TotalCount", "int", aliases=("First", "Head")),
            Param("Tail", "int", aliases=("Last",)),
        ],
        task=OS_TASK,
        exchange=False,
        default_set="Path",
    ),
    Cmdlet(
        "Remove-Item",
        remove_item,
        [*_path_params(), Param("Force", "switch"), Param("Recurse", "switch")],
        task=OS_TASK,
        exchange=False,
        default_set="Path",
    ),
]
