"""CPU timing shared by the benchmarks that compare two implementations of one step."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


def best_cpu(work: Callable[[Any], Any], items: Sequence[Any], repeat: int) -> float:
    """The least CPU time of doing work on every item, over repeat runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        for item in items:
            work(item)
        times.append(time.process_time() - start)
    return min(times)
