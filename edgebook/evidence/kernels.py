"""Kernels started ahead of the run that needs them.

A rollout runs its notebooks one after the other, and each run's kernel start plus its first
imports of edgebook, pandas and ipywidgets cost about 3 s. A KernelPool starts the next run's
kernel while the current one runs and imports into it the modules the phase notebooks import
(`warm_modules`), silently: outside the kernel's history, no execution count, no name bound in
the notebook's namespace. The notebook then finds them in ``sys.modules``, as after its own first
import; nothing else ran in its kernel. Each kernel serves one run and is shut down after it; a
kernel started in an environment or working directory that is no longer current is not used.
Kernels started ahead start at most `starting` at a time (default: one per CPU): four kernels
importing pandas at once on two cores made the two runs that wanted theirs first wait twice as
long. A kernel a run asks for when no spare is ready starts at once.

Starting, warming and shutting down run on the pool's own event loop thread, so a kernel's
control socket is only ever used from the loop that created it; papermill (nbclient) gets the
started kernel manager and connects its own client, as it does to a kernel it started itself.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import threading
from collections import deque
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jupyter_client.manager import AsyncKernelManager

from edgebook.errors import EdgebookError
from edgebook.evidence.forking import KernelZygote, can_fork

AHEAD = 2  # a plan run (~2 s) is shorter than a kernel start with its imports (~3 s)
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0
# as nbclient starts a kernel: no IPython history database on disk
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]
_WARM_CODE = """\
import importlib as __edgebook_importlib
for __edgebook_module in {modules!r}:
    try:
        __edgebook_importlib.import_module(__edgebook_module)
    except Exception:
        pass  # the notebook's own import reports it
del __edgebook_importlib, __edgebook_module
"""

T = TypeVar("T")

# This process imports IPython from two threads: nbconvert's highlighting in the HTML warm-up
# (runner) and jupyter_client's kernel spec (ipykernel) when a kernel starts here. Entering one
# package from two modules at once, each thread can find it half initialised ("cannot import
# name ... from partially initialized module 'IPython.paths'", then KeyError 'IPython': a
# failed demo, seen in CI), so both import it first under this lock.
IPYTHON_IMPORT = threading.Lock()


def import_ipython() -> None:
    """Import IPython and ipykernel's kernel spec in this thread, one thread at a time."""
    with IPYTHON_IMPORT:
        import ipykernel.kernelspec  # noqa: F401
        import IPython  # noqa: F401


def warm_modules(
    notebooks: Iterable[Path],
    also: Iterable[str] = (),
    lazy: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The modules the notebooks' code cells import (and the submodule candidates of
    `from package import name`), what lazy says those modules import on first use, then also,
    in first-seen order."""
    found: dict[str, None] = {}
    for notebook in notebooks:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            try:
                tree = ast.parse("".join(source) if isinstance(source, list) else source)
            except SyntaxError:  # IPython magics: their imports are not warmed
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update((alias.name, None) for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found[node.module] = None
                    found.update((f"{node.module}.{alias.name}", None) for alias in node.names)
    for module, imports in (lazy or {}).items():
        if module in found:
            found.update((name, None) for name in imports)
    found.update((name, None) for name in also)
    return tuple(found)


class _PooledKernelManager(AsyncKernelManager):
    """A kernel manager that keeps the clients it made (nbclient leaves its client connected
    to a kernel it did not start, and the pool closes it when the run is over) and, given a
    zygote, has its kernel forked there."""

    def __init__(self, zygote: KernelZygote | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zygote = zygote
        self.made_clients: list[Any] = []

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return self.zygote.command(command) if self.zygote is not None else command

    def client(self, **kwargs: Any) -> Any:
        made = super().client(**kwargs)
        self.made_clients.append(made)
        return made

    def close_clients(self) -> None:
        """Disconnect every client still connected (in the thread that made it)."""
        made_clients, self.made_clients = self.made_clients, []
        for made in made_clients:
            if made.channels_running:
                made.stop_channels()


@dataclass(frozen=True)
class _Context:
    """Where a kernel starts: the environment and working directory it inherits."""

    env: tuple[tuple[str, str], ...]
    cwd: str

    @classmethod
    def current(cls) -> _Context:
        return cls(tuple(sorted(os.environ.items())), os.getcwd())


class KernelPool:
    """Kernels for notebook runs, the next one started (and warmed) while the current one runs."""

    def __init__(
        self,
        modules: Iterable[str] = (),
        *,
        runs: int | None = None,
        upcoming: Iterable[Sequence[str]] | None = None,
        ahead: int = AHEAD,
        starting: int | None = None,
        fork: bool | None = None,
        kernel_name: str = "python3",
    ) -> None:
        """modules: what to import into a kernel started ahead; upcoming: instead, what to
        import for each run in the order they will come (a run needs only its notebook's
        modules), runs then being their number; runs: how many kernels the pool will hand out
        (None: no end), so it never starts one nobody takes; ahead: how many kernels it keeps
        starting or ready; starting: how many of those start at once (None: one per CPU);
        fork: whether kernels are forked from a zygote that imported every run's modules once
        (None: where the platform can)."""
        self.kernel_name = kernel_name
        self.modules = tuple(modules)
        self._upcoming = deque(tuple(run) for run in upcoming or ())
        self._every = tuple(dict.fromkeys([*self.modules, *(m for r in self._upcoming for m in r)]))
        self._fork = can_fork() if fork is None else fork
        self._zygote: KernelZygote | None = None
        self._left = len(self._upcoming) if upcoming is not None and runs is None else runs
        self._ahead = ahead
        self._starting = asyncio.Semaphore(starting or os.cpu_count() or 1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="edgebook-kernels", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._spares: deque[tuple[_Context, tuple[str, ...], Future[AsyncKernelManager]]] = deque()
        self._pending: list[Future[None]] = []
        self._warmed: dict[AsyncKernelManager, tuple[str, ...]] = {}
        self._ahead_of_run: set[AsyncKernelManager] = set()
        self._forked: set[AsyncKernelManager] = set()
        self._closed = False

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def take(self) -> AsyncKernelManager:
        """A started kernel for one run: a spare started ahead if one fits the current
        environment, else a new one; then the next ones start. Raises EdgebookError when the
        kernel does not start."""
        context = _Context.current()
        with self._lock:
            if self._closed:
                raise EdgebookError("the kernel pool is closed")
            chosen, warmed = None, None
            while self._spares and chosen is None:
                spare_context, spare_modules, spare = self._spares.popleft()
                if spare_context == context:
                    chosen, warmed = spare, spare_modules
                else:
                    self._discard(spare)
            if chosen is None:
                self._next_modules()  # this run's
                chosen = self._start(context, warm=None)  # wanted now: the notebook imports
            if self._left is not None:
                self._left -= 1
            self._fill(context)
        try:
            km = chosen.result(timeout=STARTUP_TIMEOUT_S + 10)
        except Exception as exc:
            raise EdgebookError(f"the {self.kernel_name} kernel did not start: {exc}") from exc
        if warmed is not None:
            self._ahead_of_run.add(km)
        if isinstance(km, _PooledKernelManager) and km.zygote is not None:
            self._forked.add(km)
            warmed = km.zygote.modules
        if warmed is not None:
            self._warmed[km] = warmed
        return km

    def prestart(self) -> None:
        """Start the kernels of the next runs now, in the current environment (e.g. while the
        lab starts)."""
        with self._lock:
            if not self._closed:
                self._fill(_Context.current())

    def _fill(self, context: _Context) -> None:
        """Keep `ahead` kernels starting or ready, but none beyond the runs left."""
        while len(self._spares) < self._ahead and (
            self._left is None or self._left > len(self._spares)
        ):
            modules = self._next_modules()
            self._spares.append((context, modules, self._start(context, warm=modules)))

    @property
    def upcoming(self) -> tuple[tuple[str, ...], ...]:
        """What the kernels not started yet will import, run by run."""
        with self._lock:
            return tuple(self._upcoming)

    def _next_modules(self) -> tuple[str, ...]:
        """What the next kernel started imports: the next run's modules, else `modules`."""
        return self._upcoming.popleft() if self._upcoming else self.modules

    def describe(self, km: AsyncKernelManager) -> dict[str, Any]:
        """How this kernel came to be, for the notebook's metadata: started ahead (or for the
        run), forked from the zygote, and what it imported before the run asked for it."""
        described: dict[str, Any] = {"started_ahead": km in self._ahead_of_run}
        if km in self._forked:
            described["forked"] = True
        if km in self._warmed:
            described["warm_imports"] = list(self._warmed[km])
        return described

    def release(self, km: AsyncKernelManager) -> None:
        """Disconnect the run's client, then shut its kernel down in the background."""
        if isinstance(km, _PooledKernelManager):
            km.close_clients()
        self._warmed.pop(km, None)
        self._ahead_of_run.discard(km)
        self._forked.discard(km)
        with self._lock:
            self._pending.append(self._submit(_shutdown(km, now=False)))

    def close(self) -> None:
        """Shut the spare and every released kernel down, then stop the loop thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._spares:
                self._discard(self._spares.popleft()[2])
            pending = list(self._pending)
        for future in pending:
            with contextlib.suppress(Exception):  # one that will not stop dies with its parent
                future.result(timeout=SHUTDOWN_TIMEOUT_S)
        if self._zygote is not None:
            with contextlib.suppress(Exception):
                self._submit(self._zygote.stop()).result(timeout=SHUTDOWN_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def _start(self, context: _Context, warm: tuple[str, ...] | None) -> Future[AsyncKernelManager]:
        """Start a kernel; warm: the modules to import into it (None: wanted now, not warmed)."""
        if self._fork and self._zygote is None:  # it imports what any run will import
            self._zygote = KernelZygote(self._every, dict(context.env), context.cwd)
        return self._submit(self._started(context, warm))

    async def _started(self, context: _Context, warm: tuple[str, ...] | None) -> AsyncKernelManager:
        if warm is None:  # wanted now
            return await self._launched(context, warm)
        async with self._starting:
            return await self._launched(context, warm)

    async def _launched(
        self, context: _Context, warm: tuple[str, ...] | None
    ) -> AsyncKernelManager:
        zygote = self._zygote
        if zygote is not None and (
            (dict(context.env), context.cwd) != (zygote.env, zygote.cwd)
            or not await zygote.ready(STARTUP_TIMEOUT_S)
        ):
            zygote = None  # started elsewhere, or no zygote: the usual start
        km = _PooledKernelManager(zygote=zygote, kernel_name=self.kernel_name)
        import_ipython()  # what the kernel spec lookup imports, not beside the HTML warm-up
        await km.start_kernel(
            extra_arguments=list(KERNEL_ARGUMENTS), env=dict(context.env), cwd=context.cwd
        )
        if warm is None:
            return km
        try:
            await self._warm(km, warm)
        except BaseException:
            await _shutdown(km, now=True)
            raise
        return km

    async def _warm(self, km: AsyncKernelManager, modules: tuple[str, ...]) -> None:
        """Wait until the kernel answers, then run the imports silently."""
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=STARTUP_TIMEOUT_S)
            if not modules:
                return
            code = _WARM_CODE.format(modules=modules)
            msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
            while True:
                reply = await client.get_shell_msg(timeout=STARTUP_TIMEOUT_S)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    return
        finally:
            client.stop_channels()

    def _discard(self, future: Future[AsyncKernelManager]) -> None:
        """Shut down a kernel nobody will use, once it has started."""

        async def discard() -> None:
            km = await asyncio.wrap_future(future)
            await _shutdown(km, now=True)

        self._pending.append(self._submit(discard()))

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)


async def _shutdown(km: AsyncKernelManager, *, now: bool) -> None:
    """Stop the kernel (gracefully unless now) and remove its connection file."""
    try:
        if await km.is_alive():
            await km.shutdown_kernel(now=now)
    finally:
        await km.cleanup_resources()
