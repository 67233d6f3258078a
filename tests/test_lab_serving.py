"""QuietServer: the lab's TCP servers wait for a connection or stop() without polling."""

from __future__ import annotations

import selectors
import socket
import socketserver
import threading
import time
from typing import Any, ClassVar

import pytest

from edgebook.lab import serving
from edgebook.lab.serving import QuietServer


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


class _Server(QuietServer, socketserver.ThreadingTCPServer):
    daemon_threads = True


class _CountingSelector(selectors.DefaultSelector):
    timeouts: ClassVar[list[float | None]] = []

    def select(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        return super().select(timeout)


def _start() -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return server, thread


def _echo(port: int, line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(line)
        return client.makefile("rb").readline()


def test_serves_connections_until_stopped_then_releases_the_port():
    server, thread = _start()
    port = server.server_address[1]
    assert [_echo(port, b"%d\n" % n) for n in range(3)] == [b"0\n", b"1\n", b"2\n"]
    started = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 1
    with pytest.raises(OSError):
        _echo(port, b"gone\n")
    server.stop()  # a second stop does nothing


def test_a_server_stopped_before_it_serves_never_serves():
    server = _Server(("127.0.0.1", 0), _Echo)
    server.stop()
    server.serve()  # returns at once


def test_an_idle_server_sleeps_in_select_until_woken(monkeypatch):
    _CountingSelector.timeouts = []
    monkeypatch.setattr(serving.selectors, "DefaultSelector", _CountingSelector)
    server, thread = _start()
    time.sleep(0.3)  # serve_forever(poll_interval=0.05) would have woken six times
    assert _CountingSelector.timeouts == [None]
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
