"""The notebooks where consultants live: JupyterLab in headless Chromium, against the lab.

CI installs Chromium (Debian's package, .ci/run); elsewhere the tests skip without it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebook.evidence.runner import NOTEBOOKS
from edgebook.lab import control

from .jupyterlab import CHROMIUM, CHROMIUM_ARGS, Server, jupyterlab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Chromium (.ci/run) for the browser tests")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


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
    page.set_default_timeout(60_000)
    page.goto(server.open_url(name))
    page.locator(".jp-Notebook").first.wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    return page


def run_all(page) -> None:
    """Run > Run All Cells, as a consultant would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def test_inspect_notebook_runs_in_jupyterlab(browser, server):
    page = open_notebook(browser, server, "01-inspect.ipynb")
    run_all(page)
    findings = page.locator(".jp-OutputArea-output", has_text="cert-expiring")
    findings.first.wait_for(timeout=180_000)
    assert page.locator(".jp-OutputArea-output[data-mime-type*='error']").count() == 0
    assert page.locator(".jp-RenderedImage img").count() >= 1  # the certificate timeline
    page.close()
