"""The runner: verdicts papermill misses, records read back, evidence never overwritten."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
import pytest

from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence.records import MIMETYPE, read_records
from edgebook.evidence.runner import BANNER_TAG, execute_phase, new_run_id, reserve


def _notebook(path: Path, *bodies: str, parameters: str = "value = 1") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})
    nb.cells = [params, *(nbformat.v4.new_code_cell(body) for body in bodies)]
    nbformat.write(nb, str(path))
    return path


def _banners(path: Path) -> list[str]:
    nb = nbformat.read(str(path), as_version=4)
    return [c.source for c in nb.cells if BANNER_TAG in c.get("metadata", {}).get("tags", [])]


def test_ok_run_keeps_records_and_renders_offline_html(tmp_path):
    nb = _notebook(
        tmp_path / "ok.ipynb",
        "from edgebook.evidence.records import record\nrecord('doubled', value * 2)",
    )
    run = execute_phase(nb, tmp_path / "out", {"value": 21}, run_id="r1")
    assert run.verdict == "ok" and run.ok and run.error is None
    assert run.records == {"doubled": 42}
    assert run.notebook.name.endswith("_r1.ipynb")
    html = run.html.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "cdnjs" not in html and "<script src=" not in html  # viewable offline
    assert read_records(run.notebook) == {"doubled": 42}
    assert _banners(run.notebook) == []
    saved = nbformat.read(str(run.notebook), as_version=4)
    assert saved.metadata.edgebook == {
        "verdict": "ok",
        "error": None,
        "run_id": "r1",
        "kernel": {"started_ahead": False},
    }
    assert run.duration_s > 0 and run.parameters == {"value": 21}


def test_failing_cell_is_a_failed_verdict_with_papermills_banner(tmp_path):
    nb = _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom')")
    run = execute_phase(nb, tmp_path / "out", {}, run_id="r2")
    assert run.verdict == "failed"
    assert "RuntimeError: boom" in run.error
    saved = nbformat.read(str(run.notebook), as_version=4)
    assert "An Exception was encountered" in saved.cells[0].source  # papermill marked it
    assert _banners(run.notebook) == []  # so no second banner
    assert saved.metadata.edgebook["verdict"] == "failed"


def test_cell_timeout_is_a_timeout_verdict_with_a_red_banner(tmp_path):
    nb = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(30)", "after = 1")
    run = execute_phase(nb, tmp_path / "out", {}, run_id="r3", timeout_s=1)
    assert run.verdict == "timeout"
    assert "longer than 1 s" in run.error
    (banner,) = _banners(run.notebook)
    assert "did not finish: timeout at cell 1" in banner and "#c00" in banner
    saved = nbformat.read(str(run.notebook), as_version=4)
    states = [c.metadata.papermill["status"] for c in saved.cells[1:]]
    assert states == ["completed", "failed", "pending"]  # papermill said completed for all
    assert saved.metadata.papermill["exception"] is True
    assert "did not finish" in run.html.read_text()


def test_dead_kernel_is_a_dead_kernel_verdict_with_a_red_banner(tmp_path):
    nb = _notebook(tmp_path / "dead.ipynb", "import os\nos._exit(1)", "after = 1")
    run = execute_phase(nb, tmp_path / "out", {}, run_id="r4")
    assert run.verdict == "dead-kernel"
    assert "kernel died" in run.error
    (banner,) = _banners(run.notebook)
    assert "did not finish: dead-kernel" in banner
    saved = nbformat.read(str(run.notebook), as_version=4)
    assert saved.metadata.edgebook["verdict"] == "dead-kernel"
    assert saved.cells[-1].metadata.papermill["status"] == "pending"


def test_evidence_is_never_overwritten(tmp_path):
    target = reserve(tmp_path / "a" / "x.ipynb")
    target.write_text("evidence")
    with pytest.raises(EdgebookError, match="never overwritten"):
        reserve(target)
    assert target.read_text() == "evidence"


def test_a_file_in_the_way_of_the_evidence_folder_is_a_clear_error(tmp_path):
    (tmp_path / "outputs").write_text("not a folder")
    with pytest.raises(EdgebookError, match="a file is in the way"):
        reserve(tmp_path / "outputs" / "CHG" / "x.ipynb")


def test_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(EdgebookError, match="not found"):
        execute_phase(tmp_path / "nope.ipynb", tmp_path, {}, run_id="r5")


def test_an_undeclared_parameter_is_refused_before_anything_is_written(tmp_path):
    nb = _notebook(tmp_path / "ok.ipynb", "pass")
    with pytest.raises(ConfigError, match=r"no parameter 'valeu' \(it declares: value\)"):
        execute_phase(nb, tmp_path / "out", {"valeu": 2}, run_id="r6")
    assert not (tmp_path / "out").exists()


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
        execute_phase(nb, tmp_path / "out", parameters, run_id="r7")
    assert "Sup3r-S3cret!" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_secret_references_are_fine_as_parameters(tmp_path):
    nb = _notebook(
        tmp_path / "ok.ipynb",
        "from edgebook.evidence.records import record\nrecord('v', value)",
        parameters='value = 1\npassword = ""',
    )
    run = execute_phase(nb, tmp_path / "out", {"value": 1, "password": "env:PW"}, run_id="r8")
    assert run.verdict == "ok"
    assert "env:PW" in run.notebook.read_text()
