"""Just enough LDAP (RFC 4511, BER by hand) for the lab's LDAPS port to behave like AD LDS.

A bind, an unbind and a rootDSE read work, so ``openssl s_client`` and an ldap3 anonymous
bind do not hang; every other request gets a clean refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

MAX_MESSAGE = 1 << 20

# Protocol-op tags ([APPLICATION n]) and result codes used here.
BIND_REQUEST, UNBIND_REQUEST, SEARCH_REQUEST = 0x60, 0x42, 0x63
ABANDON_REQUEST, EXTENDED_REQUEST = 0x50, 0x77
BIND_RESPONSE, SEARCH_ENTRY, SEARCH_DONE, EXTENDED_RESPONSE = 0x61, 0x64, 0x65, 0x78
SUCCESS, PROTOCOL_ERROR, AUTH_METHOD_NOT_SUPPORTED = 0, 2, 7
NO_SUCH_OBJECT, INVALID_CREDENTIALS, UNWILLING_TO_PERFORM = 32, 49, 53
BAD_PASSWORD = (
    "80090308: LdapErr: DSID-0C090447, comment: AcceptSecurityContext error, data 52e, v3839"
)


class LdapProtocolError(Exception):
    """The client sent something that is not an LDAP message this responder understands."""


def ber(tag: int, content: bytes) -> bytes:
    """One BER TLV with a definite length."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def ber_int(value: int, tag: int = 0x02) -> bytes:
    """A BER INTEGER (or ENUMERATED with tag 0x0A)."""
    return ber(tag, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _length(data: bytes, pos: int) -> tuple[int, int] | None:
    """(content length, content start) of the TLV whose length byte is at pos; None if short."""
    if pos >= len(data):
        return None
    first = data[pos]
    if not first & 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise LdapProtocolError("unsupported BER length")
    if pos + 1 + count > len(data):
        return None
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def ber_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) TLVs that follow each other in data (single-byte tags)."""
    items, pos = [], 0
    while pos < len(data):
        header = _length(data, pos + 1)
        if header is None or header[1] + header[0] > len(data):
            raise LdapProtocolError("truncated TLV")
        size, start = header
        items.append((data[pos], data[start : start + size]))
        pos = start + size
    return items


def split_message(buffer: bytes) -> tuple[bytes, bytes] | None:
    """The first complete LDAPMessage's content and the rest, or None until one is complete."""
    if not buffer:
        return None
    if buffer[0] != 0x30:
        raise LdapProtocolError("not an LDAPMessage")
    header = _length(buffer, 1)
    if header is None:
        return None
    size, start = header
    if size > MAX_MESSAGE:
        raise LdapProtocolError("message too large")
    if len(buffer) < start + size:
        return None
    return buffer[start : start + size], buffer[start + size :]


def ldap_result(tag: int, code: int, message: str = "") -> bytes:
    """An LDAPResult-shaped response: resultCode, empty matchedDN, diagnosticMessage."""
    return ber(tag, ber_int(code, 0x0A) + ber(0x04, b"") + ber(0x04, message.encode()))


def search_entry(dn: str, attributes: dict[str, list[str]]) -> bytes:
    """A SearchResultEntry with string values."""
    encoded = b"".join(
        ber(0x30, ber(0x04, key.encode()) + ber(0x31, b"".join(ber(0x04, v.encode()) for v in vs)))
        for key, vs in attributes.items()
    )
    return ber(SEARCH_ENTRY, ber(0x04, dn.encode()) + ber(0x30, encoded))


class LdapResponder:
    """Answers LDAP messages as a freshly installed Edge's AD LDS would, minus the directory.

    Anonymous simple binds succeed; simple binds with a name or password fail as AD LDS
    answers a wrong password; SASL binds are refused. A base search of the rootDSE returns a
    small entry; any other search gets noSuchObject; unbind closes.
    """

    def __init__(self, *, dns_host_name: str | None, clock: Callable[[], datetime]) -> None:
        self._dns_host_name = dns_host_name
        self._clock = clock

    def answer(self, message: bytes) -> bytes | None:
        """The reply to one LDAPMessage's content: b"" for none, None to close the connection."""
        items = ber_items(message)
        if len(items) < 2 or items[0][0] != 0x02:
            raise LdapProtocolError("LDAPMessage without messageID and protocolOp")
        message_id = ber(0x02, items[0][1])
        tag, op = items[1]
        if tag == UNBIND_REQUEST:
            return None
        if tag == ABANDON_REQUEST:
            return b""
        if tag == BIND_REQUEST:
            parts = [self._bind(op)]
        elif tag == SEARCH_REQUEST:
            parts = self._search(op)
        elif tag == EXTENDED_REQUEST:
            parts = [
                ldap_result(EXTENDED_RESPONSE, PROTOCOL_ERROR, "unsupported extended operation")
            ]
        else:  # modify, add, delete, modDN, compare: the response is the next application tag
            response_tag = 0x60 | ((tag & 0x1F) + 1)
            parts = [ldap_result(response_tag, UNWILLING_TO_PERFORM, "not supported by the lab")]
        return b"".join(ber(0x30, message_id + part) for part in parts)

    @staticmethod
    def _bind(op: bytes) -> bytes:
        fields = ber_items(op)
        if len(fields) < 3:
            raise LdapProtocolError("short BindRequest")
        (_, name), (auth_tag, credentials) = fields[1], fields[2]
        if auth_tag != 0x80:
            return ldap_result(BIND_RESPONSE, AUTH_METHOD_NOT_SUPPORTED, "SASL is not supported")
        if name or credentials:
            return ldap_result(BIND_RESPONSE, INVALID_CREDENTIALS, BAD_PASSWORD)
        return ldap_result(BIND_RESPONSE, SUCCESS)

    def _search(self, op: bytes) -> list[bytes]:
        fields = ber_items(op)
        if len(fields) < 2:
            raise LdapProtocolError("short SearchRequest")
        base, scope = fields[0][1], int.from_bytes(fields[1][1], "big")
        if base or scope != 0:
            return [ldap_result(SEARCH_DONE, NO_SUCH_OBJECT, "only the rootDSE is served")]
        attributes = {
            "currentTime": [f"{self._clock().astimezone(UTC):%Y%m%d%H%M%S}.0Z"],
            "namingContexts": ["OU=MSExchangeGateway"],
            "supportedLDAPVersion": ["3", "2"],
            "isSynchronized": ["TRUE"],
        }
        if self._dns_host_name:
            attributes["dnsHostName"] = [self._dns_host_name]
        return [search_entry("", attributes), ldap_result(SEARCH_DONE, SUCCESS)]
