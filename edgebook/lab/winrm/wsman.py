"""The lab's WinRM endpoint: WS-Management SOAP (Create/Command/Send/Receive/Signal/Delete/Get)
carrying PSRP, served over HTTP(S) with Basic and, optionally, Negotiate (NTLM) authentication.

One WSManEndpoint serves one lab server. `handle()` answers one SOAP request and is used both
by the HTTP server (edgebook.lab.winrm.httpserver) and by the in-process transport
(edgebook.lab.winrm.inprocess, Basic only). Negotiate authenticates a connection, so the HTTP server
passes each connection's NegotiateSession (edgebook.lab.winrm.ntlm); over plain HTTP its bodies are
WinRM-encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast
from xml.sax.saxutils import escape

from edgebook.exchange.wire_types import EDGE_SHAPE, MAILBOX_SHAPE
from edgebook.lab.winrm import ntlm
from edgebook.lab.winrm.protocol import Backend, CredentialSource, Session
from edgebook.lab.winrm.runspace import PSRPDataError, ShellRunspace, UnknownCommandError
from edgebook.lab.winrm.soap import (
    ANONYMOUS,
    BASIC_CHALLENGE,
    CONFIG_URI,
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
    apply_limits,
    b64decode,
    config_xml,
    envelope,
    fault_envelope,
    parse_request,
    payload_budget,
    receive_xml,
    shell_xml,
)

log = logging.getLogger(__name__)
AUTH_SCHEMES = ("basic", "negotiate")
MAX_REMEMBERED = 64  # accepted Basic credentials remembered per endpoint
# WinRM's text (pypsrp's recorded responses of a Receive on a finished command)
UNKNOWN_COMMAND = (
    "The Windows Remote Shell received a request to perform an operation on a command "
    "identifier that does not exist. Either the command has completed execution or the client "
    "specified an invalid command identifier. "
)
UNENCRYPTED_REFUSED = (
    "The WS-Management service cannot process the request because the request is unencrypted "
    "and the service configuration does not allow unencrypted traffic (AllowUnencrypted=false). "
    "Use HTTPS, or let the client encrypt its messages (pypsrp: encryption='auto')."
)


@dataclass
class _Caller:
    """Who sent a request, and over which Negotiate session (None for Basic)."""

    user: str
    session: ntlm.NegotiateSession | None = None
    headers: dict[str, str] = field(default_factory=dict)  # e.g. the final Negotiate token
    handshake: bool = False  # this request carried a Negotiate token


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
        auth: Iterable[str] = ("basic",),
        allow_unencrypted: bool = False,
    ) -> None:
        """auth lists the schemes offered, like WinRM's Service/Auth: "basic", "negotiate".

        allow_unencrypted (WinRM's AllowUnencrypted) lets a Negotiate-authenticated client send
        plain SOAP over HTTP; Basic is served over HTTP regardless, as before.
        """
        self.auth = tuple(scheme.lower() for scheme in auth)
        unknown = sorted(set(self.auth) - set(AUTH_SCHEMES))
        if unknown or not self.auth:
            raise ValueError(f"auth must name some of {AUTH_SCHEMES}, not {list(auth)}")
        if "negotiate" in self.auth:
            if not isinstance(backend, CredentialSource):
                raise ValueError(
                    f"Negotiate needs a backend with credential(server); {type(backend).__name__} "
                    "has none, so only Basic can be served"
                )
            ntlm.ensure_supported()
        self.allow_unencrypted = allow_unencrypted
        self.backend = backend
        self.server = server
        self.path = path.strip("/")
        if configuration_names is None:
            mailbox = self.path.lower() == MAILBOX_SHAPE[0].lower()
            configuration_names = {MAILBOX_SHAPE[1] if mailbox else EDGE_SHAPE[1]}
        self.configuration_names = set(configuration_names)
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._basic: dict[bytes, str] = {}  # digests of accepted Basic credentials -> user
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

    def handle(
        self,
        body: bytes,
        headers: Mapping[str, str],
        connection: ntlm.NegotiateSession | None = None,
    ) -> Response:
        """Answer one SOAP request: (HTTP status, response headers, response body).

        connection is the Negotiate state of the HTTP connection the request came on (None
        in-process, where only Basic works).
        """
        with self._lock:
            self._requests += 1
        self.backend.count_request(self.server)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        lowered = {key.lower(): value for key, value in headers.items()}
        caller = self._authorize(lowered.get("authorization", ""), connection)
        if not isinstance(caller, _Caller):
            return caller
        if caller.handshake and not body:
            return 200, caller.headers, b""  # the empty POST that sets up message encryption
        content_type = lowered.get("content-type", "")
        if ntlm.is_encrypted(content_type):
            return self._encrypted(body, content_type, caller)
        if caller.session and not caller.session.tls and not self.allow_unencrypted:
            return self._refuse_unencrypted(body)
        status, response_headers, payload = self._respond(body, caller.user)
        return status, {**response_headers, **caller.headers}, payload

    def _authorize(
        self, authorization: str, connection: ntlm.NegotiateSession | None
    ) -> _Caller | Response:
        scheme, _, token = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and "basic" in self.auth:
            user = self._authenticate(authorization)
            return self._challenge() if user is None else _Caller(user)
        if connection is None or "negotiate" not in self.auth:
            return self._challenge()
        if scheme != "negotiate":
            if connection.user is None:
                return self._challenge()
            return _Caller(connection.user, session=connection)
        try:
            out_token = connection.step(b64decode(token), self._account())
        except (ntlm.NegotiateError, WSManFault) as exc:
            log.debug("Negotiate with %s failed: %s", self.server, exc)
            return self._challenge()
        headers = {"WWW-Authenticate": f"{ntlm.NEGOTIATE} {_b64(out_token)}"} if out_token else {}
        if connection.user is None:
            return 401, {**headers, "Content-Length": "0"}, b""
        return _Caller(connection.user, session=connection, headers=headers, handshake=True)

    def _encrypted(self, body: bytes, content_type: str, caller: _Caller) -> Response:
        if caller.session is None:
            return self._challenge()
        try:
            message = caller.session.unwrap(body, content_type)
        except ntlm.EncryptionError as exc:
            log.debug("encrypted request to %s refused: %s", self.server, exc)
            return 400, {"Content-Type": "text/plain"}, f"Bad request: {exc}".encode()
        status, headers, payload = self._respond(message, caller.user)
        headers["Content-Type"], payload = caller.session.wrap(payload)
        return status, {**headers, **caller.headers}, payload

    def _respond(self, body: bytes, user: str) -> Response:
        try:
            request = parse_request(body)
        except ValueError as exc:
            log.debug("bad SOAP request to %s: %s", self.server, exc)
            return 400, {"Content-Type": "text/plain"}, f"Bad request: {exc}".encode()
        request.user = user
        try:
            apply_limits(request, len(body))
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

    def _refuse_unencrypted(self, body: bytes) -> Response:
        try:
            relates_to = parse_request(body).message_id
        except ValueError:
            relates_to = ""
        fault = WSManFault(None, "w:AccessDenied", UNENCRYPTED_REFUSED)
        return (
            500,
            {"Content-Type": SOAP_CONTENT_TYPE},
            fault_envelope(fault, relates_to, self.server),
        )

    def _challenge(self) -> Response:
        offered = [ntlm.NEGOTIATE] if "negotiate" in self.auth else []
        if "basic" in self.auth:
            offered.append(BASIC_CHALLENGE)
        return 401, {"WWW-Authenticate": ", ".join(offered), "Content-Length": "0"}, b""

    def _account(self) -> ntlm.Account | None:
        credential = cast(CredentialSource, self.backend).credential(self.server)
        return None if credential is None else ntlm.Account.of(self.server, *credential)

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
        if not sep:
            return None
        # A pipeline waiting for the answer to a question holds the lab state, which checking
        # the password reads: credentials accepted once are remembered (as digests) instead.
        digest = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        with self._lock:
            known = self._basic.get(digest)
        if known is not None:
            return known
        if not self.backend.authenticate(self.server, username, password):
            return None
        with self._lock:
            if len(self._basic) < MAX_REMEMBERED:
                self._basic[digest] = username
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
        except UnknownCommandError:
            raise WSManFault(SHELL_NOT_FOUND, "w:InvalidSelectors", UNKNOWN_COMMAND) from None

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
        raise _not_in_catalog(resource_uri)

    def _get(self, request: SoapRequest) -> str:
        if request.shell_id is None:
            # WinRM's own configuration, which an Edge's administrator may read; Exchange's
            # IIS endpoint on a Mailbox server serves shells only (the lab's choice)
            winrm = self.path.lower() == EDGE_SHAPE[0].lower()
            if winrm and request.resource_uri.lower() == CONFIG_URI:
                return config_xml()
            raise _not_in_catalog(request.resource_uri)
        shell = self._shell(request)
        return shell_xml(shell, POWERSHELL_URI + shell.session.configuration_name)

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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _not_in_catalog(resource_uri: str) -> WSManFault:
    return WSManFault(
        RESOURCE_NOT_FOUND,
        "w:DestinationUnreachable",
        f"The WS-Management service cannot process the request. The resource URI "
        f"({resource_uri}) was not found in the WS-Management catalog. The catalog contains "
        "the metadata that describes resources, or logical endpoints.",
    )


def _psrp_fault(error: PSRPDataError) -> WSManFault:
    return WSManFault(
        None,
        "w:InternalError",
        f"The WS-Management service cannot process the PSRP data: {error}",
        sender=False,
    )
