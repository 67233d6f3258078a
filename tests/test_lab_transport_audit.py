"""The connector, queue, EdgeSync and service cmdlets against Microsoft's documentation, as an
independent pypsrp client sees them (raw PowerShell over the lab's WSMan endpoints)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from tests.support.lab import PASSWORD, lab_copy
from tests.test_lab_pypsrp_behaviour import Client, errors, prop

OFFICE_365 = "contoso-com.mail.protection.outlook.com"
RECEIVE = "EDGE01\\Default internal receive connector EDGE01"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(LabBackend(lab_copy("healthy", tmp_path / "lab")))
    yield client
    client.close()


@pytest.fixture(scope="module")
def retrying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """duplicate-subject built afresh: EDGE01's queue to Office 365 retries with 12 messages
    (F2), its Submission queue is empty. The tests using it only read."""
    folder = tmp_path_factory.mktemp("retrying") / "lab"
    LabStore.create(folder, "duplicate-subject", PASSWORD)
    client = Client(LabBackend(LabStore(folder)))
    yield client
    client.close()


def queues(client: Client, **params: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """The identities Get-Queue returns on EDGE01, and its errors."""
    ps, output = client.run("EDGE01", ("Get-Queue", params))
    return [str(prop(q, "Identity")) for q in output], errors(ps)


def the_error(client: Client, server: str, cmdlet: str, params: dict[str, Any]) -> str:
    ps, output = client.run(server, (cmdlet, params))
    assert output == []
    ((message, _),) = errors(ps)
    return message


# --- Get-Queue identities, Include/Exclude, filters --------------------------------------------


def test_queue_identity_takes_the_next_hop_domain_and_a_star(retrying):
    (retry,), _ = queues(retrying, Filter="Status -eq 'Retry'")
    assert queues(retrying, Identity=f"EDGE01\\{OFFICE_365}") == ([retry], [])
    assert queues(retrying, Identity=OFFICE_365) == ([retry], [])
    everything, _ = queues(retrying)
    assert len(everything) == 2
    assert queues(retrying, Identity="*") == (everything, [])
    assert queues(retrying, Identity="EDGE01\\*") == (everything, [])
    missing, problems = queues(retrying, Identity="EDGE01\\nowhere.example")
    assert missing == [] and "couldn't be found" in problems[0][0]


def test_exclude_empty_leaves_the_queues_holding_messages(retrying):
    (retry,), _ = queues(retrying, Filter="MessageCount -gt 0")
    assert queues(retrying, Exclude=["Empty"]) == ([retry], [])
    assert queues(retrying, Include=["Empty"]) == (["EDGE01\\Submission"], [])


def test_filter_takes_or_not_and_parentheses(retrying):
    everything, _ = queues(retrying)
    assert queues(retrying, Filter="Status -eq 'Retry' -or Status -eq 'Ready'") == (
        everything,
        [],
    )
    assert queues(retrying, Filter="-not (Status -eq 'Retry')") == (["EDGE01\\Submission"], [])
    found, _ = queues(
        retrying, Filter="(Status -eq 'Ready' -or MessageCount -gt 5) -and LastError -like '*4.4.*'"
    )
    assert found == [i for i in everything if i != "EDGE01\\Submission"]


def test_filter_compares_retry_times_as_times_and_identity_by_next_hop(retrying):
    (retry,), _ = queues(retrying, Filter="Status -eq 'Retry'")
    assert queues(retrying, Filter="LastRetryTime -gt '2000-01-01'") == ([retry], [])
    assert queues(retrying, Filter="LastRetryTime -lt '2000-01-01'") == ([], [])
    assert queues(retrying, Filter="Identity -like '*outlook.com'") == ([retry], [])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Stauts -eq 'Retry'", "'Stauts' isn't a queue property"),
        ("Status -gt 'Retry'", "-gt can't be used with Status"),
        ("MessageCount -like '1*'", "-like can't be used with MessageCount"),
        ("MessageCount -gt many", "'many' isn't a valid value for MessageCount"),
        ("(Status -eq 'Retry'", "a parenthesis is not closed"),
    ],
)
def test_a_filter_the_lab_cannot_read_is_refused_not_answered_empty(retrying, text, why):
    found, problems = queues(retrying, Filter=text)
    assert found == []
    ((message, fqid),) = problems
    assert f"isn't valid: {why}" in message
    assert fqid.endswith(",Microsoft.Exchange.Management.QueueViewerTasks.GetQueue")


# --- Set-SendConnector's documented dependencies ------------------------------------------------


def internet_connector(client: Client) -> str:
    _, output = client.run(
        "EX01", ("Get-SendConnector", {}), ("Select-Object", {"Property": ["Name"]})
    )
    return next(n for n in (prop(c, "Name") for c in output) if n.endswith("to Internet"))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"RequireTLS": True, "IgnoreSTARTTLS": True}, "IgnoreSTARTTLS must be $false"),
        ({"Port": 70000}, "from 0 through 65535"),
        ({"SmartHosts": ["relay.contoso.com"]}, "SmartHosts must be set when DNSRoutingEnabled"),
        ({"DNSRoutingEnabled": False}, "SmartHosts must be set when DNSRoutingEnabled"),
        (
            {"SmartHostAuthMechanism": "ExchangeServer, ExternalAuthoritative"},
            "mutually exclusive",
        ),
        ({"SmartHostAuthMechanism": "BasicAuth"}, "AuthenticationCredential"),
    ],
)
def test_set_send_connector_refuses_what_microsoft_documents_as_invalid(client, params, fragment):
    name = internet_connector(client)
    assert fragment in the_error(client, "EX01", "Set-SendConnector", {"Identity": name, **params})


def test_smart_hosts_with_dns_routing_off_in_one_command_is_accepted(client):
    name = internet_connector(client)
    # EdgeSync's Internet connector is domain secure, which needs DNS routing
    # (test_lab_transport_review.py): the same command turns it off
    change = {"SmartHosts": ["relay.contoso.com"], "DNSRoutingEnabled": False}
    ps, _ = client.run(
        "EX01",
        ("Set-SendConnector", {"Identity": name, **change, "DomainSecureEnabled": False}),
    )
    assert errors(ps) == []
    _, (connector,) = client.run(
        "EX01",
        ("Get-SendConnector", {"Identity": name}),
        ("Select-Object", {"Property": ["DNSRoutingEnabled"]}),
    )
    assert prop(connector, "DNSRoutingEnabled") is False


# --- Set-ReceiveConnector's AuthMechanism rules -------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"AuthMechanism": "None, Tls"}, "None can only be used by itself"),
        ({"AuthMechanism": "BasicAuthRequireTLS, BasicAuth"}, "requires the values BasicAuth"),
        (
            {"AuthMechanism": "ExternalAuthoritative, ExchangeServer"},
            "only other value that can be used with ExternalAuthoritative is Tls",
        ),
        (
            {"AuthMechanism": "ExternalAuthoritative, Tls", "PermissionGroups": "Partners"},
            "requires PermissionGroups ExchangeServers",
        ),
        ({"AuthMechanism": "ExchangeServer", "RequireTLS": True}, "Tls is required"),
    ],
)
def test_set_receive_connector_applies_the_auth_mechanism_rules(client, params, fragment):
    message = the_error(client, "EDGE01", "Set-ReceiveConnector", {"Identity": RECEIVE, **params})
    assert fragment in message


def test_flags_are_written_in_the_enums_order(client):
    ps, _ = client.run(
        "EDGE01",
        ("Set-ReceiveConnector", {"Identity": RECEIVE, "AuthMechanism": "ExchangeServer, tls"}),
    )
    assert errors(ps) == []
    _, (connector,) = client.run(
        "EDGE01",
        ("Get-ReceiveConnector", {"Identity": RECEIVE}),
        ("Select-Object", {"Property": ["AuthMechanism"]}),
    )
    assert str(prop(connector, "AuthMechanism")) == "Tls, ExchangeServer"


# --- Test-EdgeSynchronization and services ------------------------------------------------------


def test_per_type_statuses_are_compared_only_with_full_compare_mode(client):
    def send_connector_status(**params: Any) -> str:
        _, (status,) = client.run(
            "EX01",
            ("Test-EdgeSynchronization", {"TargetServer": "EDGE01", **params}),
            ("Select-Object", {"Property": ["SyncStatus", "SendConnectorStatus"]}),
        )
        assert str(prop(status, "SyncStatus")) == "Normal"
        return str(prop(status, "SendConnectorStatus"))

    assert send_connector_status() == "Skipped"
    assert send_connector_status(FullCompareMode=None) == "Synchronized"


def test_service_names_take_wildcards(client):
    ps, output = client.run("EDGE01", ("Get-Service", {"Name": ["MSExchange*"]}))
    assert errors(ps) == [] and [str(s) for s in output] == ["MSExchangeTransport"]
    ps, output = client.run("EDGE01", ("Get-Service", {"Name": ["NoSuchService*"]}))
    assert errors(ps) == [] and output == []  # a pattern that matches nothing is no error
    ps, _ = client.run("EDGE01", ("Get-Service", {"Name": ["NoSuchService"]}))
    assert errors(ps)[0][0] == "Cannot find any service with service name 'NoSuchService'."
