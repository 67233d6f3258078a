"""Inspect reads the send connectors projected on the server, on the Edges and on the Mailbox
server: the same facts, a fraction of the bytes (each connector lists every Edge of the
organisation as a full ADObjectId otherwise)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edgebook.config import load_inventory
from edgebook.exchange import wire_types as T
from edgebook.exchange.command import Command
from edgebook.exchange.connect import resolve_credentials, shell_factory
from edgebook.exchange.record import PSRecord
from edgebook.facts import SendConnectorFact
from edgebook.lab.winrm.objects import ExEnum, ExList, ExObject
from edgebook.lab.winrm.protocol import CommandCall
from edgebook.phases.inspect import MAILBOX_COMMANDS, edge_commands, read_send_connectors
from tests.support.lab import Lab, lab_copy

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_inspect_reads_the_send_connectors_projected_on_every_server():
    assert read_send_connectors() in MAILBOX_COMMANDS
    assert Command("Get-SendConnector") not in MAILBOX_COMMANDS
    (step,) = read_send_connectors().then
    assert step == Command("Select-Object", {"Property": list(SendConnectorFact.PROPERTIES)})


@pytest.mark.parametrize("role", ["Edge", "Mailbox"])
def test_the_projection_gives_the_facts_of_the_whole_connector(start_lab, role):
    directory: Path = start_lab("seed-incident")
    inventory = load_inventory(directory / "inventory.yaml")
    server = (inventory.edges if role == "Edge" else inventory.organisation.mailbox_servers)[0]
    if role == "Edge":
        assert read_send_connectors() in edge_commands(inventory.edges[0], NOW)
    with shell_factory(resolve_credentials(inventory.servers))(inventory, server.name) as shell:
        plain = shell.run_batch([Command("Get-SendConnector")])
        projected = shell.run_batch([read_send_connectors()])
    assert plain and len(projected) == len(plain)
    assert all(isinstance(r, PSRecord) for r in plain + projected)
    assert {r.type_names[0] for r in projected} == {T.SELECTED_SEND_CONNECTOR}
    facts = [SendConnectorFact.from_record(r) for r in plain]
    assert [SendConnectorFact.from_record(r) for r in projected] == facts
    assert any(f.source_transport_servers and f.tls_certificate_name for f in facts)
    for record in projected:  # the objects arrive as their text
        assert all(isinstance(s, str) for s in record["SourceTransportServers"])
        assert set(record) == set(SendConnectorFact.PROPERTIES)


def test_selected_objects_hold_their_objects_as_text_and_keep_values(tmp_path):
    """PowerShell remoting serialises a PSCustomObject at depth 1 (lab: utility.depth_one)."""
    lab = Lab(lab_copy("seed-incident", tmp_path / "lab"))
    (whole,) = lab.ok("EDGE01", "Get-SendConnector", Identity="Outbound to Office 365")
    (selected,) = lab.pipeline(
        "EDGE01",
        [
            CommandCall("Get-SendConnector", {"Identity": whole["Name"]}),
            CommandCall(
                "Select-Object",
                {"Property": ["SourceTransportServers", "TlsAuthLevel", "Enabled", "Name"]},
            ),
        ],
    ).output
    servers = whole["SourceTransportServers"]
    assert isinstance(servers, ExList) and all(isinstance(s, ExObject) for s in servers.items)
    assert selected["SourceTransportServers"].items == [str(s) for s in servers.items]
    assert selected["SourceTransportServers"].type_name == servers.type_name
    assert selected["Name"] == whole["Name"] and selected["Enabled"] == whole["Enabled"]
    assert isinstance(whole["TlsAuthLevel"], ExEnum)  # an enum is an object too: its text
    assert selected["TlsAuthLevel"] == str(whole["TlsAuthLevel"]) == "DomainValidation"
