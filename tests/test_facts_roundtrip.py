"""Facts read back from their JSON judge the same: every shipped lab scenario, inspected over
the wire, then its facts through JSON text and back (issue #12: saved records judged again)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from edgebook.config import load_inventory
from edgebook.facts import facts_from_dict, facts_to_dict
from edgebook.lab import control
from edgebook.lab.org.scenarios import list_scenarios
from edgebook.phases.inspect import InspectResult, inspect, judge_saved
from edgebook.rules import evaluate

# Not facts: how the reading went. They are recorded beside the facts, not found in them.
READ_FAILURES = {"read-failed", "server-unreachable"}


def _as_recorded(value: object) -> object:
    """What edgebook.evidence.records.record() keeps of a value."""
    return json.loads(json.dumps(value, default=str))


@pytest.fixture(scope="module", params=[name for name, _ in list_scenarios()])
def result(request, tmp_path_factory) -> Iterator[InspectResult]:
    directory = tmp_path_factory.mktemp(request.param) / "lab"
    control.start(directory, request.param)
    try:
        yield inspect(load_inventory(directory / "inventory.yaml"), "EDGE01")
    finally:
        control.stop(directory)


def test_facts_read_back_from_json_text_give_the_same_facts_and_findings(result):
    saved = result.facts_dict()
    org, edges = facts_from_dict(json.loads(json.dumps(saved)))
    assert facts_to_dict(org, edges) == saved
    again = [f.to_dict() for f in evaluate(org, edges)]
    first = [f.to_dict() for f in evaluate(result.org, result.edges)]
    assert again == first
    assert {f.slug for f in result.findings} - READ_FAILURES <= {f["slug"] for f in again}


def test_judge_saved_on_the_notebook_records_finds_what_the_run_reported(result):
    records = _as_recorded(
        {
            "edge": result.edge,
            "findings": [f.to_dict() for f in result.findings],
            "facts": result.facts_dict(),
        }
    )
    judged = judge_saved(records["facts"], records["edge"])
    reported = [f for f in records["findings"] if f["slug"] not in READ_FAILURES]
    assert _as_recorded([f.to_dict() for f in judged]) == reported
    assert all(f.server != "EDGE02" for f in judged)
