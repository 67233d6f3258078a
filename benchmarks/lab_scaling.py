"""Whether the lab's cost per request stays flat as the organisation grows.

Builds the `healthy` scenario with its Edge repeated N times (1 and --edges, default 20),
starts both labs side by side with a simulated round trip, and runs a full inspect (every Edge
read concurrently, plus the Mailbox side and the SMTP/LDAPS probes) of each in turn, --repeat
times after one warm-up: each pair is measured moments apart, so the machine's drift (a 2-core
machine's speed varies by a fifth over minutes) weighs on both. Prints the median wall time of
inspect, the lab daemon's CPU time per WSMan request (from /proc), the client's CPU time per
inspect (this process: pypsrp's parse, edgebook's normalisation, TLS), the probes that failed,
and the ratios of the large lab to the one-Edge lab: the time ratio should stay under 1.5x and
the CPU-per-request ratio near 1x. It also prints the share of the machine's time the hypervisor
took for other guests during the run (/proc/stat's steal): a reason for a slow run it can name.
On a 2-core machine the wall time cannot fall below (daemon CPU + client CPU) / 2.

The daemon's CPU also pays for the SMTP and LDAPS probes (two per Edge: a TLS handshake each),
and a 20-Edge inspect has nearly twice as many probes per WSMan request as a 1-Edge one. The
probes are therefore also run alone afterwards, the daemon's CPU per probe measured, and the CPU
per WSMan request printed a second time with the probes' share taken out.

    .venv/bin/python benchmarks/lab_scaling.py [--edges 20] [--latency-ms 100] [--repeat 7]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from edgebook.config import load_inventory
from edgebook.lab import control
from edgebook.lab.org.scenarios import load_scenario
from edgebook.lab.org.store import LabStore
from edgebook.phases.inspect import inspect
from edgebook.probes import ProbeTarget, probe_many

BASE = "healthy"


def scenario_with_edges(count: int) -> dict[str, Any]:
    """The base scenario with its first Edge repeated count times (EDGE01..EDGEnn)."""
    source = Path(load_scenario(BASE).source)
    data = yaml.safe_load(source.read_text())
    template = next(s for s in data["servers"] if s["role"] == "Edge")
    names = [f"EDGE{i:02d}" for i in range(1, count + 1)]
    data["servers"] = [s for s in data["servers"] if s["role"] != "Edge"]
    data["servers"] += [{**copy.deepcopy(template), "name": name} for name in names]
    for certificate in data["certificates"]:
        installs = certificate["install"]
        edge_install = next((i for i in installs if i["server"] == template["name"]), None)
        if edge_install is None:
            continue
        others = [i for i in installs if not i["server"].upper().startswith("EDGE")]
        certificate["install"] = [{**edge_install, "server": n} for n in names] + others
        certificate["domains"] = certificate["domains"][:1] + [
            f"{n.lower()}.contoso.com" for n in names
        ]
    for connector in data["send_connectors"]:
        connector["source_transport_servers"] = names
    data["subscriptions"] = [{"edge": n, "created_days": -400} for n in names]
    data["description"] = f"{BASE} with {count} Edges"
    return data


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_times() -> tuple[int, int]:
    """(all CPU time, time stolen by the hypervisor) of the machine so far, in clock ticks
    (/proc/stat); (0, 0) where there is none."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0, 0
    ticks = [int(field) for field in fields[:8]]  # user .. steal (guest time is within user)
    return sum(ticks), ticks[7] if len(ticks) == 8 else 0


def requests(directory: Path) -> int:
    """WSMan requests the lab has answered."""
    return sum(c.get("requests", 0) for c in LabStore(directory).counters().values())


class Lab:
    """A running lab of count Edges and the figures of the inspects measured against it."""

    def __init__(self, count: int, latency_ms: int, workdir: Path) -> None:
        scenario = workdir / f"edges-{count}.yaml"
        scenario.write_text(yaml.safe_dump(scenario_with_edges(count), sort_keys=False))
        self.count = count
        self.directory = workdir / f"lab-{count}"
        self.pid = control.start(self.directory, scenario, latency_ms=latency_ms)["pid"]
        self.inventory = load_inventory(self.directory / "inventory.yaml")
        self.times: list[float] = []
        self.cpu = self.client = self.probe_cpu = 0.0
        self.answered = self.failed = self.probed = 0

    def inspect(self) -> None:
        """One inspect, its time and CPU added to the figures."""
        # the daemon answers the counters over its control channel: asked outside the CPU taken
        requests_before = requests(self.directory)
        cpu_before = cpu_seconds(self.pid)
        client_before, start = time.process_time(), time.perf_counter()
        result = inspect(self.inventory)
        self.times.append(time.perf_counter() - start)
        self.client += time.process_time() - client_before
        self.cpu += cpu_seconds(self.pid) - cpu_before
        self.answered += requests(self.directory) - requests_before
        self.failed += sum(1 for f in result.findings if f.slug == "probe-failed")

    def probe(self) -> None:
        """The SMTP and LDAPS probes of every Edge alone (as inspect runs them), their daemon
        CPU added to the figures."""
        targets = [
            target
            for edge in self.inventory.edges
            for target in (
                ProbeTarget("smtp", edge.smtp.host, edge.smtp.port, server_name=edge.fqdn),
                ProbeTarget("ldaps", edge.ldaps.host, edge.ldaps.port, server_name=edge.fqdn),
            )
        ]
        before = cpu_seconds(self.pid)
        probes = probe_many(targets)
        self.probe_cpu += cpu_seconds(self.pid) - before
        self.probed += len(probes)

    def figures(self) -> dict[str, float]:
        """Median inspect time, CPU per request (with and without the probes' share), client
        CPU per inspect, failed probes."""
        inspects = max(len(self.times), 1)
        per_probe = self.probe_cpu / max(self.probed, 1)
        probes_per_inspect = 2 * len(self.inventory.edges)
        wsman_cpu = self.cpu - per_probe * probes_per_inspect * inspects
        return {
            "seconds": statistics.median(self.times),
            "cpu_ms_per_request": 1000 * self.cpu / max(self.answered, 1),
            "wsman_cpu_ms_per_request": 1000 * wsman_cpu / max(self.answered, 1),
            "cpu_ms_per_probe": 1000 * per_probe,
            "client_cpu_s": self.client / inspects,
            "requests": self.answered / inspects,
            "probe_failed": self.failed,
        }


def measure(
    edges: int, latency_ms: int, repeat: int, workdir: Path
) -> tuple[Lab, Lab, list[float]]:
    """Both labs run side by side and are inspected in turn (the order alternating), so a
    change in the machine's speed during the run weighs on both alike; the paired time ratios
    (large / small) are returned with the labs."""
    started: list[Lab] = []
    try:
        small = Lab(1, latency_ms, workdir)
        started.append(small)
        large = Lab(edges, latency_ms, workdir)
        started.append(large)
        inspect(small.inventory)  # warm-up: TLS contexts, first catch-up
        inspect(large.inventory)
        for turn in range(repeat):
            for lab in (small, large) if turn % 2 == 0 else (large, small):
                lab.inspect()
        for _ in range(repeat):
            for lab in (small, large):
                lab.probe()
        ratios = [b / a for a, b in zip(small.times, large.times, strict=True)]
        return small, large, ratios
    finally:
        for lab in started:
            control.stop(lab.directory)


def main() -> None:
    """Measure a one-Edge lab and an N-Edge lab and print the figures and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=20, help="Edges of the large lab")
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=100,
        help="round trip per WSMan request and HTTPS handshake, per SMTP/LDAPS turn",
    )
    parser.add_argument("--repeat", type=int, default=7, help="inspects per lab (median)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="edgebook-scaling-"))
    total_before, stolen_before = machine_times()
    small_lab, large_lab, ratios = measure(args.edges, args.latency_ms, args.repeat, workdir)
    total_after, stolen_after = machine_times()
    total, stolen = total_after - total_before, stolen_after - stolen_before
    paired = statistics.median(ratios)
    small, large = small_lab.figures(), large_lab.figures()
    print(f"inspect of the whole lab, {args.latency_ms} ms per round trip")
    print(
        f"{'Edges':>6}{'seconds':>10}{'requests':>10}{'CPU ms/request':>16}"
        f"{'without probes':>16}{'CPU ms/probe':>14}{'client CPU s':>14}{'probe-failed':>14}"
    )
    for count, figures in ((1, small), (args.edges, large)):
        print(
            f"{count:>6}{figures['seconds']:>10.2f}{figures['requests']:>10.0f}"
            f"{figures['cpu_ms_per_request']:>16.2f}{figures['wsman_cpu_ms_per_request']:>16.2f}"
            f"{figures['cpu_ms_per_probe']:>14.2f}{figures['client_cpu_s']:>14.2f}"
            f"{figures['probe_failed']:>14.0f}"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", end="")
    # a virtual machine whose host is busy runs slower: its ratios are higher
    print(f"; {stolen / total:.1%} of the time stolen by the hypervisor" if total else "")
    time_ratio = large["seconds"] / small["seconds"]
    cpu_ratio = large["cpu_ms_per_request"] / small["cpu_ms_per_request"]
    print(
        f"time ratio {args.edges}:1 = {time_ratio:.2f}x of the medians, {paired:.2f}x the median "
        "of the paired runs (target <= 1.5x)"
    )
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"paired ratios: lowest {min(ratios):.2f}x, quartiles {quartiles[0]:.2f}x / "
        f"{quartiles[2]:.2f}x, highest {max(ratios):.2f}x (the machine's noise)"
    )
    wsman_ratio = large["wsman_cpu_ms_per_request"] / small["wsman_cpu_ms_per_request"]
    print(
        f"CPU per request ratio {args.edges}:1 = {cpu_ratio:.2f}x (target ~1x: flat); "
        f"{wsman_ratio:.2f}x with the probes' share taken out"
    )


if __name__ == "__main__":
    main()
