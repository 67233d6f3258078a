"""The background evidence writer keeps order, says what it writes, and never hides a failure;
a rollout sharing one writer (as the demo does) leaves a chain `evidence verify` accepts."""

from __future__ import annotations

import threading
import time

import pytest

from edgebook.errors import EdgebookError
from edgebook.evidence import rollout as rollout_module
from edgebook.evidence import runner as runner_module
from edgebook.evidence.manifest import read_manifest
from edgebook.evidence.rollout import Step, run_change
from edgebook.evidence.verify import verify_change
from edgebook.evidence.writer import EvidenceWriter
from tests.support.evidence import fixture_notebooks, inventory


def test_jobs_run_in_the_order_given_off_the_calling_thread(tmp_path):
    done: list[tuple[int, str]] = []

    def job(index: int, pause: float):
        def run() -> None:
            time.sleep(pause)
            done.append((index, threading.current_thread().name))

        return run

    with EvidenceWriter() as writer:
        for index, pause in enumerate([0.05, 0.0, 0.02]):
            writer.submit(job(index, pause), writes={tmp_path / f"{index}.html"})
        assert writer.owned() == {tmp_path / f"{i}.html" for i in range(3)}
        writer.drain()
        assert [index for index, _ in done] == [0, 1, 2]
        assert {name for _, name in done} == {"edgebook-evidence"}


def test_a_failed_job_is_raised_by_check_and_drain_and_later_jobs_still_run(tmp_path):
    ran: list[str] = []

    def fail() -> None:
        raise OSError("disk full")

    writer = EvidenceWriter()
    writer.submit(fail, writes=set())
    writer.submit(lambda: ran.append("after"), writes=set())
    with pytest.raises(EdgebookError, match="writing a run's evidence failed: disk full"):
        writer.drain()
    assert ran == ["after"]
    with pytest.raises(EdgebookError, match="disk full"):
        writer.submit(lambda: None, writes=set())  # no further run is started
    with pytest.raises(EdgebookError):
        writer.close()


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    folder = fixture_notebooks(tmp_path / "notebooks")
    monkeypatch.setattr(rollout_module, "NOTEBOOKS", folder)
    return folder


def test_rollouts_sharing_a_writer_chain_their_manifests_and_verify(tmp_path, notebooks):
    params, root = inventory(tmp_path), tmp_path / "outputs"
    with EvidenceWriter() as writer:
        planned = run_change(params, change="CHG-1", phases=["prepare"], root=root, evidence=writer)
        approvals = [
            f"{s.edge}:prepare={r.records['plan_sha256']}" for s, r in planned.runs.items()
        ]
        applied = run_change(
            params,
            change="CHG-1",
            phases=["prepare"],
            root=root,
            apply=True,
            approvals=approvals,
            evidence=writer,
        )
        writer.drain()
    for edge in ("EDGE01", "EDGE02"):
        first = read_manifest(planned.runs[Step(edge, "prepare")].manifest)
        second = read_manifest(applied.runs[Step(edge, "prepare")].manifest)
        assert second["previous"]["path"] == first["notebook"]["path"].replace(
            ".ipynb", ".manifest.json"
        )
        for manifest in (first, second):
            assert manifest["html"]["path"].endswith(".html")
            assert not [f for f in manifest["files"] if f["path"].endswith(".html")]
    result = verify_change(root / "CHG-1")
    assert result.ok, result.problems


def test_a_rollout_whose_evidence_cannot_be_written_fails_loudly(tmp_path, notebooks, monkeypatch):
    def broken(run):
        raise OSError("no space left on device")

    monkeypatch.setattr(rollout_module, "render_run", broken)
    with pytest.raises(EdgebookError, match="no space left on device"):
        run_change(inventory(tmp_path), change="CHG-1", phases=["inspect"], root=tmp_path / "o")


def test_a_single_run_writes_its_evidence_before_returning(tmp_path, notebooks, monkeypatch):
    rendered: list[str] = []
    real = runner_module.render_html

    def spy(nb, output):
        rendered.append(threading.current_thread().name)
        return real(nb, output)

    monkeypatch.setattr(runner_module, "render_html", spy)
    result = run_change(
        inventory(tmp_path), change="CHG-1", phases=["inspect"], edges=["EDGE01"], root=tmp_path
    )
    run = result.runs[Step("EDGE01", "inspect")]
    assert run.html is not None and run.html.is_file() and run.manifest is not None
    assert rendered == [threading.current_thread().name]  # no writer thread for one run
