"""A kernel zygote: one process that imports what the notebooks need once, then forks kernels.

Starting an IPython kernel and importing edgebook, pandas and friends into it costs 2-3 s of
CPU, once per notebook run; on two cores that was most of `make demo`. A zygote pays the
imports once and forks a kernel per run: the child starts ipykernel's kernel app exactly as
``python -m ipykernel_launcher`` would, in the environment and working directory the runner
gives it, and shares the imported modules with its siblings copy-on-write.

    python -m edgebook.evidence.zygote SOCKET MODULE...

The zygote stays single-threaded (forking a process with threads can leave locks held in the
child). It listens on a Unix socket; each connection (from edgebook.evidence.forked, the
process jupyter_client manages as the kernel) sends one JSON line ``{"argv", "env", "cwd"}``,
gets ``{"pid": N}`` back, and later ``{"exit": code}`` when the kernel has ended. A connection
that closes first (its process was killed) kills its kernel. The zygote exits, killing its
kernels, when its parent goes or on SIGTERM.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

READY = "ready"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # what ipykernel sets


def main(arguments: list[str]) -> int:
    """Import the modules, say READY on stdout, then serve forks until told to stop."""
    if not arguments:
        print("usage: python -m edgebook.evidence.zygote SOCKET MODULE...", file=sys.stderr)
        return 2
    path, modules = arguments[0], arguments[1:]
    ready = os.dup(1)  # READY goes here; anything an import prints goes to stderr
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    if sys.path and (sys.path[0] in ("", os.getcwd())):
        del sys.path[0]  # as ipykernel_launcher; the kernel app puts the cwd back
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)  # as ipykernel does at start
    import ipykernel.kernelapp  # noqa: F401  (what every kernel imports first)

    for module in modules:
        with contextlib.suppress(Exception):  # the notebook's own import reports it
            importlib.import_module(module)
    if threading.active_count() != 1:
        print("an import started a thread: forking is not safe", file=sys.stderr)
        return 1
    return _Zygote(path).serve(ready)


class _Zygote:
    """The listening socket, the kernels forked so far and their connections."""

    def __init__(self, path: str) -> None:
        self.parent = os.getppid()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.kernels: dict[int, socket.socket] = {}  # kernel pid -> its connection
        self.stopping = False

    def serve(self, ready: int) -> int:
        """Say READY on the descriptor ready, then fork, reap and kill kernels until told to
        stop or orphaned."""
        signal.signal(signal.SIGTERM, self._stop)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(wake_read, selectors.EVENT_READ)
        os.write(ready, READY.encode() + b"\n")
        os.close(ready)
        while not self.stopping and os.getppid() == self.parent:
            for key, _ in self.selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj == wake_read:
                    os.read(wake_read, 512)
                else:
                    self._closed(key.fileobj)  # type: ignore[arg-type]
            self._reap()
        for pid in list(self.kernels):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return 0

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            _, fds, _, _ = socket.recv_fds(connection, 1, 3)  # the process's stdin, out, err
            with connection.makefile("rb") as reader:
                request = json.loads(reader.readline())
            argv, env, cwd = list(request["argv"]), dict(request["env"]), str(request["cwd"])
        except (OSError, ValueError, KeyError, TypeError):
            connection.close()
            return
        if len(fds) != 3:
            connection.close()
            return
        pid = os.fork()
        if pid == 0:  # the kernel
            self._become_kernel(connection, fds, argv, env, cwd)
        for fd in fds:
            os.close(fd)
        self.kernels[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ)
        connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    def _become_kernel(
        self,
        connection: socket.socket,
        fds: list[int],
        argv: list[str],
        env: dict[str, str],
        cwd: str,
    ) -> None:
        code = 1
        try:
            for target, fd in enumerate(fds):  # the standard streams of the process it serves
                os.dup2(fd, target)
            for fd in set(fds) - {0, 1, 2}:
                os.close(fd)
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGTERM, signal.SIGCHLD):
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a new process
            self.selector.close()
            self.listener.close()
            for other in self.kernels.values():
                other.close()
            connection.close()
            os.setpgid(0, 0)  # the kernel's own group, as a launched kernel has its session
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            _reseed()
            from importlib.util import find_spec

            from ipykernel.kernelapp import IPKernelApp

            launcher = find_spec("ipykernel_launcher")
            sys.argv = [launcher.origin if launcher and launcher.origin else "", *argv]
            app = IPKernelApp.instance()
            # read from the environment when ipykernel was imported here, before the fork
            app.parent_handle = int(env.get("JPY_PARENT_PID") or 0)
            app.interrupt = int(env.get("JPY_INTERRUPT_EVENT") or 0)
            app.initialize(argv)
            app.start()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)

    def _closed(self, connection: socket.socket) -> None:
        """A kernel's connection closed or spoke out of turn: its process went, so the kernel
        goes too."""
        for pid, known in list(self.kernels.items()):
            if known is connection:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._forget(pid, None)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._forget(pid, os.waitstatus_to_exitcode(status))

    def _forget(self, pid: int, code: int | None) -> None:
        connection = self.kernels.pop(pid, None)
        if connection is None:
            return
        self.selector.unregister(connection)
        if code is not None:
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps({"exit": code}).encode() + b"\n")
        connection.close()


def _reseed() -> None:
    """Give the kernel its own random state: `random` reseeds itself after a fork, numpy's
    global generator does not."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def socket_path(folder: Path) -> Path:
    """Where a zygote in folder listens."""
    return folder / "zygote.sock"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
