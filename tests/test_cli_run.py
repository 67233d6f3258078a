"""`edgebook run`, `edgebook report` and `edgebook evidence verify` against the lab, and the
contract between the runner and each shipped phase notebook."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from edgebook.cli import main
from edgebook.evidence.layout import PHASES
from edgebook.evidence.manifest import read_manifest
from edgebook.evidence.rollout import RUNNER_PARAMETERS, schedule
from edgebook.evidence.runner import NOTEBOOKS

SHIPPED = [phase for phase in PHASES if (NOTEBOOKS / f"{PHASES[phase]}.ipynb").is_file()]
TYPES = {
    "inventory": "str",
    "edge": "str",
    "change": "str",
    "apply": "bool",
    "approved_plan_sha256": "str",
}


@pytest.mark.parametrize("phase", SHIPPED)
def test_each_notebook_declares_what_the_runner_passes(phase):
    notebook = NOTEBOOKS / f"{PHASES[phase]}.ipynb"
    declared = papermill.inspect_notebook(str(notebook))
    changing = "apply" in declared
    approvals = [f"EDGE01:{phase}={'a' * 64}"] if changing else []
    for apply in (False, True) if changing else (False,):
        (scheduled,) = schedule(
            "inventory.yaml",
            ["EDGE01"],
            change="CHG-1",
            phases=[phase],
            apply=apply,
            approvals=approvals if apply else [],
        )
        passed = scheduled.parameters
        assert set(passed) <= set(declared)
        assert {"inventory", "edge"} <= set(passed)
        for name in passed:
            assert declared[name]["inferred_type_name"] == TYPES[name], name
    # whatever the runner could pass and the notebook takes, it takes with the runner's type
    for name in set(RUNNER_PARAMETERS) & set(declared):
        assert declared[name]["inferred_type_name"] == TYPES[name], name


@pytest.fixture(scope="module")
def lab(start_module_lab) -> Path:
    return start_module_lab("seed-incident")


@pytest.fixture(scope="module")
def inspected(lab, tmp_path_factory) -> dict:
    outputs = tmp_path_factory.mktemp("outputs")
    argv = ["run", str(lab / "inventory.yaml"), "--change", "CHG-LAB-1", "--phase", "inspect"]
    argv += ["--workers", "2", "--outputs", str(outputs)]
    out = io.StringIO()  # capsys is per test; this runs once for the module
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return {"code": code, "stdout": out.getvalue(), "folder": outputs / "CHG-LAB-1"}


def test_run_inspects_both_edges_with_manifests_and_a_report(inspected):
    assert inspected["code"] == 0, inspected["stdout"]
    folder = inspected["folder"]
    manifests = sorted(folder.glob("*/01-inspect/*.manifest.json"))
    assert [m.parent.parent.name for m in manifests] == ["EDGE01", "EDGE02"]
    for path in manifests:
        manifest = read_manifest(path)
        assert manifest["verdict"] == "ok"
        assert manifest["parameters"]["edge"] == path.parent.parent.name
        slugs = {f["slug"] for f in manifest["records"]["findings"]}
        assert "cert-expiring" in slugs
    lines = inspected["stdout"].splitlines()
    assert any(line.startswith("EDGE01") and " ok " in line for line in lines)
    assert any(line.startswith("EDGE02") and " ok " in line for line in lines)
    assert any("warning" in line for line in lines if line.startswith("EDGE0"))
    report = (folder / "report.html").read_text()
    assert "EDGE01" in report and "cert-expiring" in report and "<svg" in report
    assert f"report: {folder / 'report.html'}" in lines


def test_evidence_verify_and_the_secret_scan_pass_on_real_evidence(
    inspected, lab, monkeypatch, capsys
):
    monkeypatch.setenv("EDGEBOOK_TEST_LAB_PASSWORD", (lab / ".password").read_text().strip())
    code = main(
        [
            "evidence",
            "verify",
            str(inspected["folder"]),
            "--secret-env",
            "EDGEBOOK_TEST_LAB_PASSWORD",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    # per Edge a notebook, its HTML and its manifest; report.html and report.json
    assert out.startswith("OK: 2 runs, 8 files checked, no trace of EDGEBOOK_TEST_LAB_PASSWORD")
    code = main(["evidence", "verify", str(inspected["folder"]), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["ok"] and set(document["heads"]) == {"EDGE01", "EDGE02"}


def test_evidence_verify_fails_on_a_changed_file(inspected, tmp_path, capsys):
    copy = Path(shutil.copytree(inspected["folder"], tmp_path / "copy"))
    notebook = next(copy.glob("EDGE02/01-inspect/*.ipynb"))
    notebook.write_text(notebook.read_text().replace("cert-expiring", "cert-fine"))
    assert main(["evidence", "verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {notebook.relative_to(copy).as_posix()}: changed since" in out
    assert "FAILED (1 problems)" in out


def test_report_command_rewrites_the_report(inspected, capsys):
    assert main(["report", str(inspected["folder"])]) == 0
    assert capsys.readouterr().out.strip() == str(inspected["folder"] / "report.html")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--phase", "inspect", "--apply"], "change nothing"),
        (["--phase", "inspect", "--param", "warning_days=5", "--param", "nope=1"], "'nope'"),
        (["--phase", "inspect", "--edge", "EDGE9"], "no Edge named 'EDGE9'"),
        (["--phase", "inspect", "--cell-timeout", "0"], "--cell-timeout must be above 0"),
    ],
)
def test_bad_run_requests_are_one_line_errors(lab, tmp_path, capsys, argv, message):
    code = main(
        ["run", str(lab / "inventory.yaml"), "--change", "CHG-X", *argv, "--outputs", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "CHG-X").exists()


def test_an_outputs_folder_that_is_a_file_is_a_clear_error(lab, tmp_path, capsys):
    (tmp_path / "outputs").write_text("not a folder")
    argv = ["run", str(lab / "inventory.yaml"), "--change", "CHG-X", "--phase", "inspect"]
    code = main([*argv, "--outputs", str(tmp_path / "outputs")])
    assert code == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_verify_of_a_folder_without_manifests_is_a_clear_error(tmp_path, capsys):
    assert main(["evidence", "verify", str(tmp_path)]) == 2
    assert "no run manifests" in capsys.readouterr().err


@pytest.mark.parametrize("closed", ["closed", "broken pipe"])
def test_a_closed_stdout_gives_no_traceback(inspected, closed):
    command = [sys.executable, "-m", "edgebook.cli", "evidence", "verify", str(inspected["folder"])]
    if closed == "closed":
        done = subprocess.run(
            command, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1), check=False
        )
        code, err = done.returncode, done.stderr
    else:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        process.stdout.close()  # like `| head -0`
        code, err = process.wait(timeout=60), process.stderr.read()
        process.stderr.close()
    assert code == 0
    assert "Traceback" not in err and "Exception ignored" not in err
