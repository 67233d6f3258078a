"""Scenarios: the shipped ones build; malformed ones are refused naming file, key, expectation."""

from __future__ import annotations

import pytest

from edgebook.lab.org.scenarios import ScenarioError, list_scenarios, load_scenario
from tests.support.lab import Lab, lab_copy

SHIPPED = [
    "duplicate-subject",
    "edge-hub-clash",
    "expired",
    "healthy",
    "mailbox-default-replaced",
    "seed-incident",
]


def test_shipped_scenarios_are_listed_with_descriptions():
    listed = dict(list_scenarios())
    assert sorted(listed) == SHIPPED
    assert all(len(text) > 20 for text in listed.values())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_builds(tmp_path, name):
    org = lab_copy(name, tmp_path / "lab").read()
    assert org.scenario == name
    assert org.edges and org.mailboxes
    for edge in org.edges:
        assert edge.internal_transport_thumbprint in {c.thumbprint for c in edge.certificates}


def test_healthy_has_one_mailbox_two_edges_and_a_hybrid_connector(tmp_path):
    lab = Lab(lab_copy("healthy", tmp_path / "lab"))
    org = lab.store.read()
    assert [s.role for s in org.servers] == ["Mailbox", "Edge", "Edge"]
    (hybrid,) = lab.ok("EDGE01", "Get-SendConnector", "Outbound to Office 365")
    assert hybrid["TlsCertificateName"].to_string.startswith("<I>CN=DigiCert Global CA G2")
    assert hybrid["TlsDomain"] == "mail.protection.outlook.com"


def write(tmp_path, text: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


MINIMAL = "description: x\norganization: {domain: contoso.com}\nservers: [{name: E1, role: Edge}]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "description: x\nservers: []\n",
            "organization: found nothing (the key is missing), expected this key",
        ),
        (MINIMAL + "colour: red\n", "colour: unknown key; allowed here: description"),
        (
            MINIMAL.replace("Edge", "Hub"),
            "servers[0].role: found 'Hub', expected one of Mailbox, Edge",
        ),
        (
            MINIMAL + "certificates: [{id: a, subject: CN=a, issuer: nope,"
            " valid: {from_days: 0, to_days: 1}}]\n",
            "certificates[0].issuer: found 'nope', expected the id of a certificate authority",
        ),
        (
            MINIMAL + "certificates: [{id: a, subject: CN=a, valid: {from_days: 5, to_days: 1}}]\n",
            "certificates[0].valid.to_days: found 1.0, expected to_days after from_days",
        ),
        (
            MINIMAL + "subscriptions: [{edge: E9}]\n",
            "subscriptions[0].edge: found 'E9', expected the name of an Edge server",
        ),
        ("servers: [", "not valid YAML"),
    ],
)
def test_malformed_scenarios_name_the_key_and_the_expectation(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="shipped scenarios: duplicate-subject"):
        load_scenario("nonexistent")


def test_a_scenario_file_path_is_accepted(tmp_path):
    path = write(tmp_path, MINIMAL)
    scenario = load_scenario(path)
    assert scenario.name == "bad" and scenario.servers[0].fqdn == "e1.contoso.com"
