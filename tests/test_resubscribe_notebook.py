"""Notebooks 02 and 03 executed by papermill against a running lab (real pypsrp, real TLS
probes): both Edges of seed-incident, one after the other, end where inspect reports no error
or warning."""

from __future__ import annotations

import re

import pytest

from edgebook.config import load_inventory
from edgebook.evidence import layout
from edgebook.evidence.runner import NOTEBOOKS, execute_phase
from edgebook.lab import control
from edgebook.phases import inspect as inspect_phase

PREPARE = NOTEBOOKS / "02-prepare-certificate.ipynb"
RESUBSCRIBE = NOTEBOOKS / "03-resubscribe.ipynb"
CHANGE = "CHG-NB03"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    directory = tmp_path / "lab"
    control.start(directory, "seed-incident")
    yield directory
    control.stop(directory)


def run(notebook, phase: str, edge: str, params: dict, run_id: str):
    out = layout.phase_dir(CHANGE, edge, phase)
    result = execute_phase(notebook, out, {**params, "edge": edge, "change": CHANGE}, run_id=run_id)
    assert result.ok, result.error
    return result


@pytest.mark.timeout(900)
def test_notebooks_02_and_03_take_both_edges_to_a_clean_inspect(lab):
    inventory = str(lab / "inventory.yaml")
    base = {"inventory": inventory}
    for edge in ("EDGE01", "EDGE02"):
        planned = run(PREPARE, "prepare", edge, base, "plan")
        sha = planned.records["plan_sha256"]
        run(PREPARE, "prepare", edge, {**base, "apply": True, "approved_plan_sha256": sha}, "apply")
        params = {**base, "drain_timeout": 60.0, "sync_timeout": 60.0}
        planned = run(RESUBSCRIBE, "resubscribe", edge, params, "plan")
        sha = planned.records["plan_sha256"]
        assert re.search(rf"plan sha256: {sha}", planned.notebook.read_text())
        assert planned.records["route"] == "certificate-only"
        applied = run(
            RESUBSCRIBE,
            "resubscribe",
            edge,
            {**params, "apply": True, "approved_plan_sha256": sha},
            "apply",
        )
        assert applied.records["outcome"]["completed"]
    result = inspect_phase.inspect(load_inventory(lab / "inventory.yaml"))
    bad = [f for f in result.findings if f.severity.name in ("ERROR", "WARNING")]
    assert bad == [], [f.message for f in bad]
