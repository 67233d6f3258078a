"""The HTTP(S) server in front of the lab's WSMan endpoints (one port, one or more paths).

Each connection keeps its own Negotiate (NTLM) session per endpoint, since NTLM authenticates
a connection, not a request.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from edgebook.lab.net.latency import Turns
from edgebook.lab.serving import QuietServer
from edgebook.lab.winrm import ntlm
from edgebook.lab.winrm.wsman import WSManEndpoint

log = logging.getLogger(__name__)
# HTTP.sys's idle connection timeout (netsh http show timeout: IdleConnectionTimeout 120 s),
# in front of WinRM on an Edge and of IIS on a Mailbox server: a kept-alive connection that
# sends nothing for that long is closed
IDLE_CONNECTION_TIMEOUT_S = 120.0


@dataclass
class RunningServer:
    """An HTTP(S) server answering WSMan requests in a daemon thread."""

    host: str
    port: int
    scheme: str
    paths: list[str]
    _server: _Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Base URL, e.g. https://127.0.0.1:5986 (append an endpoint's path)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        """Full URL of each endpoint, by path."""
        return {path: f"{self.url}/{path}" for path in self.paths}

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.stop()
        self._thread.join(timeout=5)


def serve(
    endpoints: list[WSManEndpoint] | WSManEndpoint,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: ssl.SSLContext | None = None,
) -> RunningServer:
    """Serve the endpoints (distinct paths) on host:port; HTTPS with the tls server context."""
    listed = [endpoints] if isinstance(endpoints, WSManEndpoint) else list(endpoints)
    routes: dict[str, WSManEndpoint] = {}
    for endpoint in listed:
        key = endpoint.path.lower()
        if key in routes:
            raise ValueError(
                f"two endpoints ({routes[key].server}, {endpoint.server}) share the path "
                f"/{endpoint.path}; serve them on different ports"
            )
        routes[key] = endpoint
    # the network's round trip (the endpoints' latency) is also paid by a connection's TLS
    # handshake, as on the Edges' LDAPS port: a client that reuses its connection saves it
    latency_s = max(endpoint.latency_s for endpoint in listed)
    server = _Server((host, port), _handler_class(routes, tls, latency_s))
    thread = threading.Thread(target=server.serve, name="wsman", daemon=True)
    thread.start()
    return RunningServer(
        host=host,
        port=server.server_address[1],
        scheme="https" if tls else "http",
        paths=[endpoint.path for endpoint in listed],
        _server=server,
        _thread=thread,
    )


class _Server(QuietServer, ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that drops the connection or fails the TLS handshake is not a lab error."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def _handler_class(
    routes: dict[str, WSManEndpoint], context: ssl.SSLContext | None, latency_s: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Microsoft-HTTPAPI/2.0"
        sys_version = ""
        # a reply longer than a TLS record, or an error page of http.server's, leaves in
        # several writes: with Nagle on, the last waits for the client's delayed ACK (~40 ms)
        disable_nagle_algorithm = True
        timeout = IDLE_CONNECTION_TIMEOUT_S

        def setup(self) -> None:
            if context is not None:  # handshake in the connection's own thread
                Turns(latency_s).arrived()  # the client's hello, one round trip after connect
                self.request.settimeout(self.timeout)  # a silent client ends here too
                self.request = context.wrap_socket(self.request, server_side=True)
            # Negotiate authenticates the connection: one session per endpoint it talks to.
            self.sessions: dict[str, ntlm.NegotiateSession] = {}
            super().setup()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            endpoint = routes.get(urlsplit(self.path).path.strip("/").lower())
            if endpoint is None:
                self._reply(404, {"Content-Type": "text/plain"}, b"Not Found")
                return
            session = self.sessions.get(endpoint.path)
            if session is None:
                session = ntlm.NegotiateSession(endpoint.server, tls=context is not None)
                self.sessions[endpoint.path] = session
            status, headers, payload = endpoint.handle(body, dict(self.headers.items()), session)
            self._reply(status, headers, payload)

        def do_GET(self) -> None:
            self._reply(405, {"Allow": "POST"}, b"")

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            """Send what send_response, send_header and end_headers would, in one write."""
            self.log_request(status)
            if self.request_version == "HTTP/0.9":  # no status line, no headers
                self.wfile.write(payload)
                return
            lines = [
                f"{self.protocol_version} {status} {HTTPStatus(status).phrase}",
                f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}",
            ]
            lines += [
                f"{name}: {value}"
                for name, value in headers.items()
                if name.lower() != "content-length"
            ]
            lines.append(f"Content-Length: {len(payload)}")
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
