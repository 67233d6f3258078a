"""A second review of the Edge Subscription cmdlets and of the lab's PowerShell parameter binding
against Microsoft's documentation and PowerShell's binder, as an independent raw-pypsrp client
sees them: what passes here must not fail on a real server for a binding reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebook.lab.backend import LabBackend
from edgebook.lab.cmdlets import REGISTRY
from edgebook.lab.cmdlets.subscriptions import file_key
from edgebook.lab.org.store import LabStore
from tests.support.lab import lab_copy
from tests.test_lab_pypsrp_behaviour import Client, errors

SITE = "Default-First-Site-Name"
FILE = r"C:\temp\EdgeSubscriptionInfo.xml"
MISSING = r"C:\temp\no-such-file.xml"
TASK = "Microsoft.Exchange.Management.SystemConfigurationTasks.NewEdgeSubscription"
REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "exchange-cmdlets.json").read_text(encoding="utf-8")
)


class Lab:
    """A raw pypsrp client on a copy of the healthy lab, and the store behind it."""

    def __init__(self, store: LabStore) -> None:
        self.store = store
        self.client = Client(LabBackend(store))

    def run(self, server: str, *commands: tuple[str, dict[str, Any]]) -> tuple[Any, list[Any]]:
        return self.client.run(server, *commands)

    def errors(self, server: str, *commands: tuple[str, dict[str, Any]]) -> list[tuple[str, str]]:
        ps, _ = self.run(server, *commands)
        return errors(ps)

    def exists(self, path: str = FILE) -> bool:
        """Whether a file exists on EDGE01 (the lab's filesystem, behind the client)."""
        return file_key(path) in self.store.read().server("EDGE01").files

    def file(self) -> bytes | None:
        """The subscription file on EDGE01 as ReadAllBytes would read it (None: not there)."""
        if not self.exists():
            return None
        _, (data,) = self.run(
            "EDGE01", ("Get-Content", {"Path": FILE, "Encoding": "Byte", "ReadCount": 0})
        )
        assert isinstance(data, bytes)
        return data

    def subscribed_at(self, edge: str = "EDGE01") -> Any:
        sub = self.store.read().subscription(edge)
        return sub.create_utc if sub else None


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(lab_copy("healthy", tmp_path / "lab"))
    yield lab
    lab.client.close()


def new_file(lab: Lab, **params: Any) -> list[tuple[str, str]]:
    return lab.errors("EDGE01", ("New-EdgeSubscription", {"FileName": FILE, **params}))


# --- Boolean and SwitchParameter take $true/$false or a number, never text ----------------------


@pytest.mark.parametrize(
    ("name", "value", "net_type"),
    [
        ("CreateInternetSendConnector", "false", "System.Boolean"),
        ("CreateInboundSendConnector", "$false", "System.Boolean"),
        ("Force", "true", "System.Management.Automation.SwitchParameter"),
        ("Confirm", "false", "System.Management.Automation.SwitchParameter"),
    ],
)
def test_a_boolean_or_switch_given_text_is_powershells_conversion_error(lab, name, value, net_type):
    """PowerShell's CoerceTypeAsNeeded: a Boolean or SwitchParameter accepts a Boolean or a
    number only; a runbook sending "false" as text fails on a server (before the lab took it)."""
    assert new_file(lab, Force=None) == []
    data = lab.file()
    before = lab.subscribed_at()
    ps, _ = lab.run(
        "EX01",
        ("New-EdgeSubscription", {"FileData": data, "Site": SITE, name: value}),
    )
    assert errors(ps) == [
        (
            f"Cannot convert 'System.String' to the type '{net_type}' required by parameter "
            f"'{name}'. ",
            f"CannotConvertArgument,{TASK}",
        )
    ]
    assert lab.subscribed_at() == before


def test_booleans_and_numbers_still_bind(lab):
    assert new_file(lab, Force=True) == []
    data = lab.file()
    params = {"FileData": data, "Site": SITE, "Confirm": False}
    ps, _ = lab.run(
        "EX01",
        (
            "New-EdgeSubscription",
            {**params, "CreateInboundSendConnector": 0, "CreateInternetSendConnector": False},
        ),
    )
    assert errors(ps) == [] and lab.subscribed_at() is not None


# --- -AccountExpiryDuration is read as .NET reads a TimeSpan ------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [
        # Microsoft: "The default value is 24:00:00": as text .NET refuses it (hours are 0-23).
        ("24:00:00", "at least one of the numeric components is out of range"),
        ("00:60:00", "at least one of the numeric components is out of range"),
        ("one day", "String was not recognized as a valid TimeSpan."),
    ],
)
def test_a_timespan_out_of_range_is_refused_as_net_refuses_it(lab, value, error):
    problems = new_file(lab, Force=None, AccountExpiryDuration=value)
    ((message, fqid),) = problems
    assert message.startswith(
        f"Cannot bind parameter 'AccountExpiryDuration'. Cannot convert value \"{value}\" to "
        'type "System.TimeSpan". Error: "'
    )
    assert error in message and fqid.startswith("CannotConvertArgumentNoMessage,")
    assert lab.file() is None


@pytest.mark.parametrize(
    ("value", "duration"),
    [
        ("1.00:00:00", "1.00:00:00"),
        ("23:59", "23:59:00"),
        ("2", "2.00:00:00"),  # a bare number is days for TimeSpan.Parse
        ("1:02:03:04", "1.02:03:04"),
    ],
)
def test_a_valid_timespan_sets_the_file_duration(lab, value, duration):
    assert new_file(lab, Force=None, AccountExpiryDuration=value) == []
    data = lab.file()
    assert data is not None and f"<Duration>{duration}</Duration>".encode() in data


def test_a_number_is_ticks_so_too_short(lab):
    """PowerShell converts a number to a TimeSpan of that many ticks (600000000 = 1 minute)."""
    ((message, _),) = new_file(lab, Force=None, AccountExpiryDuration=600_000_000)
    assert "at least 00:02:00" in message and lab.file() is None


# --- Common parameters: aliases, ActionPreference values, ShouldProcess ------------------------


@pytest.mark.parametrize(
    "action", [{"ea": "SilentlyContinue"}, {"EA": 0}, {"ErrorAction": "Ignore"}]
)
def test_error_action_by_alias_or_number_silences_a_non_terminating_error(lab, action):
    ps, output = lab.run("EDGE01", ("Get-Content", {"Path": MISSING, **action}))
    assert errors(ps) == [] and output == []


@pytest.mark.parametrize(("action", "stops"), [(1, True), ("stop", True), (2, False)])
def test_error_action_stop_by_number_stops_at_the_first_error(lab, action, stops):
    """ActionPreference 1 is Stop: the missing path ends Remove-Item before the next one."""
    assert new_file(lab, Force=None) == [] and lab.exists()
    ps, _ = lab.run("EDGE01", ("Remove-Item", {"Path": [MISSING, FILE], "ErrorAction": action}))
    ((message, _),) = errors(ps)
    assert "because it does not exist" in message and lab.exists() is stops


def test_an_unknown_action_preference_is_refused(lab):
    ((message, fqid),) = lab.errors("EX01", ("Get-EdgeSubscription", {"ErrorAction": "Quiet"}))
    assert message.startswith(
        "Cannot bind parameter 'ErrorAction'. Cannot convert value \"Quiet\" to type "
        '"System.Management.Automation.ActionPreference". Error: "Unable to match the '
        "identifier name Quiet to a valid enumerator name."
    )
    assert "SilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend" in message
    assert fqid.startswith("CannotConvertArgumentNoMessage,")


def test_should_process_aliases_bind(lab):
    """-cf and -wi are the aliases of -Confirm and -WhatIf (Microsoft's parameter blocks)."""
    assert lab.errors("EX01", ("Remove-EdgeSubscription", {"Identity": "EDGE01", "wi": None})) == []
    assert lab.subscribed_at() is not None
    assert (
        lab.errors("EX01", ("Remove-EdgeSubscription", {"Identity": "EDGE01", "cf": False})) == []
    )
    assert lab.subscribed_at() is None


@pytest.mark.parametrize("name", ["WhatIf", "Confirm", "wi"])
def test_a_get_cmdlet_has_no_whatif_or_confirm(lab, name):
    """Get-EdgeSubscription does not support ShouldProcess: PowerShell knows no such parameter."""
    ((message, fqid),) = lab.errors("EX01", ("Get-EdgeSubscription", {name: None}))
    assert message == f"A parameter cannot be found that matches parameter name '{name}'."
    assert fqid.startswith("NamedParameterNotFound,")
    assert lab.errors("EX01", ("Test-EdgeSynchronization", {name: False})) == []


def test_whatif_and_confirm_exist_where_microsoft_documents_them() -> None:
    """Each lab cmdlet Microsoft documents has -WhatIf/-Confirm exactly where its page does."""
    documented: dict[str, set[str]] = {}
    for entry in REFERENCE["entries"]:
        if entry.get("parameter"):
            documented.setdefault(entry["cmdlet"], set()).add(entry["parameter"])
    checked = [name for name in documented if name.casefold() in REGISTRY]
    assert len(checked) >= 10
    for name in checked:
        assert REGISTRY[name.casefold()].should_process == ("WhatIf" in documented[name]), name


# --- Parameter names: prefixes and repeats ------------------------------------------------------


def test_a_prefix_of_a_cmdlet_parameter_and_a_common_one_binds_the_cmdlets(lab):
    """PowerShell's GetMatchingParameter prefers the cmdlet's own parameter over a common one:
    -D is -DomainController (not also -Debug), -Ver is -VerifyRecipient (not also -Verbose)."""
    ps, output = lab.run("EX01", ("Get-EdgeSubscription", {"D": "dc01.contoso.com"}))
    assert errors(ps) == [] and len(output) == 2
    ((message, fqid),) = lab.errors("EX01", ("Test-EdgeSynchronization", {"Ver": "kate@x.com"}))
    assert "VerifyRecipient parameter" in message and fqid.startswith("LabParameterNotSimulated,")
    ((message, _),) = lab.errors("EX01", ("Get-EdgeSubscription", {"W": "x"}))
    assert message == (
        "Parameter cannot be processed because the parameter name 'W' is ambiguous. Possible "
        "matches include: -WarningAction -WarningVariable."
    )


@pytest.mark.parametrize(
    ("second", "params"),
    [
        ("Ident", {"Identity": "EDGE01", "Ident": "EDGE02", "Confirm": False}),
        ("cf", {"Identity": "EDGE01", "Confirm": False, "cf": False}),
        ("ea", {"Identity": "EDGE01", "Confirm": False, "ErrorAction": "Stop", "ea": "Stop"}),
    ],
)
def test_a_parameter_given_twice_is_parameter_already_bound(lab, second, params):
    ((message, fqid),) = lab.errors("EX01", ("Remove-EdgeSubscription", params))
    assert message.startswith(
        f"Cannot bind parameter because parameter '{second}' is specified more than once."
    )
    assert fqid.startswith("ParameterAlreadyBound,") and lab.subscribed_at() is not None


# --- Start-EdgeSynchronization -Server -------------------------------------------------------


def test_start_edge_synchronization_on_an_edge_is_not_advised(lab):
    """-Server names "the Exchange server where you want to run this command"; EdgeSync runs on
    Mailbox servers only, so the lab must not tell the caller to run it on the Edge."""
    ((message, _),) = lab.errors("EX01", ("Start-EdgeSynchronization", {"Server": "EDGE01"}))
    assert "EdgeSync runs on Mailbox servers only" in message and "itself" not in message


# --- New-EdgeSubscription -FileName: "the full path of the Edge Subscription file" -------------


def test_file_name_must_be_a_full_path_and_not_a_folder(lab):
    ((message, _),) = new_file(lab, Force=None, FileName="EdgeSubscription.xml")
    assert "needs the full path of the Edge Subscription file" in message
    assert not lab.exists("EdgeSubscription.xml")
    ((message, _),) = new_file(lab, Force=None, FileName="C:\\temp")
    assert message == "Access to the path 'C:\\temp' is denied."
    assert new_file(lab, Force=None) == [] and lab.exists()


def test_file_name_in_a_missing_folder_fails_as_a_net_write_does(lab):
    """Microsoft does not say New-EdgeSubscription creates folders; the lab does not, so a
    runbook that relies on it fails here as on a server where .NET's write fails."""
    path = "C:\\ProgramData\\nosuchfolder\\EdgeSubscription.xml"
    ((message, _),) = new_file(lab, Force=None, FileName=path)
    assert message == f"Could not find a part of the path '{path}'."
    assert not lab.exists(path)


def test_a_boolean_sent_without_a_value_is_null_not_true(lab):
    """pypsrp's add_parameter(name) sends $null: a SwitchParameter is then present, a Boolean
    refuses it (so the connectors are not silently created, F10)."""
    assert new_file(lab, Force=None) == []
    data, before = lab.file(), lab.subscribed_at()
    ps, _ = lab.run(
        "EX01",
        (
            "New-EdgeSubscription",
            {"FileData": data, "Site": SITE, "CreateInternetSendConnector": None},
        ),
    )
    assert errors(ps) == [
        (
            "Cannot bind argument to parameter 'CreateInternetSendConnector' because it is null.",
            f"ParameterArgumentValidationErrorNullNotAllowed,{TASK}",
        )
    ]
    assert lab.subscribed_at() == before
