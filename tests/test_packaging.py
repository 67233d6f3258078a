"""pyproject.toml is the source of truth; environment.yml declares the same dependencies and
the same test extra (pytest, ruff, mypy, ...)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    return {_name(r): r.replace(" ", "") for r in requirements}


def _conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str)]
    return {_name(s): s.replace(" ", "") for s in specs if _name(s) not in {"python", "pip"}}


def test_environment_declares_the_same_dependencies_and_test_extra_as_pyproject():
    assert _conda_requirements() == _pyproject_requirements()


def test_environment_installs_the_package_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert ["-e ."] in pip_sections


def test_python_floor_matches():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert project["requires-python"] == ">=3.11"
    assert "python>=3.11" in env["dependencies"]


def test_the_test_extra_brings_the_type_checker():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "mypy" in {_name(r) for r in project["project"]["optional-dependencies"]["test"]}
    assert project["tool"]["mypy"]["packages"] == ["edgebook", "tests", "benchmarks"]


def test_a_wheel_ships_the_notebooks_the_scenarios_and_the_lab_provider(tmp_path):
    """A wheel install runs the demo: the notebooks and scenarios are package data, and the lab
    registers its inventory provider (edgebook.config.resolve) as an entry point."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("edgebook-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        registered = archive.read(entry_points).decode()
    shipped = {p.name for p in (ROOT / "edgebook" / "notebooks").glob("*.ipynb")}
    assert {f"edgebook/notebooks/{n}" for n in shipped} <= names
    assert len(shipped) == 4
    scenarios = {p.name for p in (ROOT / "edgebook" / "lab" / "scenarios").glob("*.yaml")}
    assert {f"edgebook/lab/scenarios/{n}" for n in scenarios} <= names
    assert "[edgebook.inventories]" in registered
    assert "lab = edgebook.lab.control:inventory_provider" in registered
    assert "edgebook = edgebook.cli:main" in registered
