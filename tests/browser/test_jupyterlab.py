"""The notebooks where consultants live: JupyterLab in headless Chromium, against the lab.

CI installs Chromium (Debian's package, .ci/run); elsewhere the tests skip without it. Each wait
is for a state the page shows (the kernel busy then idle, every cell executed); on failure the
test saves a screenshot and the page's outputs into its tmp folder and names the errors seen.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebook.evidence.runner import NOTEBOOKS
from edgebook.lab import control
from edgebook.lab.folder import lab_password
from edgebook.lab.org.store import LabStore

from .jupyterlab import CHROMIUM, CHROMIUM_ARGS, Server, jupyterlab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Chromium (.ci/run) for the browser tests")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

RUN_TIMEOUT_MS = 240_000
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook shown, not other open tabs
_STATE = """() => {
  const panel = document.querySelector('%s');
  if (!panel) return false;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent || '');
  const idle = (panel.querySelector('.jp-Notebook-ExecutionIndicator')
    || document.querySelector('.jp-Notebook-ExecutionIndicator'))?.dataset.status === 'idle';
  return idle && prompts.length > 0 && %s;
}"""
# every code cell executed ([n] in its prompt), the kernel idle
ALL_EXECUTED = _STATE % (PANEL, "prompts.every(p => /\\[\\d+\\]/.test(p))")
# the run stopped (a cell raised, or all ran): some executed, none queued or running
STOPPED = _STATE % (
    PANEL,
    "prompts.some(p => /\\[\\d+\\]/.test(p)) && !prompts.some(p => p.includes('*'))",
)


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("browser") / "lab"
    control.start(directory, "seed-incident")
    yield directory
    control.stop(directory)


@pytest.fixture(scope="module")
def server(lab_dir, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("jupyter") / "notebooks"
    shutil.copytree(NOTEBOOKS, root)
    env = {"EDGEBOOK_LAB_DIR": str(lab_dir), "EDGEBOOK_OUTPUTS": str(root.parent / "outputs")}
    with jupyterlab(root, env) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_notebook(browser, server: Server, name: str):
    """A page with the notebook open and its kernel idle."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(server.open_url(name))
    page.locator(".jp-Notebook").first.wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    return page


def run_all(page, folder: Path) -> None:
    """Run > Run All Cells, as a consultant would, once the notebook has the focus (the menu
    acts on the current notebook); returns once a cell was queued or ran. A click the page did
    not take yet (still loading) is tried again."""
    started = """(panel) => [...(document.querySelector(panel)?.querySelectorAll('.jp-InputPrompt')
        || [])].some(p => /\\[[\\d*]+\\]/.test(p.textContent || ''))"""
    for _ in range(3):
        try:
            page.locator(f"{PANEL} .jp-Cell").first.click(timeout=30_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click(timeout=30_000)
            page.wait_for_function(started, arg=PANEL, timeout=20_000)
            return
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")  # close the menu if it is still open
    pytest.fail(f"Run All Cells did not start: {diagnose(page, folder, 'run-all')}")


def outputs(page) -> list[str]:
    """The text of every output area on the page."""
    found = page.locator(f"{PANEL} .jp-OutputArea-output").all_inner_texts()
    return [text.strip() for text in found]


def errors(page) -> list[str]:
    """The error outputs (tracebacks) on the page, their last line each."""
    found = page.locator(f"{PANEL} .jp-OutputArea-output[data-mime-type*='error']")
    found = found.all_inner_texts()
    return [text.strip().splitlines()[-1] for text in found if text.strip()]


def diagnose(page, folder: Path, what: str) -> str:
    """Save a screenshot and the outputs into folder; a message naming the errors seen."""
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{what}.png"
    try:
        page.screenshot(path=str(shot), full_page=True)
        (folder / f"{what}-outputs.txt").write_text("\n\n---\n\n".join(outputs(page)))
        seen = errors(page)
    except Exception as exc:  # the page itself is gone: say so
        return f"{what}: the page could not be read ({exc})"
    findings = [line for line in outputs(page) if "error" in line.lower()][:5]
    dialogs = [text.strip()[:300] for text in page.locator(".jp-Dialog").all_inner_texts()]
    return (
        f"{what}: errors {seen or 'none'}; dialogs {dialogs or 'none'}; outputs mentioning "
        f"errors: {findings}; "
        f"screenshot {shot}, outputs {folder / (what + '-outputs.txt')}"
    )


def wait_until(page, script: str, folder: Path, what: str, timeout_ms: int = RUN_TIMEOUT_MS):
    """Wait for the page state script tells, or fail with the diagnosis."""
    try:
        page.wait_for_function(script, timeout=timeout_ms)
    except sync_api.TimeoutError:
        pytest.fail(f"timed out waiting: {diagnose(page, folder, what)}")


def test_inspect_notebook_runs_in_jupyterlab(browser, server, tmp_path):
    page = open_notebook(browser, server, "01-inspect.ipynb")
    run_all(page, tmp_path)
    wait_until(page, ALL_EXECUTED, tmp_path, "01-inspect")
    found = errors(page)
    assert not found, diagnose(page, tmp_path, "01-inspect")
    assert any("cert-expiring" in text for text in outputs(page)), diagnose(
        page, tmp_path, "01-inspect"
    )
    assert page.locator(f"{PANEL} .jp-RenderedImage img").count() >= 1  # the timeline
    page.close()


def test_prepare_notebook_approve_button_applies_the_plan(browser, server, lab_dir, tmp_path):
    renewal = lab_dir / "renewal" / "EDGE01.pfx"
    assert renewal.is_file()
    page = open_notebook(browser, server, "02-prepare-certificate.ipynb")
    run_all(page, tmp_path)
    wait_until(page, STOPPED, tmp_path, "02-plan")
    assert not errors(page), diagnose(page, tmp_path, "02-plan")
    shown = [t for t in outputs(page) if "plan sha256: " in t]
    assert shown, diagnose(page, tmp_path, "02-plan")
    sha = shown[0].split("plan sha256: ", 1)[1].split()[0]
    staged_before = {c.thumbprint for c in LabStore(lab_dir).read().server("EX01").certificates}
    button = page.locator(PANEL).get_by_role("button", name="Approve and apply")
    try:
        button.wait_for(timeout=60_000)
    except sync_api.TimeoutError:
        pytest.fail(f"no Approve button: {diagnose(page, tmp_path, '02-button')}")
    button.click()
    applied = page.locator(f"{PANEL} .jp-OutputArea-output", has_text="stage-ex01")
    try:  # the outcome table replaces nothing: it is added under the plan, then says done
        page.locator(f"{PANEL} .jp-OutputArea-output table", has_text="done").first.wait_for(
            timeout=RUN_TIMEOUT_MS
        )
    except sync_api.TimeoutError:
        pytest.fail(f"the plan was not applied: {diagnose(page, tmp_path, '02-apply')}")
    assert applied.count() >= 1
    assert button.is_disabled()
    org = LabStore(lab_dir).read()
    staged = [c for c in org.server("EX01").certificates if c.thumbprint not in staged_before]
    assert len(staged) == 1 and staged[0].services == 0, diagnose(page, tmp_path, "02-state")
    journal = server.root.parent / "outputs" / "CHG-LAB" / "EDGE01" / "journal.jsonl"
    text = journal.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert any(r["event"] == "apply-completed" and r["plan_sha256"] == sha for r in records)
    password, _ = lab_password(lab_dir)
    assert password not in text
    page.close()
