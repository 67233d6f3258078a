"""WS-Management SOAP as the lab speaks it: parse a request, build responses and faults."""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from edgebook.lab.winrm.runspace import Received, ShellRunspace

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
POWERSHELL_URI = "http://schemas.microsoft.com/powershell/"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
COMMAND_STATE = SHELL + "/CommandState/"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
BASIC_CHALLENGE = 'Basic realm="WSMAN"'
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
TIMED_OUT = 2150858793  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
SHELL_NOT_FOUND = 2150858843  # 0x8033805B ERROR_WSMAN_UNEXPECTED_SELECTORS
RESOURCE_NOT_FOUND = 2150858811  # 0x8033803B ERROR_WSMAN_INVALID_RESOURCE_URI
ENVELOPE_TOO_SMALL = 2150858823  # 0x80338047 ERROR_WSMAN_MAX_ENVELOPE_SIZE
ENVELOPE_TOO_LARGE = 2150858825  # 0x80338049 ERROR_WSMAN_SERVER_ENVELOPE_LIMIT
MAX_ENVELOPE = 500 * 1024  # WinRM's MaxEnvelopeSizekb default (Windows Server 2012 and later)
MIN_ENVELOPE = 8192  # a smaller MaxEnvelopeSize is refused (MS-WSMV 3.1.4.1.7)
MAX_TIMEOUT_S = 60.0  # WinRM's MaxTimeoutms default: the longest OperationTimeout it waits
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")
_ENVELOPE_OVERHEAD = 4096  # bytes of SOAP around the base64 payload of a Receive
_ENVELOPE = f"{{{NS['s']}}}Envelope"
_HEADER = f"{{{NS['s']}}}Header"
_BODY = f"{{{NS['s']}}}Body"
_ACTION = f"{{{NS['a']}}}Action"
_MESSAGE_ID = f"{{{NS['a']}}}MessageID"
_RESOURCE_URI = f"{{{NS['w']}}}ResourceURI"
_MAX_ENVELOPE = f"{{{NS['w']}}}MaxEnvelopeSize"
_OPERATION_TIMEOUT = f"{{{NS['w']}}}OperationTimeout"
_SELECTOR_SET = f"{{{NS['w']}}}SelectorSet"
_SELECTOR = f"{{{NS['w']}}}Selector"
# The opening of every response envelope: the namespaces it declares (all but pwsh).
_ENVELOPE_OPEN = '<s:Envelope xml:lang="en-US" ' + " ".join(
    f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items() if prefix != "pwsh"
)


class WSManFault(Exception):
    """A fault the endpoint answers with HTTP 500, shaped like WinRM's."""

    def __init__(self, code: int | None, subcode: str, message: str, *, sender: bool = True):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.sender = sender


@dataclass
class SoapRequest:
    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    timeout_s: float
    max_envelope: int
    body: ET.Element
    user: str = field(default="")


Response = tuple[int, dict[str, str], bytes]


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    """The SOAP fault WinRM sends (HTTP 500), with the WSManFault detail pypsrp parses."""
    code = f" Code={quoteattr(str(fault.code))}" if fault.code is not None else ""
    body = (
        "<s:Fault><s:Code>"
        f"<s:Value>{'s:Sender' if fault.sender else 's:Receiver'}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.message)}</s:Text></s:Reason>'
        f"<s:Detail><f:WSManFault{code} Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(fault.message)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


def parse_request(body: bytes) -> SoapRequest:
    """Read the WS-Addressing/WS-Management headers and the body of a SOAP request.

    Where an element repeats, the first one counts (the last ShellId selector).
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"the body is not XML ({exc})") from None
    parts = _first_children(root)
    header = parts.get(_HEADER)
    soap_body = parts.get(_BODY)
    if root.tag != _ENVELOPE or header is None or soap_body is None:
        raise ValueError("the body is not a SOAP 1.2 envelope with a Header and a Body")
    fields = _first_children(header)
    action = _text(fields.get(_ACTION))
    if not action:
        raise ValueError("the SOAP header has no wsa:Action")
    shell_ids = [
        _text(selector)
        for selector_set in header
        if selector_set.tag == _SELECTOR_SET
        for selector in selector_set
        if selector.tag == _SELECTOR and selector.get("Name") == "ShellId"
    ]
    max_envelope = _text(fields.get(_MAX_ENVELOPE))
    return SoapRequest(
        action=action,
        message_id=_text(fields.get(_MESSAGE_ID)),
        resource_uri=_text(fields.get(_RESOURCE_URI)),
        shell_id=shell_ids[-1] if shell_ids else None,
        timeout_s=duration_seconds(_text(fields.get(_OPERATION_TIMEOUT))),
        max_envelope=int(max_envelope) if max_envelope.isdigit() else MAX_ENVELOPE,
        body=soap_body,
    )


def _first_children(parent: ET.Element) -> dict[str, ET.Element]:
    """The first child element of each tag, by tag (one pass, as find() would pick)."""
    children: dict[str, ET.Element] = {}
    for child in parent:
        children.setdefault(child.tag, child)
    return children


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def apply_limits(request: SoapRequest, size: int) -> None:
    """Apply the service's MaxEnvelopeSizekb and MaxTimeoutms to a request of size bytes
    (MS-WSMV 3.1.4.1.6-7): a MaxEnvelopeSize under 8192 or a larger request is an EncodingLimit
    fault; replies stay within MaxEnvelopeSizekb and waits within MaxTimeoutms whatever the
    client asks."""
    if request.max_envelope < MIN_ENVELOPE:
        raise WSManFault(
            ENVELOPE_TOO_SMALL,
            "w:EncodingLimit",
            f"The WS-Management service cannot process the request because the MaxEnvelopeSize "
            f"({request.max_envelope}) is less than {MIN_ENVELOPE} bytes.",
        )
    if size > MAX_ENVELOPE:
        raise WSManFault(
            ENVELOPE_TOO_LARGE,
            "w:EncodingLimit",
            f"The WS-Management service cannot process the request because the request size "
            f"({size} bytes) exceeded the configured MaxEnvelopeSize quota ("
            f"MaxEnvelopeSizekb {MAX_ENVELOPE // 1024}).",
        )
    request.max_envelope = min(request.max_envelope, MAX_ENVELOPE)
    request.timeout_s = min(request.timeout_s, MAX_TIMEOUT_S)


def config_xml() -> str:
    """The top of winrm/config (WinRM's defaults): what pypsrp's update_max_payload_size() reads."""
    return (
        f'<cfg:Config xmlns:cfg="{CONFIG_URI}">'
        f"<cfg:MaxEnvelopeSizekb>{MAX_ENVELOPE // 1024}</cfg:MaxEnvelopeSizekb>"
        f"<cfg:MaxTimeoutms>{round(MAX_TIMEOUT_S * 1000)}</cfg:MaxTimeoutms>"
        "<cfg:MaxBatchItems>32000</cfg:MaxBatchItems>"
        "<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests>"
        "</cfg:Config>"
    )


def duration_seconds(value: str) -> float:
    """Seconds of an xs:duration like PT20S or PT20.000S (60 s when absent or unreadable)."""
    match = _DURATION.match(value)
    if not value or match is None:
        return 60.0
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def payload_budget(max_envelope: int) -> int:
    """PSRP bytes that fit in one response envelope once base64-encoded."""
    return max(max_envelope - _ENVELOPE_OVERHEAD, 1024) * 3 // 4


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise WSManFault(
            None, "w:SchemaValidationError", "A stream or argument is not valid base64."
        ) from None


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f"{_ENVELOPE_OPEN}><s:Header>"
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def shell_xml(shell: ShellRunspace, resource_uri: str) -> str:
    run_time = int(time.monotonic() - shell.created)
    return (
        "<rsp:Shell>"
        f"<rsp:ShellId>{shell.shell_id}</rsp:ShellId>"
        f"<rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(shell.owner)}</rsp:Owner>"
        "<rsp:ClientIP>127.0.0.1</rsp:ClientIP>"
        "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
        "<rsp:InputStreams>stdin pr</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout</rsp:OutputStreams>"
        "<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut>"
        "<rsp:Locale>en-US</rsp:Locale><rsp:DataLocale>en-US</rsp:DataLocale>"
        "<rsp:CompressionMode>XpressCompression</rsp:CompressionMode>"
        "<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>"
        "<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>Connected</rsp:State>"
        f"<rsp:ShellRunTime>P0DT0H0M{run_time}S</rsp:ShellRunTime>"
        "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
        "</rsp:Shell>"
    )


def receive_xml(received: Received, command_id: str | None) -> str:
    command = f' CommandId="{command_id}"' if command_id else ""
    streams = "".join(
        f'<rsp:Stream Name="stdout"{command}>{base64.b64encode(fragment).decode()}</rsp:Stream>'
        for fragment in received.fragments
    )
    state = ""
    if command_id:
        name = "Done" if received.done else "Running"
        state = f'<rsp:CommandState{command} State="{COMMAND_STATE}{name}"/>'
    return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
