"""The notebook views turn an inspect result into tables and a plot."""

from __future__ import annotations

import pytest

from edgebook.config import load_inventory
from edgebook.lab import control
from edgebook.notebook import views
from edgebook.phases.inspect import InspectResult, inspect
from edgebook.rules import evaluate
from tests.support.orgs import EDGES, clean_world, pki, thumb


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    directory = tmp_path_factory.mktemp("views") / "lab"
    control.start(directory, "seed-incident")
    try:
        yield inspect(load_inventory(directory / "inventory.yaml"), "EDGE01")
    finally:
        control.stop(directory)


def test_served_matches_configured_in_a_consistent_organisation(result):
    table = views.served_vs_configured(result)
    assert len(table) == 4  # two Edges, two ports
    assert table["match"].all(), table.to_string()


def test_certificate_table_marks_the_default(result):
    table = views.certificates(result)
    defaults = table[table["default"]]
    assert set(defaults["server"]) == {"EDGE01", "EDGE02", "EX01"}
    assert defaults["subject"].str.startswith("CN=").all()


def test_findings_table_is_sorted_errors_first(result):
    order = {"error": 0, "warning": 1, "info": 2}
    ranks = [order[s] for s in views.findings(result)["severity"]]
    assert ranks == sorted(ranks)
    assert not views.findings(result).empty


def test_timeline_has_a_bar_per_certificate(result):
    axes = views.certificate_timeline(result, warning_days=30)
    assert len(axes.patches) >= len(views.certificates(result))
    assert len(axes.get_yticklabels()) == len(views.certificates(result))


def test_certificate_table_shows_exchange_view_with_root_ca_type(result):
    table = views.certificates(result)
    assert {"root_ca_type", "private_key", "exportable", "status"} <= set(table.columns)
    public = table[~table["default"]]  # the CA-issued certificate on each server
    assert len(public) == 3 and set(public["root_ca_type"]) == {"ThirdParty"}  # Exchange's view
    assert "unknown" not in set(table["services"]) | set(table["status"])


def _unknown_view_result() -> InspectResult:
    """Facts whose Exchange view did not arrive for the Edges' public certificate."""
    world = clean_world()
    for edge in EDGES:
        world.edges[edge]["certificates"][1].update(
            Services=None, Status=None, HasPrivateKey=None, PrivateKeyExportable=None
        )
    org, edges = world.facts()
    # the views read only the facts and the findings
    return InspectResult(None, None, org, edges, evaluate(org, edges))  # type: ignore[arg-type]


def test_unknown_view_properties_show_as_unknown():
    table = views.certificates(_unknown_view_result())
    public = table[(table["thumbprint"] == thumb(pki().public)) & table["server"].isin(EDGES)]
    for column in ("services", "private_key", "exportable", "status", "root_ca_type"):
        assert set(public[column]) == {"unknown"}, column
    default = table[table["default"] & table["server"].isin(EDGES)]
    assert set(default["services"]) == {"SMTP"} and set(default["status"]) == {"Valid"}
    assert set(default["root_ca_type"]) == {"unknown"}  # not sent by these records either


def test_served_certificate_with_unknown_services_is_an_unknown_match():
    table = views.served_vs_configured(_unknown_view_result())
    smtp = table[table["port"] == "25 (SMTP)"]
    assert set(smtp["match"]) == {"unknown"}
    assert set(smtp["configured"]) == {f"{thumb(pki().public)} (Services unknown)"}
    ldaps = table[table["port"] == "50636 (LDAPS)"]
    assert ldaps["match"].tolist() == [True, True]
