"""Notebook 02 executed by papermill against the lab: the plan run prints and records its hash;
the apply run with that hash stages the renewal and leaves plan, answers and journal."""

from __future__ import annotations

import re

import pytest

from edgebook.evidence import layout
from edgebook.evidence.runner import NOTEBOOKS, execute_phase
from edgebook.lab.org.store import LabStore

NOTEBOOK = NOTEBOOKS / "02-prepare-certificate.ipynb"


@pytest.fixture
def lab(tmp_path, monkeypatch, start_lab):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    return start_lab("seed-incident")


def test_plan_run_then_apply_run_stage_the_renewal(lab, tmp_path):
    inventory = str(lab / "inventory.yaml")
    out = layout.phase_dir("CHG-NB", "EDGE01", "prepare")
    params = {"inventory": inventory, "edge": "EDGE01", "change": "CHG-NB"}
    planned = execute_phase(NOTEBOOK, out, params, run_id="plan")
    assert planned.ok, planned.error
    sha = planned.records["plan_sha256"]
    text = planned.notebook.read_text()
    assert re.search(rf"plan sha256: {sha}", text)
    assert planned.records["phase03_route"]["route"] == "certificate-only"
    prepared = planned.records["prepared_certificate"]
    assert prepared["file"].endswith("renewal/EDGE01.pfx")
    assert prepared["tls_certificate_name"].startswith("<I>CN=DigiCert Global G2 TLS RSA")
    before = {c.thumbprint for c in LabStore(lab).read().server("EX01").certificates}
    assert prepared["thumbprint"] not in before
    refused = execute_phase(NOTEBOOK, out, {**params, "apply": True}, run_id="nohash")
    assert refused.verdict == "failed" and "approved_plan_sha256" in refused.error
    applied = execute_phase(
        NOTEBOOK, out, {**params, "apply": True, "approved_plan_sha256": sha}, run_id="apply"
    )
    assert applied.ok, applied.error
    assert applied.records["outcome"]["completed"]
    staged = LabStore(lab).read().server("EX01").certificate(prepared["thumbprint"])
    assert staged is not None and staged.services == 0
    edge_dir = layout.edge_dir("CHG-NB", "EDGE01")
    assert (edge_dir / "plans" / f"{sha}.json").is_file()
    assert (edge_dir / "journal.jsonl").is_file()
    assert list(out.glob("answers-*.json"))
    password = (lab / ".password").read_text().strip()
    for path in [*out.iterdir(), edge_dir / "journal.jsonl", *(edge_dir / "plans").iterdir()]:
        assert password not in path.read_text(errors="replace")
