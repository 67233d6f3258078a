"""The organisation of a lab folder, kept in state.json, and the lab clock.

LabStore (the CLI when no daemon runs, tests driving the backend directly) parses state.json at
every read; a transaction takes an exclusive fcntl lock, loads, and writes the state back
atomically (temporary file, fsync, rename) only when the block changed it. It refuses to
change a folder whose daemon runs: the daemon would never see the change.

ResidentStore (the daemon) loads the organisation once and keeps it in memory. A transaction
holds a thread lock, compares what it may touch (the organisation-wide parts and the servers it
names) with its JSON as last persisted, and persists a change before it returns; a read-only
transaction writes nothing. state.json is joined from the JSON text of each part, so a change
to one server encodes that server only. The daemon counts WSMan requests and pipelines per
server in memory and writes counters.json (statistics, not state: no fsync) at most once a
second while counting and when it stops; LabStore.counters asks a running daemon, so a reader
sees every request already answered. The lab clock is the real UTC time plus the offset kept in
the state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import math
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from edgebook.errors import EdgebookError
from edgebook.fileio import write_atomic
from edgebook.lab import channel
from edgebook.lab.folder import daemon_running, running_description
from edgebook.lab.org.model import Org, Server, clock, org_from_json, org_to_json, to_json
from edgebook.lab.org.scenarios import build, load_scenario

STATE = "state.json"
COUNTERS = "counters.json"
KEY_FILE = ".labkey"
PRIVATE = 0o600
COUNTERS_INTERVAL_S = 1.0  # the daemon writes counters.json at most this often while counting
DAEMON_WAIT_S = 20.0  # how long a reader waits for a starting or stopping daemon
MAX_ADVANCE_MINUTES = 10 * 366 * 24 * 60  # ten years per step
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)  # far from datetime's end, and no certificate's
DOCUMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Org) if not f.metadata.get("transient"))
ORG_FIELDS = tuple(name for name in DOCUMENT_FIELDS if name != "servers")


class LabStateError(EdgebookError):
    """The lab folder is missing, already used, or its state is unreadable or unwritable."""


@contextlib.contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[None]:
    try:
        handle = open(path, "a+b")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise LabStateError(f"cannot open {path}: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data, mode=PRIVATE)
    except OSError as exc:
        raise LabStateError(
            f"cannot write {path}: {exc.strerror}; the lab folder must stay writable"
        ) from None


class LabStore:
    """A lab folder holding one organisation, read from and written to state.json."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.state_path = self.dir / STATE
        self.counters_path = self.dir / COUNTERS
        self._lock_path = self.dir / ".state.lock"
        self._counter_lock = self.dir / ".counters.lock"

    @classmethod
    def create(
        cls, directory: Path, scenario: str | Path, password: str, reset: bool = False
    ) -> LabStore:
        """Build the scenario's organisation in directory (refused if one exists, unless reset).

        The organisation is built completely before anything is written, and the state is
        replaced in one rename: a scenario that cannot be built leaves the folder as it was.
        """
        directory = Path(directory)
        store = cls(directory)
        if store.exists() and not reset:
            raise LabStateError(
                f"{directory} already holds a lab (scenario {store._scenario_name()!r}); "
                "reset it or choose another folder"
            )
        loaded = load_scenario(scenario)
        key_path = directory / KEY_FILE
        secret = key_path.read_bytes() if key_path.is_file() else secrets.token_bytes(32)
        org, lab_files = build(loaded, dt.datetime.now(dt.UTC), secret, password)
        state = json.dumps(org_to_json(org)).encode()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        except OSError as exc:
            raise LabStateError(
                f"cannot create the lab folder {directory}: {exc.strerror}"
            ) from None
        if not key_path.is_file():
            _write(key_path, secret)
        for relative, data in lab_files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write(target, data)
        with _locked(store._lock_path, exclusive=True):
            _write(store.state_path, state)
        _write(store.counters_path, b"{}")
        return store

    def exists(self) -> bool:
        """Whether the folder holds a state."""
        return self.state_path.is_file() and self.state_path.stat().st_size > 0

    def _scenario_name(self) -> str:
        try:
            return str(json.loads(self.state_path.read_bytes()).get("scenario"))
        except (OSError, ValueError, AttributeError):
            return "unreadable"

    def _secret(self) -> bytes:
        try:
            return (self.dir / KEY_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise LabStateError(
                f"{self.dir} holds no lab key ({KEY_FILE}); recreate the lab"
            ) from exc

    def _load(self) -> Org:
        try:
            data = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            raise LabStateError(f"{self.dir} holds no lab state ({STATE})") from None
        except OSError as exc:
            raise LabStateError(f"cannot read {self.state_path}: {exc.strerror}") from None
        except ValueError as exc:  # JSON or UTF-8
            raise _foreign(self, f"not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not {"scenario", "servers", "domain"} <= set(data):
            raise _foreign(self, "not an edgebook lab state")
        try:
            return org_from_json(data, self._secret())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _foreign(
                self, f"not an edgebook lab state ({type(exc).__name__}: {exc})"
            ) from None

    def _save(self, org: Org) -> None:
        _write(self.state_path, json.dumps(org_to_json(org)).encode())

    def read(self) -> Org:
        """The organisation, read-only (changes to it are not saved)."""
        with _locked(self._lock_path, exclusive=False):
            return self._load()

    @contextlib.contextmanager
    def transaction(self, servers: Collection[str] | None = None) -> Iterator[Org]:
        """The mutable organisation under the exclusive lock; saved only if the block succeeds
        and changed it. servers names what the block touches (ResidentStore uses it)."""
        if daemon_running(self.dir):
            raise LabStateError(
                f"a lab daemon runs in {self.dir}; change the lab through it (edgebook lab "
                "fault/advance/reset) or stop it first"
            )
        with _locked(self._lock_path, exclusive=True):
            org = self._load()
            before = org_to_json(org)
            yield org
            if org_to_json(org) != before:
                self._save(org)

    def now(self) -> dt.datetime:
        """The lab clock (aware UTC)."""
        return clock(self.read())

    def advance(self, minutes: float) -> dt.datetime:
        """Move the lab clock forward; returns the new lab time."""
        check_minutes(minutes)
        with self.transaction(()) as org:
            later = clock(org) + dt.timedelta(minutes=minutes)
            if later >= LATEST:
                raise EdgebookError(
                    f"the lab clock would pass {LATEST.year}; reset the lab to start again"
                )
            org.clock_offset_s += minutes * 60
            return later

    def count(self, server: str, kind: str) -> None:
        """Add one to a per-server counter ("requests" or "pipelines")."""
        with _locked(self._counter_lock, exclusive=True):
            counters = self._read_counters()
            entry = counters.setdefault(server, {"requests": 0, "pipelines": 0})
            entry[kind] = entry.get(kind, 0) + 1
            _replace(self.counters_path, counters)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-server {"requests": n, "pipelines": n}: a running daemon's (counters.json lags
        behind it), else counters.json's."""
        asked = self._daemon_counters()
        if asked is not None:
            return asked
        with _locked(self._counter_lock, exclusive=False):
            return self._read_counters()

    def _daemon_counters(self) -> dict[str, dict[str, int]] | None:
        """The running daemon's counters over its control channel; None when no daemon runs.

        A daemon starting (no endpoints.json yet) or stopping (channel closed, counters.json not
        yet written) is waited for: until it answers, or ends and counters.json is final."""
        deadline = time.monotonic() + DAEMON_WAIT_S
        problem = "it published no endpoints.json"
        while daemon_running(self.dir):
            description = running_description(self.dir)
            if description is not None:
                try:
                    port = int(description["control_port"])
                    counters = channel.request(self.dir, port, "counters")
                except (OSError, ValueError, TypeError, KeyError, channel.ChannelError) as exc:
                    problem = str(exc)
                else:
                    if not isinstance(counters, dict):
                        raise LabStateError(f"the lab daemon in {self.dir} sent no counters")
                    return counters
            if time.monotonic() > deadline:
                raise LabStateError(
                    f"the lab daemon in {self.dir} runs but did not give its counters within "
                    f"{DAEMON_WAIT_S:.0f} s ({problem})"
                )
            time.sleep(0.05)
        return None

    def _read_counters(self) -> dict[str, dict[str, int]]:
        try:
            counters = json.loads(self.counters_path.read_bytes() or b"{}")
        except (OSError, ValueError):
            return {}
        return counters if isinstance(counters, dict) else {}


class ResidentStore(LabStore):
    """The organisation of a lab folder held in memory by the daemon; every change persisted."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._mutex = threading.RLock()
        self._org = self._load()
        self._counts = self._read_counters()
        self._count_lock = threading.Lock()
        self._count_write_lock = threading.Lock()
        self._counts_due = time.monotonic() + COUNTERS_INTERVAL_S
        self._persist_lock = threading.Lock()
        self._org_json: dict[str, Any] = {}
        self._server_json: dict[str, Any] = {}
        self._org_text: dict[str, str] = {}  # JSON text of each part, kept until it changes
        self._server_text: dict[str, str] = {}
        self._sequence = self._saved_sequence = 0
        self._saved = self._remember()

    def read(self) -> Org:
        """The live organisation: read it, never change it (use transaction())."""
        return self._org

    @contextlib.contextmanager
    def view(self) -> Iterator[Org]:
        """The live organisation while no transaction changes it (read only)."""
        with self._mutex:
            yield self._org

    @contextlib.contextmanager
    def transaction(self, servers: Collection[str] | None = None) -> Iterator[Org]:
        """The organisation under the thread lock; a change is persisted before this returns.

        servers names the servers the block may change (None: any); the organisation-wide
        parts are always compared. A block that raises leaves the last persisted state.
        """
        with self._mutex:
            org = self._org
            scope = org.servers if servers is None else [org.server(n) for n in servers]
            try:
                yield org
            except BaseException:
                self._org = self._load()
                self._remember()
                raise
            org_json = _org_wide(org)
            fields = [name for name in ORG_FIELDS if org_json[name] != self._org_json[name]]
            changed = {s.name: j for s in scope if (j := to_json(s)) != self._server_of(s)}
            if not fields and not changed:
                return
            for name in fields:
                self._org_json[name] = org_json[name]
                self._org_text.pop(name, None)
            for name, value in changed.items():
                self._server_json[name] = value
                self._server_text.pop(name, None)
            self._sequence += 1
            sequence, data = self._sequence, self._encode()
        self._persist(sequence, data)

    def _remember(self) -> bytes:
        """Take the live organisation as the persisted one; returns its state.json bytes."""
        document = org_to_json(self._org)
        self._org_json = {name: document[name] for name in ORG_FIELDS}
        self._server_json = {s["name"]: s for s in document["servers"]}
        self._org_text, self._server_text = {}, {}
        return json.dumps(document).encode()

    def _server_of(self, server: Server) -> Any:
        """The server's JSON as last persisted (as it is now, for a server never compared)."""
        if server.name not in self._server_json:
            self._server_json[server.name] = to_json(server)
        return self._server_json[server.name]

    def _encode(self) -> bytes:
        """json.dumps(org_to_json(org)) as last persisted, joined from the JSON text of each
        part, kept until the part changes: a change to one server encodes that server only."""
        parts = []
        for name in DOCUMENT_FIELDS:
            if name == "servers":
                text = "[" + ", ".join(self._server_text_of(s) for s in self._org.servers) + "]"
            else:
                if name not in self._org_text:
                    self._org_text[name] = json.dumps(self._org_json[name])
                text = self._org_text[name]
            parts.append(f"{json.dumps(name)}: {text}")
        return ("{" + ", ".join(parts) + "}").encode()

    def _server_text_of(self, server: Server) -> str:
        if server.name not in self._server_text:
            self._server_text[server.name] = json.dumps(self._server_of(server))
        return self._server_text[server.name]

    def _persist(self, sequence: int, data: bytes) -> None:
        with self._persist_lock:
            if sequence <= self._saved_sequence:
                return  # a later change, written already, holds this one
            with _locked(self._lock_path, exclusive=True):
                _write(self.state_path, data)
            self._saved_sequence, self._saved = sequence, data

    def flush(self) -> None:
        """Persist whatever differs from the saved state (a change outside a declared scope),
        and write the counters (the daemon calls this when it stops)."""
        with self._mutex:
            data = self._remember()
            self._sequence += 1
            sequence = self._sequence
        if data != self._saved:
            self._persist(sequence, data)
        self._write_counters()

    def now(self) -> dt.datetime:
        """The lab clock (aware UTC)."""
        return clock(self._org)

    def count(self, server: str, kind: str) -> None:
        """Add one to a per-server counter, in memory; counters.json is written at most once
        every COUNTERS_INTERVAL_S (a write per request cost every request of a large lab)."""
        with self._count_lock:
            entry = self._counts.setdefault(server, {"requests": 0, "pipelines": 0})
            entry[kind] = entry.get(kind, 0) + 1
            now = time.monotonic()
            due = now >= self._counts_due
            if due:
                self._counts_due = now + COUNTERS_INTERVAL_S
        if due:
            self._write_counters()

    def _write_counters(self) -> None:
        """Write the counts to counters.json; writes land in the order they were taken."""
        with self._count_write_lock:
            with self._count_lock:
                snapshot = json.dumps(self._counts)
            with contextlib.suppress(OSError):  # statistics: a full disk must not stop the lab
                _overwrite(self.counters_path, self._counter_lock, snapshot.encode())

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-server {"requests": n, "pipelines": n}."""
        with self._count_lock:
            return {name: dict(entry) for name, entry in self._counts.items()}


def _org_wide(org: Org) -> dict[str, Any]:
    """The JSON of the organisation-wide fields (all but the servers)."""
    return {name: to_json(getattr(org, name)) for name in ORG_FIELDS}


def _replace(path: Path, value: Any) -> None:
    """Write JSON by rename, without fsync (for counters)."""
    _replace_text(path, json.dumps(value))


def _overwrite(path: Path, lock: Path, data: bytes) -> None:
    """Write a file in place under the exclusive flock of lock (its readers take it shared), a
    tenth of the work of a new file and a rename; the file is private (0600) when created."""
    lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
    finally:
        os.close(lock_fd)  # (releases the flock)


def _replace_text(path: Path, text: str) -> None:
    """Write text by rename, without fsync; the file is private (mkstemp's 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _foreign(store: LabStore, problem: str) -> LabStateError:
    return LabStateError(
        f"{store.state_path} is {problem}; it was not written by this edgebook lab. Rebuild the "
        f"lab with `edgebook lab reset --dir {store.dir} --scenario NAME` or choose another folder"
    )


def check_minutes(minutes: float) -> None:
    """Refuse a clock step that is not a finite number of minutes in (0, ten years]."""
    if not isinstance(minutes, int | float) or not math.isfinite(minutes) or minutes <= 0:
        raise EdgebookError(
            f"the lab clock only moves forward: --minutes must be a finite number more than 0, "
            f"not {minutes}"
        )
    if minutes > MAX_ADVANCE_MINUTES:
        raise EdgebookError(
            f"--minutes must be at most {MAX_ADVANCE_MINUTES} (ten years) per step, not {minutes:g}"
        )
