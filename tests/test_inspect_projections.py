"""Inspect reads every Exchange output projected on the server (Select-Object -Property) onto
what its facts read: the facts are those of the whole objects, for a fraction of the bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgebook.config import Inventory, load_inventory
from edgebook.exchange import wire_types as types
from edgebook.exchange.batch import by_type, run_all
from edgebook.exchange.command import Command
from edgebook.exchange.connect import resolve_credentials, shell_factory
from edgebook.facts import (
    SERVICE_PROPERTIES,
    TRANSPORT_SERVICE_PROPERTIES,
    EdgeFacts,
    EdgeSyncFact,
    EventFact,
    HealthFact,
    InspectSettings,
    MailboxServerFact,
    QueueFact,
    ReceiveConnectorFact,
    SendConnectorFact,
    SubscriptionFact,
)
from edgebook.phases import inspect

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SCENARIOS = ["seed-incident", "duplicate-subject", "mailbox-default-replaced", "expired"]


class AskedRecord(dict[str, Any]):
    """A record that notes every property name asked of it; each has `value` (None: absent)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value
        self.asked: set[str] = set()

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return self.value is not None

    def __getitem__(self, name: str) -> Any:
        self.asked.add(name)
        return self.value

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return default if self.value is None else self.value


def asked_of(read: Callable[[AskedRecord], object]) -> set[str]:
    """The names a reader asks of a record, present (each "1") or absent (fallbacks too)."""
    names: set[str] = set()
    for value in ("1", None):
        record = AskedRecord(value)
        read(record)
        names |= record.asked
    return names


@pytest.fixture(scope="module")
def inventory(start_module_lab) -> Inventory:
    """A lab's inventory: its servers' names."""
    return load_inventory(start_module_lab("seed-incident") / "inventory.yaml")


def org_facts(inventory: Inventory, records: dict[str, list[Any]]) -> Any:
    mailbox = inventory.organisation.mailbox_servers[0].name
    return inspect._org_facts(inventory, records, mailbox, InspectSettings(now=NOW))


READERS: list[tuple[str, Callable[[AskedRecord], object], tuple[str, ...]]] = [  # Fact readers
    ("receive connector", ReceiveConnectorFact.from_record, ReceiveConnectorFact.PROPERTIES),
    ("send connector", SendConnectorFact.from_record, SendConnectorFact.PROPERTIES),
    ("queue", QueueFact.from_record, QueueFact.PROPERTIES),
    ("health", HealthFact.from_record, HealthFact.PROPERTIES),
    ("event", EventFact.from_record, EventFact.PROPERTIES),
    ("subscription", SubscriptionFact.from_record, SubscriptionFact.PROPERTIES),
    ("edgesync", EdgeSyncFact.from_record, EdgeSyncFact.PROPERTIES),
    ("service", lambda r: EdgeFacts.from_records("E", services=[r]), SERVICE_PROPERTIES),
]


@pytest.mark.parametrize(("what", "read", "properties"), READERS, ids=[r[0] for r in READERS])
def test_each_projection_names_exactly_what_its_facts_read(what, read, properties):
    assert asked_of(read) == set(properties)


def test_the_transport_service_projection_is_what_edge_and_mailbox_facts_read(inventory):
    """Inspect picks each Mailbox server's own record by Name, the facts read its thumbprint."""
    picked = asked_of(lambda r: org_facts(inventory, {types.TRANSPORT_SERVICE: [r]}))
    mailbox = asked_of(lambda r: MailboxServerFact.from_records("EX01", transport_service=r))
    edge = asked_of(lambda r: EdgeFacts.from_records("E", transport_service=r))
    assert picked | mailbox == set(TRANSPORT_SERVICE_PROPERTIES)
    assert edge <= set(TRANSPORT_SERVICE_PROPERTIES)


def test_every_read_but_the_clock_is_projected(inventory):
    reads = [*inspect.edge_commands(inventory.edges[0], NOW), *inspect.MAILBOX_COMMANDS]
    assert [c.name for c in reads if not c.then] == ["Get-Date"]
    for command in reads:
        if command.then:
            *_, last = command.chain()
            assert last.name == "Select-Object" and set(last.parameters) == {"Property"}
            assert last.parameters["Property"]


def whole(command: Command) -> Command:
    """The read without its projection."""
    return Command(command.name, command.parameters, command.then[:-1])


def compared(commands: list[Command]) -> list[Command]:
    """The reads whose whole objects give the same facts: not the clock, nor the certificates
    and events, whose whole objects carry less or cannot be read, by design."""
    skipped = {"Get-Date", "Get-ExchangeCertificate", "Get-EventLog"}
    return [c for c in commands if c.name not in skipped]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_projected_reads_give_the_facts_of_the_whole_objects(start_lab, scenario):
    directory: Path = start_lab(scenario)
    inventory = load_inventory(directory / "inventory.yaml")
    open_shell = shell_factory(resolve_credentials(inventory.servers))
    settings = InspectSettings(now=NOW)
    mailbox = inventory.organisation.mailbox_servers[0].name
    for edge in inventory.edges:
        reads = compared(inspect.edge_commands(edge, NOW))
        with open_shell(inventory, edge.name) as shell:
            plain, plain_errors = run_all(shell, [whole(c) for c in reads])
            projected, projected_errors = run_all(shell, reads)
        assert not plain_errors and not projected_errors
        assert {r.type_names[0] for r in projected} <= {
            f"Selected.{t}" for t in (r.type_names[0] for r in plain)
        }
        facts = inspect._edge_facts(edge, by_type(projected))
        assert facts == inspect._edge_facts(edge, by_type(plain))
        assert facts.services and facts.receive_connectors and facts.default_thumbprint
    reads = compared(inspect.MAILBOX_COMMANDS)
    with open_shell(inventory, mailbox) as shell:
        plain, _ = run_all(shell, [whole(c) for c in reads])
        projected, _ = run_all(shell, reads)
    org = inspect._org_facts(inventory, by_type(projected), mailbox, settings)
    assert org == inspect._org_facts(inventory, by_type(plain), mailbox, settings)
    assert org.subscriptions and org.edgesync and org.mailbox_servers[0].internal_thumbprint


def test_the_projections_carry_the_values_the_traps_turn_on(start_lab):
    """What makes the comparison above worth something: the lab's objects differ from the
    facts' defaults in the properties the rules read."""
    directory: Path = start_lab("duplicate-subject")
    inventory = load_inventory(directory / "inventory.yaml")
    edge = inventory.edges[0]
    with shell_factory(resolve_credentials(inventory.servers))(inventory, edge.name) as shell:
        records, _ = run_all(shell, compared(inspect.edge_commands(edge, NOW)))
    facts = inspect._edge_facts(edge, by_type(records))
    assert any(q.message_count > 0 and q.next_hop_domain for q in facts.queues)
    assert any(c.tls_certificate_name and c.bindings for c in facts.receive_connectors)
    assert any(h.alert_value and h.state for h in facts.health)
    assert set(facts.services.values()) == {"Running"}


def test_select_pipes_the_command_into_select_object_last():
    queue = Command("Get-Queue", {"Server": "EDGE01"})
    projected = queue.select(("Identity", "Status"))
    assert projected == Command(
        "Get-Queue",
        {"Server": "EDGE01"},
        (Command("Select-Object", {"Property": ["Identity", "Status"]}),),
    )
    assert projected.select(["Identity"]).chain()[1:] == (
        Command("Select-Object", {"Property": ["Identity", "Status"]}),
        Command("Select-Object", {"Property": ["Identity"]}),
    )
    assert queue.then == ()  # a new command; the read itself is unchanged
