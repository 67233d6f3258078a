"""Fixtures the tests share: the lab endpoint's TLS identity and running labs that stop after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgebook.evidence import layout
from edgebook.lab import control
from edgebook.lab.winrm.endpoint_tls import EndpointTls

StartLab = Callable[..., Path]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> EndpointTls:
    """The lab's own endpoint identity: a throw-away CA and an encrypted loopback key."""
    return EndpointTls.create(tmp_path_factory.mktemp("tls"))


def _lab_starter(make_dir: Callable[[], Path]) -> Iterator[StartLab]:
    started: list[Path] = []

    def start(scenario: str | None = "seed-incident", latency_ms: int = 0) -> Path:
        directory = make_dir() / "lab"
        control.start(directory, scenario, latency_ms=latency_ms)
        started.append(directory)
        return directory

    yield start
    for directory in started:
        control.stop(directory)


@pytest.fixture
def start_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartLab]:
    """start_lab(scenario) runs a lab daemon in a fresh folder; every one stops after the test."""
    yield from _lab_starter(lambda: tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def start_module_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartLab]:
    """start_lab for module-scoped fixtures: the labs stop after the module."""
    yield from _lab_starter(lambda: tmp_path_factory.mktemp("lab"))


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A seed-incident lab folder, made but not started (a test starts it when it needs it), with
    the evidence under tmp_path/outputs; stopped after the test. Modules may define their own."""
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))
    directory = tmp_path / "lab"
    control.create(directory, "seed-incident")
    yield directory
    control.stop(directory)
