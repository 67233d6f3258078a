"""Notebook 04 executed by papermill against the lab, after phases 02 and 03: the plan run prints
and records its hash and a verdict table; the apply run with that hash records the verdict,
every check ok or pending, and no secret of the lab in what it wrote."""

from __future__ import annotations

import re

import pytest

from edgebook.evidence import layout
from edgebook.evidence.runner import NOTEBOOKS, execute_phase
from edgebook.evidence.verify import scan_secrets
from edgebook.lab import control
from edgebook.lab.folder import lab_password
from tests.support.verify import phases_02_and_03

NOTEBOOK = NOTEBOOKS / "04-verify-hybrid.ipynb"
pytestmark = pytest.mark.timeout(600)  # two lab starts, phase 02, three notebook runs

CHANGE = "CHG-NB04"


def test_plan_run_then_apply_run_record_the_verdict(lab, tmp_path):
    thumbprint = phases_02_and_03(lab, CHANGE)
    control.start(lab)
    out = layout.phase_dir(CHANGE, "EDGE01", "verify")
    params = {"inventory": str(lab / "inventory.yaml"), "edge": "EDGE01", "change": CHANGE}
    planned = execute_phase(NOTEBOOK, out, {**params, "watch_timeout": 30.0}, run_id="plan")
    assert planned.ok, planned.error
    sha = planned.records["plan_sha256"]
    assert re.search(rf"plan sha256: {sha}", planned.notebook.read_text())
    assert planned.records["verified_certificate"] == thumbprint
    refused = execute_phase(NOTEBOOK, out, {**params, "apply": True}, run_id="nohash")
    assert refused.verdict == "failed" and "approved_plan_sha256" in refused.error
    applied = execute_phase(
        NOTEBOOK, out, {**params, "apply": True, "approved_plan_sha256": sha}, run_id="apply"
    )
    assert applied.ok, applied.error
    assert applied.records["outcome"]["completed"]
    verdict = applied.records["verdict"]
    assert {row["verdict"] for row in verdict} <= {"ok", "pending"}, verdict
    assert any(row["check"].startswith("test message") for row in verdict)
    password, _ = lab_password(lab)
    assert scan_secrets(layout.change_dir(CHANGE), {"lab password": password}) == []
