"""CPU time to read the lab's output objects: psrpcore's parse + plain() against clixml.read.

The corpus is every object the lab sends for inspect's statements and the change phases'
commands in every scenario (tests/support/clixml_corpus.py), parsed to elements once; each
reader reads all of it --repeat times. Prints the CPU seconds of each reader (best of the
repeats) and their ratio.

    .venv/bin/python benchmarks/clixml_reader.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from psrpcore.types import deserialize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from benchmarks.cpu_timing import best_cpu
from edgebook.exchange import clixml
from edgebook.exchange.normalize import _CIPHER, plain
from tests.support.clixml_corpus import SCENARIOS, lab_objects


def corpus() -> list[ET.Element]:
    """The lab's output objects of every scenario, as the client's elements."""
    workdir = Path(tempfile.mkdtemp(prefix="edgebook-clixml-"))
    texts = [text for s in SCENARIOS for text in lab_objects(s, workdir / s)]
    return [ET.fromstring(text) for text in texts]


def main() -> None:
    """Time both readers on the corpus and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="reads of the corpus per reader")
    args = parser.parse_args()
    elements = corpus()
    old = best_cpu(lambda e: plain(deserialize(e, _CIPHER)), elements, args.repeat)
    new = best_cpu(clixml.read, elements, args.repeat)
    print(f"{len(elements)} objects, best of {args.repeat}")
    print(f"psrpcore + plain(): {old * 1000:8.1f} ms CPU")
    print(f"clixml.read:        {new * 1000:8.1f} ms CPU")
    print(f"ratio:              {old / new:8.1f}x")


if __name__ == "__main__":
    main()
