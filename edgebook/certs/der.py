"""A minimal DER reader: just enough to walk X.509 names and certificates byte for byte."""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
SET = 0x31
OBJECT_IDENTIFIER = 0x06
OCTET_STRING = 0x04
CONTEXT_0 = 0xA0


class DerError(ValueError):
    """The bytes are not well-formed DER."""


@dataclass(frozen=True)
class Tlv:
    """One DER element: its tag byte, its whole encoding and its content."""

    tag: int
    encoded: bytes
    content: bytes


def read_tlv(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """The element starting at pos and the position just after it."""
    if pos + 2 > len(data):
        raise DerError("element header runs past the end of the data")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not supported")
    first = data[pos + 1]
    header = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized length")
        if pos + 2 + count > len(data):
            raise DerError("length runs past the end of the data")
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
        header += count
    end = pos + header + length
    if end > len(data):
        raise DerError(
            f"element declares {length} bytes but only {len(data) - pos - header} remain"
        )
    return Tlv(tag, data[pos:end], data[pos + header : end]), end


def children(content: bytes) -> list[Tlv]:
    """The elements directly inside a constructed element's content."""
    items: list[Tlv] = []
    pos = 0
    while pos < len(content):
        item, pos = read_tlv(content, pos)
        items.append(item)
    return items


def single(data: bytes, tag: int | None = None) -> Tlv:
    """Exactly one element filling data (optionally of the given tag)."""
    item, end = read_tlv(data)
    if end != len(data):
        raise DerError("trailing bytes after the element")
    if tag is not None and item.tag != tag:
        raise DerError(f"expected tag 0x{tag:02X}, found 0x{item.tag:02X}")
    return item


def decode_oid(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets."""
    if not content:
        raise DerError("empty object identifier")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise DerError("truncated object identifier")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def declared_length(data: bytes) -> int | None:
    """Total size the first element claims (header included), or None if unreadable."""
    if len(data) < 2:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")
