"""The files of a lab folder: endpoints, inventory, password, daemon log; atomic writes."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import yaml

PASSWORD_ENV = "EDGEBOOK_LAB_PASSWORD"
PASSWORD_FILE = ".password"


def endpoints_path(directory: Path) -> Path:
    """Where the running daemon describes its endpoints (absent when stopped)."""
    return directory / "endpoints.json"


def inventory_path(directory: Path) -> Path:
    """The parameters file for this lab."""
    return directory / "inventory.yaml"


def log_path(directory: Path) -> Path:
    """The daemon's log."""
    return directory / "daemon.log"


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write data to path via a fsync'd temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON atomically."""
    write_atomic(path, json.dumps(value, indent=2).encode())


def lab_password(directory: Path) -> tuple[str, str]:
    """The lab password and its reference: from the environment, else generated into DIR (0600)."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV], f"env:{PASSWORD_ENV}"
    path = directory / PASSWORD_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(path, secrets.token_urlsafe(18).encode(), mode=0o600)
    return path.read_text().strip(), f"file:{path.resolve()}"


def write_inventory(directory: Path, description: dict[str, Any]) -> Path:
    """Write DIR/inventory.yaml for the running lab (ports change with every start)."""
    _, reference = lab_password(directory)
    mailboxes, edges = [], []
    for server in description["servers"]:
        wsman = server["wsman"]
        winrm = {
            "host": "127.0.0.1",
            "port": wsman["port"],
            "path": wsman["path"],
            "scheme": "https",
            "auth": "basic",
            "ca_file": wsman["ca_file"],
            "configuration_name": wsman["configuration_name"],
        }
        entry: dict[str, Any] = {
            "name": server["name"],
            "fqdn": server["fqdn"],
            "winrm": winrm,
            "credential": {"username": wsman["username"], "password": reference},
        }
        if server["role"] == "Mailbox":
            mailboxes.append(entry)
            continue
        for kind in ("smtp", "ldaps"):
            host, port = server[kind].rsplit(":", 1)
            entry[kind] = {"host": host, "port": int(port)}
        edges.append(entry)
    inventory = {
        "lab": True,
        "organisation": {
            "name": description["organisation"],
            "ad_site": description["ad_site"],
            "mailbox_servers": mailboxes,
        },
        "edges": edges,
        "change": description["change"],
    }
    header = (
        f"# Written by `edgebook lab start` for the lab in {directory.resolve()}.\n"
        "# Ports change at every start; the password is a reference, never the secret.\n"
    )
    path = inventory_path(directory)
    write_atomic(path, (header + yaml.safe_dump(inventory, sort_keys=False)).encode())
    return path
