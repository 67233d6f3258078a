"""The notebook views turn an inspect result into tables and a plot."""

from __future__ import annotations

import pytest

from edgebook.config import load_inventory
from edgebook.lab import control
from edgebook.notebook import views
from edgebook.phases.inspect import inspect


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
