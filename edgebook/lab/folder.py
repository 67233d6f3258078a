"""The files of a lab folder: endpoints, inventory, password, daemon log and lock."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from edgebook.errors import EdgebookError
from edgebook.fileio import write_atomic

if TYPE_CHECKING:
    from edgebook.lab.org.scenario_schema import Scenario

PASSWORD_ENV = "EDGEBOOK_LAB_PASSWORD"
PASSWORD_FILE = ".password"
DAEMON_LOCK = ".daemon.lock"


class LabFolderError(EdgebookError):
    """The lab folder cannot hold a lab (a file, not writable, a name that is not UTF-8)."""


def shown(path: Path) -> str:
    """A path as text that always prints (bytes that are not UTF-8 as \\xNN escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def check_folder(directory: Path, writable: bool = True) -> Path:
    """The absolute lab folder, or LabFolderError saying why it cannot hold a lab."""
    try:
        str(directory).encode("utf-8")
    except UnicodeEncodeError:
        raise LabFolderError(
            f"the lab folder {shown(directory)} has a name that is not valid UTF-8; the lab "
            "writes its path into inventory.yaml (UTF-8), so choose a folder with a UTF-8 name"
        ) from None
    directory = directory.absolute()
    if directory.exists() and not directory.is_dir():
        raise LabFolderError(
            f"{directory} is a file, not a folder; give --dir a folder (new or holding a lab)"
        )
    probe = directory if directory.exists() else _existing_parent(directory)
    if writable and not os.access(probe, os.W_OK | os.X_OK):
        raise LabFolderError(
            f"{probe} is not writable; the lab keeps its state, key and log in its folder, so "
            "choose a writable folder or fix its permissions"
        )
    return directory


def _existing_parent(directory: Path) -> Path:
    for parent in directory.parents:
        if parent.exists():
            if not parent.is_dir():
                raise LabFolderError(f"{parent} is a file, so {directory} cannot be a folder")
            return parent
    return Path("/")


def hold_daemon_lock(directory: Path, wait_s: float = 2.0) -> IO[bytes]:
    """Take the lock a running daemon holds for its lifetime; LabFolderError if another has it."""
    handle = open(directory / DAEMON_LOCK, "a+b")  # noqa: SIM115 - held until the process ends
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                handle.close()
                raise LabFolderError(f"another lab daemon runs in {directory}") from None
            time.sleep(0.05)


def process_start(pid: int) -> int | None:
    """When the process started (clock ticks since boot, /proc/PID/stat), None if unknown.

    A pid names a process only together with its start time: pids are reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def daemon_running(directory: Path) -> bool:
    """Whether a lab daemon holds the folder's lock (it cannot outlive its process)."""
    try:
        handle = open(directory / DAEMON_LOCK, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def endpoints_path(directory: Path) -> Path:
    """Where the running daemon describes its endpoints (absent when stopped)."""
    return directory / "endpoints.json"


def running_description(directory: Path) -> dict[str, Any] | None:
    """The endpoints of the lab running in DIR, or None when it does not run.

    Only a daemon holding the folder's lock counts, and only if endpoints.json names that very
    process (pid and start time): a stale file whose pid was reused names nobody.
    """
    try:
        description = json.loads(endpoints_path(directory).read_text())
        pid, started = int(description["pid"]), description.get("process_start")
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not daemon_running(directory):
        return None
    current = process_start(pid)
    if current is None or started is None or current != started:
        return None
    return description


def inventory_path(directory: Path) -> Path:
    """The parameters file for this lab."""
    return directory / "inventory.yaml"


def log_path(directory: Path) -> Path:
    """The daemon's log."""
    return directory / "daemon.log"


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON atomically."""
    write_atomic(path, json.dumps(value, indent=2).encode())


def lab_password(directory: Path, write: bool = True) -> tuple[str, str]:
    """The lab password and its reference: from the environment, else generated into DIR (0600;
    with write=False only generated, for keep_password to write once the lab is built).

    Refused when Basic authentication, which the lab's inventory uses, cannot carry it.
    """
    if os.environ.get(PASSWORD_ENV):
        password, reference, source = (
            os.environ[PASSWORD_ENV],
            f"env:{PASSWORD_ENV}",
            f"${PASSWORD_ENV}",
        )
    else:
        path = directory / PASSWORD_FILE
        if not path.exists() and not write:
            password = secrets.token_urlsafe(18)
        else:
            if not path.exists():
                directory.mkdir(parents=True, exist_ok=True)
                write_atomic(path, secrets.token_urlsafe(18).encode(), mode=0o600)
            password = path.read_text(errors="replace").strip()
        reference, source = f"file:{path.resolve()}", str(path)
    try:
        password.encode("latin-1")
    except UnicodeEncodeError:
        raise LabFolderError(
            f"the lab password ({source}) has a character outside Latin-1; the lab's inventory "
            "uses Basic authentication, which carries Latin-1 only: choose a password of "
            "Latin-1 characters"
        ) from None
    return password, reference


def keep_password(directory: Path, password: str) -> None:
    """Write a password that lab_password(write=False) generated to DIR/.password (0600)."""
    path = directory / PASSWORD_FILE
    if not os.environ.get(PASSWORD_ENV) and not path.exists():
        write_atomic(path, password.encode(), mode=0o600)


def renewal_file(edge: str) -> str:
    """Where a scenario's lab_files put an Edge's renewed certificate (a PFX) in the lab folder."""
    return f"renewal/{edge}.pfx"


def edges_without_renewal(scenario: Scenario) -> list[str]:
    """The Edges of a scenario with no renewed certificate among its lab files."""
    written = {path.casefold() for cert in scenario.certificates for path in cert.lab_files}
    return [
        server.name
        for server in scenario.servers
        if server.role == "Edge" and renewal_file(server.name).casefold() not in written
    ]


def _renewals(directory: Path, edges: list[dict[str, Any]], reference: str) -> dict[str, Any]:
    """change.certificates for the Edges whose renewal PFX the scenario wrote (renewal/)."""
    found = {
        edge["name"]: {
            "pfx": str(directory.resolve() / renewal_file(edge["name"])),
            "password": reference,
        }
        for edge in edges
        if (directory / renewal_file(edge["name"])).is_file()
    }
    return {"certificates": found} if found else {}


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
        "change": {**description["change"], **_renewals(directory, edges, reference)},
    }
    header = (
        f"# Written by `edgebook lab start` for the lab in {directory.resolve()}.\n"
        "# Ports change at every start; the password is a reference, never the secret.\n"
    )
    path = inventory_path(directory)
    write_atomic(path, (header + yaml.safe_dump(inventory, sort_keys=False)).encode())
    return path
