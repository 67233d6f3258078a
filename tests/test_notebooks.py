"""Notebook contracts (committed clean, documented parameters) and a papermill smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest

from edgebook.evidence.runner import NOTEBOOKS, execute_phase
from edgebook.phases.inspect import judge_saved

ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
PARAMETERS = {
    "01-inspect.ipynb": {
        "inventory": "str",
        "edge": "str",
        "warning_days": "int",
        "event_days": "int",
        "timeout": "float",
    },
    "02-prepare-certificate.ipynb": {
        "inventory": "str",
        "edge": "str",
        "change": "str",
        "route": "str",
        "pfx": "str",
        "pfx_password": "str",
        "chain": "str",
        "certificate": "str",
        "mailbox": "str",
        "apply": "bool",
        "approved_plan_sha256": "str",
        "rollback": "bool",
        "take_over_lock": "str",
    },
    "03-resubscribe.ipynb": {
        "inventory": "str",
        "edge": "str",
        "change": "str",
        "apply": "bool",
        "approved_plan_sha256": "str",
        "replace_default_certificate": "bool",
        "remove_subscription_first": "bool",
        "drain_timeout": "float",
        "sync_timeout": "float",
        "stop_with_queued": "bool",
        "test_message_to": "str",
        "rollback": "bool",
        "take_over_lock": "str",
    },
    "04-verify-hybrid.ipynb": {
        "inventory": "str",
        "edge": "str",
        "change": "str",
        "certificate_thumbprint": "str",
        "mailbox": "str",
        "test_messages": "bool",
        "watch_timeout": "float",
        "apply": "bool",
        "approved_plan_sha256": "str",
        "rollback": "bool",
        "take_over_lock": "str",
    },
}


def test_every_phase_notebook_is_known():
    assert [p.name for p in ALL] == sorted(PARAMETERS)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_markdown_first_then_documented_parameters(path):
    nb = nbformat.read(str(path), as_version=4)
    assert nb.cells[0].cell_type == "markdown"
    assert "parameters" in nb.cells[1].metadata.get("tags", [])
    found = papermill.inspect_notebook(str(path))
    types = {name: spec["inferred_type_name"] for name, spec in found.items()}
    assert types == PARAMETERS[path.name]
    assert all(spec["help"] for spec in found.values()), "every parameter needs a comment"


@pytest.fixture(scope="module")
def lab_inventory(start_module_lab) -> Path:
    return start_module_lab("seed-incident") / "inventory.yaml"


def test_inspect_notebook_runs_headless_and_records_its_findings(lab_inventory, tmp_path):
    run = execute_phase(
        NOTEBOOKS / "01-inspect.ipynb",
        tmp_path / "EDGE02",
        {"inventory": str(lab_inventory), "edge": "EDGE02"},
        run_id="smoke",
    )
    assert run.verdict == "ok", run.error
    assert run.records["edge"] == "EDGE02"
    slugs = {(f["server"], f["slug"]) for f in run.records["findings"]}
    assert ("EDGE02", "cert-expiring") in slugs
    assert not any(server == "EDGE01" for server, _ in slugs)  # the other Edge is not reported
    assert run.records["round_trips"]["EDGE02"]["pipelines"] == 1
    # the records suffice to judge the run again (read failures are not facts)
    again = judge_saved(run.records["facts"], run.records["edge"])
    reported = [f for f in run.records["findings"] if f["slug"] != "read-failed"]
    assert json.loads(json.dumps([f.to_dict() for f in again], default=str)) == reported
    nb = nbformat.read(str(run.notebook), as_version=4)
    text = nbformat.writes(nb)
    assert (lab_inventory.parent / ".password").read_text().strip() not in text
    assert run.html.stat().st_size > 10_000
