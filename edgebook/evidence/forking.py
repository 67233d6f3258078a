"""The pool's side of a kernel zygote (edgebook.evidence.zygote): start it, wrap kernel
commands so jupyter_client's process is the stand-in (edgebook.evidence.forked), stop it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgebook.evidence.zygote import READY, socket_path

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


FORK_ENV = "EDGEBOOK_FORK_KERNELS"  # "0": start every kernel the usual way


def can_fork() -> bool:
    """Whether kernels may be forked: the platform forks and passes file descriptors (POSIX),
    and EDGEBOOK_FORK_KERNELS is not "0"."""
    if os.environ.get(FORK_ENV, "").strip() == "0":
        return False
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "win32"


class KernelZygote:
    """One zygote process, started at the first `ready` and stopped by `stop`."""

    def __init__(self, modules: Sequence[str], env: Mapping[str, str], cwd: str) -> None:
        self.modules = tuple(modules)
        self.env = dict(env)
        self.cwd = cwd
        self._folder = Path(tempfile.mkdtemp(prefix="edgebook-zygote-"))
        self.path = socket_path(self._folder)
        self._process: subprocess.Popen[bytes] | None = None
        self._ready: asyncio.Future[bool] | None = None

    async def ready(self, timeout: float) -> bool:
        """Start the zygote unless started; whether it serves (False: start kernels as usual)."""
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._start(timeout))
        return await asyncio.shield(self._ready)

    def command(self, kernel_command: Sequence[str]) -> list[str]:
        """The command jupyter_client runs instead of kernel_command."""
        forked = [sys.executable, "-m", "edgebook.evidence.forked"]
        return [*forked, str(self.path), "--", *kernel_command]

    async def stop(self) -> None:
        """Stop the zygote (it kills kernels still running) and remove its folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    async def _start(self, timeout: float) -> bool:
        command = [sys.executable, "-m", "edgebook.evidence.zygote", str(self.path)]
        try:
            self._process = subprocess.Popen(
                [*command, *self.modules], stdout=subprocess.PIPE, env=self.env, cwd=self.cwd
            )
            stdout = self._process.stdout
            assert stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), timeout)
        except (OSError, TimeoutError) as exc:
            log.warning("the kernel zygote did not start (%s): kernels start as usual", exc)
            with contextlib.suppress(Exception):
                await self.stop()
            return False
        if line.decode(errors="replace").strip() != READY:
            log.warning("the kernel zygote did not start: kernels start as usual")
            await self.stop()
            return False
        return True
