"""Kernels started ahead: the next run's kernel is ready and warmed, the notebook cannot tell
(fresh history, clean namespace), papermill's verdicts still hold, and nothing is left running."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import threading
import time
from pathlib import Path

import nbformat
import psutil  # type: ignore[import-untyped]
import pytest

from edgebook.evidence import kernels, runner
from edgebook.evidence.kernels import KernelPool, warm_modules
from edgebook.evidence.runner import execute_phase
from tests.test_runner import _notebook

PROBE = """\
import sys
record_seen = {
    "warm": "email.mime.text" in sys.modules,
    "leaked": sorted(n for n in dir() if n.startswith("__edgebook")),
    "marker": __import__("os").environ.get("EDGEBOOK_TEST_MARKER"),
}
print(record_seen)
"""


def _kernels_running() -> list[psutil.Process]:
    running = []
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())  # a forked kernel's is its zygote's
            if "ipykernel_launcher" in command or "edgebook.evidence.zygote" in command:
                running.append(child)
        except psutil.Error:  # gone, or a zombie another test left to its reaper
            continue
    return running


def _seen(run) -> dict:
    saved = nbformat.read(str(run.notebook), as_version=4)
    assert saved.cells[0].execution_count == 1  # the warm-up left no trace in the history
    return eval(saved.cells[1].outputs[0]["text"])


def _write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, str(path))
    return path


def test_warm_modules_are_the_notebooks_imports_at_any_depth(tmp_path):
    first = _write_notebook(
        tmp_path / "a.ipynb",
        [
            "import json\nfrom edgebook.phases import prepare, verify",
            "%matplotlib inline\nimport x",
        ],
    )
    second = _write_notebook(
        tmp_path / "b.ipynb", ["if True:\n    import email.mime.text as m\nfrom . import rel"]
    )
    assert warm_modules([first, second], also=("ipywidgets",)) == (
        "json",
        "edgebook.phases",
        "edgebook.phases.prepare",
        "edgebook.phases.verify",
        "email.mime.text",
        "ipywidgets",
    )


def test_the_second_run_gets_a_kernel_started_and_warmed_ahead(tmp_path):
    nb = _notebook(tmp_path / "probe.ipynb", PROBE)
    with KernelPool(["email.mime.text"], runs=2, fork=False) as kernels:
        first = execute_phase(nb, tmp_path / "out", {}, run_id="r1", kernels=kernels)
        second = execute_phase(nb, tmp_path / "out", {}, run_id="r2", kernels=kernels)
    assert first.ok and second.ok
    assert _seen(first)["warm"] is False  # started on demand: nothing imported ahead
    assert _seen(second) == {"warm": True, "leaked": [], "marker": None}
    meta = nbformat.read(str(second.notebook), as_version=4).metadata.edgebook
    assert meta["kernel"] == {"started_ahead": True, "warm_imports": ["email.mime.text"]}
    assert _kernels_running() == []


def test_a_kernel_started_in_another_environment_is_not_used(tmp_path, monkeypatch):
    nb = _notebook(tmp_path / "probe.ipynb", PROBE)
    with KernelPool(["email.mime.text"], runs=2) as kernels:
        execute_phase(nb, tmp_path / "out", {}, run_id="r1", kernels=kernels)
        monkeypatch.setenv("EDGEBOOK_TEST_MARKER", "changed")  # after the spare started
        second = execute_phase(nb, tmp_path / "out", {}, run_id="r2", kernels=kernels)
    assert _seen(second)["marker"] == "changed"
    meta = nbformat.read(str(second.notebook), as_version=4).metadata.edgebook
    assert meta["kernel"] == {"started_ahead": False}
    assert _kernels_running() == []


def test_the_pool_starts_no_kernel_beyond_its_runs(tmp_path):
    started = []

    class Counting(KernelPool):
        def _start(self, context, warm):
            started.append(context)
            return super()._start(context, warm)

    nb = _notebook(tmp_path / "quick.ipynb", "pass")
    with Counting(runs=3, ahead=2) as kernels:
        for index in range(3):
            assert execute_phase(nb, tmp_path / "out", {}, run_id=f"r{index}", kernels=kernels).ok
            assert len(started) == 3  # the first run already started the other two
    assert _kernels_running() == []


@pytest.mark.parametrize("fork", [True, False])
def test_timeout_and_dead_kernel_verdicts_hold_in_pool_kernels(tmp_path, fork):
    slow = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(30)", "after = 1")
    dead = _notebook(tmp_path / "dead.ipynb", "import os\nos._exit(1)", "after = 1")
    with KernelPool(runs=2, fork=fork) as kernels:
        timed_out = execute_phase(
            slow, tmp_path / "out", {}, run_id="r1", timeout_s=1, kernels=kernels
        )
        died = execute_phase(dead, tmp_path / "out", {}, run_id="r2", kernels=kernels)
    assert timed_out.verdict == "timeout" and "longer than 1 s" in timed_out.error
    assert died.verdict == "dead-kernel" and "kernel died" in died.error
    assert _kernels_running() == []


def test_a_closed_pool_refuses_and_the_run_fails_clearly(tmp_path):
    nb = _notebook(tmp_path / "quick.ipynb", "pass")
    kernels = KernelPool(runs=1)
    kernels.close()
    run = execute_phase(nb, tmp_path / "out", {}, run_id="r1", kernels=kernels)
    assert run.verdict == "failed" and "kernel pool is closed" in run.error


@pytest.fixture(autouse=True)
def _no_marker(monkeypatch):
    monkeypatch.delenv("EDGEBOOK_TEST_MARKER", raising=False)
    assert os.environ.get("EDGEBOOK_TEST_MARKER") is None


def test_runs_in_pool_kernels_leave_no_client_connected(tmp_path):
    """nbclient leaves its client connected to a kernel it did not start: the pool closes it,
    else every run would leak the client's sockets and zmq threads."""
    nb = _notebook(tmp_path / "quick.ipynb", "pass")
    process = psutil.Process()

    def runs(count: int, prefix: str) -> None:
        with KernelPool(runs=count) as kernels:
            for index in range(count):
                execute_phase(nb, tmp_path / "out", {}, run_id=f"{prefix}{index}", kernels=kernels)
        gc.collect()

    def settled(fds: int, threads: int) -> bool:
        """Whether the process is back to fds and threads: a thread that is ending (a closed
        loop's executor worker) is given 5 s, a leaked client's sockets and threads stay."""
        deadline = time.monotonic() + 5
        while process.num_fds() > fds or process.num_threads() > threads:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    runs(1, "warm")  # imports and lazy singletons of the first run are not leaks
    fds, threads = process.num_fds(), process.num_threads()
    runs(3, "r")
    assert settled(fds, threads), (process.num_fds(), fds, process.num_threads(), threads)


def test_prestart_gives_the_first_run_a_kernel_started_ahead(tmp_path):
    nb = _notebook(tmp_path / "probe.ipynb", PROBE)
    with KernelPool(["email.mime.text"], runs=1) as kernels:
        kernels.prestart()
        run = execute_phase(nb, tmp_path / "out", {}, run_id="r1", kernels=kernels)
    assert _seen(run)["warm"] is True
    assert _kernels_running() == []


def test_kernels_started_ahead_start_at_most_starting_at_a_time(tmp_path):
    spans: list[tuple[float, float]] = []

    class Timed(KernelPool):
        async def _launched(self, context, warm):
            began = time.monotonic()
            km = await super()._launched(context, warm)
            spans.append((began, time.monotonic()))
            return km

    nb = _notebook(tmp_path / "quick.ipynb", "pass")
    with Timed(runs=3, ahead=2, starting=1) as kernels:
        kernels.prestart()
        for index in range(3):
            assert execute_phase(nb, tmp_path / "out", {}, run_id=f"r{index}", kernels=kernels).ok
    assert len(spans) == 3
    spans.sort()
    for (_, first_ready), (second_began, _) in itertools.pairwise(spans):
        assert second_began >= first_ready  # one start at a time, none overlapping
    assert _kernels_running() == []


def test_each_kernel_started_ahead_imports_what_its_own_run_needs(tmp_path):
    nb = _notebook(tmp_path / "quick.ipynb", "pass")
    upcoming = [("email.mime.text",), ("json", "csv")]
    with KernelPool(upcoming=upcoming, ahead=2, fork=False) as kernels:
        kernels.prestart()
        assert kernels.upcoming == ()  # both started
        runs = [
            execute_phase(nb, tmp_path / "out", {}, run_id=f"r{index}", kernels=kernels)
            for index in range(2)
        ]
    metadata = [nbformat.read(str(run.notebook), as_version=4).metadata for run in runs]
    assert [m["edgebook"]["kernel"]["warm_imports"] for m in metadata] == [
        ["email.mime.text"],
        ["json", "csv"],
    ]
    assert _kernels_running() == []


def test_forked_kernels_have_the_modules_and_nothing_else_of_the_zygote(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBOOK_TEST_MARKER", "set")
    nb = _notebook(tmp_path / "probe.ipynb", PROBE, "import os\nprint(os.getcwd())")
    monkeypatch.chdir(tmp_path)
    with KernelPool(["email.mime.text"], runs=2, fork=True) as kernels:
        runs = [
            execute_phase(nb, tmp_path / "out", {}, run_id=f"r{index}", kernels=kernels)
            for index in range(2)
        ]
    for index, run in enumerate(runs):
        assert run.ok, run.error
        assert _seen(run) == {"warm": True, "leaked": [], "marker": "set"}
        saved = nbformat.read(str(run.notebook), as_version=4)
        assert saved.cells[2].outputs[0]["text"].strip() == str(tmp_path)
        kernel = saved.metadata.edgebook.kernel
        assert kernel["forked"] is True and kernel["warm_imports"] == ["email.mime.text"]
        assert kernel["started_ahead"] is (index == 1)  # the first was asked for by its run
    assert _kernels_running() == []


def test_a_forked_kernel_dies_with_the_process_jupyter_manages(tmp_path):
    from edgebook.evidence.kernels import _shutdown

    with KernelPool(runs=1, fork=True) as kernels:
        km = kernels.take()
        stand_in = km.provisioner.process.pid
        (zygote,) = [
            child
            for child in psutil.Process().children(recursive=True)
            if "edgebook.evidence.zygote" in " ".join(child.cmdline())
        ]
        deadline = time.monotonic() + 30
        while not zygote.children() and time.monotonic() < deadline:
            time.sleep(0.05)  # the stand-in asks the zygote to fork once it runs
        kernel_pids = [kernel.pid for kernel in zygote.children()]
        assert len(kernel_pids) == 1
        os.kill(stand_in, 9)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(kernel_pids[0]) and time.monotonic() < deadline:
            try:
                if psutil.Process(kernel_pids[0]).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        alive = psutil.pid_exists(kernel_pids[0])
        if alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                alive = psutil.Process(kernel_pids[0]).status() != psutil.STATUS_ZOMBIE
        assert not alive  # the zygote saw the stand-in go and killed the kernel
        asyncio.run_coroutine_threadsafe(_shutdown(km, now=True), kernels._loop).result(10)
    assert _kernels_running() == []


def test_a_forked_kernel_can_be_interrupted_and_goes_on():
    async def interrupted(km) -> tuple[str, str, str]:
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=30)
            # stop_on_error=False: else ipykernel aborts, for a moment after the error, the
            # requests that follow (the next one then comes back 'aborted', not run)
            msg_id = client.execute("import time\ntime.sleep(30)", stop_on_error=False)
            await asyncio.sleep(1)
            await km.interrupt_kernel()
            reply = await _reply(client, msg_id)
            after = await _reply(client, client.execute("x = 1 + 1"))
            return (
                reply["content"]["status"],
                reply["content"].get("ename", ""),
                after["content"]["status"],
            )
        finally:
            client.stop_channels()

    with KernelPool(runs=1, fork=True) as kernels:
        km = kernels.take()
        assert km.zygote is not None
        outcome = kernels._submit(interrupted(km)).result(timeout=60)
        kernels.release(km)
    assert outcome == ("error", "KeyboardInterrupt", "ok")
    assert _kernels_running() == []


async def _reply(client, msg_id: str) -> dict:
    while True:
        reply = await client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def test_forking_can_be_turned_off_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBOOK_FORK_KERNELS", "0")
    nb = _notebook(tmp_path / "quick.ipynb", "pass")
    with KernelPool(runs=1) as kernels:
        run = execute_phase(nb, tmp_path / "out", {}, run_id="r1", kernels=kernels)
    assert run.ok
    kernel = nbformat.read(str(run.notebook), as_version=4).metadata.edgebook.kernel
    assert "forked" not in kernel
    assert _kernels_running() == []


class _CountingLock:
    """A lock that counts the times it is taken (and checks that it is free again)."""

    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        assert self._lock.acquire(timeout=30)
        self.taken += 1

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


def test_the_html_warm_up_and_a_kernel_start_import_ipython_one_at_a_time(tmp_path, monkeypatch):
    """Both threads import IPython (nbconvert's highlighting; the kernel spec's ipykernel): side
    by side, one of them found it half initialised and the demo failed (seen in CI)."""
    lock = _CountingLock()
    monkeypatch.setattr(kernels, "IPYTHON_IMPORT", lock)
    runner._warm_exporter()
    assert lock.taken == 1
    with KernelPool(runs=1, fork=False) as pool:
        km = pool.take()
        assert km.has_kernel
        pool.release(km)
    assert lock.taken == 2
    assert _kernels_running() == []
