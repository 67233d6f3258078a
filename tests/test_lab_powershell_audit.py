"""The lab's Windows PowerShell 5.1 service, file, utility and event log cmdlets against
Microsoft's documentation and PowerShell's own error records, as an independent pypsrp client
sees them (raw PowerShell over the lab's WSMan endpoints)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import PowerShell

from edgebook.config import load_inventory
from edgebook.exchange.command import Command
from edgebook.exchange.connect import resolve_credentials, shell_factory
from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.lab.backend import LabBackend
from edgebook.lab.cmdlets.binding import INPUT_NOT_BOUND
from edgebook.lab.cmdlets.transport import event_object
from edgebook.lab.org.store import LabStore, clock
from edgebook.phases.inspect import _server_clock
from tests.support.lab import lab_copy
from tests.support.pypsrp_pools import close_pools, open_pools
from tests.test_lab_pypsrp_behaviour import Client, errors, prop

TRANSPORT = "MSExchangeTransport"
ADAM = "ADAM_MSExchange"
TRANSPORT_LABEL = f"Microsoft Exchange Transport ({TRANSPORT})"
ADAM_LABEL = f"Microsoft Exchange ADAM ({ADAM})"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(LabBackend(lab_copy("healthy", tmp_path / "lab")))
    yield client
    client.close()


def edge(client: Client, *commands: tuple[str, dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(output, [(message, FullyQualifiedErrorId)]) of one pipeline on EDGE01."""
    ps, output = client.run("EDGE01", *commands)
    return output, errors(ps)


def states(client: Client) -> dict[str, str]:
    output, _ = edge(client, ("Get-Service", {"Name": [TRANSPORT, ADAM]}))
    return {prop(s, "Name"): str(prop(s, "Status")) for s in output}


def codes(problems: list[Any]) -> list[str]:
    return [fqid.split(",")[0] for _, fqid in problems]


# --- services ------------------------------------------------------------------------------


def test_stop_service_force_passes_through_the_dependent_it_stopped(client):
    output, problems = edge(
        client, ("Stop-Service", {"Name": ADAM, "Force": True, "PassThru": True})
    )
    assert problems == []
    assert [prop(s, "Name") for s in output] == [TRANSPORT, ADAM]
    assert [str(prop(s, "Status")) for s in output] == ["Stopped", "Stopped"]


def test_stop_without_force_names_powershells_error(client):
    _, problems = edge(client, ("Stop-Service", {"Name": ADAM}))
    assert problems == [
        (
            f"Cannot stop service '{ADAM_LABEL}' because it has dependent services. It can only "
            "be stopped if the Force flag is set.",
            "ServiceHasDependentServices,Microsoft.PowerShell.Commands.StopServiceCommand",
        )
    ]
    assert states(client) == {TRANSPORT: "Running", ADAM: "Running"}


def test_start_service_starts_the_stopped_dependency_first(client):
    edge(client, ("Stop-Service", {"Name": ADAM, "Force": True}))
    output, problems = edge(client, ("Start-Service", {"Name": TRANSPORT, "PassThru": True}))
    assert problems == []
    assert [prop(s, "Name") for s in output] == [TRANSPORT]
    assert states(client) == {TRANSPORT: "Running", ADAM: "Running"}


def test_start_service_on_a_paused_service_fails_and_leaves_it_paused(client):
    edge(client, ("Suspend-Service", {"Name": TRANSPORT}))
    output, problems = edge(client, ("Start-Service", {"Name": TRANSPORT, "PassThru": True}))
    assert output == []
    assert problems == [
        (
            f"Failed to start service '{TRANSPORT_LABEL}'.",
            "StartServiceFailed,Microsoft.PowerShell.Commands.StartServiceCommand",
        )
    ]
    assert states(client)[TRANSPORT] == "Paused"
    edge(client, ("Resume-Service", {"Name": TRANSPORT}))
    output, problems = edge(client, ("Start-Service", {"Name": TRANSPORT, "PassThru": True}))
    assert problems == [] and [str(prop(s, "Status")) for s in output] == ["Running"]


def test_suspend_and_resume_errors_are_powershells_two_records(client):
    _, problems = edge(client, ("Suspend-Service", {"Name": ADAM}))
    assert problems == [
        (
            f"Service '{ADAM_LABEL}' cannot be suspended because the service does not support "
            "being suspended or resumed.",
            "CouldNotSuspendServiceNotSupported,Microsoft.PowerShell.Commands.SuspendServiceCommand",
        ),
        (
            f"Service '{ADAM_LABEL}' cannot be suspended due to the following error: Cannot "
            f"pause {ADAM} service on computer '.'.",
            "CouldNotSuspendService,Microsoft.PowerShell.Commands.SuspendServiceCommand",
        ),
    ]
    _, problems = edge(client, ("Resume-Service", {"Name": ADAM}))
    assert problems[0][0] == (
        f"Service '{ADAM_LABEL}' cannot be resumed because the service does not support being "
        "suspended or resumed."
    )
    edge(client, ("Stop-Service", {"Name": TRANSPORT}))
    _, problems = edge(client, ("Suspend-Service", {"Name": TRANSPORT}))
    assert codes(problems) == ["CouldNotSuspendServiceNotRunning", "CouldNotSuspendService"]
    assert problems[0][0].endswith("cannot be suspended because it is not currently running.")


def test_get_service_display_name_include_exclude_and_wildcards(client):
    output, problems = edge(client, ("Get-Service", {"DisplayName": "Microsoft Exchange *"}))
    assert problems == [] and [prop(s, "Name") for s in output] == [ADAM, TRANSPORT]
    output, _ = edge(client, ("Get-Service", {"Name": "*", "Exclude": ["ADAM*"]}))
    assert [prop(s, "Name") for s in output] == [TRANSPORT]
    output, _ = edge(client, ("Get-Service", {"Include": ["*Transport"]}))
    assert [prop(s, "Name") for s in output] == [TRANSPORT]
    output, problems = edge(client, ("Get-Service", {"DisplayName": "No Such Service"}))
    assert output == [] and problems == [
        (
            "Cannot find any service with display name 'No Such Service'.",
            "NoServiceFoundForGivenDisplayName,Microsoft.PowerShell.Commands.GetServiceCommand",
        )
    ]
    _, problems = edge(client, ("Get-Service", {"Name": "NoSuchService"}))
    assert codes(problems) == ["NoServiceFoundForGivenName"]


def test_get_service_dependent_and_required_services(client):
    output, _ = edge(client, ("Get-Service", {"Name": ADAM, "DependentServices": True}))
    assert [prop(s, "Name") for s in output] == [TRANSPORT]
    output, _ = edge(client, ("Get-Service", {"Name": TRANSPORT, "RequiredServices": True}))
    assert [prop(s, "Name") for s in output] == [ADAM]


def test_service_controllers_bind_to_input_object(client):
    output, problems = edge(
        client,
        ("Get-Service", {"DisplayName": "Microsoft Exchange Transport"}),
        ("Suspend-Service", {"PassThru": True}),
    )
    assert problems == [] and [str(prop(s, "Status")) for s in output] == ["Paused"]
    output, problems = edge(client, ("Get-Service", {"InputObject": TRANSPORT}))
    assert problems == [] and [prop(s, "Name") for s in output] == [TRANSPORT]


def test_what_the_lab_cannot_do_for_services_is_refused(client):
    _, problems = edge(client, ("Stop-Service", {"Name": TRANSPORT, "NoWait": True}))
    assert "does not simulate the NoWait parameter" in problems[0][0]
    assert states(client)[TRANSPORT] == "Running"
    _, problems = edge(client, ("Get-Service", {"Name": TRANSPORT, "ComputerName": "EX01"}))
    assert "does not simulate the ComputerName parameter" in problems[0][0]
    output, problems = edge(client, ("Get-Service", {"Name": TRANSPORT, "ComputerName": "."}))
    assert problems == [] and len(output) == 1


def test_snapin_patterns(client):
    output, problems = edge(client, ("Get-PSSnapin", {"Name": "Microsoft.Exchange*"}))
    assert problems == [] and [str(s) for s in output] == [EXCHANGE_SNAPIN]
    _, problems = edge(client, ("Add-PSSnapin", {"Name": "NoSuch.*"}))
    assert problems == []
    _, problems = edge(client, ("Add-PSSnapin", {"Name": "NoSuch.*", "PassThru": True}))
    assert codes(problems) == ["NoPSSnapInsFound"]
    _, problems = edge(client, ("Add-PSSnapin", {"Name": "Microsoft.Exchange.*"}))
    assert codes(problems) == ["AddPSSnapInRead"] and "already added" in problems[0][0]


CORE_SNAPIN = "Microsoft.PowerShell.Core"


def test_get_pssnapin_lists_the_core_snapin_before_added_ones(client):
    """Windows PowerShell 5.1 loads Microsoft.PowerShell.Core in every session (Get-PSSnapin's
    documentation); it is not a registered snap-in."""
    output, problems = edge(client, ("Get-PSSnapin", {}))
    assert problems == [] and [prop(s, "Name") for s in output] == [CORE_SNAPIN, EXCHANGE_SNAPIN]
    core = output[0]
    assert core.types[0] == "System.Management.Automation.PSSnapInInfo"
    assert prop(core, "IsDefault") is True and prop(output[1], "IsDefault") is False
    assert prop(core, "Description") == (
        "This Windows PowerShell snap-in contains cmdlets used to manage components of Windows "
        "PowerShell."
    )
    output, _ = edge(client, ("Get-PSSnapin", {"Name": ["Microsoft.PowerShell.*"]}))
    assert [prop(s, "Name") for s in output] == [CORE_SNAPIN]
    output, problems = edge(client, ("Get-PSSnapin", {"Registered": True}))
    assert problems == [] and [prop(s, "Name") for s in output] == [EXCHANGE_SNAPIN]
    _, problems = edge(client, ("Get-PSSnapin", {"Name": CORE_SNAPIN, "Registered": True}))
    assert codes(problems) == ["NoPSSnapInsFound"]


def test_a_session_without_the_exchange_snapin_lists_only_the_core_one(tmp_path):
    endpoints, pools = open_pools(LabBackend(lab_copy("healthy", tmp_path / "lab")))
    try:
        ps = PowerShell(pools["EDGE01"])
        output = ps.add_cmdlet("Get-PSSnapin").invoke()
        assert not ps.had_errors and [str(s) for s in output] == [CORE_SNAPIN]
    finally:
        close_pools(endpoints, pools)


# --- files ---------------------------------------------------------------------------------


def write(client: Client, path: str, text: str) -> None:
    _, problems = edge(client, ("New-Item", {"Path": path, "ItemType": "File", "Value": text}))
    assert problems == []


def test_get_content_read_count_total_count_and_tail(client):
    write(client, r"C:\temp\three.txt", "one\r\ntwo\r\nthree")
    output, _ = edge(client, ("Get-Content", {"Path": r"C:\temp\three.txt", "ReadCount": 0}))
    assert output == [["one", "two", "three"]]
    output, _ = edge(client, ("Get-Content", {"Path": r"C:\temp\three.txt", "ReadCount": 2}))
    assert output == [["one", "two"], ["three"]]
    output, _ = edge(client, ("Get-Content", {"LiteralPath": r"C:\temp\three.txt", "Tail": 1}))
    assert output == ["three"]
    output, _ = edge(client, ("Get-Content", {"Path": r"C:\temp\three.txt", "TotalCount": 1}))
    assert output == ["one"]


def test_get_content_takes_only_powershell_5_parameters_and_encodings(client):
    write(client, r"C:\temp\a.txt", "x")
    _, problems = edge(client, ("Get-Content", {"Path": r"C:\temp\a.txt", "AsByteStream": True}))
    assert (
        problems[0][0] == "A parameter cannot be found that matches parameter name 'AsByteStream'."
    )
    _, problems = edge(client, ("Get-Content", {"Path": r"C:\temp\a.txt", "Encoding": "Latin1"}))
    assert "FileSystemCmdletProviderEncoding" in problems[0][0]
    _, problems = edge(client, ("Get-Content", {"Path": r"C:\temp\*.txt"}))
    assert "does not expand wildcards" in problems[0][0]
    _, problems = edge(client, ("Get-Content", {"Path": r"C:\temp\none.txt"}))
    assert problems == [
        (
            r"Cannot find path 'C:\temp\none.txt' because it does not exist.",
            "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand",
        )
    ]


def test_new_item_name_nested_directories_and_remove_recurse(client):
    output, problems = edge(client, ("New-Item", {"Path": r"C:\temp\a\b", "ItemType": "Directory"}))
    assert problems == [] and prop(output[0], "FullName") == r"C:\temp\a\b"
    output, problems = edge(
        client, ("New-Item", {"Path": r"C:\temp\a\b", "Name": "f.txt", "Value": "hi"})
    )
    assert problems == [] and prop(output[0], "FullName") == r"C:\temp\a\b\f.txt"
    output, _ = edge(client, ("Get-Content", {"Path": r"C:\temp\a\b\f.txt"}))
    assert output == ["hi"]
    _, problems = edge(client, ("New-Item", {"Path": r"C:\temp\a", "ItemType": "Directory"}))
    assert codes(problems) == ["DirectoryExist"]
    _, problems = edge(client, ("Remove-Item", {"Path": r"C:\temp\a", "Recurse": True}))
    assert problems == []
    _, problems = edge(client, ("Get-Content", {"Path": r"C:\temp\a\b\f.txt"}))
    assert codes(problems) == ["PathNotFound"]


# --- Get-Date, Select-Object ---------------------------------------------------------------


def date_text(obj: Any) -> str:
    """The <DT> of Get-Date's output: an <Obj> holding the DateTime and its note property, which
    pypsrp keeps as an object whose one unnamed value is the DateTime's text."""
    (text,) = obj.property_sets
    return str(text)


def test_get_date_format_uformat_and_parts(client):
    (when,), _ = edge(client, ("Get-Date", {}))
    now = dt.datetime.fromisoformat(date_text(when)[:19])
    (text,), _ = edge(client, ("Get-Date", {"Format": "yyyy-MM-dd HH:mm"}))
    assert text == now.strftime("%Y-%m-%d %H:%M")
    (text,), _ = edge(client, ("Get-Date", {"UFormat": "%Y%m%d"}))
    assert text == now.strftime("%Y%m%d")
    (text,), _ = edge(client, ("Get-Date", {"Format": "FileDate"}))
    assert text == now.strftime("%Y%m%d")
    (text,), _ = edge(
        client, ("Get-Date", {"Date": "2024-01-31T10:00:00Z", "Month": 2, "Format": "s"})
    )
    assert text == "2024-02-29T10:00:00"
    _, problems = edge(client, ("Get-Date", {"Format": "s", "UFormat": "%Y"}))
    assert codes(problems) == ["AmbiguousParameterSet"]
    _, problems = edge(client, ("Get-Date", {"Month": 13}))
    assert problems[0][0].startswith("Cannot validate argument on parameter 'Month'.")


DISPLAY_HINT_TYPE = [
    "Microsoft.PowerShell.Commands.DisplayHintType",
    "System.Enum",
    "System.ValueType",
    "System.Object",
]


@pytest.mark.parametrize(
    ("given", "hint", "value"),
    [
        ({}, "DateTime", 2),
        ({"DisplayHint": "date"}, "Date", 0),
        ({"DisplayHint": "Time"}, "Time", 1),
    ],
)
def test_get_date_sends_the_datetime_with_its_display_hint(client, given, hint, value):
    """GetDateCommand wraps the DateTime in a PSObject with a DisplayHint note property, which
    remoting writes as <Obj> with the <DT> and <MS><Obj N="DisplayHint"> (an enum)."""
    (when,), problems = edge(client, ("Get-Date", given))
    assert problems == []
    assert when.types == []  # the DateTime's own type names are not written
    assert dt.datetime.fromisoformat(date_text(when)).tzinfo is not None
    assert list(when.adapted_properties) == [] and list(when.extended_properties) == ["DisplayHint"]
    note = when.extended_properties["DisplayHint"]
    assert note.types == DISPLAY_HINT_TYPE
    assert (note.to_string, note.property_sets) == (hint, [value])


def test_get_date_display_hint_is_checked_and_formats_ignore_it(client):
    _, problems = edge(client, ("Get-Date", {"DisplayHint": "Week"}))
    assert codes(problems) == ["CannotConvertArgumentNoMessage"]
    assert '"Microsoft.PowerShell.Commands.DisplayHintType"' in problems[0][0]
    (text,), problems = edge(
        client, ("Get-Date", {"Date": "2024-01-02T03:04:05Z", "DisplayHint": "Date", "Format": "s"})
    )
    assert problems == [] and text == "2024-01-02T03:04:05"


def test_edgebook_reads_the_server_clock_from_get_date(start_lab):
    """edgebook's own reader (the inspect phase's clock) still gets an aware datetime."""
    directory = start_lab("healthy")
    inventory = load_inventory(directory / "inventory.yaml")
    edge_name = inventory.edges[0].name
    with shell_factory(resolve_credentials(inventory.servers))(inventory, edge_name) as shell:
        records = shell.run_batch(
            [Command("Get-Date"), Command("Get-Date", {"DisplayHint": "Time"})]
        )
    lab_now = clock(LabStore(directory).read())
    assert all(isinstance(r, dt.datetime) and r.tzinfo is not None for r in records)
    server_clock = _server_clock(records)
    assert server_clock is not None
    assert abs(server_clock - lab_now) < dt.timedelta(minutes=1)


# Get-Date -Date is ValueFromPipeline and ValueFromPipelineByPropertyName (alias LastWriteTime;
# GetDateCommand.cs). Piped input that does not convert is not bound (BindValueFromPipeline
# ignores the conversion's ParameterBindingException) and CommandProcessor writes
# InputObjectNotBound, non-terminating; binding.bind_input does the same.


def test_get_date_binds_a_piped_date(client):
    ps, output = client.run(
        "EDGE01", ("Get-Date", {"Format": "yyyy-MM-dd"}), input=["2024-01-02", "2024-03-04"]
    )
    assert errors(ps) == [] and output == ["2024-01-02", "2024-03-04"]
    (item,), _ = edge(client, ("New-Item", {"Path": r"C:\temp\first.txt", "ItemType": "File"}))
    (text,), problems = edge(
        client,
        ("New-Item", {"Path": r"C:\temp\second.txt", "ItemType": "File"}),
        ("Get-Date", {"Format": "s"}),  # by property name: the alias LastWriteTime
    )
    written = dt.datetime.fromisoformat(str(prop(item, "LastWriteTime"))[:19])
    assert problems == []
    assert abs(dt.datetime.fromisoformat(text) - written) < dt.timedelta(minutes=1)


def test_piped_input_that_is_no_date_is_input_object_not_bound(client):
    ps, output = client.run(
        "EDGE01", ("Get-Date", {"Format": "yyyy"}), input=["2024-01-02", "no date", "2025-01-01"]
    )
    assert output == ["2024", "2025"]  # the error is not terminating
    assert errors(ps) == [
        (INPUT_NOT_BOUND, "InputObjectNotBound,Microsoft.PowerShell.Commands.GetDateCommand")
    ]
    assert [e.target_object for e in ps.streams.error] == ["no date"]


def test_select_object_wildcards_expand_and_calculated_properties(client):
    (selected,), _ = edge(
        client, ("Get-Service", {"Name": TRANSPORT}), ("Select-Object", {"Property": ["Can*"]})
    )
    assert sorted(selected.extended_properties) == [
        "CanPauseAndContinue",
        "CanShutdown",
        "CanStop",
    ]
    output, problems = edge(
        client,
        ("Get-Service", {"Name": [TRANSPORT, ADAM]}),
        ("Select-Object", {"ExpandProperty": "Name"}),
    )
    assert problems == [] and output == [ADAM, TRANSPORT]  # MatchingServices sorts by name
    (selected,), _ = edge(
        client,
        ("Get-Service", {"Name": TRANSPORT}),
        ("Select-Object", {"Property": [{"Name": "Service", "Expression": "ServiceName"}]}),
    )
    assert prop(selected, "Service") == TRANSPORT
    _, problems = edge(
        client,
        ("Get-Service", {"Name": TRANSPORT}),
        ("Select-Object", {"ExpandProperty": "Nothing"}),
    )
    assert problems[0][0] == 'Property "Nothing" cannot be found.'


def test_get_date_output_goes_on_down_the_pipeline(client):
    """Get-Date's wrapped DateTime binds -Date of the next Get-Date (exactly, to the
    microsecond the lab keeps); Select-Object reads the DateTime's properties, typing its object
    Selected.System.DateTime, but not the DisplayHint note (lab's choice, lab-scenarios.md)."""
    moment = {"Date": "2024-01-02T03:04:05.123456Z", "DisplayHint": "Date"}
    (text,), problems = edge(
        client, ("Get-Date", moment), ("Get-Date", {"Format": "yyyy-MM-dd HH:mm:ss.ffffff"})
    )
    assert problems == [] and text == "2024-01-02 03:04:05.123456"
    (selected,), problems = edge(
        client, ("Get-Date", moment), ("Select-Object", {"Property": ["year", "Millisecond"]})
    )
    assert problems == [] and selected.types[0] == "Selected.System.DateTime"
    assert (prop(selected, "Year"), prop(selected, "Millisecond")) == (2024, 123)
    (everything,), _ = edge(client, ("Get-Date", moment), ("Select-Object", {"Property": "*"}))
    assert "Day" in everything.extended_properties
    assert "DisplayHint" not in everything.extended_properties


def test_select_object_names_exclusions_and_duplicates(client):
    """Names match whatever their case and take the object's spelling; a name the object lacks
    is kept, null; -ExcludeProperty's wildcards drop names, wildcard matches and calculated
    labels alike; a name given twice writes PowerShell's non-terminating error, a wildcard
    match already selected is skipped."""
    service = ("Get-Service", {"Name": TRANSPORT})
    (selected,), problems = edge(
        client,
        service,
        (
            "Select-Object",
            {
                "Property": [
                    "name",
                    "NoSuchProperty",
                    "Can*",
                    {"Name": "Stoppable", "Expression": "CanStop"},
                    {"Name": "Label", "Expression": "DisplayName"},
                    "CANSHUTDOWN",
                    "status",
                    "STATUS",
                ],
                "ExcludeProperty": ["canstop", "Stop*", "*pause*"],
            },
        ),
    )
    assert list(selected.extended_properties) == [
        "Name",
        "NoSuchProperty",
        "CanShutdown",
        "Label",
        "Status",
    ]
    assert prop(selected, "Name") == TRANSPORT and prop(selected, "NoSuchProperty") is None
    assert prop(selected, "Label") == TRANSPORT_LABEL.split(" (")[0]
    assert problems == [
        (
            'The property cannot be processed because the property "CanShutdown" already exists.',
            "AlreadyExistingUserSpecifiedPropertyNoExpand,"
            "Microsoft.PowerShell.Commands.SelectObjectCommand",
        ),
        (
            'The property cannot be processed because the property "Status" already exists.',
            "AlreadyExistingUserSpecifiedPropertyNoExpand,"
            "Microsoft.PowerShell.Commands.SelectObjectCommand",
        ),
    ]


def test_select_object_across_objects_is_refused_not_ignored(client):
    _, problems = edge(client, ("Get-Service", {}), ("Select-Object", {"First": 1}))
    assert "does not simulate the First parameter of Select-Object" in problems[0][0]


# --- Get-EventLog --------------------------------------------------------------------------


def test_get_event_log_validates_and_refuses_like_powershell(client):
    log = {"LogName": "Application"}
    _, problems = edge(client, ("Get-EventLog", {**log, "EntryType": ["Critical"]}))
    assert problems[0][0].startswith("Cannot validate argument on parameter 'EntryType'.")
    _, problems = edge(client, ("Get-EventLog", {**log, "ComputerName": "EX01"}))
    assert "does not simulate the ComputerName parameter" in problems[0][0]
    _, problems = edge(client, ("Get-EventLog", {**log, "InstanceId": ["twelve"]}))
    assert 'Cannot convert value "twelve" to type "System.Int64"' in problems[0][0]
    output, problems = edge(client, ("Get-EventLog", {**log, "Message": "no such text*"}))
    assert output == [] and problems == [
        (
            "No matches found",
            "GetEventLogNoEntriesFound,Microsoft.PowerShell.Commands.GetEventLogCommand",
        )
    ]


def test_get_event_log_names_entries_as_powershell_does(tmp_path):
    """GetEventLogCommand puts <class>#<log>/<source>/<InstanceId> and <class>#<log>/<source>
    before the class's own name; Select-Object then names its object Selected.<the first>."""
    store = lab_copy("expired", tmp_path / "lab")
    client = Client(LabBackend(store))
    try:
        log = {"LogName": "Application", "InstanceId": [str(0xC0000000 | 12014)], "Newest": 1}
        with pytest.raises(TypeError):  # pypsrp and the empty Data byte[]: a client projects
            edge(client, ("Get-EventLog", log))
        server = store.read().server("EDGE01")
        entry = event_object(server, server.events[0])
        assert entry.type_names[:3] == [
            "System.Diagnostics.EventLogEntry#Application/MSExchangeTransport/3221237486",
            "System.Diagnostics.EventLogEntry#Application/MSExchangeTransport",
            "System.Diagnostics.EventLogEntry",
        ]
        (selected,), _ = edge(
            client, ("Get-EventLog", log), ("Select-Object", {"Property": ["EventID"]})
        )
        assert selected.types[0] == (
            "Selected.System.Diagnostics.EventLogEntry#Application/MSExchangeTransport/3221237486"
        )
    finally:
        client.close()
