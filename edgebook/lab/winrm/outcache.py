"""Pipeline output written as CLIXML directly, each Exchange object's once per content.

psrpcore serialises every output object afresh: building its PSObject tree and walking it costs
about 50 times more than the repr() of the lab's value. The lab writes the same bytes itself
(edgebook.lab.winrm.clixml_writer, about 25 times cheaper than psrpcore), and keeps an
ExObject's per repr() of the value: the CLIXML of one object in its own PSRP message does not
depend on the pipeline (each message numbers its own RefIds, and output holds no SecureString).
It queues the message as psrpcore's prepare_message() does; a value the writer does not support
goes to psrpcore. tests/test_lab_output_cache.py checks the client reads the same.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from psrpcore import ServerPipeline
from psrpcore._payload import PSRPMessage, StreamType, create_message
from psrpcore.types import PSInvocationState, PSRPMessageType

from edgebook.lab.winrm.clixml_writer import Unsupported, clixml
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

    def clixml(self, value: ExObject) -> bytes:
        """The value's CLIXML as psrpcore serialises it (Unsupported: psrpcore must)."""
        key = repr(value)
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return data
        data = clixml(value)
        with self._lock:
            self.misses += 1
            self._entries[key] = data
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return data


CACHE = ClixmlCache()


def write_output(pipe: ServerPipeline, value: Any) -> None:
    """pipe.write_output(to_wire(value)) in the same bytes, written directly where supported."""
    if pipe.state != PSInvocationState.Running:
        pipe.write_output(to_wire(value))  # (psrpcore refuses output to a pipeline not running)
        return
    try:
        data = CACHE.clixml(value) if isinstance(value, ExObject) else clixml(value)
    except Unsupported:
        pipe.write_output(to_wire(value))
        return
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
