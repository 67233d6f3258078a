"""The main job against the lab: start a fresh lab, run the phases per Edge, keep the evidence."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from edgebook.evidence.runner import NOTEBOOKS, PhaseRun, execute_phase, new_run_id
from edgebook.lab import control

DEMO_SCENARIO = "seed-incident"


def run_demo(outputs: Path, scenario: str = DEMO_SCENARIO) -> dict[str, PhaseRun]:
    """Inspect every Edge of a fresh lab into outputs/<run>/<edge>/01-inspect/."""
    run_id = new_run_id()
    lab_dir = Path(tempfile.mkdtemp(prefix="edgebook-lab-"))
    try:
        description = control.start(lab_dir, scenario)
        inventory = lab_dir / "inventory.yaml"
        edges = [s["name"] for s in description["servers"] if s["role"] == "Edge"]
        runs = {}
        for edge in edges:
            runs[edge] = execute_phase(
                NOTEBOOKS / "01-inspect.ipynb",
                outputs / run_id / edge / "01-inspect",
                {"inventory": str(inventory), "edge": edge},
                run_id=run_id,
            )
        return runs
    finally:
        control.stop(lab_dir)
        shutil.rmtree(lab_dir, ignore_errors=True)
