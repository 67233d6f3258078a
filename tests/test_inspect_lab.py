"""Inspect against the lab: each scenario yields exactly its traps, within the round-trip budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebook.cli import main
from edgebook.config import load_inventory
from edgebook.findings import Severity
from edgebook.lab import control
from edgebook.lab.org.store import LabStore
from edgebook.phases.inspect import InspectResult, inspect

# (severity, server, slug) of every error and warning each shipped scenario must show.
EXPECTED = {
    "healthy": set(),
    "seed-incident": {
        (sev, edge, slug)
        for edge in ("EDGE01", "EDGE02")
        for sev, slug in (
            ("warning", "cert-expiring"),
            ("warning", "health-degraded"),
            ("warning", "cert-warning-events"),
        )
    },
    "expired": {
        (sev, edge, slug)
        for edge in ("EDGE01", "EDGE02")
        for sev, slug in (
            ("error", "cert-expired"),
            ("error", "duplicate-subject"),
            ("error", "tls-name-stale"),
            ("error", "queue-backlog"),
            ("error", "cert-warning-events"),
            ("warning", "key-not-exportable"),
            ("warning", "health-degraded"),
        )
    }
    | {("warning", None, "tls-name-cert-missing-on-mailbox")},
    "duplicate-subject": {
        ("error", "EDGE01", "duplicate-subject"),
        ("error", "EDGE01", "queue-backlog"),
        # the second certificate was imported on the Edge only, non-exportable (F5)
        ("warning", "EDGE01", "key-not-exportable"),
    },
    "edge-hub-clash": {
        ("error", "EDGE01", "edge-hub-clash"),
        ("error", "EDGE01", "edgesync-failing"),
    },
    # F22: EX01's default certificate was replaced after EDGE01's subscription
    "mailbox-default-replaced": {("error", "EDGE01", "edgesync-failing")},
}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def lab(request, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp(request.param) / "lab"
    control.start(directory, request.param)
    yield request.param, directory
    control.stop(directory)


@pytest.fixture(scope="module")
def result(lab) -> InspectResult:
    _, directory = lab
    return inspect(load_inventory(directory / "inventory.yaml"))


def test_each_scenario_yields_exactly_its_traps(lab, result):
    scenario, _ = lab
    found = {
        (str(f.severity), f.server, f.slug)
        for f in result.findings
        if f.severity >= Severity.WARNING
    }
    assert found == EXPECTED[scenario]


def test_every_finding_says_what_to_do_and_shows_evidence(result):
    for finding in result.findings:
        assert len(finding.message) > 40, finding
        assert finding.evidence, finding


def test_round_trip_budget(lab, result):
    _, directory = lab
    inventory = load_inventory(directory / "inventory.yaml")
    for edge in inventory.edges:
        # the snap-in load rides in the one batched pipeline of read-only cmdlets
        assert result.round_trips[edge.name]["pipelines"] == 1
    mailbox = inventory.organisation.mailbox_servers[0].name
    assert result.round_trips[mailbox]["pipelines"] == 1
    assert result.round_trips[mailbox]["cmdlets"] == 5  # each Mailbox cmdlet exactly once
    others = [m.name for m in inventory.organisation.mailbox_servers[1:]]
    server_side = LabStore(directory).counters()
    for name in others:
        assert server_side.get(name, {}).get("pipelines", 0) == 0
    for edge in inventory.edges:
        assert server_side[edge.name]["pipelines"] >= 1


def test_facts_are_json_ready(result):
    import json

    document = json.loads(json.dumps(result.to_dict()))
    assert {"findings", "facts"} <= set(document)
    edges = document["facts"]["edges"]
    assert all(edge["certificates"] for edge in edges)


def test_check_plugin_exit_code_matches_the_worst_finding(lab, result, capsys):
    _, directory = lab
    code = main(["check", str(directory / "inventory.yaml")])
    line = capsys.readouterr().out.strip()
    worst = max((f.severity for f in result.findings), default=Severity.INFO)
    expected = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}[worst]
    assert code == expected
    assert line.startswith(f"EDGEBOOK {['OK', 'WARNING', 'CRITICAL'][expected]} - ")
    assert "|" in line and "=" in line.split("|", 1)[1]


def test_an_unreachable_server_is_a_finding_not_a_crash(tmp_path):
    directory = tmp_path / "lab"
    control.start(directory, "healthy")
    try:
        inventory = load_inventory(directory / "inventory.yaml")
    finally:
        control.stop(directory)
    result = inspect(inventory)  # every WinRM port is closed now
    unreachable = {f.server for f in result.findings if f.slug == "server-unreachable"}
    assert unreachable == {"EX01", "EDGE01", "EDGE02"}
    assert all(f.severity == Severity.ERROR for f in result.findings if f.server in unreachable)
    assert result.round_trips == {}
    code = main(["check", str(directory / "inventory.yaml")])
    assert code == 2


def test_a_failing_cmdlet_is_named_and_the_rest_still_read(tmp_path):
    directory = tmp_path / "lab"
    control.start(directory, "healthy")
    try:
        assert main(["lab", "fault", "--dir", str(directory), "--cmdlet", "Get-Queue"]) == 0
        assert main(["lab", "fault", "--dir", str(directory), "--cmdlet", "Get-Date"]) == 0
        result = inspect(load_inventory(directory / "inventory.yaml"), "EDGE01")
    finally:
        control.stop(directory)
    failed = {(f.server, f.evidence["cmdlet"]) for f in result.findings if f.slug == "read-failed"}
    assert ("EDGE01", "Get-Queue") in failed
    edge = next(e for e in result.edges if e.name == "EDGE01")
    assert edge.certificates and edge.receive_connectors  # statements after it still ran
