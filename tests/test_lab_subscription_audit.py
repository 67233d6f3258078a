"""The Edge Subscription cmdlets (New-/Remove-/Get-EdgeSubscription, Start-/Test-
EdgeSynchronization) against Microsoft's documentation, as an independent pypsrp client sees them
(raw PowerShell over the lab's WSMan endpoints)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from tests.support.lab import lab_copy
from tests.test_lab_pypsrp_behaviour import Client, errors, prop

SITE = "Default-First-Site-Name"
FILE = r"C:\temp\EdgeSubscriptionInfo.xml"
ARE_YOU_SURE = "Are you sure you want to perform this action?"
NOT_INTERACTIVE = "A command that prompts the user failed because the host program"


@dataclass
class Lab:
    """A raw pypsrp client on a copy of the healthy lab, and that lab's store to look behind it."""

    client: Client
    store: LabStore

    def run(self, server: str, *commands: tuple[str, dict[str, Any]]) -> tuple[Any, list[Any]]:
        return self.client.run(server, *commands)

    def created(self, edge: str = "EDGE01") -> dt.datetime | None:
        """When the organisation's subscription of this Edge was made (None: not subscribed)."""
        sub = self.store.read().subscription(edge)
        return sub.create_utc if sub else None

    def last_sync(self, edge: str = "EDGE01") -> dt.datetime | None:
        replica = self.store.read().server(edge).replica
        return replica.last_sync if replica else None

    def file_written(self, server: str = "EDGE01") -> bool:
        """Whether the subscription file exists (the lab's filesystem, behind the client)."""
        return any(FILE.casefold() == k for k in self.store.read().server(server).files)

    def subscription_file(self, **params: Any) -> bytes:
        """New-EdgeSubscription -FileName on EDGE01, read back as ReadAllBytes would."""
        ps, _ = self.run(
            "EDGE01", ("New-EdgeSubscription", {"FileName": FILE, "Force": None, **params})
        )
        assert errors(ps) == []
        ps, (data,) = self.run(
            "EDGE01", ("Get-Content", {"Path": FILE, "Encoding": "Byte", "ReadCount": 0})
        )
        assert isinstance(data, bytes)
        return data


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    store = lab_copy("healthy", tmp_path / "lab")
    client = Client(LabBackend(store))
    yield Lab(client, store)
    client.close()


def only_error(ps: Any) -> tuple[str, str]:
    ((message, fqid),) = errors(ps)
    return message, fqid


def import_params(data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "FileData": data,
        "Site": SITE,
        "CreateInboundSendConnector": False,
        "CreateInternetSendConnector": False,
        **extra,
    }


# --- New-EdgeSubscription: parameters of the other role are refused, not ignored ---------------


@pytest.mark.parametrize("name", ["CreateInboundSendConnector", "CreateInternetSendConnector"])
def test_connector_switches_are_refused_on_the_edge(lab, name):
    """Microsoft: "only used when you run the command on the Hub Transport server"; a runbook
    that passes $false on the Edge (F10) must not believe it took effect."""
    ps, _ = lab.run(
        "EDGE01", ("New-EdgeSubscription", {"FileName": FILE, "Force": None, name: False})
    )
    message, fqid = only_error(ps)
    assert message == (
        f"The edgebook lab refuses -{name} of New-EdgeSubscription on this server: Exchange uses "
        "it only on a Mailbox server and ignores it here. Give it to New-EdgeSubscription on a "
        "Mailbox server."
    )
    assert "LabParameterNotSimulated," in fqid and fqid.endswith("NewEdgeSubscription")
    assert not lab.file_written()


def test_account_expiry_duration_is_refused_on_a_mailbox_server(lab):
    data = lab.subscription_file()
    before = lab.created()
    ps, _ = lab.run(
        "EX01", ("New-EdgeSubscription", import_params(data, AccountExpiryDuration="01:00:00"))
    )
    message, _ = only_error(ps)
    assert message == (
        "The edgebook lab refuses -AccountExpiryDuration of New-EdgeSubscription on this server: "
        "Exchange uses it only on an Edge Transport server and ignores it here. Give it to "
        "New-EdgeSubscription on an Edge Transport server."
    )
    assert lab.created() == before


# --- New-EdgeSubscription: the bootstrap account's lifetime (F8) and a second file ------------


def test_a_file_past_its_account_expiry_duration_is_refused(lab):
    data = lab.subscription_file(AccountExpiryDuration="00:02:00")
    before = lab.created()
    lab.store.advance(3)
    ps, _ = lab.run("EX01", ("New-EdgeSubscription", import_params(data)))
    message, _ = only_error(ps)
    assert message.startswith("The subscription file failed to load for the following reason:")
    assert "expired" in message and lab.created() == before


def test_less_than_two_minutes_is_refused_and_the_default_is_1440_minutes(lab):
    ps, _ = lab.run(
        "EDGE01",
        (
            "New-EdgeSubscription",
            {"FileName": FILE, "Force": None, "AccountExpiryDuration": "00:01:59"},
        ),
    )
    assert "at least 00:02:00" in only_error(ps)[0] and not lab.file_written()
    data = lab.subscription_file()
    assert b"<Duration>1.00:00:00</Duration>" in data


def test_the_older_of_two_files_no_longer_binds_the_initial_sync(lab):
    older = lab.subscription_file()
    newer = lab.subscription_file()
    for data, result in ((older, "CouldNotConnect"), (newer, "Success")):
        ps, _ = lab.run("EX01", ("New-EdgeSubscription", import_params(data)))
        assert errors(ps) == []  # a second import overwrites the subscription (edge-proc)
        assert sync(lab, "EDGE01")[0][0] == result
    ps, output = lab.run("EX01", ("Get-EdgeSubscription", {"Identity": "EDGE01"}))
    assert errors(ps) == [] and [str(s) for s in output] == ["EDGE01"]


# --- -Confirm and -WhatIf -------------------------------------------------------------------


def test_confirm_asks_before_importing_a_subscription(lab):
    """New-* cmdlets: "specifying the Confirm switch without a value introduces a pause"."""
    data = lab.subscription_file()
    before = lab.created()
    ps, _ = lab.run("EX01", ("New-EdgeSubscription", import_params(data, Confirm=None)))
    message, fqid = only_error(ps)
    assert message.startswith(NOT_INTERACTIVE) and ARE_YOU_SURE in message
    assert "HostFunctionNotImplemented," in fqid
    assert lab.created() == before


def test_confirm_asks_on_the_edge_even_with_force(lab):
    """-Force answers the subscription warning, not the -Confirm pause."""
    ps, _ = lab.run(
        "EDGE01", ("New-EdgeSubscription", {"FileName": FILE, "Force": None, "Confirm": None})
    )
    message, _ = only_error(ps)
    assert ARE_YOU_SURE in message and not lab.file_written()


def sync(lab: Lab, edge: str, **params: Any) -> list[tuple[str, str, int, int, int]]:
    ps, output = lab.run(
        "EX01",
        ("Start-EdgeSynchronization", {"TargetServer": edge, **params}),
        ("Select-Object", {"Property": ["Result", "Type", "Added", "Deleted", "Updated"]}),
    )
    assert errors(ps) == []
    return [
        (
            str(prop(r, "Result")),
            str(prop(r, "Type")),
            prop(r, "Added"),
            prop(r, "Deleted"),
            prop(r, "Updated"),
        )
        for r in output
    ]


def test_start_edge_synchronization_whatif_replicates_nothing(lab):
    before = lab.last_sync()
    lab.store.advance(1)
    assert sync(lab, "EDGE01", WhatIf=None) == []
    assert lab.last_sync() == before


def test_start_edge_synchronization_confirm_asks_first(lab):
    before = lab.last_sync()
    lab.store.advance(1)
    ps, output = lab.run(
        "EX01", ("Start-EdgeSynchronization", {"TargetServer": "EDGE01", "Confirm": None})
    )
    message, _ = only_error(ps)
    assert output == [] and ARE_YOU_SURE in message and "EDGE01" in message
    assert lab.last_sync() == before


# --- Start-EdgeSynchronization: its output objects ----------------------------------------------


def test_sync_results_count_what_changed_on_the_edge(lab):
    sync(lab, "EDGE01")  # the Edge is now up to date
    _, output = lab.run(
        "EX01", ("Get-SendConnector", {}), ("Select-Object", {"Property": ["Name"]})
    )
    name = next(n for n in (str(prop(c, "Name")) for c in output) if n.endswith("to Internet"))
    ps, _ = lab.run("EX01", ("Set-SendConnector", {"Identity": name, "Port": 2525}))
    assert errors(ps) == []
    assert sync(lab, "EDGE01") == [
        ("Success", "Configuration", 0, 0, 1),
        ("Success", "Recipients", 0, 0, 0),
    ]
    assert sync(lab, "EDGE01")[0] == ("Success", "Configuration", 0, 0, 0)


# --- Get-/Remove-EdgeSubscription -Identity: the Edge's host name (or FQDN) ---------------------


def test_get_takes_the_fqdn_and_a_wrong_identity_returns_all(lab):
    fqdn = lab.store.read().server("EDGE01").fqdn
    _, everything = lab.run("EX01", ("Get-EdgeSubscription", {}))
    assert len(everything) == 2
    _, output = lab.run("EX01", ("Get-EdgeSubscription", {"Identity": fqdn.upper()}))
    assert [str(s) for s in output] == ["EDGE01"]
    # Microsoft's caution: "a non-existent value for the Identity parameter returns *all*".
    _, output = lab.run("EX01", ("Get-EdgeSubscription", {"Identity": "EDGE01.nowhere.example"}))
    assert sorted(str(s) for s in output) == sorted(str(s) for s in everything)


def test_remove_does_not_take_another_domain_for_the_edge(lab):
    ps, _ = lab.run(
        "EX01",
        ("Remove-EdgeSubscription", {"Identity": "EDGE01.nowhere.example", "Confirm": False}),
    )
    assert "couldn't be found" in only_error(ps)[0]
    assert lab.created() is not None
    fqdn = lab.store.read().server("EDGE01").fqdn
    ps, _ = lab.run("EX01", ("Remove-EdgeSubscription", {"Identity": fqdn, "Confirm": False}))
    assert errors(ps) == [] and lab.created() is None


def test_remove_whatif_and_unanswered_confirmation_keep_the_subscription(lab):
    ps, _ = lab.run("EX01", ("Remove-EdgeSubscription", {"Identity": "EDGE01", "WhatIf": None}))
    assert errors(ps) == [] and lab.created() is not None
    ps, _ = lab.run("EX01", ("Remove-EdgeSubscription", {"Identity": "EDGE01"}))
    message, _ = only_error(ps)
    assert ARE_YOU_SURE in message and lab.created() is not None


# --- Test-EdgeSynchronization ------------------------------------------------------------------


def status(lab: Lab, **params: Any) -> tuple[list[tuple[str, str]], Any]:
    ps, output = lab.run(
        "EX01",
        ("Test-EdgeSynchronization", {"TargetServer": "EDGE01", **params}),
        ("Select-Object", {"Property": ["SyncStatus", "SendConnectorStatus", "RecipientStatus"]}),
    )
    return errors(ps), output


@pytest.mark.parametrize(
    ("value", "fqid", "text"),
    [
        ("many", "CannotConvertArgumentNoMessage", 'Cannot convert value "many"'),
        (0, "ParameterArgumentValidationError", 'less than the minimum allowed range of "1"'),
    ],
)
def test_max_report_size_takes_unlimited_or_at_least_one(lab, value, fqid, text):
    problems, output = status(lab, MaxReportSize=value)
    ((message, error_id),) = problems
    assert output == [] and text in message and error_id.startswith(fqid + ",")
    for good in (500, "Unlimited"):
        problems, (result,) = status(lab, MaxReportSize=good)
        assert problems == [] and str(prop(result, "SyncStatus")) == "Normal"


def test_recipient_status_is_compared_unless_excluded(lab):
    """-ExcludeRecipientTest: "only the synchronization of configuration objects is validated";
    the per-type statuses are filled only with -FullCompareMode (DOMAIN.md)."""

    def recipients(**params: Any) -> str:
        problems, (result,) = status(lab, **params)
        assert problems == []
        return str(prop(result, "RecipientStatus"))

    assert recipients() == "Skipped"
    assert recipients(FullCompareMode=None) == "Synchronized"
    assert recipients(FullCompareMode=None, ExcludeRecipientTest=None) == "Skipped"
