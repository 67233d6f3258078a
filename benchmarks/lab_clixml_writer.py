"""CPU time to serialise the lab's output values: psrpcore (to_wire + serialize + tostring)
against the lab's direct writer (edgebook.lab.winrm.clixml_writer).

The corpus is every value the lab outputs for inspect's statements and the change phases'
commands in every scenario (tests/support/clixml_corpus.py); each writer writes all of it
--repeat times, without the lab's output cache. Prints the CPU seconds of each (best of the
repeats) and their ratio, after checking both give the same bytes.

    .venv/bin/python benchmarks/lab_clixml_writer.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psrpcore
from psrpcore.types import serialize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from benchmarks.cpu_timing import best_cpu
from edgebook.lab.winrm.clixml_writer import clixml
from edgebook.lab.winrm.wire import to_wire
from tests.support.clixml_corpus import SCENARIOS, lab_values

_CIPHER = psrpcore.PSRemotingCrypto()


def psrpcore_clixml(value: Any) -> bytes:
    """What the lab sent before the writer."""
    return ET.tostring(serialize(to_wire(value), _CIPHER), encoding="utf-8")


def main() -> None:
    """Time both writers on the corpus and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="writes of the corpus per writer")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="edgebook-clixml-"))
    values = [value for s in SCENARIOS for value in lab_values(s, workdir / s)]
    if any(clixml(value) != psrpcore_clixml(value) for value in values):
        sys.exit("the writers disagree: run tests/test_lab_clixml_writer.py")
    old = best_cpu(psrpcore_clixml, values, args.repeat)
    new = best_cpu(clixml, values, args.repeat)
    print(f"{len(values)} values, best of {args.repeat}")
    print(f"psrpcore:      {old * 1000:8.1f} ms CPU")
    print(f"direct writer: {new * 1000:8.1f} ms CPU")
    print(f"ratio:         {old / new:8.1f}x")


if __name__ == "__main__":
    main()
