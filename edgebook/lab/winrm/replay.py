"""PSRP messages the lab sends again and again, queued from the CLIXML psrpcore wrote once.

A pipeline's state changes (Running, Completed), the pool's (Opened, Closed), the server's
SessionCapability and ApplicationPrivateData, and the lab's ErrorRecords are the same CLIXML in
every session: psrpcore builds and serialises a PSObject tree for each, several times the work
of queueing the bytes. `replay` lets psrpcore queue such a message the first time, keeps the
CLIXML of what it queued (the message without its 40-byte header of type, pool and pipeline),
and queues later ones from it as psrpcore's prepare_message() does. LabRunspacePool replays the
pool's and pipelines' control messages that carry no error record.
tests/test_lab_output_cache.py checks the client reads the same.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from psrpcore import ServerRunspacePool
from psrpcore._payload import PSRPMessage, StreamType, create_message
from psrpcore.types import (
    ApplicationPrivateData,
    PipelineState,
    PSRPMessageType,
    RunspacePoolStateMsg,
    SessionCapability,
)

_HEADER = len(create_message(False, PSRPMessageType.PipelineState, b"", uuid.UUID(int=0)))
MAX_ENTRIES = 1024  # an ErrorRecord per distinct error; far more than a lab writes


class _Replays:
    """(message type, CLIXML) by key, kept until MAX_ENTRIES are (then no more are kept)."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[PSRPMessageType, bytes]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> tuple[PSRPMessageType, bytes] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def keep(self, key: Hashable, kind: PSRPMessageType, data: bytes) -> None:
        with self._lock:
            if len(self._entries) < MAX_ENTRIES:
                self._entries[key] = (kind, data)


REPLAYS = _Replays()


def queue_message(
    pool: ServerRunspacePool,
    kind: PSRPMessageType,
    data: bytes,
    pipeline_id: uuid.UUID | None,
    stream_type: StreamType = StreamType.default,
) -> None:
    """Queue a message of this CLIXML as psrpcore's prepare_message() queues one."""
    message = create_message(pool._is_client, kind, data, pool.runspace_pool_id, pipeline_id)
    pool._send_buffer.append(
        PSRPMessage(
            kind,
            bytearray(message),
            pool.runspace_pool_id,
            pipeline_id,
            pool._fragment_counter,
            stream_type,
        )
    )


def replay(
    pool: ServerRunspacePool,
    key: Hashable,
    pipeline_id: uuid.UUID | None,
    send: Callable[[], None],
    stream_type: StreamType = StreamType.default,
) -> None:
    """Queue the one message send() queues through psrpcore; key names its CLIXML, which must
    not depend on the session (no SecureString): kept the first time, queued from then on."""
    found = REPLAYS.get(key)
    if found is not None:
        queue_message(pool, *found, pipeline_id, stream_type)
        return
    queued = len(pool._send_buffer)
    send()
    if len(pool._send_buffer) == queued + 1:
        message = pool._send_buffer[-1]
        REPLAYS.keep(key, message.message_type, message.data[_HEADER:])


class LabRunspacePool(ServerRunspacePool):
    """psrpcore's server pool, replaying its constant messages (edgebook.lab.winrm.replay)."""

    def __init__(self) -> None:
        super().__init__()  # psrpcore's default capability and application private data

    def prepare_message(
        self,
        message: Any,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        """psrpcore's prepare_message(), replayed for a message constant_key() names."""
        key = self.constant_key(message, message_type)
        base = super().prepare_message
        if key is None:
            base(message, message_type, pipeline_id, stream_type)
            return

        def send() -> None:
            base(message, None, pipeline_id, stream_type)

        replay(self, key, pipeline_id, send, stream_type)

    def constant_key(self, message: Any, message_type: PSRPMessageType | None) -> Hashable | None:
        """What a message's CLIXML depends on, for those the lab sends unchanged (else None):
        a state without an error, this pool's capability (psrpcore's default: every lab pool
        has it), this pool's application private data (plain values: its repr says it all)."""
        if message_type is not None:
            return None
        kind = type(message)
        if kind is PipelineState and not message.ExceptionAsErrorRecord:
            return kind, int(message.PipelineState)
        if kind is RunspacePoolStateMsg and not message.ExceptionAsErrorRecord:
            return kind, int(message.RunspaceState)
        if kind is SessionCapability and message is self.our_capability:
            return (kind,)
        if kind is ApplicationPrivateData:
            data = self.application_private_data  # (the message holds a converted copy)
            return (kind, repr(data)) if message.ApplicationPrivateData == data else None
        return None
