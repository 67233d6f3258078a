"""The organisation model: JSON round trip, lookups, no secrets in the JSON."""

from __future__ import annotations

import json

import pytest

from edgebook.errors import EdgebookError
from edgebook.lab.org.model import Org, org_from_json, org_to_json
from tests.support.lab import lab_copy


@pytest.fixture
def org(tmp_path) -> Org:
    return lab_copy("seed-incident", tmp_path / "lab").read()


def test_json_round_trip_is_lossless(org):
    data = json.loads(json.dumps(org_to_json(org)))
    again = org_from_json(data, org.secret)
    assert org_to_json(again) == data
    assert again.servers[2].transport.send == org.servers[2].transport.send
    assert again.servers[2].transport.started == org.servers[2].transport.started


def test_the_lab_key_is_not_serialised(org):
    data = org_to_json(org)
    assert "secret" not in data
    assert "PRIVATE KEY" not in json.dumps(data)


def test_servers_are_found_by_name_or_fqdn(org):
    assert org.server("edge01").name == "EDGE01"
    assert org.server("EDGE02.contoso.com").role == "Edge"
    assert [s.name for s in org.mailboxes] == ["EX01", "EX02"]
    assert org.servers[0].admin_username == "CONTOSO\\Administrator"
    assert org.server("EDGE01").admin_username == "EDGE01\\Administrator"
    with pytest.raises(EdgebookError, match="no server 'EDGE09'"):
        org.server("EDGE09")


def test_subscriptions_capture_the_edge_default_certificate(org):
    edge = org.server("EDGE01")
    sub = org.subscription("EDGE01")
    assert sub is not None
    assert sub.certificate_thumbprint == edge.internal_transport_thumbprint
    assert edge.certificate(sub.certificate_thumbprint.lower()) is not None
