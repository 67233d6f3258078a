"""The journal of one Edge's change: append-only JSON lines, each flushed and fsync'd.

Every record carries `seq`, `time` (UTC), `operator` (user@host) and `event`; the events are
listed in docs/change-engine.md. A crash may cut the last line: reading stops at the last whole
record and says so, and the next append first drops the cut tail (and journals that it did).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebook.change import values
from edgebook.errors import EdgebookError

DONE, FAILED, SKIPPED, STARTED = "step-done", "step-failed", "step-skipped", "step-started"


class JournalError(EdgebookError):
    """The journal cannot be read or written."""


def operator() -> str:
    """Who runs the change: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@dataclass
class JournalRead:
    """The whole records of a journal, and whether a cut last line was left out."""

    records: list[dict[str, Any]] = field(default_factory=list)
    cut_bytes: int = 0  # bytes after the last whole record (0: the journal ends cleanly)

    @property
    def truncated(self) -> bool:
        """Whether the journal ends in a cut record (a crash while writing)."""
        return self.cut_bytes > 0

    def events(self, *names: str, plan: str | None = None) -> Iterator[dict[str, Any]]:
        """The records of these events (of one plan hash when given)."""
        for record in self.records:
            if record["event"] in names and (plan is None or record.get("plan_sha256") == plan):
                yield record

    def notice(self) -> str | None:
        """What a reader must be told about a cut last line."""
        if not self.truncated:
            return None
        last = self.records[-1] if self.records else None
        where = f"after record {last['seq']} ({last['event']})" if last else "at its start"
        return (
            f"the journal ends in a cut record ({self.cut_bytes} bytes {where}), left by a crash "
            "while writing: it was read up to the last whole record"
        )


class Journal:
    """Append-only JSON lines at `path` (outputs/<change>/<EDGE>/journal.jsonl)."""

    def __init__(self, path: Path, who: str | None = None) -> None:
        self.path = path
        self.operator = who or operator()

    def read(self) -> JournalRead:
        """Every whole record; a cut last line is counted, not parsed."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return JournalRead()
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot be read ({exc.strerror})") from None
        whole, _, tail = data.rpartition(b"\n")
        result = JournalRead(cut_bytes=len(tail))
        for number, line in enumerate(whole.split(b"\n") if whole else [], 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise JournalError(
                    f"{self.path}: line {number} is not a journal record; the journal was "
                    "edited or damaged: keep it as evidence and start a new change id"
                ) from None
            result.records.append(record)
        return result

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record and fsync it; a cut last line is dropped first (and journalled)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        current = self.read()
        if current.truncated:
            self._drop_tail(current.cut_bytes)
            self._write(self._record(current, "journal-repaired", cut_bytes=current.cut_bytes))
            current = self.read()
        record = self._record(current, event, **fields)
        self._write(record)
        return record

    def _record(self, current: JournalRead, event: str, **fields: Any) -> dict[str, Any]:
        seq = current.records[-1]["seq"] + 1 if current.records else 1
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        body = {"seq": seq, "time": now, "operator": self.operator, "event": event}
        return body | values.to_json(fields)

    def _drop_tail(self, cut: int) -> None:
        with self.path.open("r+b") as handle:
            handle.truncate(self.path.stat().st_size - cut)
            handle.flush()
            os.fsync(handle.fileno())

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's name must survive a crash too
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
