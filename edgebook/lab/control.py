"""Start, stop, change and describe a lab running in the background (CLI, demo and tests).

A running lab is its daemon: it holds DIR/.daemon.lock and the organisation in memory, so
changes go to it over the control channel; a stopped lab is its state file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgebook import yamlfile
from edgebook.errors import EdgebookError
from edgebook.lab import channel, folder, operations
from edgebook.lab.folder import running_description
from edgebook.lab.org.model import mail_ledger
from edgebook.lab.org.scenarios import list_scenarios, load_scenario, password_hash
from edgebook.lab.org.store import LabStore

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
MAX_LATENCY_MS = 10_000  # a round trip beyond 10 s would outlast the clients' timeouts
DEFAULT_SCENARIO = "seed-incident"
DAEMON = (sys.executable, "-m", "edgebook.lab.daemon")


class LabError(EdgebookError):
    """The lab cannot do what was asked (not running, already running, failed to start)."""


def has_state(directory: Path) -> bool:
    """Whether DIR holds a lab organisation."""
    return (directory / "state.json").is_file()


def create(directory: Path, scenario: str | Path) -> None:
    """Create the organisation of a scenario in DIR (which must not hold one yet).

    The organisation is built before anything is written (a scenario that cannot be built
    leaves DIR as it was); a folder created for it is removed again when writing fails.
    """
    load_scenario(scenario)  # refuses a bad scenario before anything is written
    password, _ = folder.lab_password(directory, write=False)
    created = not directory.exists()
    try:
        LabStore.create(directory, scenario, password)
        folder.keep_password(directory, password)
    except OSError as exc:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise LabError(f"cannot create the lab in {directory}: {exc.strerror}") from None
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def _check_password(directory: Path) -> None:
    """Refuse to start a lab whose password is not the one its inventory will name."""
    password, reference = folder.lab_password(directory)
    org = LabStore(directory).read()
    if org.auth_hash and password_hash(org.auth_salt, password) != org.auth_hash:
        source = f"${folder.PASSWORD_ENV}" if reference.startswith("env:") else reference
        raise LabError(
            f"the lab in {directory} was created with another password than {source} gives now, "
            "so its inventory's credentials would not match; set "
            f"{folder.PASSWORD_ENV} back to the lab's password (or unset it to use "
            f"{directory / folder.PASSWORD_FILE}), or rebuild the lab with the new password: "
            f"edgebook lab reset --dir {directory}"
        )


def start(
    directory: Path, scenario: str | Path | None = None, latency_ms: int = 0
) -> dict[str, Any]:
    """Start the lab in DIR in the background and return its endpoints once it listens."""
    directory = folder.check_folder(directory).resolve()
    if not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise LabError(
            f"--latency-ms must be from 0 to {MAX_LATENCY_MS} (milliseconds per round trip), "
            f"not {latency_ms}"
        )
    if running_description(directory) or folder.daemon_running(directory):
        raise _already_running(directory)
    if has_state(directory):
        current = LabStore(directory).read().scenario
        if scenario is not None and load_scenario(scenario).name != current:
            raise LabError(
                f"{directory} holds the scenario {current!r}; use `edgebook lab reset --dir "
                f"{directory} --scenario {scenario}` to switch, or another --dir"
            )
        _check_password(directory)
    else:
        create(directory, scenario or DEFAULT_SCENARIO)
    return _spawn(directory, latency_ms)


def _already_running(directory: Path, how: str = "") -> LabError:
    return LabError(f"a lab already runs in {directory}{how}; stop it first (edgebook lab stop)")


def _spawn(directory: Path, latency_ms: int) -> dict[str, Any]:
    if folder.daemon_running(directory):  # its endpoints.json is not ours to remove
        raise _already_running(directory)
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
            if folder.daemon_running(directory):
                raise _already_running(directory, " (started by another command meanwhile)")
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
    """Stop the lab running in DIR; False when none was running.

    The daemon is asked over the control channel; a signal goes only to the process that
    endpoints.json names by pid and start time. A stale endpoints.json is removed.
    """
    directory = directory.resolve()
    description = running_description(directory)
    if description is None:
        if not folder.daemon_running(directory):
            folder.endpoints_path(directory).unlink(missing_ok=True)
            return False
        raise LabError(
            f"a lab daemon holds {directory / folder.DAEMON_LOCK} but endpoints.json does not "
            "name it; wait for it to finish starting, or stop it yourself"
        )
    pid = int(description["pid"])
    try:
        channel.request(directory, int(description["control_port"]), "stop")
    except (EdgebookError, KeyError, TypeError, ValueError):
        if folder.process_start(pid) == description["process_start"]:
            os.kill(pid, signal.SIGTERM)
    if not _gone(directory, pid, STOP_TIMEOUT_S):
        if folder.process_start(pid) == description["process_start"]:
            os.kill(pid, signal.SIGKILL)
        _gone(directory, pid, 2.0)
    folder.endpoints_path(directory).unlink(missing_ok=True)
    return True


def _gone(directory: Path, pid: int, timeout_s: float) -> bool:
    """Wait until no daemon holds the folder's lock (reaping it when it is our own child)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not folder.daemon_running(directory):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return True
        time.sleep(0.05)
    return False


def require_state(directory: Path) -> LabStore:
    """The store of the lab in DIR, or a clear error when DIR holds none."""
    directory = folder.check_folder(directory, writable=False)
    if not has_state(directory):
        raise LabError(
            f"{directory} holds no lab; start one with `edgebook lab start --dir {directory}`"
        )
    return LabStore(directory)


def change(directory: Path, op: str, **args: Any) -> dict[str, Any]:
    """Apply a change (edgebook.lab.operations) through the running daemon, else to the state."""
    store = require_state(directory)
    description = running_description(store.dir.resolve())
    if description is None:
        return operations.apply(store, op, args)
    return channel.request(store.dir, int(description["control_port"]), op, args)


def status(directory: Path) -> dict[str, Any]:
    """The status document of `edgebook lab status --json` (an Edge's mail ledger as of the
    last request that touched it)."""
    store = require_state(directory)
    org = store.read()
    description = running_description(store.dir.resolve()) or {}
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
                "mail": mail_ledger(org, server.name)._asdict() if server.role == "Edge" else None,
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


def reset(directory: Path, scenario: str | Path | None = None) -> dict[str, Any] | None:
    """Rebuild DIR's organisation from a scenario (default: its own); a running lab restarts.

    The new organisation is built completely before the lab stops and its state is replaced,
    so a scenario that is mistyped or cannot be built leaves the lab, running or not, as it
    was. Returns the endpoints when the lab was running, else None.
    """
    store = require_state(directory)
    directory = store.dir.resolve()
    folder.check_folder(directory)
    if scenario is None:
        try:
            scenario = store.read().scenario
        except EdgebookError as exc:
            raise LabError(f"{exc} (name the scenario with --scenario)") from None
        if scenario not in {name for name, _ in list_scenarios()}:
            raise LabError(
                f"the lab in {directory} was built from the scenario file {scenario}.yaml, not a "
                "shipped scenario, and keeps no path to it; name the file again: edgebook lab "
                f"reset --dir {directory} --scenario PATH/{scenario}.yaml"
            )
    load_scenario(scenario)
    staging = directory / ".reset"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(mode=0o700)
        key = directory / ".labkey"
        if key.is_file():
            shutil.copy2(key, staging / ".labkey")
        password, _ = folder.lab_password(directory)
        LabStore.create(staging, scenario, password)
        running = running_description(directory)
        if running is not None:
            stop(directory)
        try:
            _replace_state(staging, directory)
        finally:
            if running is not None:
                description = _spawn(directory, int(running.get("latency_ms", 0)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return description if running is not None else None


def _replace_state(staging: Path, directory: Path) -> None:
    """Move the built lab's files over the old ones; state.json last, in one rename."""
    files = [
        p
        for p in staging.rglob("*")
        if p.is_file() and p.name != "state.json" and not p.name.endswith(".lock")
    ]
    for path in files:
        target = directory / path.relative_to(staging)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(path, target)
    os.replace(staging / "state.json", directory / "state.json")


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
    try:  # bounded and UTF-8; a bad file is left to the parameters reader to explain
        document = yamlfile.load_yaml(path, what="parameters file")
    except EdgebookError:
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
