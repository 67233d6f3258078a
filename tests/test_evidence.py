"""Manifests, rolling order, approvals, verification, the report and the secret scan, on fixture
phase notebooks (real papermill runs, no Exchange)."""

from __future__ import annotations

import hashlib
import json
import shutil
from html import escape
from pathlib import Path

import pytest

from edgebook.change.journal import Journal
from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence import rollout as rollout_module
from edgebook.evidence.layout import REPORT_HTML, REPORT_JSON
from edgebook.evidence.manifest import read_manifest, sha256_file
from edgebook.evidence.report import write_report
from edgebook.evidence.rollout import Step, run_change
from edgebook.evidence.verify import scan_secrets, verify_change
from tests.support.evidence import fixture_notebooks, inventory

CHANGE = "CHG-2026-0042"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    return fixture_notebooks(tmp_path_factory.mktemp("notebooks"))


@pytest.fixture(autouse=True)
def _fixture_notebooks(monkeypatch, notebooks):
    monkeypatch.setattr(rollout_module, "NOTEBOOKS", notebooks)


@pytest.fixture(scope="module")
def history(tmp_path_factory, notebooks) -> dict:
    """A change run the way the demo will: inspect, plan only, apply with each plan's hash."""
    base = tmp_path_factory.mktemp("history")
    params = inventory(base)
    root = base / "outputs"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollout_module, "NOTEBOOKS", notebooks)
        inspected = run_change(params, change=CHANGE, phases=["inspect"], root=root, workers=2)
        planned = run_change(params, change=CHANGE, phases=["prepare"], root=root)
        approvals = [
            f"{step.edge}:prepare={run.records['plan_sha256']}"
            for step, run in planned.runs.items()
        ]
        applied = run_change(
            params, change=CHANGE, phases=["prepare"], root=root, apply=True, approvals=approvals
        )
    return {
        "params": params,
        "root": root,
        "folder": root / CHANGE,
        "inspected": inspected,
        "planned": planned,
        "applied": applied,
    }


@pytest.fixture
def evidence(history, tmp_path) -> Path:
    """A copy of the change folder a test may damage."""
    return Path(shutil.copytree(history["folder"], tmp_path / CHANGE))


def test_manifest_fields_and_hashes(history, notebooks):
    run = history["inspected"].runs[Step("EDGE01", "inspect")]
    assert run.ok
    manifest = read_manifest(run.manifest)
    folder = history["folder"]
    assert manifest["change"] == CHANGE and manifest["edge"] == "EDGE01"
    assert manifest["phase"] == "inspect" and manifest["verdict"] == "ok"
    assert manifest["started"] < manifest["ended"] and manifest["duration_s"] > 0
    assert manifest["run_id"] == history["inspected"].run_id
    assert manifest["template"] == {
        "name": "01-inspect.ipynb",
        "sha256": _sha(notebooks / "01-inspect.ipynb"),
    }
    assert manifest["notebook"]["sha256"] == _sha(run.notebook)
    assert folder / manifest["notebook"]["path"] == run.notebook
    assert manifest["html"]["sha256"] == _sha(run.html)
    assert manifest["parameters"] == {
        "inventory": str(history["params"].resolve()),
        "edge": "EDGE01",
        "change": CHANGE,
    }
    assert "@" in manifest["operator"]
    assert manifest["edgebook"]["version"]
    assert manifest["versions"]["papermill"]
    assert manifest["records"]["findings"][0]["slug"] == "cert-expiring"
    # the kernel saw the same outputs root as the runner
    assert manifest["records"]["outputs_root"] == str(history["root"].resolve())
    assert manifest["previous"] is None and manifest["files"] == [] and manifest["journal"] is None
    assert run.notebook.parent == folder / "EDGE01" / "01-inspect"


def test_plan_files_and_the_journal_are_covered_by_the_run_that_wrote_them(history):
    planned = history["planned"].runs[Step("EDGE01", "prepare")]
    applied = history["applied"].runs[Step("EDGE01", "prepare")]
    first, second = read_manifest(planned.manifest), read_manifest(applied.manifest)
    sha = planned.records["plan_sha256"]
    assert [f["path"] for f in first["files"]] == [f"EDGE01/plans/{sha}.json"]
    assert second["files"] == []  # the identical plan was not written again
    assert applied.parameters["apply"] is True
    assert applied.parameters["approved_plan_sha256"] == sha
    assert planned.parameters["apply"] is False and "approved_plan_sha256" not in planned.parameters
    assert first["journal"]["path"] == "EDGE01/journal.jsonl"
    assert second["journal"]["bytes"] > first["journal"]["bytes"]  # grown between the runs
    # each run chains to the Edge's run before it
    assert second["previous"]["path"] == first["notebook"]["path"].replace(
        ".ipynb", ".manifest.json"
    )


def test_untouched_evidence_verifies(history):
    result = verify_change(history["folder"])
    assert result.ok, result.problems
    assert result.manifests == 6
    assert set(result.heads) == {"EDGE01", "EDGE02"}


def test_verify_catches_an_edited_file(evidence):
    html = next(evidence.glob("EDGE02/01-inspect/*.html"))
    html.write_text(html.read_text().replace("renew it", "all fine"))
    problems = [str(p) for p in verify_change(evidence).problems]
    assert problems == [
        f"{html.relative_to(evidence).as_posix()}: changed since "
        + problems[0].split("changed since ")[1]
    ]


def test_verify_catches_a_deleted_file(evidence):
    notebook = next(evidence.glob("EDGE01/02-prepare-certificate/*.ipynb"))
    notebook.unlink()
    problems = verify_change(evidence).problems
    assert [p.path for p in problems] == [notebook.relative_to(evidence).as_posix()]
    assert "missing" in problems[0].message


def test_verify_catches_an_added_file(evidence):
    (evidence / "EDGE01" / "01-inspect" / "notes.txt").write_text("added later")
    problems = verify_change(evidence).problems
    assert [(p.path, p.message) for p in problems] == [
        ("EDGE01/01-inspect/notes.txt", "not covered by any manifest (added?)")
    ]


def test_verify_catches_a_run_removed_from_the_middle(evidence):
    manifests = sorted(
        evidence.glob("EDGE01/02-prepare-certificate/*.manifest.json"),
        key=lambda p: read_manifest(p)["ended"],
    )
    first = manifests[0]
    for suffix in (".ipynb", ".html", ".manifest.json"):
        first.with_name(first.name.replace(".manifest.json", suffix)).unlink()
    messages = [str(p) for p in verify_change(evidence).problems]
    assert any("the run before it" in m and "is missing" in m for m in messages), messages


def test_a_grown_journal_is_accepted_an_edited_one_is_not(evidence):
    journal = evidence / "EDGE01" / "journal.jsonl"
    Journal(journal).append("step-done", step="Enable-ExchangeCertificate")
    assert verify_change(evidence).ok
    text = journal.read_text()
    journal.write_text(text.replace("Import-ExchangeCertificate", "Import-ExchangeCertificatX"))
    problems = verify_change(evidence).problems
    assert problems and {p.path for p in problems} == {"EDGE01/journal.jsonl"}
    assert "bytes changed" in problems[0].message
    journal.write_text(text[:10])
    assert "truncated" in verify_change(evidence).problems[0].message


def test_a_journal_line_cut_by_a_crash_may_be_dropped_by_the_engine(evidence, notebooks):
    journal = evidence / "EDGE02" / "journal.jsonl"
    with journal.open("a") as handle:
        handle.write('{"seq": 99, "event": "step-do')  # a crash mid-write
    run = run_change(
        inventory(evidence.parent),
        change=CHANGE,
        phases=["inspect"],
        edges=["EDGE02"],
        root=evidence.parent,
    ).runs[Step("EDGE02", "inspect")]
    recorded = read_manifest(run.manifest)["journal"]
    assert recorded["bytes"] == journal.read_bytes().rfind(b"\n") + 1  # whole lines only
    Journal(journal).append("step-done", step="x")  # drops the cut tail first
    assert verify_change(evidence).ok, verify_change(evidence).problems


def test_report_shows_the_change_and_is_itself_verified(evidence):
    report = write_report(evidence)
    page = report.read_text()
    for text in ("Change CHG-2026-0042", "Evidence verified", "cert-expiring", "EDGE02"):
        assert text in page
    assert "02-prepare-certificate" in page and "<svg" in page and "Journal" in page
    plan = next(evidence.glob("EDGE01/plans/*.json")).stem
    assert plan in page  # the plan hash, planned then applied
    assert "no (plan only)" in page
    assert "<script" not in page
    record = json.loads((evidence / REPORT_JSON).read_text())
    assert record["html"]["sha256"] == sha256_file(report)
    assert verify_change(evidence).ok
    report.write_text(page.replace("Evidence verified", "All good"))
    assert [p.path for p in verify_change(evidence).problems] == [REPORT_HTML]


def test_the_secret_scan_finds_a_planted_secret(evidence):
    secret = "Sup3r-S3cret!<&>"
    assert scan_secrets(evidence, {"LAB_PASSWORD": secret}) == []
    html = next(evidence.glob("EDGE01/01-inspect/*.html"))
    html.write_text(html.read_text() + f"<p>{escape(secret)}</p>")  # as HTML shows it
    notebook = next(evidence.glob("EDGE02/01-inspect/*.ipynb"))
    notebook.write_text(notebook.read_text().replace('"renew it"', json.dumps(secret)))
    found = {(p.path, p.message) for p in scan_secrets(evidence, {"LAB_PASSWORD": secret})}
    assert found == {
        (html.relative_to(evidence).as_posix(), "contains the secret LAB_PASSWORD"),
        (notebook.relative_to(evidence).as_posix(), "contains the secret LAB_PASSWORD"),
    }
    with pytest.raises(EdgebookError, match="too short"):
        scan_secrets(evidence, {"X": "abc"})


def test_rolling_order_stops_at_the_first_failure(tmp_path):
    result = run_change(
        inventory(tmp_path),
        change="CHG-1",
        phases=["inspect", "prepare"],
        root=tmp_path / "outputs",
        extra={"fail_on": "EDGE01"},
    )
    assert list(result.runs) == [Step("EDGE01", "inspect"), Step("EDGE01", "prepare")]
    assert result.runs[Step("EDGE01", "prepare")].verdict == "failed"
    assert result.skipped == [Step("EDGE02", "inspect"), Step("EDGE02", "prepare")]
    assert not result.ok
    assert verify_change(tmp_path / "outputs" / "CHG-1").ok


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"phases": ["prepare"], "apply": True},
            r"needs an approved plan for EDGE01:prepare, EDGE02",
        ),
        ({"phases": ["prepare"], "approvals": ["a" * 64]}, "only meaningful with --apply"),
        ({"phases": ["inspect"], "apply": True}, "change nothing"),
        ({"phases": ["prepare"], "apply": True, "approvals": ["a" * 64]}, "say which plan"),
        (
            {"phases": ["prepare"], "apply": True, "approvals": ["EDGE09:prepare=" + "a" * 64]},
            "EDGE one of EDGE01, EDGE02",
        ),
        ({"phases": ["prepare"], "apply": True, "approvals": ["EDGE01:prepare=abc"]}, "64 hex"),
        ({"phases": ["inspect"], "extra": {"warning_days": 3}}, "no notebook of inspect declares"),
        ({"phases": ["inspect"], "extra": {"edge": "EDGE02"}}, "set by the runner"),
        ({"phases": ["resubscribe"]}, "03-resubscribe.ipynb is not installed"),
        ({"phases": ["inspect"], "edges": ["EDGE07"]}, "no Edge named 'EDGE07'"),
        ({"phases": ["inspect"], "change": "../x"}, "a change id is"),
        ({"phases": ["inspect"], "workers": 0}, "workers: 1 to 16"),
    ],
)
def test_bad_requests_are_refused_before_anything_runs(tmp_path, kwargs, message):
    kwargs = {"change": "CHG-1", **kwargs}
    with pytest.raises(EdgebookError, match=message):
        run_change(inventory(tmp_path), root=tmp_path / "outputs", **kwargs)
    assert not (tmp_path / "outputs").exists()


def test_an_outputs_root_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "outputs").write_text("a file")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run_change(
            inventory(tmp_path), change="CHG-1", phases=["inspect"], root=tmp_path / "outputs"
        )
