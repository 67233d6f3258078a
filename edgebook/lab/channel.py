"""The control channel: how `edgebook lab fault/advance/stop` and readers of the counters reach
the running daemon.

The daemon keeps the organisation in memory, so a change written to state.json behind its back
would be lost; the CLI sends it to the daemon instead. The channel listens on 127.0.0.1 only;
the daemon writes a fresh random token into DIR/.control-token (0600) at every start, and a
request must carry it. One connection carries one request, a JSON line
{"token", "op", "args"}, and one answer, {"ok": true, "result": ...} or {"ok": false, "error"}.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgebook.errors import EdgebookError
from edgebook.fileio import write_atomic
from edgebook.lab.serving import QuietServer

log = logging.getLogger(__name__)

TOKEN_FILE = ".control-token"
TIMEOUT_S = 15.0  # a change waits for the pipeline that holds the organisation
LINE_LIMIT = 64 * 1024

Handler = Callable[[str, dict[str, Any]], Any]


class ChannelError(EdgebookError):
    """The running daemon cannot be reached, refused the request, or failed it."""


class ChannelServer:
    """The daemon's side: answers authenticated requests with handler(op, args)."""

    def __init__(self, directory: Path, handler: Handler) -> None:
        self.token = secrets.token_hex(32)
        write_atomic(Path(directory) / TOKEN_FILE, self.token.encode(), mode=0o600)
        channel = self

        class _Request(socketserver.StreamRequestHandler):
            timeout = TIMEOUT_S

            def handle(self) -> None:
                answer = channel._answer(self.rfile.readline(LINE_LIMIT))
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        self._handler = handler
        self._server = _Server(("127.0.0.1", 0), _Request)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.stop()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            token, op, args = request["token"], request["op"], request.get("args") or {}
        except (ValueError, TypeError, KeyError):
            return {"ok": False, "error": "malformed request"}
        if not isinstance(token, str) or not hmac.compare_digest(token, self.token):
            return {"ok": False, "error": "wrong control token"}
        try:
            return {"ok": True, "result": self._handler(str(op), dict(args))}
        except EdgebookError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control request %r failed", op)
            return {"ok": False, "error": f"the lab daemon failed ({exc}); see its daemon.log"}


class _Server(QuietServer, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def request(directory: Path, port: int, op: str, args: dict[str, Any] | None = None) -> Any:
    """Send one request to the daemon of DIR listening on port; its result or ChannelError."""
    try:
        token = (Path(directory) / TOKEN_FILE).read_text().strip()
    except OSError as exc:
        raise ChannelError(f"cannot read the lab's control token: {exc.strerror}") from None
    payload = json.dumps({"token": token, "op": op, "args": args or {}}).encode() + b"\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
            sock.sendall(payload)
            with sock.makefile("rb") as reader:
                line = reader.readline(LINE_LIMIT)
    except OSError as exc:
        raise ChannelError(f"the lab daemon did not answer on 127.0.0.1:{port}: {exc}") from None
    try:
        answer = json.loads(line)
    except ValueError:
        raise ChannelError("the lab daemon's answer was not understood; see daemon.log") from None
    if not answer.get("ok"):
        raise ChannelError(str(answer.get("error")))
    return answer.get("result")
