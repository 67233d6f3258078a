"""The main job against the lab: a whole certificate change, end to end, with its evidence.

A fresh lab (two Edges) starts; inspect runs on both Edges; then one Edge after the other, each
changing phase (prepare, resubscribe, verify) runs twice through the runner: plan only, then
applied with that plan's hash; while one notebook runs, the next ones' kernels start and the
finished ones' HTML and manifests are written. The demo approves its own plans, which real use
never does: there a person reads each plan before passing its hash. The evidence is verified,
the report written, and the lab stopped.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgebook.errors import EdgebookError
from edgebook.evidence.report import write_report
from edgebook.evidence.rollout import (
    Rollout,
    Step,
    kernel_pool,
    outputs_env,
    phase_notebook,
    run_change,
)
from edgebook.evidence.runner import PhaseRun, new_run_id
from edgebook.evidence.verify import Verification, verify_change
from edgebook.evidence.writer import EvidenceWriter
from edgebook.lab import control
from edgebook.lab.org.scenarios import load_scenario

DEMO_SCENARIO = "seed-incident"
CHANGE_PHASES = ("prepare", "resubscribe", "verify")
INSPECT_WORKERS = 4  # inspect changes nothing: the Edges are read side by side
SELF_APPROVAL = (
    "the demo approves its own plans to run unattended; in real use a person reviews each plan "
    "(its notebook or the report) and passes its hash with --approved-plan"
)

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo ran, where the evidence is, how long it took."""

    change: str
    folder: Path
    runs: list[tuple[Step, bool, PhaseRun]] = field(default_factory=list)  # (step, applied, run)
    report: Path | None = None
    verification: Verification | None = None
    changed: bool = False  # every Edge went through every changing phase
    lab_start_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every run ended ok, every Edge was changed and the evidence verifies."""
        return (
            self.changed
            and all(run.ok for _, _, run in self.runs)
            and self.verification is not None
            and self.verification.ok
        )


def run_demo(
    outputs: Path,
    scenario: str = DEMO_SCENARIO,
    *,
    lab_dir: Path | None = None,
    say: Say | None = None,
) -> DemoResult:
    """Start a lab in lab_dir (default: a fresh temporary folder, removed afterwards), change
    every Edge through the runner into outputs/<change>/, verify, report, stop the lab."""
    started = time.monotonic()
    keep = lab_dir is not None
    lab_dir = lab_dir or Path(tempfile.mkdtemp(prefix="edgebook-lab-"))
    change = f"DEMO-{new_run_id()}"
    result = DemoResult(change, outputs.resolve() / change)
    edges = _edge_count(scenario)
    inspects = [phase_notebook("inspect")] * edges  # side by side, then each Edge in turn:
    changes = [phase_notebook(phase) for phase in CHANGE_PHASES for _ in ("plan", "apply")]
    kernels = kernel_pool(inspects + changes * edges)
    evidence = EvidenceWriter()  # each run's HTML and manifest, while the next one runs
    try:
        with outputs_env(outputs.resolve()):  # as run_change sets it: the kernels fit its runs
            kernels.prestart()  # they start while the lab does
            control.start(lab_dir, scenario)
            result.lab_start_s = time.monotonic() - started
            inventory = lab_dir / "inventory.yaml"

            def run(phase: str, edges: list[str], approvals: list[str] | None = None) -> Rollout:
                applying = approvals is not None
                what = "apply" if applying else "plan" if phase != "inspect" else "read"

                def progress(event: str, step: Step, done: PhaseRun | None) -> None:
                    if say is not None and done is not None:
                        mark = "✓" if done.ok else "✗"
                        took = done.duration_s or 0
                        say(f"  {mark} {step} ({what}): {done.verdict}, {took:.1f} s")

                rollout = run_change(
                    inventory,
                    change=change,
                    phases=[phase],
                    edges=edges,
                    apply=applying,
                    approvals=approvals or [],
                    workers=INSPECT_WORKERS,
                    root=outputs,
                    progress=progress,
                    kernels=kernels,
                    evidence=evidence,
                )
                result.runs += [(step, applying, r) for step, r in rollout.runs.items()]
                return rollout

            inspected = run("inspect", [])
            if inspected.ok:
                result.changed = _change_edges(run, [step.edge for step in inspected.steps])
            evidence.drain()
            result.report = write_report(result.folder)
            result.verification = verify_change(result.folder)
    finally:
        with contextlib.suppress(EdgebookError):  # drained above unless a run raised
            evidence.close()
        kernels.close()  # before the lab stops: a kernel may still close its sessions to it
        control.stop(lab_dir)
        if not keep:
            shutil.rmtree(lab_dir, ignore_errors=True)
        result.elapsed_s = time.monotonic() - started
    return result


def _edge_count(scenario: str) -> int:
    """How many Edges the scenario's lab has."""
    return sum(1 for server in load_scenario(scenario).servers if server.role == "Edge")


def _change_edges(run: Callable[..., Rollout], edges: list[str]) -> bool:
    """Each Edge in turn: every changing phase planned, then applied with the plan's hash;
    False at the first run that is not ok."""
    for edge in edges:
        for phase in CHANGE_PHASES:
            planned = run(phase, [edge])
            plan = planned.runs.get(Step(edge, phase))
            if not planned.ok or plan is None or not plan.records.get("plan_sha256"):
                return False
            applied = run(phase, [edge], [f"{edge}:{phase}={plan.records['plan_sha256']}"])
            if not applied.ok:
                return False
    return True
