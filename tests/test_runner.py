"""The runner: verdicts papermill misses, records read back, evidence never overwritten."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
import pytest

from edgebook.errors import EdgebookError
from edgebook.evidence.records import MIMETYPE, read_records
from edgebook.evidence.runner import execute_phase, new_run_id, reserve


def _notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("value = 1", metadata={"tags": ["parameters"]})
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path))
    return path


def test_completed_run_keeps_records_and_renders_html(tmp_path):
    nb = _notebook(
        tmp_path / "ok.ipynb",
        "from edgebook.evidence.records import record\nrecord('doubled', value * 2)",
    )
    run = execute_phase(nb, tmp_path / "out", {"value": 21}, run_id="r1")
    assert run.verdict == "completed"
    assert run.records == {"doubled": 42}
    assert run.notebook.name.endswith("_r1.ipynb")
    assert run.html.read_text().startswith("<!DOCTYPE html>")
    assert read_records(run.notebook) == {"doubled": 42}


def test_failing_cell_is_a_failed_verdict(tmp_path):
    nb = _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom')")
    run = execute_phase(nb, tmp_path / "out", {}, run_id="r2")
    assert run.verdict == "failed"
    assert "RuntimeError: boom" in run.error


def test_cell_timeout_is_a_timeout_verdict_not_success(tmp_path):
    nb = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(30)")
    run = execute_phase(nb, tmp_path / "out", {}, run_id="r3", timeout_s=1)
    assert run.verdict == "timeout"


def test_evidence_is_never_overwritten(tmp_path):
    target = reserve(tmp_path / "a" / "x.ipynb")
    target.write_text("evidence")
    with pytest.raises(EdgebookError, match="never overwritten"):
        reserve(target)
    assert target.read_text() == "evidence"


def test_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(EdgebookError, match="not found"):
        execute_phase(tmp_path / "nope.ipynb", tmp_path, {}, run_id="r4")


def test_run_ids_sort_by_time_and_differ():
    early = dt.datetime(2026, 11, 29, 5, 0, tzinfo=dt.UTC)
    late = early + dt.timedelta(seconds=1)
    first, second, third = new_run_id(early), new_run_id(early), new_run_id(late)
    assert first != second
    assert first.startswith("20261129T050000Z-")
    assert sorted([third, first]) == [first, third]


def test_read_records_ignores_other_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/plain": "hello"}),
        nbformat.v4.new_output("display_data", data={MIMETYPE: {"name": "a", "value": 1}}),
        nbformat.v4.new_output("display_data", data={MIMETYPE: {"name": "a", "value": 2}}),
    ]
    nb.cells = [cell]
    assert read_records(nb) == {"a": 2}


@pytest.mark.parametrize(
    "parameters",
    [
        {"password": "Sup3r-S3cret!"},
        {"servers": [{"name": "EDGE01", "edge_password": "Sup3r-S3cret!"}]},
        {"settings": {"PfxPassphrase": "Sup3r-S3cret!"}},
    ],
)
def test_a_literal_secret_parameter_is_refused_before_anything_is_written(tmp_path, parameters):
    nb = _notebook(tmp_path / "ok.ipynb", "pass")
    with pytest.raises(EdgebookError, match="cannot be a notebook parameter") as info:
        execute_phase(nb, tmp_path / "out", parameters, run_id="r5")
    assert "Sup3r-S3cret!" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_secret_references_are_fine_as_parameters(tmp_path):
    nb = _notebook(
        tmp_path / "ok.ipynb", "from edgebook.evidence.records import record\nrecord('v', value)"
    )
    run = execute_phase(nb, tmp_path / "out", {"value": 1, "password": "env:PW"}, run_id="r6")
    assert run.verdict == "completed"
    assert "env:PW" in run.notebook.read_text()
