"""The connector and queue cmdlets against Microsoft's documentation, second review, as an
independent pypsrp client sees them: values Exchange cannot convert to its types are refused
(and no longer break the lab's own Get- cmdlets afterwards), connectors are found by GUID, the
queue filter's enum properties take -eq/-ne and the enum's names only, Suspend-/Resume-Queue
-Identity act on a single queue, and a domain-secure send connector keeps DNS routing and
STARTTLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from tests.support.lab import PASSWORD, lab_copy
from tests.test_lab_pypsrp_behaviour import Client, errors, items, prop

RECEIVE = "EDGE01\\Default internal receive connector EDGE01"
HYBRID = "Outbound to Office 365"
CONVERSION = "CannotConvertArgumentNoMessage,Microsoft.Exchange.Management."


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(LabBackend(lab_copy("healthy", tmp_path / "lab")))
    yield client
    client.close()


@pytest.fixture(scope="module")
def retrying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """duplicate-subject built afresh: EDGE01 holds its Submission queue and a queue to Office
    365 in Retry (F2). The tests using it change nothing (their commands are refused)."""
    folder = tmp_path_factory.mktemp("retrying") / "lab"
    LabStore.create(folder, "duplicate-subject", PASSWORD)
    client = Client(LabBackend(LabStore(folder)))
    yield client
    client.close()


def one_error(
    client: Client, server: str, *commands: tuple[str, dict[str, Any]]
) -> tuple[str, str]:
    ps, output = client.run(server, *commands)
    assert output == []
    (error,) = errors(ps)
    return error


def values(client: Client, server: str, read: tuple[str, dict[str, Any]], *names: str) -> dict:
    """Properties of the one object a Get- reads (collections as lists of text)."""
    ps, (obj,) = client.run(server, read, ("Select-Object", {"Property": list(names)}))
    assert errors(ps) == []
    return {n: text(prop(obj, n)) for n in names}


def receive_values(client: Client, *names: str) -> dict[str, Any]:
    """Properties of EDGE01's internal receive connector."""
    return values(client, "EDGE01", ("Get-ReceiveConnector", {"Identity": RECEIVE}), *names)


def text(value: Any) -> Any:
    """A property as text: a collection as the list of its items' texts."""
    return (
        items(value)
        if isinstance(value, list) or getattr(value, "property_sets", None)
        else str(value)
    )


def send_values(client: Client, *names: str) -> dict[str, Any]:
    """Properties of the hybrid send connector as EX01 reads it."""
    return values(client, "EX01", ("Get-SendConnector", {"Identity": HYBRID}), *names)


# --- values that do not convert to Exchange's types ---------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"Bindings": "0.0.0.0"}, "use Address:Port"),  # IPBinding needs the port
        ({"Bindings": ["0.0.0.0:25", "[::]:99999"]}, "out of range"),
        ({"Fqdn": "https://hybrid.contoso.com"}, "Microsoft.Exchange.Data.Fqdn"),
        # Microsoft's capability is AcceptCloudServicesMail (F17): a typo is no capability
        (
            {"TlsDomainCapabilities": "mail.protection.outlook.com:AcceptCloudServiceMail"},
            "'AcceptCloudServiceMail' isn't a capability",
        ),
        ({"TlsDomainCapabilities": "mail.protection.outlook.com"}, "use Domain:Capability"),
    ],
)
def test_set_receive_connector_refuses_values_exchange_cannot_convert(client, params, fragment):
    names = ("Bindings", "Fqdn", "TlsDomainCapabilities")
    before = receive_values(client, *names)
    message, fqid = one_error(
        client, "EDGE01", ("Set-ReceiveConnector", {"Identity": RECEIVE, **params})
    )
    assert fragment in message and message.startswith("Cannot bind parameter")
    assert fqid.startswith(CONVERSION)
    assert receive_values(client, *names) == before  # nothing changed, Get still reads it


def test_bindings_and_capabilities_are_kept_as_exchange_writes_them(client):
    ps, _ = client.run(
        "EDGE01",
        (
            "Set-ReceiveConnector",
            {
                "Identity": RECEIVE,
                "Bindings": [":2525", "[::]:25"],  # an empty address is 0.0.0.0
                "TlsDomainCapabilities": [
                    "mail.protection.outlook.com:acceptcloudservicesmail",
                    "NO-TLS:AcceptOorgHeader,acceptoorgprotocol",
                    "contoso.com:512",
                ],
            },
        ),
    )
    assert errors(ps) == []
    assert receive_values(client, "Bindings", "TlsDomainCapabilities") == {
        "Bindings": ["0.0.0.0:2525", "[::]:25"],
        "TlsDomainCapabilities": [
            "mail.protection.outlook.com:AcceptCloudServicesMail",
            "NO-TLS:AcceptOorgHeader, AcceptOorgProtocol",
            "contoso.com:AcceptCloudServicesMail",
        ],
    }


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"Fqdn": "hybrid contoso com"}, "Microsoft.Exchange.Data.Fqdn"),
        ({"TlsDomain": "mail.protection.outlook.com:443"}, "SmtpDomainWithSubdomains"),
        ({"SmartHosts": ["relay one.contoso.com"]}, "a smart host is an FQDN or an IP address"),
        ({"AddressSpaces": ["SMTP:*;abc"]}, "from 1 through 100"),
        ({"AddressSpaces": ["contoso.com;101"]}, "from 1 through 100"),
        ({"AddressSpaces": ["*contoso.com"]}, "isn't an SMTP address space"),  # Microsoft's example
        ({"AddressSpaces": {"Add": ["smtp:fabrikam.com;0"]}}, "from 1 through 100"),
    ],
)
def test_set_send_connector_refuses_values_exchange_cannot_convert(client, params, fragment):
    names = ("Fqdn", "TlsDomain", "SmartHosts", "AddressSpaces")
    before = send_values(client, *names)
    message, fqid = one_error(client, "EX01", ("Set-SendConnector", {"Identity": HYBRID, **params}))
    assert fragment in message and message.startswith("Cannot bind parameter")
    assert fqid.startswith(CONVERSION)
    assert send_values(client, *names) == before


def test_documented_connector_values_are_accepted(client):
    ps, _ = client.run(
        "EX01",
        (
            "Set-SendConnector",
            {
                "Identity": HYBRID,
                "TlsDomain": "*.protection.outlook.com",
                "SmartHosts": {"Add": ["[10.0.0.25]", "relay.contoso.com"]},
                "AddressSpaces": ["contoso.mail.onmicrosoft.com;1", "SMTP:*.contoso.com"],
            },
        ),
    )
    assert errors(ps) == []
    assert send_values(client, "TlsDomain")["TlsDomain"] == "*.protection.outlook.com"


def test_domain_secure_needs_dns_routing_and_starttls(client):
    """Microsoft's Set-SendConnector page: mutual TLS (DomainSecureEnabled $true) needs
    DNSRoutingEnabled $true and IgnoreSTARTTLS $false."""
    _, output = client.run(
        "EX01", ("Get-SendConnector", {}), ("Select-Object", {"Property": ["Name"]})
    )
    internet = next(n for n in (str(prop(c, "Name")) for c in output) if n.endswith("to Internet"))
    for name, params in (
        (HYBRID, {"DomainSecureEnabled": True}),  # a smart-host connector
        (internet, {"IgnoreSTARTTLS": True}),  # EdgeSync's Internet connector is domain secure
        (internet, {"SmartHosts": ["relay.contoso.com"], "DNSRoutingEnabled": False}),
    ):
        message, _ = one_error(client, "EX01", ("Set-SendConnector", {"Identity": name, **params}))
        assert "DomainSecureEnabled can't be $true" in message
    ps, _ = client.run(
        "EX01",
        (
            "Set-SendConnector",
            {
                "Identity": internet,
                "DomainSecureEnabled": False,
                "SmartHosts": ["relay.contoso.com"],
                "DNSRoutingEnabled": False,
            },
        ),
    )
    assert errors(ps) == []


# --- identities ---------------------------------------------------------------------------------


def test_connectors_are_found_by_their_guid(client):
    """Microsoft's Identity forms include the GUID (Get-/Set-SendConnector and
    Get-/Set-ReceiveConnector pages)."""
    send_guid = send_values(client, "Guid")["Guid"]
    _, (found,) = client.run(
        "EDGE01",
        ("Get-SendConnector", {"Identity": send_guid.upper()}),
        ("Select-Object", {"Property": ["Name"]}),
    )
    assert prop(found, "Name") == HYBRID
    ps, _ = client.run("EX01", ("Set-SendConnector", {"Identity": send_guid, "Enabled": True}))
    assert errors(ps) == []

    _, (receive,) = client.run(
        "EDGE01",
        ("Get-ReceiveConnector", {"Identity": RECEIVE}),
        ("Select-Object", {"Property": ["Guid"]}),
    )
    receive_guid = str(prop(receive, "Guid"))
    for identity in (receive_guid, f"EDGE01\\{{{receive_guid}}}"):
        _, (found,) = client.run(
            "EDGE01",
            ("Get-ReceiveConnector", {"Identity": identity}),
            ("Select-Object", {"Property": ["Identity"]}),
        )
        assert str(prop(found, "Identity")) == RECEIVE
    ps, _ = client.run(
        "EDGE01", ("Set-ReceiveConnector", {"Identity": receive_guid, "Fqdn": "edge01.contoso.com"})
    )
    assert errors(ps) == [] and receive_values(client, "Fqdn")["Fqdn"] == "edge01.contoso.com"
    missing, _ = one_error(client, "EX01", ("Get-SendConnector", {"Identity": "0" * 32}))
    assert "couldn't be found" in missing


# --- queues -------------------------------------------------------------------------------------


def statuses(client: Client) -> dict[str, str]:
    _, output = client.run(
        "EDGE01", ("Get-Queue", {}), ("Select-Object", {"Property": ["Identity", "Status"]})
    )
    return {str(prop(q, "Identity")): str(prop(q, "Status")) for q in output}


@pytest.mark.parametrize("cmdlet", ["Suspend-Queue", "Resume-Queue"])
@pytest.mark.parametrize("identity", ["EDGE01\\*", "*"])
def test_suspend_and_resume_identity_must_name_a_single_queue(retrying, cmdlet, identity):
    """Microsoft: "If the identity matches more than one queue, you receive an error. To
    suspend more than one queue in a single operation, you must use the Filter parameter." """
    before = statuses(retrying)
    assert len(before) == 2
    message, fqid = one_error(retrying, "EDGE01", (cmdlet, {"Identity": identity}))
    assert "matches 2 queues" in message and "Filter parameter" in message
    assert fqid.endswith(f"QueueViewerTasks.{cmdlet.replace('-', '')}")
    assert statuses(retrying) == before


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Status -eq 'Retrying'", "'Retrying' isn't a valid value for Status"),
        ("Status -like 'Ret*'", "-like can't be used with Status"),
        ("DeliveryType -eq 'SmartHost'", "'SmartHost' isn't a valid value for DeliveryType"),
        ("NextHopCategory -contains 'Ext'", "-contains can't be used with NextHopCategory"),
    ],
)
def test_enum_properties_take_eq_ne_and_the_enums_names(retrying, text, why):
    """Microsoft's "Queue properties" page: Status, DeliveryType and NextHopCategory take -eq and
    -ne; a value that is no name of the enum is an error, not an empty answer."""
    message, _ = one_error(retrying, "EDGE01", ("Get-Queue", {"Filter": text}))
    assert f"isn't valid: {why}" in message


def test_enum_values_compare_case_insensitively(retrying):
    (retry,) = [i for i, s in statuses(retrying).items() if s == "Retry"]
    for text, expected in (
        ("status -EQ 'retry'", [retry]),
        ("DeliveryType -eq 'smarthostconnectordelivery'", [retry]),
        ("NextHopCategory -ne 'external'", ["EDGE01\\Submission"]),
    ):
        ps, output = retrying.run("EDGE01", ("Get-Queue", {"Filter": text}))
        assert errors(ps) == [] and [str(prop(q, "Identity")) for q in output] == expected
