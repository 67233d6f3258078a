"""CPU time to decode the lab's CREATE_PIPELINE messages: psrpcore (deserialize, then
PowerShell.FromPSObjectForRemoting and from_wire) against the lab's direct reader
(edgebook.lab.winrm.pipeline_reader).

The corpus is every CreatePipeline edgebook's phases send the lab (inspect, phases 02 and 03,
phase 04's planning: tests/support/pipeline_corpus.py); each way decodes all of it --repeat
times. psrpcore is timed as the lab used it before the reader (converting the pipeline twice:
event.pipeline) and as its fallback now does (once). Prints the CPU time per message of each
(best of the repeats) and the ratios, after checking both give the same requests.

    .venv/bin/python benchmarks/lab_pipeline_reader.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import cast

from psrpcore import PowerShell
from psrpcore._payload import unpack_fragment, unpack_message
from psrpcore.types import PSObject, deserialize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from benchmarks.cpu_timing import best_cpu
from edgebook.lab.winrm.pipeline_reader import PipelineRequest, read_create_pipeline
from edgebook.lab.winrm.runspace import psrpcore_request
from tests.support.pipeline_corpus import Received, form, phase_messages


def through_psrpcore(received: Received, conversions: int = 1) -> PipelineRequest:
    """The request psrpcore gives, converting the deserialised pipeline `conversions` times."""
    fragment, _pipeline_id, cipher = received
    message = unpack_message(bytearray(unpack_fragment(bytearray(fragment)).data))
    data = bytes(message.data)
    data.decode()  # psrpcore's debug log line decodes every message
    found = cast(PSObject, deserialize(ET.fromstring(data), cipher))
    for _ in range(conversions - 1):
        PowerShell.FromPSObjectForRemoting(found)
    return psrpcore_request(PowerShell.FromPSObjectForRemoting(found))


def before(received: Received) -> PipelineRequest:
    return through_psrpcore(received, conversions=2)


def directly(received: Received) -> PipelineRequest:
    return read_create_pipeline(*received)


def main() -> None:
    """Time both readers on the corpus and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="decodes of the corpus per way")
    args = parser.parse_args()
    messages = phase_messages(Path(tempfile.mkdtemp(prefix="edgebook-pipelines-")))
    if any(form(directly(m)) != form(through_psrpcore(m)) for m in messages):
        sys.exit("the readers disagree: run tests/test_lab_pipeline_reader.py")
    old = best_cpu(before, messages, args.repeat) / len(messages)
    fallback = best_cpu(through_psrpcore, messages, args.repeat) / len(messages)
    new = best_cpu(directly, messages, args.repeat) / len(messages)
    size = sum(len(m[0]) for m in messages) / len(messages)
    print(f"{len(messages)} messages of {size / 1024:.1f} KiB on average, best of {args.repeat}")
    print(f"psrpcore, pipeline converted twice (before): {old * 1000:7.2f} ms CPU per message")
    print(f"psrpcore, converted once (the fallback):     {fallback * 1000:7.2f} ms CPU per message")
    print(f"direct reader:                               {new * 1000:7.2f} ms CPU per message")
    print(f"ratio before / direct:   {old / new:6.1f}x")
    print(f"ratio fallback / direct: {fallback / new:6.1f}x")


if __name__ == "__main__":
    main()
