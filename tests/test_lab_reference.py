"""parameters/lab/*.yaml name a lab instead of servers and work out of the box."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgebook.config import load_inventory
from edgebook.lab import control
from edgebook.lab.org.scenarios import list_scenarios

SHIPPED = Path(__file__).resolve().parent.parent / "parameters" / "lab"


def test_a_reference_file_per_shipped_scenario():
    names = {name for name, _ in list_scenarios()}
    for path in SHIPPED.glob("*.yaml"):
        reference = control.lab_reference(path)
        assert reference is not None, path
        assert reference[1] == path.stem
    assert {p.stem for p in SHIPPED.glob("*.yaml")} == names


def test_reference_starts_its_lab_and_yields_a_valid_inventory(tmp_path):
    reference = tmp_path / "params" / "lab.yaml"
    reference.parent.mkdir()
    reference.write_text(yaml.safe_dump({"lab_dir": "../thelab", "scenario": "healthy"}))
    try:
        inventory = load_inventory(control.ensure_lab_inventory(reference))
        assert inventory.lab and [e.name for e in inventory.edges] == ["EDGE01", "EDGE02"]
        again = control.ensure_lab_inventory(reference)  # already running: reused
        assert again == tmp_path / "thelab" / "inventory.yaml"
    finally:
        control.stop(tmp_path / "thelab")


def test_an_ordinary_parameters_file_is_not_a_reference(tmp_path):
    example = Path(__file__).resolve().parent.parent / "parameters" / "example-contoso.yaml"
    assert control.lab_reference(example) is None
    assert control.ensure_lab_inventory(example) == example


def test_a_reference_with_other_keys_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lab_dir: x\nedges: []\n")
    with pytest.raises(control.LabError, match="only lab_dir and scenario"):
        control.lab_reference(path)
