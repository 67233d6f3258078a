"""Start, stop and describe a lab running in the background (used by the CLI, demo and tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from edgebook.errors import EdgebookError
from edgebook.lab import folder
from edgebook.lab.org.scenarios import load_scenario
from edgebook.lab.org.store import LabStore

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
DEFAULT_SCENARIO = "seed-incident"
DAEMON = (sys.executable, "-m", "edgebook.lab.daemon")


class LabError(EdgebookError):
    """The lab cannot do what was asked (not running, already running, failed to start)."""


def running_description(directory: Path) -> dict[str, Any] | None:
    """The endpoints of the lab running in DIR, or None when it does not run."""
    try:
        description = json.loads(folder.endpoints_path(directory).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return description if _alive(description["pid"]) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def has_state(directory: Path) -> bool:
    """Whether DIR holds a lab organisation."""
    return (directory / "state.json").exists()


def create(directory: Path, scenario: str | Path) -> None:
    """Create the organisation of a scenario in DIR (which must not hold one yet)."""
    load_scenario(scenario)  # refuses a bad scenario before anything is written
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    password, _ = folder.lab_password(directory)
    LabStore.create(directory, scenario, password)


def start(
    directory: Path, scenario: str | Path | None = None, latency_ms: int = 0
) -> dict[str, Any]:
    """Start the lab in DIR in the background and return its endpoints once it listens."""
    directory = directory.resolve()
    if latency_ms < 0:
        raise LabError(f"--latency-ms must be 0 or more, not {latency_ms}")
    if running_description(directory):
        raise LabError(f"a lab already runs in {directory}; stop it first (edgebook lab stop)")
    if has_state(directory):
        current = LabStore(directory).read().scenario
        if scenario is not None and str(scenario) != current:
            raise LabError(
                f"{directory} holds the scenario {current!r}; use `edgebook lab reset --dir "
                f"{directory} --scenario {scenario}` to switch, or another --dir"
            )
    else:
        create(directory, scenario or DEFAULT_SCENARIO)
    folder.endpoints_path(directory).unlink(missing_ok=True)
    with folder.log_path(directory).open("ab") as log:
        process = subprocess.Popen(
            [*DAEMON, "--dir", str(directory), "--latency-ms", str(latency_ms)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        description = running_description(directory)
        if description and description["pid"] == process.pid:
            return description
        if process.poll() is not None:
            raise LabError(
                f"the lab failed to start; see {folder.log_path(directory)}:\n{_tail(directory)}"
            )
        time.sleep(0.05)
    process.terminate()
    raise LabError(f"the lab did not become ready within {START_TIMEOUT_S:.0f} s; see its log")


def _tail(directory: Path, lines: int = 15) -> str:
    text = folder.log_path(directory).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def stop(directory: Path) -> bool:
    """Stop the lab running in DIR; False when none was running."""
    description = running_description(directory.resolve())
    if description is None:
        return False
    pid = description["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _alive(pid):
        with contextlib.suppress(ChildProcessError):  # reap it when it is our own child
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    folder.endpoints_path(directory).unlink(missing_ok=True)
    return True


def require_state(directory: Path) -> LabStore:
    """The store of the lab in DIR, or a clear error when DIR holds none."""
    if not has_state(directory):
        raise LabError(
            f"{directory} holds no lab; start one with `edgebook lab start --dir {directory}`"
        )
    return LabStore(directory)


def status(directory: Path) -> dict[str, Any]:
    """The status document of `edgebook lab status --json`."""
    store = require_state(directory)
    org = store.read()
    description = running_description(directory) or {}
    endpoints = {s["name"]: s for s in description.get("servers", [])}
    servers = []
    for server in org.servers:
        entry = endpoints.get(server.name, {})
        wsman = entry.get("wsman")
        servers.append(
            {
                "name": server.name,
                "role": server.role,
                "fqdn": server.fqdn,
                "wsman": wsman
                and {
                    k: wsman[k]
                    for k in ("url", "configuration_name", "auth", "username", "ca_file")
                },
                "smtp": entry.get("smtp"),
                "ldaps": entry.get("ldaps"),
            }
        )
    counters = store.counters()
    return {
        "scenario": org.scenario,
        "running": bool(description),
        "clock": store.now().isoformat(),
        "servers": servers,
        "requests": {name: c.get("requests", 0) for name, c in counters.items()},
    }


def reset(directory: Path, scenario: str | Path) -> None:
    """Recreate the organisation of a scenario in DIR (the lab must not run)."""
    load_scenario(scenario)
    (directory / "state.json").unlink(missing_ok=True)
    create(directory, scenario)


def default_directory() -> Path:
    """The built-in lab folder: $EDGEBOOK_LAB_DIR, else .lab in the enclosing checkout."""
    if os.environ.get("EDGEBOOK_LAB_DIR"):
        return Path(os.environ["EDGEBOOK_LAB_DIR"]).resolve()
    here = Path.cwd().resolve()
    for parent in (here, *here.parents):
        if (parent / "pyproject.toml").exists() and (parent / "edgebook").is_dir():
            return parent / ".lab"
    return Path.home() / ".edgebook" / "lab"


def ensure_running(directory: Path | None = None) -> Path:
    """Start the built-in lab unless it runs; return its inventory file."""
    directory = (directory or default_directory()).resolve()
    if running_description(directory) is None:
        start(directory)
    return folder.inventory_path(directory)


LAB_REFERENCE_KEYS = {"lab_dir", "scenario"}


def lab_reference(path: Path) -> tuple[Path, str] | None:
    """(lab folder, scenario) when the parameters file names a lab instead of servers.

    Such a file (see parameters/lab/) holds only `lab_dir` (relative to the file) and
    optionally `scenario`; any other file returns None.
    """
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(document, dict) or "lab_dir" not in document:
        return None
    unknown = set(document) - LAB_REFERENCE_KEYS
    if unknown:
        raise LabError(f"{path}: a lab reference holds only lab_dir and scenario, not {unknown}")
    directory = (path.parent / str(document["lab_dir"])).resolve()
    return directory, str(document.get("scenario") or DEFAULT_SCENARIO)


def ensure_lab_inventory(path: Path) -> Path:
    """The inventory of the lab a reference file names, started with its scenario if needed."""
    reference = lab_reference(path)
    if reference is None:
        return path
    directory, scenario = reference
    if running_description(directory) is None:
        start(directory, None if has_state(directory) else scenario)
    return folder.inventory_path(directory)


def inventory_provider(reference: str) -> Path | None:
    """edgebook.config.resolve's provider: "lab" is the built-in lab (started if it does not
    run); a parameters file that names a lab (parameters/lab/) is that lab's inventory."""
    if reference == "lab":
        return ensure_running()
    path = Path(reference)
    if path.is_file() and lab_reference(path) is not None:
        return ensure_lab_inventory(path)
    return None
