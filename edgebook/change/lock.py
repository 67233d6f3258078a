"""One change per Edge at a time: a lock file on the Edge itself, written over the change's own
session, and journalled locally.

`New-Item -ItemType File` fails when the file exists, so creating the lock is atomic on the
Edge and a second operator on another machine sees who holds it and since when. A lock older
than `stale_after` is stale; it is taken over only when the caller names the holder's change
(`take_over`). The holder's own change, run again by the same operator (a resume after a
crash), takes its lock back without that.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from edgebook.change.journal import Journal
from edgebook.errors import EdgebookError
from edgebook.exchange.command import Command

# edgebook's folder on an Edge: the lock file, and phase 03's subscription file for a moment
EDGEBOOK_FOLDER = r"C:\ProgramData\edgebook"
# New-Item -Force on a directory means "create it unless it exists": what the call means, not an
# answer to a question (New-Item asks none)
MAKE_FOLDER = {"ItemType": "Directory", "Path": EDGEBOOK_FOLDER, "Force": True}
LOCK_PATH = EDGEBOOK_FOLDER + r"\change.lock"
STALE_AFTER = dt.timedelta(hours=8)


class LockHeld(EdgebookError):
    """Another change holds the Edge's lock."""


@dataclass(frozen=True)
class LockInfo:
    """Who holds an Edge's lock: the change, the operator, since when, and a random token."""

    edge: str
    change: str
    operator: str
    since: str  # UTC, ISO 8601
    token: str
    plan_sha256: str = ""

    def to_json(self) -> str:
        """The lock file's content."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str, edge: str) -> LockInfo:
        """A lock file's content; unreadable content gives a holder without change."""
        try:
            data = json.loads(text)
            return cls(
                **{k: str(data[k]) for k in ("change", "operator", "since", "token")},
                edge=edge,
                plan_sha256=str(data.get("plan_sha256", "")),
            )
        except (json.JSONDecodeError, KeyError, TypeError):
            return cls(edge, "", "unknown (unreadable lock file)", "", "")

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        """How long the lock has been held (None when its time is unreadable)."""
        try:
            since = dt.datetime.fromisoformat(self.since)
        except ValueError:
            return None
        return now - (since if since.tzinfo else since.replace(tzinfo=dt.UTC))


class EdgeLock:
    """The lock of one Edge for one change; use as a context manager around applying a plan."""

    def __init__(
        self,
        shell: Any,
        change: str,
        journal: Journal,
        *,
        plan_sha256: str = "",
        take_over: str = "",
        stale_after: dt.timedelta = STALE_AFTER,
    ) -> None:
        self.shell = shell
        self.edge = shell.name
        self.change = change
        self.journal = journal
        self.take_over = take_over
        self.stale_after = stale_after
        self.info = LockInfo(
            self.edge,
            change,
            journal.operator,
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            secrets.token_hex(8),
            plan_sha256,
        )
        self.held = False

    def __enter__(self) -> EdgeLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def acquire(self) -> LockInfo:
        """Create the lock file on the Edge, or take back our own or a named stale one."""
        holder = self._create(replace=False)
        if holder is None:
            self.journal.append("lock-acquired", edge=self.edge, lock=asdict(self.info))
            self.held = True
            return self.info
        event = self._may_replace(holder)
        if self._create(replace=True) is not None:
            raise LockHeld(f"{self.edge}: another operator took the lock meanwhile; try again")
        self.journal.append(event, edge=self.edge, lock=asdict(self.info), previous=asdict(holder))
        self.held = True
        return self.info

    def release(self) -> None:
        """Remove the lock file if it is still ours (one read, one removal)."""
        if not self.held:
            return
        self.held = False
        current = self._read()
        if current is None or current.token != self.info.token:
            self.journal.append(
                "lock-lost", edge=self.edge, found=asdict(current) if current else None
            )
            return
        self.shell.run_batch([Command("Remove-Item", {"Path": LOCK_PATH})], errors="raise")
        self.journal.append("lock-released", edge=self.edge, token=self.info.token)

    def _may_replace(self, holder: LockInfo) -> str:
        """The journal event of a permitted replacement, or LockHeld saying who holds it."""
        if holder.change == self.change and holder.operator == self.info.operator:
            return "lock-resumed"
        now = dt.datetime.now(dt.UTC)
        age = holder.age(now)
        stale = age is None or age > self.stale_after
        held = f"held by {holder.operator} for change {holder.change or '?'} since {holder.since}"
        if age is not None:
            held += f" ({_hours(age)} ago)"
        if not stale:
            raise LockHeld(
                f"{self.edge} is locked: {held}. One change per Edge at a time: wait until it "
                f"ends (a lock becomes stale after {_hours(self.stale_after)})"
            )
        if not holder.change:
            raise LockHeld(
                f"{self.edge}: the lock file {LOCK_PATH} is unreadable; look at it on the Edge "
                "and remove it by hand once you know no change runs"
            )
        if self.take_over != holder.change:
            raise LockHeld(
                f"{self.edge} is locked: {held}; the lock is stale. If that change is dead, take "
                f"the lock over by naming it: take_over_lock={holder.change!r}"
            )
        return "lock-taken-over"

    def _create(self, *, replace: bool) -> LockInfo | None:
        """One round trip: (remove,) create, read back. None when the file is ours."""
        commands = [Command("New-Item", dict(MAKE_FOLDER))]
        if replace:
            commands.append(Command("Remove-Item", {"Path": LOCK_PATH}))
        commands += [
            Command(
                "New-Item",
                {"ItemType": "File", "Path": LOCK_PATH, "Value": self.info.to_json()},
            ),
            Command("Get-Content", {"Path": LOCK_PATH, "Raw": True}),
        ]
        result = self.shell.run_batch(commands, errors="return")
        content = next((r for r in reversed(result.records) if isinstance(r, str)), None)
        if content is None:
            problems = "; ".join(e.message for e in result.errors) or "no content came back"
            raise LockHeld(f"{self.edge}: the lock file {LOCK_PATH} cannot be written: {problems}")
        holder = LockInfo.parse(content, self.edge)
        return None if holder.token == self.info.token else holder

    def _read(self) -> LockInfo | None:
        result = self.shell.run_batch(
            [Command("Get-Content", {"Path": LOCK_PATH, "Raw": True})], errors="return"
        )
        content = next((r for r in result.records if isinstance(r, str)), None)
        return None if content is None else LockInfo.parse(content, self.edge)


def _hours(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"
