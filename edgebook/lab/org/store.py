"""LabStore: the organisation persisted in a folder, shared by many processes.

state.json is written atomically (temporary file, fsync, rename) under an exclusive fcntl lock;
counters.json (per-server WSMan requests and pipelines) has its own lock so counting does not
rewrite the state. The lab clock is the real UTC time plus the offset kept in the state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from edgebook.errors import EdgebookError
from edgebook.lab.folder import write_atomic
from edgebook.lab.org.model import Org, org_from_json, org_to_json

STATE = "state.json"
COUNTERS = "counters.json"
KEY_FILE = ".labkey"


PRIVATE = 0o600


class LabStateError(EdgebookError):
    """The lab folder is missing, already used, or its state is unreadable."""


@contextlib.contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class LabStore:
    """A lab folder holding one organisation."""

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
        """Build the scenario's organisation in directory (refused if one exists, unless reset)."""
        from edgebook.lab.org.scenarios import build, load_scenario

        directory = Path(directory)
        loaded = load_scenario(scenario)
        store = cls(directory)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        if store.exists() and not reset:
            raise LabStateError(
                f"{directory} already holds a lab (scenario {store.read().scenario!r}); "
                "reset it or choose another folder"
            )
        key_path = directory / KEY_FILE
        if not key_path.exists() or reset:
            write_atomic(key_path, secrets.token_bytes(32), mode=PRIVATE)
        secret = key_path.read_bytes()
        now = dt.datetime.now(dt.UTC)
        org, lab_files = build(loaded, now, secret, password)
        with _locked(store._lock_path, exclusive=True):
            store._save(org)
        for relative, data in lab_files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(target, data, mode=PRIVATE)
        write_atomic(store.counters_path, b"{}", mode=PRIVATE)
        return store

    def exists(self) -> bool:
        """Whether the folder holds a state."""
        return self.state_path.exists() and self.state_path.stat().st_size > 0

    def _secret(self) -> bytes:
        try:
            return (self.dir / KEY_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise LabStateError(
                f"{self.dir} holds no lab key ({KEY_FILE}); recreate the lab"
            ) from exc

    def _load(self) -> Org:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError as exc:
            raise LabStateError(f"{self.dir} holds no lab state ({STATE})") from exc
        except json.JSONDecodeError as exc:
            raise LabStateError(f"{self.state_path} is not valid JSON: {exc}") from exc
        return org_from_json(data, self._secret())

    def _save(self, org: Org) -> None:
        write_atomic(self.state_path, json.dumps(org_to_json(org)).encode(), mode=PRIVATE)

    def read(self) -> Org:
        """The organisation, read-only (changes to it are not saved)."""
        with _locked(self._lock_path, exclusive=False):
            return self._load()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Org]:
        """The mutable organisation under the exclusive lock; saved only if the block succeeds."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with _locked(self._lock_path, exclusive=True):
            org = self._load()
            before = org_to_json(org)
            yield org
            after = org_to_json(org)
            if after != before:
                self._save(org)

    def now(self) -> dt.datetime:
        """The lab clock (aware UTC)."""
        return clock(self.read())

    def advance(self, minutes: float) -> dt.datetime:
        """Move the lab clock forward; returns the new lab time."""
        if minutes < 0:
            raise EdgebookError(f"the lab clock only moves forward; got {minutes} minutes")
        with self.transaction() as org:
            org.clock_offset_s += minutes * 60
            return clock(org)

    def count(self, server: str, kind: str) -> None:
        """Add one to a per-server counter ("requests" or "pipelines")."""
        with _locked(self._counter_lock, exclusive=True):
            counters = self._read_counters()
            entry = counters.setdefault(server, {"requests": 0, "pipelines": 0})
            entry[kind] = entry.get(kind, 0) + 1
            write_atomic(self.counters_path, json.dumps(counters).encode(), mode=PRIVATE)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-server {"requests": n, "pipelines": n}."""
        with _locked(self._counter_lock, exclusive=False):
            return self._read_counters()

    def _read_counters(self) -> dict[str, dict[str, int]]:
        try:
            return json.loads(self.counters_path.read_text() or "{}")
        except FileNotFoundError:
            return {}


def clock(org: Org) -> dt.datetime:
    """The lab time of an organisation: real UTC now plus its offset."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=org.clock_offset_s)
