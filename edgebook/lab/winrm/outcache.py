"""Pipeline output with each Exchange object's CLIXML serialised once per content.

psrpcore serialises every output object afresh: building its PSObject tree and walking it costs
about 50 times more than the repr() of the lab's value. The CLIXML of one object in its own
PSRP message does not depend on the pipeline (each message numbers its own RefIds, and output
holds no SecureString), so the lab keeps it per repr() of the value and queues the message as
psrpcore's prepare_message() does. tests/test_lab_output_cache.py checks the bytes are psrpcore's.
"""

from __future__ import annotations

import collections
import threading
from typing import Any
from xml.etree import ElementTree

from psrpcore import ServerPipeline
from psrpcore._payload import PSRPMessage, StreamType, create_message
from psrpcore.types import PSInvocationState, PSRPMessageType, serialize

from edgebook.lab.winrm.objects import ExObject
from edgebook.lab.winrm.wire import to_wire

CACHE_SIZE = 4096  # objects; a 20-Edge lab sends about 550 different ones per inspect


class ClixmlCache:
    """The CLIXML bytes of ExObjects by content (repr), least recently used dropped first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def clixml(self, pipe: ServerPipeline, value: ExObject) -> bytes:
        """The value serialised as psrpcore serialises pipeline output on this pipeline."""
        pool = pipe.runspace_pool
        theirs = pool.their_capability
        key = f"{theirs.SerializationVersion if theirs else ''}|{value!r}"
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return data
        element = serialize(
            to_wire(value),
            pool._cipher,
            our_capability=pool.our_capability,
            their_capability=pool.their_capability,
        )
        data = ElementTree.tostring(element, encoding="utf-8", method="xml")
        with self._lock:
            self.misses += 1
            self._entries[key] = data
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return data


CACHE = ClixmlCache()


def write_output(pipe: ServerPipeline, value: Any) -> None:
    """pipe.write_output(to_wire(value)), an ExObject's CLIXML taken from the cache."""
    if not isinstance(value, ExObject) or pipe.state != PSInvocationState.Running:
        pipe.write_output(to_wire(value))  # (psrpcore refuses output to a pipeline not running)
        return
    data = CACHE.clixml(pipe, value)
    pool = pipe.runspace_pool
    message = create_message(
        pool._is_client,
        PSRPMessageType.PipelineOutput,
        data,
        pool.runspace_pool_id,
        pipe.pipeline_id,
    )
    pool._send_buffer.append(
        PSRPMessage(
            PSRPMessageType.PipelineOutput,
            bytearray(message),
            pool.runspace_pool_id,
            pipe.pipeline_id,
            pool._fragment_counter,
            StreamType.default,
        )
    )
