"""Second review of the lab's Windows PowerShell 5.1 service cmdlets and read-only monitoring
cmdlets against PowerShell's own source (ServiceCommandBase.MatchingServices,
GetEventLogCommand) and Microsoft's pages, as an independent pypsrp client sees them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebook.lab.backend import LabBackend
from tests.support.lab import lab_copy
from tests.test_lab_pypsrp_behaviour import Client, errors, prop

TRANSPORT = "MSExchangeTransport"
ADAM = "ADAM_MSExchange"
APPLICATION = {"LogName": "Application"}
# what a client reads of an EventLogEntry (pypsrp 0.9.1 cannot read its empty Data byte[])
READ = ("Select-Object", {"Property": ["EventID", "Source", "TimeGenerated"]})
NO_MATCHES = (
    "No matches found",
    "GetEventLogNoEntriesFound,Microsoft.PowerShell.Commands.GetEventLogCommand",
)


def _client(scenario: str, tmp_path: Path) -> Iterator[Client]:
    client = Client(LabBackend(lab_copy(scenario, tmp_path / scenario)))
    yield client
    client.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """The healthy lab: an empty Application log."""
    yield from _client("healthy", tmp_path)


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Client]:
    """The expired lab: event 12014 in the Application log."""
    yield from _client("expired", tmp_path)


def edge(client: Client, *commands: tuple[str, dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(output, [(message, FullyQualifiedErrorId)]) of one pipeline on EDGE01."""
    ps, output = client.run("EDGE01", *commands)
    return output, errors(ps)


def codes(problems: list[Any]) -> list[str]:
    return [fqid.split(",")[0] for _, fqid in problems]


# --- services ------------------------------------------------------------------------------


def test_services_come_sorted_by_service_name_whatever_order_they_were_named_in(client):
    """ServiceCommandBase.MatchingServices sorts what it found by ServiceName (ignoring case)
    before any cmdlet writes or acts on it."""
    output, problems = edge(client, ("Get-Service", {"Name": [TRANSPORT, ADAM]}))
    assert problems == [] and [prop(s, "Name") for s in output] == [ADAM, TRANSPORT]
    output, problems = edge(
        client, ("Start-Service", {"Name": [TRANSPORT, ADAM.lower()], "PassThru": True})
    )
    assert problems == [] and [prop(s, "Name") for s in output] == [ADAM.lower(), TRANSPORT]


def test_a_name_without_wildcards_keeps_the_spelling_it_was_given(client):
    """PowerShell 5.1 makes that ServiceController with ServiceController(name), which keeps the
    caller's spelling: a service name in another case stays its ServiceName (and Name, and the
    messages' label), a display name its DisplayName (ServiceCommandBase's own remark: "the
    resultant ServiceController.ServiceName is the provided serviceName even when that differs
    from the real ServiceName by case"). A pattern finds the services as they are named."""
    output, problems = edge(
        client, ("Get-Service", {"Name": ["msexchangetransport", "microsoft exchange adam"]})
    )
    assert problems == []
    assert [(prop(s, "Name"), prop(s, "ServiceName"), prop(s, "DisplayName")) for s in output] == [
        (ADAM, ADAM, "microsoft exchange adam"),
        ("msexchangetransport", "msexchangetransport", "Microsoft Exchange Transport"),
    ]
    (found,), _ = edge(client, ("Get-Service", {"Name": "msexchange*"}))
    assert prop(found, "Name") == TRANSPORT
    _, problems = edge(client, ("Stop-Service", {"Name": ADAM.lower()}))
    assert problems[0][0].startswith(
        f"Cannot stop service 'Microsoft Exchange ADAM ({ADAM.lower()})'"
    )
    output, problems = edge(
        client,
        ("Get-Service", {"Name": TRANSPORT.upper()}),
        ("Suspend-Service", {"PassThru": True}),
    )
    assert problems == [] and [(prop(s, "Name"), str(prop(s, "Status"))) for s in output] == [
        (TRANSPORT.upper(), "Paused")
    ]


def test_a_stopped_service_accepts_no_control(client):
    """CanStop, CanPauseAndContinue and CanShutdown are the controls the service accepts now:
    all False while it is stopped (PowerShell's DoStopService: "CanStop will be set false if the
    service is not running"); a paused transport still accepts stop and continue."""
    can = ["CanStop", "CanPauseAndContinue", "CanShutdown"]

    def controls() -> list[bool]:
        (service,), _ = edge(client, ("Get-Service", {"Name": TRANSPORT}))
        return [prop(service, name) for name in can]

    assert controls() == [True, True, True]
    edge(client, ("Suspend-Service", {"Name": TRANSPORT}))
    assert controls() == [True, True, True]
    edge(client, ("Stop-Service", {"Name": TRANSPORT}))
    assert controls() == [False, False, False]
    # the same object, as ADAM's dependent
    (dependent,), _ = edge(client, ("Get-Service", {"Name": ADAM, "DependentServices": True}))
    assert [prop(dependent, name) for name in can] == [False, False, False]


def waiting(client: Client, *commands: tuple[str, dict[str, Any]]) -> tuple[list[str], list[Any]]:
    """(warnings, errors) of one pipeline on EDGE01."""
    ps, _ = client.run("EDGE01", *commands)
    return [str(w.message) for w in ps.streams.warning], errors(ps)


def test_waiting_for_transport_is_powershells_warning(client):
    """DoWaitForStatus writes "Waiting for service '<display> (<name>)' to stop/start..." each
    2 seconds a service stays pending; transport takes longer (lab: once per wait), a service
    already in its state is not waited for. -WarningAction Stop then stops the command."""
    label = f"Microsoft Exchange Transport ({TRANSPORT})"
    assert waiting(client, ("Restart-Service", {"Name": TRANSPORT})) == (
        [f"Waiting for service '{label}' to stop...", f"Waiting for service '{label}' to start..."],
        [],
    )
    assert waiting(client, ("Start-Service", {"Name": TRANSPORT})) == ([], [])
    # .NET's Stop() stops the dependent itself; PowerShell then waits for it to start again
    assert waiting(client, ("Restart-Service", {"Name": ADAM, "Force": True})) == (
        [f"Waiting for service '{label}' to start..."],
        [],
    )
    _, problems = waiting(client, ("Stop-Service", {"Name": TRANSPORT, "WarningAction": "Stop"}))
    assert codes(problems) == ["ActionPreferenceStop"]
    assert waiting(client, ("Stop-Service", {"Name": TRANSPORT})) == ([], [])


# --- Get-EventLog --------------------------------------------------------------------------


def test_newest_zero_reads_nothing_and_reports_nothing(client, logged):
    """GetEventLogCommand.Process returns at once for -Newest 0 (its ValidateRange allows 0)."""
    for lab in (client, logged):
        assert edge(lab, ("Get-EventLog", {**APPLICATION, "Newest": 0})) == ([], [])
    output, problems = edge(client, ("Get-EventLog", {**APPLICATION, "Newest": 1}))
    assert output == [] and problems == [NO_MATCHES]  # an empty log still says so


def test_no_matches_found_is_not_written_once_a_date_or_pattern_filter_was_reached(logged):
    """FiltersMatch clears the error for a wildcard -Source or -Message, -UserName, -After or
    -Before it evaluates: the inspect phase's `-Source MSExchangeTransport -After <t>` on a real
    server (whose log has that source's older entries) answers nothing, not an error."""
    future = "2099-01-01T00:00:00Z"
    quiet = [
        {"Source": "MSExchangeTransport", "After": future},
        {"Before": "2000-01-01T00:00:00Z"},
        {"Source": "NoSuch*"},
        {"Message": "*no such text*"},
        {"UserName": "CONTOSO\\nobody"},
    ]
    for given in quiet:
        assert edge(logged, ("Get-EventLog", {**APPLICATION, **given})) == ([], []), given
    loud = [
        {"Source": "NoSuch"},
        {"Source": "NoSuch", "After": future},  # the source is checked first: dates not reached
        {"InstanceId": ["12014"]},
        {"EntryType": ["Warning"], "Message": "*x*"},
    ]
    for given in loud:
        assert edge(logged, ("Get-EventLog", {**APPLICATION, **given})) == ([], [NO_MATCHES])


def test_after_later_than_before_matches_either_side(logged):
    """When -After is not before -Before, FiltersMatch takes the entries after -After OR before
    -Before (the window's outside)."""
    (entry,), _ = edge(logged, ("Get-EventLog", {**APPLICATION, "Newest": 1}), READ)
    written = dt.datetime.fromisoformat(str(prop(entry, "TimeGenerated")))
    after = (written + dt.timedelta(days=1)).isoformat()
    before = (written + dt.timedelta(hours=1)).isoformat()
    output, problems = edge(
        logged, ("Get-EventLog", {**APPLICATION, "After": after, "Before": before}), READ
    )
    assert problems == [] and [prop(e, "EventID") for e in output] == [12014]
    output, problems = edge(
        logged, ("Get-EventLog", {**APPLICATION, "After": before, "Before": after})
    )
    assert (output, problems) == ([], [])


def test_log_names_as_get_eventlog_resolves_them(logged):
    """An unknown log is .NET's InvalidOperationException, terminating, as EventLogNotFound; a
    pattern reads the one log it matches, or writes nothing; a Windows log the lab keeps no
    entries of is refused, not reported missing; the aliases LN and ABO bind."""
    _, problems = edge(logged, ("Get-EventLog", {"LogName": "NoSuchLog"}))
    assert problems == [
        (
            "The event log 'NoSuchLog' on computer '.' does not exist.",
            "EventLogNotFound,Microsoft.PowerShell.Commands.GetEventLogCommand",
        )
    ]
    output, problems = edge(logged, ("Get-EventLog", {"LogName": "Applic*", "Newest": 1}), READ)
    assert problems == [] and [prop(e, "EventID") for e in output] == [12014]
    assert edge(logged, ("Get-EventLog", {"LogName": "NoSuch*"})) == ([], [])
    _, problems = edge(logged, ("Get-EventLog", {"LogName": "System", "Newest": 5}))
    assert codes(problems) == ["LabParameterNotSimulated"] and "System" in problems[0][0]
    output, problems = edge(
        logged, ("Get-EventLog", {"LN": "Application", "ABO": "MSExchange*", "Newest": 1}), READ
    )
    assert problems == [] and [prop(e, "Source") for e in output] == [TRANSPORT]


@pytest.mark.parametrize(("name", "value", "low"), [("InstanceId", "-1", 0), ("Index", "0", 1)])
def test_instance_id_and_index_are_range_checked(client, name, value, low):
    """-InstanceId is ValidateRange(0, Int64.MaxValue), -Index ValidateRange(1, ...)."""
    _, problems = edge(client, ("Get-EventLog", {**APPLICATION, name: [value]}))
    assert problems == [
        (
            f"Cannot validate argument on parameter '{name}'. The {value} argument is less than "
            f"the minimum allowed range of {low}. Supply an argument that is greater than or "
            f"equal to {low} and then try the command again.",
            "ParameterArgumentValidationError,Microsoft.PowerShell.Commands.GetEventLogCommand",
        )
    ]


# --- Get-ServerHealth / Get-HealthReport ---------------------------------------------------


def test_server_health_has_the_health_group_microsofts_page_formats(client):
    """Microsoft's "Manage health sets and server health" formats Get-ServerHealth as Server,
    CurrentHealthSetState, Name, HealthSetName, AlertValue, HealthGroupName."""
    shown = ["Server", "CurrentHealthSetState", "Name", "HealthSetName", "AlertValue"]
    output, problems = edge(
        client,
        ("Get-ServerHealth", {"Identity": "EDGE01"}),
        ("Select-Object", {"Property": [*shown, "HealthGroupName"]}),
    )
    assert problems == [] and output
    assert {prop(row, "HealthGroupName") for row in output} == {"ServiceComponents"}


def test_health_report_rolls_the_health_set_up_to_its_worst_monitor(client):
    """Get-HealthReport -Identity <server>: a row per health set with the columns of
    Microsoft's example (Server State HealthSet AlertValue LastTransitionTime MonitorCount);
    the set reports the "worst of" its monitors."""
    (row,), problems = edge(client, ("Get-HealthReport", {"Identity": "EDGE01"}))
    monitors, _ = edge(client, ("Get-ServerHealth", {"Identity": "EDGE01"}))
    assert problems == [] and row.types[0] == "Microsoft.Exchange.Monitoring.ConsolidatedHealth"
    assert (prop(row, "Server"), prop(row, "HealthSet")) == ("EDGE01", "EdgeTransport")
    assert str(prop(row, "AlertValue")) == "Healthy"
    assert prop(row, "MonitorCount") == len(monitors)
    assert {"State", "LastTransitionTime"} <= set(row.adapted_properties)
    edge(client, ("Stop-Service", {"Name": TRANSPORT}))
    (row,), _ = edge(client, ("Get-HealthReport", {"Identity": "edge01.contoso.com"}))
    assert str(prop(row, "AlertValue")) == "Unhealthy"
    assert edge(client, ("Get-HealthReport", {"Identity": "EDGE01", "HealthSet": "AD"})) == ([], [])
    _, problems = edge(client, ("Get-HealthReport", {"Identity": "EDGE01", "RollupGroup": True}))
    assert codes(problems) == ["LabParameterNotSimulated"]


def test_an_event_log_entry_carries_its_empty_data_as_on_a_server(logged):
    """EventLogEntry.Data is a byte[] (empty for Exchange's events) that remoting sends as an
    empty <BA>: pypsrp 0.9.1 fails on it, so a runbook must project (as inspect does) in the
    lab as against a real server."""
    with pytest.raises(TypeError):
        edge(logged, ("Get-EventLog", {**APPLICATION, "Newest": 1}))
    (entry,), problems = edge(
        logged,
        ("Get-EventLog", {**APPLICATION, "Newest": 1}),
        ("Select-Object", {"Property": ["EventID", "Site", "Container"]}),
    )
    assert problems == [] and prop(entry, "EventID") == 12014
    assert (prop(entry, "Site"), prop(entry, "Container")) == (None, None)
