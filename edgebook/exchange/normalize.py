"""Turn what pypsrp returns into plain Python, and ErrorRecords into CommandErrors.

pypsrp 0.9.1 leaves Exchange objects half-parsed (DateTime as text, MultiValuedProperty as raw
'<LST>' XML, enums as objects). So each output object is read once, as it arrives
(ReferenceTolerantSerializer), by clixml.read straight into plain Python; what that reader leaves
(an unknown tag, one of psrpcore's own types) is parsed by psrpcore and converted by plain(),
with the same result. An object pypsrp parsed itself is re-parsed from its CLIXML (pypsrp's
private `_xml`, pinned by `pypsrp>=0.9,<0.10` and covered by tests). The conversions:

* objects → PSRecord (a dict of properties; `.type_names` without `Deserialized.`);
* MultiValuedProperty, arrays, lists → list; hashtables → dict;
* DateTime → aware datetime (UTC when the wire value has no offset); TimeSpan → timedelta;
* enums → their ToString() name (flags stay one string: "IMAP, POP, SMTP"; see split_flags);
* byte[] → bytes; Guid, Decimal, Version, Uri, XML → str; char → str;
* a nested object that arrives as a bare ToString() (beyond the serialization depth) → str.
"""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import psrpcore
from psrpcore.types import (
    ErrorCategory,
    PSChar,
    PSEnumBase,
    PSFlagBase,
    PSObject,
    PSQueue,
    PSSecureString,
    PSVersion,
)
from psrpcore.types import deserialize as psrpcore_deserialize
from pypsrp.complex_objects import ComplexObject, GenericComplexObject
from pypsrp.messages import ErrorRecord
from pypsrp.serializer import Serializer

from edgebook.exchange import clixml, control_messages
from edgebook.exchange.record import PSRecord

DESERIALIZED = "Deserialized."
ENUM_TYPE = "System.Enum"
_CIPHER = psrpcore.PSRemotingCrypto()  # SecureStrings are not decrypted: none expected


@dataclass(frozen=True)
class CommandError:
    """A PowerShell ErrorRecord's essentials: who wrote it, the message, ids and target."""

    server: str
    cmdlet: str | None
    message: str
    fully_qualified_error_id: str
    category: str
    target: str | None = None
    exception_type: str | None = None
    terminating: bool = False

    def __str__(self) -> str:
        where = f"{self.server} {self.cmdlet}" if self.cmdlet else self.server
        target = f", target {self.target}" if self.target else ""
        return f"{where}: {self.message} [{self.category}, {self.fully_qualified_error_id}{target}]"


class ReceivedObject(GenericComplexObject):
    """An output object read once, as it arrived (pypsrp's own parse skipped): `value` is plain
    Python already, or `parsed` is psrpcore's parse, converted by normalize()."""

    def __init__(self, value: Any = None, parsed: Any = None) -> None:
        super().__init__()
        self.value = value
        self.parsed = parsed


class ReferenceTolerantSerializer(Serializer):
    """pypsrp's Serializer, parsing each output object once and not tripped by references.

    An output object (a PIPELINE_OUTPUT message) is read by clixml.read (psrpcore for what that
    leaves), which reads every reference and every type edgebook needs; pypsrp's parse of it was
    thrown away by normalize() anyway and cost as much again. The control messages every session
    and pipeline receives are read by control_messages the same way. Anything else, and an output
    psrpcore cannot parse either, goes through pypsrp, with each TN and Obj registered
    beforehand: pypsrp 0.9.1 keeps an unknown collection (MultiValuedProperty) as raw `<LST>`
    XML, so a type or object first defined inside one and referenced after it (Exchange writes
    SmartHosts, whose SmartHost defines IPAddress, then `<Ref N="SourceIPAddress">` to it; a send
    connector's SourceTransportServers define ADObjectId before its Identity) raised KeyError
    and lost the whole read.
    """

    def deserialize(
        self, element: ET.Element | str, metadata: Any = None, clear: bool = True
    ) -> Any:
        """An output object read into plain Python; anything else as pypsrp's, every TN and Obj
        RefId of the element known beforehand."""
        if clear:
            self._clear()
            if isinstance(element, str):
                try:
                    element = ET.fromstring(element)
                except ET.ParseError:
                    return super().deserialize(element, metadata, clear=False)
                if metadata is None and element.tag == "Obj":  # pipeline output
                    received = _received(element)
                    if received is not None:
                        return received
                elif metadata is not None:
                    message = control_messages.read(element, metadata.object)
                    if message is not None:
                        return message
            for found in element.iter():
                ref = found.get("RefId")
                if ref is None:
                    continue
                if found.tag == "TN":
                    self.tn.setdefault(ref, [t.text or "" for t in found if t.tag == "T"])
                elif found.tag == "Obj":
                    self.obj.setdefault(ref, found.findtext("ToString"))
        return super().deserialize(element, metadata, clear=False)


def _received(element: ET.Element) -> ReceivedObject | None:
    try:
        return ReceivedObject(clixml.read(element))
    except clixml.Unreadable:
        pass
    try:
        parsed = psrpcore_deserialize(element, _CIPHER)
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return ReceivedObject(parsed=parsed)


def tolerate_references(serializer: Serializer) -> None:
    """Make a pool's Serializer a ReferenceTolerantSerializer (same instance, same state)."""
    serializer.__class__ = ReferenceTolerantSerializer


def split_flags(text: str | None) -> list[str]:
    """Split a flags enum's text ("IMAP, POP, SMTP") into names; "None" or empty gives []."""
    if not text:
        return []
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    return [] if names == ["None"] else names


def normalize(value: Any) -> Any:
    """Convert one value returned by pypsrp (an output object) to plain Python."""
    if isinstance(value, ReceivedObject):
        return value.value if value.parsed is None else plain(value.parsed)
    if isinstance(value, ComplexObject):
        if value._xml is None:  # built here, not received: nothing for psrpcore to parse
            return _from_pypsrp(value)
        try:
            parsed = psrpcore_deserialize(ET.fromstring(value._xml), _CIPHER)
        except (ET.ParseError, KeyError, ValueError, TypeError, AttributeError):
            # psrpcore could not re-parse this fragment (e.g. a type-name reference defined
            # outside it): fall back to what pypsrp parsed.
            return _from_pypsrp(value)
        return plain(parsed)
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, dict):
        return {normalize(key): normalize(item) for key, item in value.items()}
    return plain(value)


def plain(value: Any) -> Any:
    """Convert a psrpcore value (or a Python primitive) to plain Python."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, PSEnumBase | PSFlagBase):
        return value.PSObject.to_string or value.name or str(int(value))
    if isinstance(value, PSObject) and _is_enum(value.PSObject.type_names):
        return value.PSObject.to_string or str(int(value))
    converted = _plain_scalar(value)
    if converted is not _NOT_SCALAR:
        return converted
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, PSQueue):
        return [plain(item) for item in list(value.queue)]
    if isinstance(value, PSObject):
        return _record(value)
    return str(value)


_NOT_SCALAR = object()
_RAW_XML = ("<Obj", "<LST", "<IE", "<DCT", "<QUE", "<STK")


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        tz = value.tzinfo or dt.UTC
        return dt.datetime(*value.timetuple()[:6], value.microsecond, tzinfo=tz)
    if isinstance(value, dt.timedelta):
        return dt.timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, PSChar):
        return chr(int(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, PSSecureString):
        return "<SecureString>"
    if isinstance(value, Decimal | PSVersion | uuid.UUID):
        return str(value)
    return _NOT_SCALAR


def _is_enum(type_names: list[str]) -> bool:
    return any(name.removeprefix(DESERIALIZED) == ENUM_TYPE for name in type_names)


def _record(value: PSObject) -> Any:
    meta = value.PSObject
    properties = [*meta.adapted_properties, *meta.extended_properties]
    if not properties:
        return meta.to_string if meta.to_string is not None else None
    type_names = tuple(name.removeprefix(DESERIALIZED) for name in meta.type_names)
    record = {prop.name: plain(prop.get_value(value)) for prop in properties}
    return PSRecord(record, type_names, meta.to_string)


def _from_pypsrp(value: ComplexObject) -> Any:
    """Best effort from pypsrp's own parse, for fragments psrpcore cannot re-parse."""
    types = value.types if isinstance(value, GenericComplexObject) else []
    type_names = tuple(name.removeprefix(DESERIALIZED) for name in types)
    to_string = getattr(value, "to_string", None)
    if _is_enum(list(type_names)):
        return to_string
    if not isinstance(value, GenericComplexObject):
        return to_string if to_string is not None else str(value)
    properties = {**value.adapted_properties, **value.extended_properties}
    if properties:
        return PSRecord(
            {name: _from_pypsrp_value(item) for name, item in properties.items()},
            type_names,
            to_string,
        )
    if value.property_sets:
        items = [_from_pypsrp_value(item) for item in value.property_sets]
        return items[0] if len(items) == 1 else items
    return to_string


def _from_pypsrp_value(value: Any) -> Any:
    if isinstance(value, ComplexObject):
        return normalize(value)
    if isinstance(value, str) and value.startswith(_RAW_XML):
        return _from_raw_xml(value)
    if isinstance(value, list):
        return [_from_pypsrp_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _from_pypsrp_value(item) for key, item in value.items()}
    return plain(value)


def _from_raw_xml(text: str) -> Any:
    """pypsrp leaves unknown collections and objects as raw CLIXML text: parse it."""
    wrapped = text if text.startswith("<Obj") else f"<Obj>{text}</Obj>"
    try:
        element = ET.fromstring(wrapped)
    except ET.ParseError:
        return text
    try:
        return plain(psrpcore_deserialize(element, _CIPHER))
    except (KeyError, ValueError, TypeError, AttributeError):
        return element.findtext("ToString", default=text)


def command_error(
    record: ErrorRecord | PSRecord, server: str, *, terminating: bool
) -> CommandError:
    """Read an error record (pypsrp's, or a PSRecord from control_messages) into a CommandError."""
    parts = _error_parts(record) if isinstance(record, PSRecord) else _pypsrp_error_parts(record)
    message = str(parts.message or parts.text or parts.fq_error or "unknown error")
    try:
        category = ErrorCategory(int(parts.category)).name
    except (TypeError, ValueError):
        category = "NotSpecified"
    target_object = parts.target_object
    target = parts.target_name or (str(target_object) if target_object is not None else None)
    return CommandError(
        server=server,
        cmdlet=parts.invocation_name or parts.activity or None,
        message=message,
        fully_qualified_error_id=str(parts.fq_error or ""),
        category=category,
        target=target or None,
        exception_type=parts.exception_type,
        terminating=terminating,
    )


class _ErrorParts(NamedTuple):
    """What a CommandError takes from an error record."""

    exception_type: str | None
    message: Any  # the exception's Message
    text: str | None  # the record's ToString(), for an exception without a message
    fq_error: Any
    category: Any
    target_name: Any
    target_object: Any
    invocation_name: Any
    activity: Any


def _error_parts(record: PSRecord) -> _ErrorParts:
    found = record.get("Exception")
    exception = found if isinstance(found, PSRecord) else PSRecord()
    return _ErrorParts(
        exception_type=exception.type_names[0] if exception.type_names else None,
        message=exception.get("Message"),
        text=record.to_string,
        fq_error=record.get("FullyQualifiedErrorId"),
        category=record.get("ErrorCategory_Category"),
        target_name=record.get("ErrorCategory_TargetName"),
        target_object=record.get("TargetObject"),
        invocation_name=record.get("InvocationInfo_InvocationName"),
        activity=record.get("ErrorCategory_Activity"),
    )


def _pypsrp_error_parts(record: ErrorRecord) -> _ErrorParts:
    exception = record.exception
    is_object = isinstance(exception, GenericComplexObject)
    return _ErrorParts(
        exception_type=exception.types[0] if is_object and exception.types else None,
        message=exception.adapted_properties.get("Message") if is_object else None,
        text=getattr(record, "_to_string", None),  # (pypsrp prints a missing one as "None")
        fq_error=record.fq_error,
        category=record.category,
        target_name=record.target_name,
        # pypsrp's ErrorRecord gets target_object only when deserialized (its __init__ lacks it)
        target_object=getattr(record, "target_object", None),
        invocation_name=record.invocation_name,
        activity=record.activity,
    )
