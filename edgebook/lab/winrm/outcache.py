"""Pipeline output written as CLIXML directly, each Exchange object's once per content.

psrpcore serialises every output object afresh: building its PSObject tree and walking it costs
about 50 times more than walking the lab's value. The lab writes the same bytes itself
(edgebook.lab.winrm.clixml_writer, about 25 times cheaper than psrpcore), and keeps an
ExObject's by its content (`content_key`, about twice as quick as its repr()): the CLIXML of one
object in its own PSRP message does not depend on the pipeline (each message numbers its own
RefIds, and output holds no SecureString). It queues the message as psrpcore's prepare_message()
does; a value the writer does not support goes to psrpcore.
tests/test_lab_output_cache.py checks the client reads the same.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Hashable
from typing import Any

from psrpcore import ServerPipeline
from psrpcore.types import PSInvocationState, PSRPMessageType

from edgebook.lab.winrm.clixml_writer import Unsupported, clixml
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject
from edgebook.lab.winrm.replay import queue_message
from edgebook.lab.winrm.wire import to_wire

CACHE_SIZE = 4096  # objects; a 20-Edge lab sends about 550 different ones per inspect


# Values a key holds as themselves: equal only when their CLIXML is (not so floats: -0.0 == 0.0,
# nor datetimes: the same instant in two offsets; those are keyed by their repr()).
_SELF_KEYED = frozenset({str, int, bool, type(None), bytes})


def content_key(value: Any) -> Hashable:
    """A key equal for two values exactly when their contents are, types included (as repr())."""
    kind = type(value)
    if kind in _SELF_KEYED:
        return kind, value
    if kind is ExObject:
        properties = tuple([(name, content_key(v)) for name, v in value.properties.items()])
        names = tuple(value.type_names)
        return kind, names, properties, value.to_string, value.adapted, value.notes
    if kind is ExList:
        return kind, value.type_name, tuple([content_key(item) for item in value.items])
    if kind is ExEnum:
        return kind, value.type_name, value.text, value.value
    if kind is list or kind is tuple:
        return kind, tuple([content_key(item) for item in value])
    if kind is dict:
        return kind, tuple([(content_key(k), content_key(v)) for k, v in value.items()])
    return kind, repr(value)


class ClixmlCache:
    """The CLIXML bytes of ExObjects by content_key(), least recently used dropped first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: collections.OrderedDict[Hashable, bytes] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def clixml(self, value: ExObject) -> bytes:
        """The value's CLIXML as psrpcore serialises it (Unsupported: psrpcore must)."""
        key = content_key(value)
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
    queue_message(pipe.runspace_pool, PSRPMessageType.PipelineOutput, data, pipe.pipeline_id)
