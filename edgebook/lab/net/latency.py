"""The network round trip a lab listener simulates (`edgebook lab start --latency-ms`).

A conversation costs one round trip per turn: what the client sends in answer to the server
(or to open the connection) reaches the server one latency later, and what streams on without
waiting for the server (pipelined commands, a message body) adds nothing. The WSMan endpoints
charge the same latency once per request, and once for a new HTTPS connection's handshake.
"""

from __future__ import annotations

import io
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer


class Turns:
    """The turns of one connection; the connection's opening is the client's first turn."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self._owed = True

    def sent(self) -> None:
        """The server has spoken: the client's next data is a new turn."""
        self._owed = True

    def arrived(self) -> None:
        """The client's data is here: wait the round trip if it starts a turn."""
        if self._owed:
            self._owed = False
            if self.latency_s > 0:
                time.sleep(self.latency_s)


class _TurnInput(io.RawIOBase):
    """A socket's input that marks each arrival with its connection's turns."""

    def __init__(self, sock: socket.socket, turns: Turns) -> None:
        self._raw = sock.makefile("rb", buffering=0)
        self._turns = turns

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int | None:
        count = self._raw.readinto(buffer)
        if count:
            self._turns.arrived()
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


def turn_reader(sock: socket.socket, turns: Turns) -> io.BufferedReader:
    """sock.makefile("rb"), each arrival waiting the round trip when it starts a turn."""
    return io.BufferedReader(_TurnInput(sock, turns))
