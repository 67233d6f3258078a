"""The lab's WinRM endpoint: WS-Management SOAP (Create/Command/Send/Receive/Signal/Delete/Get)
carrying PSRP, served over HTTP(S) with Basic authentication.

One WSManEndpoint serves one lab server. `handle()` answers one SOAP request and is used both
by the HTTP server (`serve`) and by the in-process transport (edgebook.lab.transport).
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from edgebook.lab.protocol import Backend, Session
from edgebook.lab.runspace import PSRPDataError, ShellRunspace, UnknownCommandError
from edgebook.lab.soap import (
    ANONYMOUS,
    BASIC_CHALLENGE,
    NS,
    POWERSHELL_URI,
    RESOURCE_NOT_FOUND,
    SHELL,
    SHELL_NOT_FOUND,
    SOAP_CONTENT_TYPE,
    TIMED_OUT,
    TRANSFER,
    Response,
    SoapRequest,
    WSManFault,
    b64decode,
    envelope,
    fault_envelope,
    parse_request,
    payload_budget,
    receive_xml,
    shell_xml,
)

log = logging.getLogger(__name__)


class WSManEndpoint:
    """The WinRM endpoint of one lab server: authenticates, parses SOAP, runs PSRP shells."""

    def __init__(
        self,
        backend: Backend,
        server: str,
        *,
        path: str,
        configuration_names: set[str] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.backend = backend
        self.server = server
        self.path = path.strip("/")
        if configuration_names is None:
            default = "Microsoft.Exchange" if self.path.lower() == "powershell" else None
            configuration_names = {default or "Microsoft.PowerShell"}
        self.configuration_names = set(configuration_names)
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._shells: dict[str, ShellRunspace] = {}
        self._requests = 0
        self._pipelines = 0

    @property
    def requests(self) -> int:
        """WSMan requests this endpoint has answered (including refused ones)."""
        with self._lock:
            return self._requests

    @property
    def pipelines(self) -> int:
        """Pipelines (WSMan Command requests) this endpoint has started."""
        with self._lock:
            return self._pipelines

    @property
    def open_shells(self) -> int:
        """Shells (runspace pools) currently open."""
        with self._lock:
            return len(self._shells)

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Answer one SOAP request: (HTTP status, response headers, response body)."""
        with self._lock:
            self._requests += 1
        self.backend.count_request(self.server)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        lowered = {key.lower(): value for key, value in headers.items()}
        user = self._authenticate(lowered.get("authorization", ""))
        if user is None:
            return 401, {"WWW-Authenticate": BASIC_CHALLENGE, "Content-Length": "0"}, b""
        try:
            request = parse_request(body)
        except ValueError as exc:
            log.debug("bad SOAP request to %s: %s", self.server, exc)
            return 400, {"Content-Type": "text/plain"}, f"Bad request: {exc}".encode()
        request.user = user
        try:
            action_body = self._dispatch(request)
        except (WSManFault, PSRPDataError) as exc:
            fault = exc if isinstance(exc, WSManFault) else _psrp_fault(exc)
            return (
                500,
                {"Content-Type": SOAP_CONTENT_TYPE},
                fault_envelope(fault, request.message_id, self.server),
            )
        response_action = request.action + "Response"
        return (
            200,
            {"Content-Type": SOAP_CONTENT_TYPE},
            envelope(response_action, request.message_id, action_body),
        )

    def close(self) -> None:
        """Close every open shell (used when the lab stops)."""
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
        for shell in shells:
            shell.close()

    def _authenticate(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            username, sep, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep or not self.backend.authenticate(self.server, username, password):
            return None
        return username

    def _dispatch(self, request: SoapRequest) -> str:
        action = request.action
        if action == TRANSFER + "Create":
            return self._create(request)
        if action == TRANSFER + "Get":
            return self._get(request)
        if action == TRANSFER + "Delete":
            shell = self._shell(request)
            with self._lock:
                self._shells.pop(shell.shell_id, None)
            shell.close()
            return ""
        handlers = {
            SHELL + "/Command": self._command,
            SHELL + "/Send": self._send,
            SHELL + "/Receive": self._receive,
            SHELL + "/Signal": self._signal,
        }
        handler = handlers.get(action)
        if handler is None:
            raise WSManFault(
                None,
                "a:ActionNotSupported",
                f"The WS-Management service does not support the action {action}.",
            )
        shell = self._shell(request)
        try:
            return handler(request, shell)
        except UnknownCommandError as exc:
            raise WSManFault(
                SHELL_NOT_FOUND,
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {shell.shell_id} failed "
                f"because the command with CommandId {exc.args[0]} was not found on the server.",
            ) from None

    def _create(self, request: SoapRequest) -> str:
        configuration = self._configuration(request.resource_uri)
        shell_element = request.body.find("rsp:Shell", NS)
        creation = None if shell_element is None else shell_element.find("pwsh:creationXml", NS)
        if shell_element is None or creation is None or not (creation.text or "").strip():
            raise WSManFault(
                None,
                "w:SchemaValidationError",
                "The WS-Management service cannot process the request: the Create body has no "
                "rsp:Shell with a creationXml element.",
            )
        shell_id = (shell_element.get("ShellId") or str(uuid.uuid4())).upper()
        shell = ShellRunspace(
            shell_id,
            Session(server=self.server, configuration_name=configuration),
            self.backend,
            max_fragment=payload_budget(request.max_envelope),
            owner=request.user,
        )
        shell.open(b64decode(creation.text or ""))
        with self._lock:
            self._shells[shell_id] = shell
        uri = POWERSHELL_URI + configuration
        return (
            "<x:ResourceCreated>"
            f"<a:Address>{escape(ANONYMOUS)}</a:Address>"
            "<a:ReferenceParameters>"
            f"<w:ResourceURI>{escape(uri)}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>" + shell_xml(shell, uri)
        )

    def _configuration(self, resource_uri: str) -> str:
        if resource_uri.lower().startswith(POWERSHELL_URI):
            wanted = resource_uri[len(POWERSHELL_URI) :].lower()
            for name in self.configuration_names:
                if name.lower() == wanted:
                    return name
        raise WSManFault(
            RESOURCE_NOT_FOUND,
            "w:DestinationUnreachable",
            f"The WS-Management service cannot process the request. The resource URI "
            f"({resource_uri}) was not found in the WS-Management catalog. The catalog contains "
            "the metadata that describes resources, or logical endpoints.",
        )

    def _shell(self, request: SoapRequest) -> ShellRunspace:
        shell_id = (request.shell_id or "").upper()
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is None:
            raise WSManFault(
                SHELL_NOT_FOUND,
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {request.shell_id} failed "
                "because the shell was not found on the server. Possible causes are: the "
                "specified ShellId is incorrect or the shell no longer exists on the server. "
                "Provide the correct ShellId or create a new shell and retry the operation.",
            )
        return shell

    def _get(self, request: SoapRequest) -> str:
        shell = self._shell(request)
        return shell_xml(shell, POWERSHELL_URI + shell.session.configuration_name)

    def _command(self, request: SoapRequest, shell: ShellRunspace) -> str:
        line = request.body.find("rsp:CommandLine", NS)
        arguments = None if line is None else line.find("rsp:Arguments", NS)
        if line is None or arguments is None:
            raise WSManFault(
                None,
                "w:SchemaValidationError",
                "The WS-Management service cannot process the request: the Command body has no "
                "rsp:CommandLine with the first CreatePipeline fragment in rsp:Arguments.",
            )
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        with self._lock:
            self._pipelines += 1
        shell.create_pipeline(command_id, b64decode(arguments.text or ""))
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )

    def _send(self, request: SoapRequest, shell: ShellRunspace) -> str:
        for stream in request.body.findall("rsp:Send/rsp:Stream", NS):
            command_id = stream.get("CommandId")
            shell.send(
                b64decode(stream.text or ""),
                command_id.upper() if command_id else None,
                stream.get("Name", "stdin"),
            )
        return "<rsp:SendResponse/>"

    def _receive(self, request: SoapRequest, shell: ShellRunspace) -> str:
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", NS)
        command_id = desired.get("CommandId") if desired is not None else None
        command_id = command_id.upper() if command_id else None
        received = shell.receive(
            command_id, payload_budget(request.max_envelope), request.timeout_s
        )
        if received is None:
            raise WSManFault(
                TIMED_OUT,
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time "
                "specified in OperationTimeout.",
                sender=False,
            )
        return receive_xml(received, command_id)

    def _signal(self, request: SoapRequest, shell: ShellRunspace) -> str:
        signal = request.body.find("rsp:Signal", NS)
        code = None if signal is None else signal.find("rsp:Code", NS)
        command_id = None if signal is None else signal.get("CommandId")
        if signal is None or code is None or not command_id:
            raise WSManFault(
                None,
                "w:SchemaValidationError",
                "The WS-Management service cannot process the request: the Signal body needs a "
                "CommandId and an rsp:Code.",
            )
        shell.signal(command_id.upper(), (code.text or "").strip())
        return "<rsp:SignalResponse/>"


def _psrp_fault(error: PSRPDataError) -> WSManFault:
    return WSManFault(
        None,
        "w:InternalError",
        f"The WS-Management service cannot process the PSRP data: {error}",
        sender=False,
    )


@dataclass
class RunningServer:
    """An HTTP(S) server answering WSMan requests in a daemon thread."""

    host: str
    port: int
    scheme: str
    paths: list[str]
    _server: ThreadingHTTPServer
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
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    endpoints: list[WSManEndpoint] | WSManEndpoint,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: tuple[str, str] | ssl.SSLContext | None = None,
) -> RunningServer:
    """Serve the endpoints (distinct paths) on host:port; HTTPS when tls is given.

    tls is (certfile, keyfile) or a ready server SSLContext (e.g. one with an encrypted key).
    """
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
    context = tls if isinstance(tls, ssl.SSLContext) else None
    if isinstance(tls, tuple):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
    server = _Server((host, port), _handler_class(routes, context))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsman", daemon=True
    )
    thread.start()
    return RunningServer(
        host=host,
        port=server.server_address[1],
        scheme="https" if context else "http",
        paths=[endpoint.path for endpoint in listed],
        _server=server,
        _thread=thread,
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that drops the connection or fails the TLS handshake is not a lab error."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def _handler_class(
    routes: dict[str, WSManEndpoint], context: ssl.SSLContext | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Microsoft-HTTPAPI/2.0"
        sys_version = ""

        def setup(self) -> None:
            if context is not None:  # handshake in the connection's own thread
                self.request = context.wrap_socket(self.request, server_side=True)
            super().setup()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            endpoint = routes.get(urlsplit(self.path).path.strip("/").lower())
            if endpoint is None:
                self._reply(404, {"Content-Type": "text/plain"}, b"Not Found")
                return
            status, headers, payload = endpoint.handle(body, dict(self.headers.items()))
            self._reply(status, headers, payload)

        def do_GET(self) -> None:
            self._reply(405, {"Allow": "POST"}, b"")

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
