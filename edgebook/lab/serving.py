"""TCP servers that sleep while idle.

serve_forever() wakes every poll interval to look for a shutdown request: a lab with 20 Edges
runs 21 such loops, which cost the daemon CPU time while nobody talks to it. QuietServer waits
in select() for a connection or for stop(), which wakes it through a socket pair.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import threading
from typing import Any


class QuietServer(socketserver.TCPServer):
    """A TCPServer (mix ThreadingMixIn in after it) served by serve() until stop(), no polling."""

    timeout = 0.0  # handle_request() runs only when a connection waits: it never blocks

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stopping = threading.Event()
        self._serving = threading.Lock()

    def serve(self) -> None:
        """Accept connections until stop(); each one is handled as handle_request() does."""
        with self._serving:
            if self._stopping.is_set():
                return
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    for key, _events in selector.select():
                        if key.fileobj is self.socket and not self._stopping.is_set():
                            self.handle_request()

    def stop(self) -> None:
        """End serve() and wait until it has returned, then close the listening socket."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_writer.send(b"\0")
        with self._serving:  # serve() has returned, or will return at once
            self.server_close()
            self._wake_reader.close()
            self._wake_writer.close()
