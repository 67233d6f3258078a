"""Finish runs' evidence (HTML and manifest) in the background, in the order the runs ended.

Rendering a run's HTML and writing its manifest cost 0.1-0.4 s, which no later run needs: a
plan's hash comes from the notebook's records, not from its manifest. An EvidenceWriter does
that work on one thread while the next notebook runs. It keeps order, so each manifest still
chains to the one before it on its Edge, and it tells which files it writes, so a run that is
under way does not count them as its own. A failed write stops the rollout before its next
run; `drain` waits for everything and raises the first failure.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from edgebook.errors import EdgebookError

Job = Callable[[], None]


class EvidenceWriter:
    """One background thread that runs evidence jobs in the order they were given."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Job, Future[None]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._owned: set[Path] = set()
        self._pending: list[Future[None]] = []
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="edgebook-evidence", daemon=True)
        self._thread.start()

    def __enter__(self) -> EvidenceWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def submit(self, job: Job, writes: set[Path]) -> Future[None]:
        """Queue job, which will create the files in writes; raise an earlier job's failure."""
        self.check()
        future: Future[None] = Future()
        with self._lock:
            self._owned |= writes
            self._pending.append(future)
        self._jobs.put((job, future))
        return future

    def owned(self) -> set[Path]:
        """Every file a job was given to write (written yet or not)."""
        with self._lock:
            return set(self._owned)

    def check(self) -> None:
        """Raise EdgebookError if a job has failed."""
        with self._lock:
            failure = self._failure
        if failure is not None:
            raise EdgebookError(f"writing a run's evidence failed: {failure}") from failure

    def drain(self) -> None:
        """Wait until every queued job is done; raise the first failure."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.exception()
        self.check()

    def close(self) -> None:
        """Drain, then stop the thread."""
        try:
            self.drain()
        finally:
            self._jobs.put(None)
            self._thread.join(timeout=60)

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            try:
                job()
            except BaseException as exc:  # kept for check(); the thread goes on with the rest
                with self._lock:
                    self._failure = self._failure or exc
                future.set_exception(exc)
            else:
                future.set_result(None)
