"""How much batching and session reuse save when every WinRM round trip costs DMZ latency.

Starts a lab (scenario `healthy`) with a per-request delay and reads the Edge-side facts of
inspect three ways: edgebook's one batched pipeline per Edge on one reused session, one
pipeline per cmdlet on one session, and a fresh session per cmdlet (what ad-hoc scripts do).
Prints WSMan requests and wall time per strategy, and their ratios to edgebook's.

    .venv/bin/python benchmarks/inspect_round_trips.py [--latency-ms 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edgebook.config import Inventory, load_inventory
from edgebook.exchange.shell import ExchangeShell
from edgebook.lab import control
from edgebook.phases.inspect import edge_commands


def batched(inventory: Inventory) -> int:
    """edgebook: one session per Edge, one pipeline with every read."""
    requests = 0
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
    for edge in inventory.edges:
        with ExchangeShell.for_server(inventory, edge.name) as shell:
            shell.run_batch(edge_commands(edge, since), errors="return")
            requests += shell.stats.wsman_requests
    return requests


def pipeline_per_cmdlet(inventory: Inventory) -> int:
    """One session per Edge, one pipeline per cmdlet."""
    requests = 0
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
    for edge in inventory.edges:
        with ExchangeShell.for_server(inventory, edge.name) as shell:
            for command in edge_commands(edge, since):
                shell.run_batch([command], errors="return")
            requests += shell.stats.wsman_requests
    return requests


def session_per_cmdlet(inventory: Inventory) -> int:
    """A new session (runspace pool) for every cmdlet."""
    requests = 0
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
    for edge in inventory.edges:
        for command in edge_commands(edge, since):
            with ExchangeShell.for_server(inventory, edge.name) as shell:
                shell.run_batch([command], errors="return")
                requests += shell.stats.wsman_requests
    return requests


STRATEGIES: dict[str, Callable[[Inventory], int]] = {
    "batched (edgebook)": batched,
    "pipeline per cmdlet": pipeline_per_cmdlet,
    "session per cmdlet": session_per_cmdlet,
}


def main() -> None:
    """Run every strategy against a lab and print requests, time and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50, help="delay per WSMan request")
    parser.add_argument("--repeat", type=int, default=3, help="runs per strategy (median)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="edgebook-bench-")) / "lab"
    control.start(directory, "healthy", latency_ms=args.latency_ms)
    try:
        inventory = load_inventory(directory / "inventory.yaml")
        results = {}
        for name, strategy in STRATEGIES.items():
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                requests = strategy(inventory)
                times.append(time.perf_counter() - start)
            results[name] = (requests, statistics.median(times))
    finally:
        control.stop(directory)
    base_requests, base_time = results["batched (edgebook)"]
    print(f"Edge-side reads of {len(inventory.edges)} Edges, {args.latency_ms} ms per request")
    print(f"{'strategy':<22}{'requests':>9}{'ratio':>8}{'seconds':>10}{'ratio':>8}")
    for name, (requests, seconds) in results.items():
        print(
            f"{name:<22}{requests:>9}{requests / base_requests:>7.1f}x"
            f"{seconds:>10.2f}{seconds / base_time:>7.1f}x"
        )


if __name__ == "__main__":
    main()
