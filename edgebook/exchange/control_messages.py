"""PSRP control messages read by edgebook's CLIXML reader instead of pypsrp's serializer.

pypsrp's Serializer re-serialises every element it reads (ET.tostring, for its `_xml`) and costs
0.2-1.4 ms per message. Every session reads a SESSION_CAPABILITY, an APPLICATION_PRIVATE_DATA and
a RUNSPACEPOOL_STATE, every pipeline two PIPELINE_STATEs, and an Edge read one ERROR_RECORD
(Get-EventLog's "No matches found"): in a fleet inspect that was a tenth of the client's CPU.

`read` gives pypsrp the message object it would have built, with the same values, except:
* APPLICATION_PRIVATE_DATA's `data` is plain Python (clixml's conversions; nothing reads it);
* an ERROR_RECORD is the error record as a PSRecord, which normalize.command_error reads into the
  same CommandError as pypsrp's ErrorRecord.
Anything else returns None and pypsrp reads it as before: a state that carries its own error
record, a missing or mistyped property, CLIXML clixml.read leaves to psrpcore.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from pypsrp.messages import (
    ApplicationPrivateData,
    ErrorRecordMessage,
    MessageType,
    PipelineState,
    RunspacePoolStateMessage,
    SessionCapability,
)

from edgebook.exchange import clixml
from edgebook.exchange.record import PSRecord

STATE_ERROR = "ExceptionAsErrorRecord"  # a failed state's reason: left to pypsrp
OBJECT_TYPE = "System.Object"


def read(element: ET.Element, kind: type | None) -> Any:
    """The message of this kind read from its CLIXML, or None: let pypsrp read it."""
    reader = _READERS.get(kind) if kind is not None else None
    if reader is None:
        return None
    try:
        record = clixml.read_message(element)
    except clixml.Unreadable:
        return None
    if not isinstance(record, PSRecord):
        return None
    try:
        return reader(record)
    except (KeyError, TypeError):
        return None


def _session_capability(record: PSRecord) -> SessionCapability:
    time_zone = record.get("TimeZone")
    _check(time_zone, bytes, optional=True)
    return SessionCapability(
        protocol_version=_checked(record["protocolversion"], str),
        ps_version=_checked(record["PSVersion"], str),
        serialization_version=_checked(record["SerializationVersion"], str),
        time_zone=time_zone,
    )


def _application_private_data(record: PSRecord) -> ApplicationPrivateData:
    return ApplicationPrivateData(data=_checked(record["ApplicationPrivateData"], dict))


def _pool_state(record: PSRecord) -> RunspacePoolStateMessage | None:
    if STATE_ERROR in record:
        return None
    return RunspacePoolStateMessage(state=_checked(record["RunspaceState"], int))


def _pipeline_state(record: PSRecord) -> PipelineState | None:
    if STATE_ERROR in record:
        return None
    return PipelineState(state=_checked(record["PipelineState"], int))


class ErrorRecordRead(PSRecord):
    """An ERROR_RECORD message's record as clixml reads it (normalize.command_error reads it)."""

    MESSAGE_TYPE = MessageType.ERROR_RECORD


def _error_record(record: PSRecord) -> ErrorRecordRead:
    """The record, if normalize.command_error reads it as it reads pypsrp's ErrorRecord: the
    exception an object with properties (or none), the target printed the same."""
    _checked(record["FullyQualifiedErrorId"], str)
    _checked(record["ErrorCategory_Category"], int)
    _check(record.to_string, str, optional=True)
    exception = record.get("Exception")
    _check(exception, PSRecord, optional=True)
    if exception is not None and OBJECT_TYPE not in exception.type_names:
        raise TypeError("an exception pypsrp reads as text")  # it looks types up by name
    target = record.get("TargetObject")
    if isinstance(target, PSRecord):
        _checked(target.to_string, str)
    else:
        _check(target, str | int, optional=True)  # pypsrp prints a date or a list otherwise
    return ErrorRecordRead(record, record.type_names, record.to_string)


def _checked(value: Any, kind: type) -> Any:
    _check(value, kind)
    return value


def _check(value: Any, kind: Any, *, optional: bool = False) -> None:
    if not isinstance(value, kind) and not (optional and value is None):
        raise TypeError(f"{type(value).__name__}, not {kind}")


_READERS: dict[type, Callable[[PSRecord], Any]] = {
    SessionCapability: _session_capability,
    ApplicationPrivateData: _application_private_data,
    RunspacePoolStateMessage: _pool_state,
    PipelineState: _pipeline_state,
    ErrorRecordMessage: _error_record,
}
