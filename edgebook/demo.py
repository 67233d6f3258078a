"""The main job against the lab: start a fresh lab, run the phases per Edge, keep the evidence."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from edgebook.evidence.rollout import run_change
from edgebook.evidence.runner import PhaseRun, new_run_id
from edgebook.lab import control

DEMO_SCENARIO = "seed-incident"


def run_demo(outputs: Path, scenario: str = DEMO_SCENARIO) -> dict[str, PhaseRun]:
    """Inspect every Edge of a fresh lab into outputs/<run>/<edge>/01-inspect/."""
    lab_dir = Path(tempfile.mkdtemp(prefix="edgebook-lab-"))
    try:
        control.start(lab_dir, scenario)
        rollout = run_change(
            lab_dir / "inventory.yaml", change=new_run_id(), phases=["inspect"], root=outputs
        )
        return {step.edge: run for step, run in rollout.runs.items()}
    finally:
        control.stop(lab_dir)
        shutil.rmtree(lab_dir, ignore_errors=True)
