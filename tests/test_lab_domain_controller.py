"""-DomainController on an Edge Transport server, cmdlet by cmdlet, as Microsoft's pages say:
where the page says "The DomainController parameter isn't supported on Edge Transport servers",
the Edge refuses it (InvalidOperation, nothing changed); a Mailbox server accepts it (the lab has
one directory). Driven by a raw pypsrp client over the lab's WSMan endpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import PowerShell

from edgebook.lab.backend import LabBackend
from edgebook.lab.cmdlets import REGISTRY
from edgebook.lab.org.store import LabStore
from tests.support.lab import lab_copy
from tests.test_lab_certificate_audit import Client, secure

DC = "dc01.contoso.com"
FILE = r"C:\temp\EdgeSubscriptionInfo.xml"
# Microsoft's -DomainController section, word for word, on each page below but Test-
# EdgeSynchronization's (MicrosoftDocs/office-docs-powershell, exchange/exchange-ps/
# ExchangePowerShell/<cmdlet>.md).
NOT_ON_EDGE = (
    "The DomainController parameter isn't supported on Edge Transport servers. An Edge "
    "Transport server uses the local instance of Active Directory Lightweight Directory "
    "Services (AD LDS) to read and write data."
)
# What the Get- cmdlets' objects are compared by (pypsrp cannot read several of the whole
# objects in one output).
KEYS = {
    "Get-ExchangeCertificate": "Thumbprint",
    "Get-SendConnector": "Name",
    "Get-ReceiveConnector": "Name",
    "Get-EdgeSubscription": "Name",
    "Get-TransportService": "Name",
}


class Lab:
    """The certificate audit's client (a host UI, SecureString keys) and the store behind it."""

    def __init__(self, store: LabStore) -> None:
        self.store = store
        self.client = Client(LabBackend(store))

    def run(self, server: str, cmdlet: str, params: dict[str, Any]) -> tuple[list[Any], Any]:
        """(output, error records) of one cmdlet (a Get- cmdlet's: its objects' KEYS); a value
        of None sends a bare switch."""
        ps = PowerShell(self.client.pools[server])
        ps.add_cmdlet(cmdlet)
        for key, value in params.items():
            ps.add_parameter(key, value)
        if cmdlet in KEYS:
            ps.add_cmdlet("Select-Object").add_parameter("ExpandProperty", KEYS[cmdlet])
        output = ps.invoke()
        return output, list(ps.streams.error)

    def state(self, server: str) -> tuple[Any, ...]:
        """What the cmdlets below could change on this server and in the organisation."""
        org = self.store.read()
        own = org.server(server)
        return (
            own.certificates,
            own.internal_transport_thumbprint,
            own.files,
            own.replica,
            own.receive_connectors,
            org.send_connectors,
            org.subscriptions,
        )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(lab_copy("healthy", tmp_path / "lab"))
    yield lab
    lab.client.close()


def other(server: str) -> str:
    return "EX01" if server == "EDGE01" else "EDGE01"


def _import(lab: Lab, server: str) -> dict[str, Any]:
    """A certificate made on the other server, as a .cer file (DER)."""
    thumb = lab.client.new_unused(other(server))
    raw = lab.client.certificate(other(server), thumb, "RawData")["RawData"]
    return {"FileData": bytes(raw)}


def _export(lab: Lab, server: str) -> dict[str, Any]:
    thumb = lab.client.new_unused(server, PrivateKeyExportable=True)
    return {"Thumbprint": thumb, "BinaryEncoded": None, "Password": secure("pw")}


def _new_subscription(lab: Lab, server: str) -> dict[str, Any]:
    """Write the file on the Edge; on a Mailbox server, import one the Edge wrote."""
    on_edge = {"FileName": FILE, "Force": None}
    if server == "EDGE01":
        return on_edge
    lab.client.ok("EDGE01", "New-EdgeSubscription", **on_edge)
    (data,) = lab.client.ok("EDGE01", "Get-Content", Path=FILE, Encoding="Byte", ReadCount=0)
    return {
        "FileData": data,
        "Site": "Default-First-Site-Name",
        "CreateInboundSendConnector": False,
        "CreateInternetSendConnector": False,
    }


# Each cmdlet whose page refuses -DomainController on an Edge: a valid call on that server
# (those that change something would change it, which the refusal must prevent).
REFUSING: dict[str, Callable[[Lab, str], dict[str, Any]]] = {
    "Get-ExchangeCertificate": lambda lab, server: {},
    "Enable-ExchangeCertificate": lambda lab, server: {
        "Thumbprint": lab.client.new_unused(server),
        "Services": "SMTP",
        "Force": None,
    },
    "Import-ExchangeCertificate": _import,
    "Export-ExchangeCertificate": _export,
    "Remove-ExchangeCertificate": lambda lab, server: {
        "Thumbprint": lab.client.new_unused(server),
        "Confirm": False,
    },
    "New-ExchangeCertificate": lambda lab, server: {
        "Services": "None",
        "SubjectName": "CN=dc-test.contoso.com",
    },
    "Get-SendConnector": lambda lab, server: {},
    "Get-ReceiveConnector": lambda lab, server: {},
    "New-EdgeSubscription": _new_subscription,
    "Remove-EdgeSubscription": lambda lab, server: {
        "Identity": "EDGE01",
        "Force": None,
        "Confirm": False,
    },
    "Get-EdgeSubscription": lambda lab, server: {},
    "Get-TransportService": lambda lab, server: {},
}


def test_the_rule_covers_exactly_the_cmdlets_whose_page_says_so():
    """Every lab cmdlet declaring -DomainController is here or is Test-EdgeSynchronization,
    whose page does not refuse it on an Edge."""
    declaring = {c.name for c in REGISTRY.values() if c.param("DomainController")}
    refusing = {
        c.name
        for c in REGISTRY.values()
        if any(p.name == "DomainController" and p.not_on_edge for p in c.params)
    }
    assert refusing == set(REFUSING)
    assert declaring - refusing == {"Test-EdgeSynchronization"}


@pytest.mark.parametrize("cmdlet", sorted(REFUSING))
def test_refused_on_the_edge_before_anything_changes(lab, cmdlet):
    params = REFUSING[cmdlet](lab, "EDGE01")
    before = lab.state("EDGE01")
    output, (error, *more) = lab.run("EDGE01", cmdlet, {**params, "DomainController": DC})
    assert output == [] and more == []
    assert str(error) == NOT_ON_EDGE
    assert error.reason == "InvalidOperationException"
    assert error.target_name == DC
    assert error.fq_error.startswith("[Server=EDGE01] ")
    assert error.fq_error.endswith("." + cmdlet.replace("-", ""))
    assert lab.state("EDGE01") == before
    # the same call without -DomainController is one the Edge runs
    output, errors = lab.run("EDGE01", cmdlet, params)
    assert errors == []


@pytest.mark.parametrize("cmdlet", sorted(REFUSING))
def test_accepted_on_a_mailbox_server(lab, cmdlet):
    params = REFUSING[cmdlet](lab, "EX01")
    output, errors = lab.run("EX01", cmdlet, {**params, "DomainController": DC})
    assert errors == []
    if cmdlet in KEYS:  # the same answer as without it
        again, _ = lab.run("EX01", cmdlet, params)
        assert output == again != []


def test_test_edge_synchronization_keeps_accepting_it(lab):
    """Its page has no Edge sentence: a Mailbox server runs it with -DomainController, and on
    an Edge it fails as it does without (a Mailbox-only task), not with the Edge text."""
    output, errors = lab.run("EX01", "Test-EdgeSynchronization", {"DomainController": DC})
    assert errors == [] and output != []
    _, (with_dc,) = lab.run("EDGE01", "Test-EdgeSynchronization", {"DomainController": DC})
    _, (without,) = lab.run("EDGE01", "Test-EdgeSynchronization", {})
    assert str(with_dc) == str(without) != NOT_ON_EDGE


# Other (cmdlet, parameter) pairs whose Microsoft page says the parameter can't be used on an
# Edge Transport server, with the text the Edge fails with (the lab's wording of Microsoft's
# sentence, which gives no error text) and a valid call naming the server it runs on.
EDGE_REFUSED: dict[tuple[str, str], tuple[str, Callable[[str], dict[str, Any]]]] = {
    # Get-TransportService.md, -Identity: "You can't use this parameter on an Edge Transport
    # server."
    ("Get-TransportService", "Identity"): (
        "The Identity parameter can't be used on an Edge Transport server.",
        lambda server: {"Identity": server},
    ),
}


def test_the_other_edge_refusals_are_exactly_these():
    declared = {
        (c.name, p.name)
        for c in REGISTRY.values()
        for p in c.params
        if p.not_on_edge and p.name != "DomainController"
    }
    assert declared == set(EDGE_REFUSED)


@pytest.mark.parametrize("pair", sorted(EDGE_REFUSED), ids="{0[0]} -{0[1]}".format)
def test_other_parameters_refused_on_the_edge_accepted_on_a_mailbox_server(lab, pair):
    cmdlet, name = pair
    text, call = EDGE_REFUSED[pair]
    params = call("EDGE01")
    before = lab.state("EDGE01")
    output, (error, *more) = lab.run("EDGE01", cmdlet, params)
    assert output == [] and more == []
    assert str(error) == text
    assert error.reason == "InvalidOperationException"
    assert error.target_name == str(params[name])
    assert error.fq_error.startswith("[Server=EDGE01] ")
    assert lab.state("EDGE01") == before
    # without the parameter the Edge runs it
    without = {k: v for k, v in params.items() if k != name}
    _, errors = lab.run("EDGE01", cmdlet, without)
    assert errors == []
    # a Mailbox server takes it, and it changes the answer (a Get- cmdlet: narrows it)
    output, errors = lab.run("EX01", cmdlet, call("EX01"))
    assert errors == []
    if cmdlet in KEYS:
        everything, _ = lab.run("EX01", cmdlet, without)
        assert output == ["EX01"] and set(everything) > {"EX01"}


def test_get_transport_service_refuses_a_positional_identity_on_the_edge(lab):
    """The refusal is the parameter's, however it is bound."""
    ps = PowerShell(lab.client.pools["EDGE01"])
    ps.add_cmdlet("Get-TransportService").add_argument("EDGE01")
    assert ps.invoke() == []
    (error,) = ps.streams.error
    assert str(error) == EDGE_REFUSED["Get-TransportService", "Identity"][0]
