"""$null on the wire: an undo that restores an empty property sends PowerShell's $null through
the real shell (pypsrp's <Nil />), and the lab clears the property as Exchange does."""

from __future__ import annotations

import pytest

from edgebook.errors import EdgebookError
from edgebook.exchange.wire_values import NULL
from tests.support.resubscribe import InProcessLab

HYBRID = "Outbound to Office 365"


@pytest.fixture
def lab(tmp_path) -> InProcessLab:
    return InProcessLab(tmp_path / "lab")


def fqdn(lab: InProcessLab) -> object:
    (connector,) = lab.ok("EX01", "Get-SendConnector", Identity=HYBRID)
    return connector["Fqdn"]


def test_null_clears_a_property_over_the_wire(lab):
    assert fqdn(lab)  # seed-incident's hybrid connector names an Fqdn
    lab.ok("EX01", "Set-SendConnector", Identity=HYBRID, Fqdn=NULL)
    assert fqdn(lab) is None
    assert lab.store.read().send_connector(HYBRID).fqdn is None


def test_a_bare_none_is_still_refused_as_an_accident(lab):
    before = fqdn(lab)
    with pytest.raises(EdgebookError, match="-Fqdn: the value is None"):
        lab.ok("EX01", "Set-SendConnector", Identity=HYBRID, Fqdn=None)
    assert fqdn(lab) == before
