"""Get-TransportService, Get-ServerHealth, Get-HealthReport and Get-EventLog."""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import DOMAIN_CONTROLLER, Cmdlet, CmdletError, Context, Param
from edgebook.lab.cmdlets.common import enum, not_found, target_server
from edgebook.lab.org import certstore, mailflow
from edgebook.lab.org.model import PAUSED, RUNNING, TRANSPORT, Server
from edgebook.lab.winrm.objects import ExEnum, ExObject

ALERTS = [
    "Healthy",
    "Degraded",
    "Unhealthy",
    "Repairing",
    "Disabled",
    "Unavailable",
    "UnInitialized",
]
ENTRY_TYPES = {"Error": 1, "Warning": 2, "Information": 4}
SEVERITY_BITS = {"Error": 0xC0000000, "Warning": 0x80000000, "Information": 0x40000000}
VERSION = "Version 15.2 (Build 1544.4)"
# The lab's wording of Microsoft's -Identity sentence on Get-TransportService's page ("You can't
# use this parameter on an Edge Transport server."): Microsoft documents no error text.
EDGE_IDENTITY = "The Identity parameter can't be used on an Edge Transport server."


def get_transport_service(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-TransportService (Edge: the local server; Mailbox: the organisation's)."""
    if ctx.server.role == "Edge":
        servers = [ctx.server]
    else:
        servers = ctx.org.mailboxes + [ctx.org.server(s.edge) for s in ctx.org.subscriptions]
    if params.get("Identity"):
        wanted = params["Identity"].casefold()
        servers = [s for s in servers if wanted in (s.name.casefold(), s.fqdn.casefold())]
        if not servers:
            raise not_found(ctx, "server", params["Identity"])
    return [_transport_object(ctx, s) for s in servers]


def _transport_object(ctx: Context, server: Server) -> ExObject:
    thumb = server.internal_transport_thumbprint
    if server.role == "Edge" and server is not ctx.server:
        sub = ctx.org.subscription(server.name)
        thumb = sub.certificate_thumbprint if sub else None  # what the organisation knows
    return ExObject(
        [T.TRANSPORT_SERVICE, "System.Object"],
        {
            "Name": server.name,
            "Identity": server.name,
            "Fqdn": server.fqdn,
            "AdminDisplayVersion": VERSION,
            "IsHubTransportServer": server.role == "Mailbox",
            "IsEdgeServer": server.role == "Edge",
            "InternalTransportCertificateThumbprint": thumb,
            "ServerRole": ExEnum(
                T.SERVER_ROLE,
                "Edge" if server.role == "Edge" else "Mailbox",
                64 if server.role == "Edge" else 2,
            ),
        },
        to_string=server.name,
    )


# The lab's choices where Microsoft names no value: the health group of the transport health
# sets and the type name of Get-HealthReport's objects.
HEALTH_GROUP = "ServiceComponents"
HEALTH_REPORT = "Microsoft.Exchange.Monitoring.ConsolidatedHealth"
HEALTH_MONITORS = [
    ("EdgeTransport.ServiceInconsistentStateMonitor", "EdgeTransport"),
    ("TransportMaxLocalLoopCountMonitor", ""),
    ("MessagesDeferredDuringCategorizationMonitor", ""),
    ("TransportLogSearchLogPathInvalidMonitor", "EdgeTransport"),
    ("UnreachableQueueMonitor", ""),
    ("Transport.LowDiskSpace.Monitor", "EdgeTransport"),
    ("Transport.ServerCertMismatch.Monitor", "EdgeTransport"),
    ("Transport.ServerCertExpireSoon.Monitor", "EdgeTransport"),
    ("EdgeTransportServiceRunningMonitor", ""),
    ("EdgeAvailabilityMonitor", ""),
    ("TransportLogSearchRunningMonitor", "EdgeTransport"),
]


def health_alerts(ctx: Context, server: Server) -> dict[str, str]:
    """AlertValue per monitor of the EdgeTransport health set, from the simulation."""
    alerts = {name: "Healthy" for name, _ in HEALTH_MONITORS}
    running = server.services.get(TRANSPORT) in (RUNNING, PAUSED)
    if not running:
        alerts["EdgeTransportServiceRunningMonitor"] = "Unhealthy"
        alerts["EdgeAvailabilityMonitor"] = "Unhealthy"
    if server.transport is not None:
        broken = any(b.error for b in server.transport.send.values())
        broken |= any(
            t is None and rc.tls_certificate_name
            for rc in server.receive_connectors
            for name, t in server.transport.receive.items()
            if name == rc.name
        )
        for binding in server.transport.send.values():
            entry = server.certificate(binding.thumbprint) if binding.thumbprint else None
            broken |= entry is None or not certstore.usable(entry, ctx.now)
            if entry is not None and entry.thumbprint != server.transport.default_thumbprint:
                left = certstore.cert_of(entry).not_valid_after_utc - ctx.now
                if left <= mailflow.EXPIRY_WARNING:
                    alerts["Transport.ServerCertExpireSoon.Monitor"] = "Degraded"
        if broken:
            alerts["Transport.ServerCertMismatch.Monitor"] = "Degraded"
    if any(q.kind == "unreachable" and q.message_count for q in server.queues):
        alerts["UnreachableQueueMonitor"] = "Unhealthy"
    return alerts


def _health(ctx: Context, params: dict[str, Any]) -> tuple[Server, str, list[tuple[str, ...]]]:
    """(server, its transport health set, [(monitor, target resource, alert value)]) for
    -Identity; no monitor when -HealthSet names another set."""
    server = target_server(ctx, params.get("Identity"))
    health_set = "EdgeTransport" if server.role == "Edge" else "HubTransport"
    wanted = params.get("HealthSet")
    if wanted and wanted.casefold() != health_set.casefold():
        return server, health_set, []
    if server.role != "Edge":
        return server, health_set, [("Transport.ServerCertExpireSoon.Monitor", "", "Healthy")]
    alerts = health_alerts(ctx, server)
    return server, health_set, [(name, target, alerts[name]) for name, target in HEALTH_MONITORS]


def get_server_health(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-ServerHealth: the monitors of the server's transport health set (EdgeTransport on an
    Edge), with the properties Microsoft's pages show (Server, CurrentHealthSetState, Name,
    TargetResource, HealthSetName, AlertValue, HealthGroupName, ServerComponent)."""
    server, health_set, monitors = _health(ctx, params)
    return [
        ExObject(
            [T.SERVER_HEALTH, "System.Object"],
            {
                "Server": server.name,
                "CurrentHealthSetState": "Online",
                "State": "Online",
                "Name": name,
                "TargetResource": target,
                "HealthSetName": health_set,
                "HealthSet": health_set,
                "HealthGroupName": HEALTH_GROUP,
                "AlertValue": enum(T.MONITOR_ALERT_STATE, ALERTS, alert),
                "ServerComponentName": health_set,
                "ServerComponent": health_set,
                "LastTransitionTime": ctx.now,
            },
            to_string=name,
        )
        for name, target, alert in monitors
    ]


def get_health_report(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-HealthReport: one row per health set (the columns of Microsoft's example: Server,
    State, HealthSet, AlertValue, LastTransitionTime, MonitorCount), whose AlertValue is the
    "worst of" its monitors (Microsoft's "Manage health sets and server health")."""
    server, health_set, monitors = _health(ctx, params)
    if not monitors:
        return []
    worst = max((alert for *_, alert in monitors), key=ALERTS.index)
    return [
        ExObject(
            [HEALTH_REPORT, "System.Object"],
            {
                "Server": server.name,
                "State": "Online",
                "HealthSet": health_set,
                "AlertValue": enum(T.MONITOR_ALERT_STATE, ALERTS, worst),
                "LastTransitionTime": ctx.now,
                "MonitorCount": len(monitors),
            },
            to_string=health_set,
        )
    ]


def event_object(server: Server, entry: Any) -> ExObject:
    """A System.Diagnostics.EventLogEntry as Get-EventLog writes it: PowerShell's
    GetEventLogCommand puts two type names before the class's, <class>#<log>/<source>/<id> and
    <class>#<log>/<source> (what Select-Object then names Selected.<the first>). Its empty Data
    byte[] is what pypsrp 0.9.1 cannot read (docs/serialization.md): a client must project."""
    instance = SEVERITY_BITS[entry.entry_type] | entry.event_id
    view = f"{T.EVENT_LOG_ENTRY}#Application/{entry.source}"
    return ExObject(
        [
            f"{view}/{instance}",
            view,
            T.EVENT_LOG_ENTRY,
            "System.ComponentModel.Component",
            "System.Object",
        ],
        {
            "EventID": entry.event_id,
            "MachineName": server.fqdn,
            "Data": b"",  # Exchange's events carry no binary data: an empty byte[], <BA></BA>
            "Index": entry.index,
            "Category": entry.category,
            "CategoryNumber": 1,
            "EntryType": ExEnum(
                T.EVENT_LOG_ENTRY_TYPE, entry.entry_type, ENTRY_TYPES[entry.entry_type]
            ),
            "Message": entry.message,
            "Source": entry.source,
            "ReplacementStrings": [],
            "InstanceId": instance,
            "TimeGenerated": entry.time,
            "TimeWritten": entry.time,
            "UserName": None,
            "Site": None,
            "Container": None,
        },
        to_string="System.Diagnostics.EventLogEntry",
    )


ENTRY_TYPE_SET = ("Error", "Information", "FailureAudit", "SuccessAudit", "Warning")
LOCAL_COMPUTERS = (".", "localhost", "127.0.0.1")
APPLICATION = "Application"
# Classic logs of Windows Server (Get-EventLog -List in Microsoft's Limit-EventLog 5.1 page) and
# Exchange's cmdlet log, which the lab keeps no entries in: refused, not reported missing.
UNSIMULATED_LOGS = (
    "HardwareEvents",
    "Internet Explorer",
    "Key Management Service",
    "MSExchange Management",
    "Security",
    "System",
    "Windows PowerShell",
)
WILDCARDS = "*?["


def _validation_error(ctx: Context, name: str, detail: str, value: Any) -> CmdletError:
    return ctx.fail(
        f"Cannot validate argument on parameter '{name}'. {detail}",
        exception="System.Management.Automation.ParameterBindingValidationException",
        category="InvalidData",
        target=str(value),
        code="ParameterArgumentValidationError",
    )


def _at_least(ctx: Context, name: str, value: int, low: int) -> None:
    """PowerShell's ValidateRange(low, MaxValue) error."""
    if value < low:
        raise _validation_error(
            ctx,
            name,
            f"The {value} argument is less than the minimum allowed range of {low}. Supply an "
            f"argument that is greater than or equal to {low} and then try the command again.",
            value,
        )


def _numbers(ctx: Context, params: dict[str, Any], name: str, type_name: str, low: int) -> None:
    """-InstanceId (Int64[], 0 or more) / -Index (Int32[], 1 or more) as numbers."""
    numbers = []
    for value in params.get(name) or []:
        try:
            numbers.append(int(str(value).strip()))
        except ValueError:
            raise ctx.fail(
                f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
                f'"System.{type_name}". Error: "Input string was not in a correct format."',
                exception="System.Management.Automation.ParameterBindingException",
                category="InvalidArgument",
                code="CannotConvertArgumentNoMessage",
            ) from None
    for number in numbers:
        _at_least(ctx, name, number, low)
    if numbers:
        params[name] = numbers


def _not_simulated(ctx: Context, what: str, target: str) -> CmdletError:
    return ctx.fail(
        f"The edgebook lab does not simulate {what} ('{target}'): its Get-EventLog reads the "
        "Application log only.",
        exception="System.Management.Automation.PSNotSupportedException",
        category="NotImplemented",
        target=target,
        code="LabParameterNotSimulated",
    )


def _event_query(ctx: Context, params: dict[str, Any]) -> None:
    """Refuse what PowerShell 5.1 refuses: another computer (not simulated), an entry type
    outside its ValidateSet, a negative -Newest, an -InstanceId / -Index that is no number or
    out of its ValidateRange."""
    local = {*LOCAL_COMPUTERS, ctx.server.name.casefold(), ctx.server.fqdn.casefold()}
    remote = [c for c in params.get("ComputerName") or [] if c.casefold() not in local]
    if remote:
        raise ctx.fail(
            "The edgebook lab does not simulate the ComputerName parameter of Get-EventLog for "
            f"another computer ('{remote[0]}'). Run the cmdlet on that server.",
            exception="System.Management.Automation.PSNotSupportedException",
            category="NotImplemented",
            target=remote[0],
            code="LabParameterNotSimulated",
        )
    for kind in params.get("EntryType") or []:
        if kind.casefold() not in (k.casefold() for k in ENTRY_TYPE_SET):
            raise _validation_error(
                ctx,
                "EntryType",
                f'The argument "{kind}" does not belong to the set "{",".join(ENTRY_TYPE_SET)}" '
                "specified by the ValidateSet attribute. Supply an argument that is in the set "
                "and then try the command again.",
                kind,
            )
    if params.get("Newest") is not None:
        _at_least(ctx, "Newest", params["Newest"], 0)
    _numbers(ctx, params, "InstanceId", "Int64", 0)
    _numbers(ctx, params, "Index", "Int32", 1)


def _wild(text: str) -> bool:
    return any(c in text for c in WILDCARDS)


def _like(value: str | None, pattern: str) -> bool:
    text = (value or "").casefold()
    return value is not None and fnmatch.fnmatchcase(text, pattern.casefold())


def _reads_application(ctx: Context, name: str) -> bool:
    """Whether -LogName names the Application log (GetEventLogCommand.BeginProcessing): a
    pattern stands for the one log it matches and matches nothing silently; an unknown name is
    .NET's InvalidOperationException, terminating (EventLogNotFound)."""
    if _wild(name):
        matches = [log for log in (APPLICATION, *UNSIMULATED_LOGS) if _like(log, name)]
        if not matches:
            return False
        if len(matches) > 1:  # PowerShell lists the logs (EventLog objects)
            raise _not_simulated(ctx, "the list of event logs a -LogName pattern writes", name)
        name = matches[0]
    if name.casefold() == APPLICATION.casefold():
        return True
    if name.casefold() in (log.casefold() for log in UNSIMULATED_LOGS):
        raise _not_simulated(ctx, "this event log", name)
    raise ctx.fail(
        f"The event log '{name}' on computer '.' does not exist.",
        exception="System.InvalidOperationException",
        category="ObjectNotFound",
        target=name,
        code="EventLogNotFound",
    )


def _in_window(when: dt.datetime, after: dt.datetime | None, before: dt.datetime | None) -> bool:
    """FiltersMatch's dates: after an -After that is not before -Before, an entry matches when
    it is after -After OR before -Before."""
    if after is not None and before is not None:
        if after >= before:
            return when > after or when < before
        return after < when < before
    return (after is None or when > after) and (before is None or when < before)


def _filters_match(entry: Any, params: dict[str, Any]) -> tuple[bool, bool]:
    """PowerShell's FiltersMatch, its filters in its order: (whether the entry matches, whether
    a filter it reached turns "No matches found" off: a -Source or -Message pattern with
    wildcards, -UserName, -After/-Before)."""
    quiet = False
    if params.get("Index") and entry.index not in params["Index"]:
        return False, quiet
    instance = SEVERITY_BITS[entry.entry_type] | entry.event_id
    if params.get("InstanceId") and instance not in params["InstanceId"]:
        return False, quiet
    kinds = params.get("EntryType")
    if kinds and entry.entry_type.casefold() not in {k.casefold() for k in kinds}:
        return False, quiet
    if params.get("Source"):
        for source in params["Source"]:
            quiet |= _wild(source)
            if _like(entry.source, source):
                break
        else:
            return False, quiet
    if params.get("Message") is not None:
        quiet |= _wild(params["Message"])
        if not _like(entry.message, params["Message"]):
            return False, quiet
    if params.get("UserName"):
        return False, True  # the lab's entries have no UserName
    after, before = params.get("After"), params.get("Before")
    if after is not None or before is not None:
        return _in_window(entry.time, after, before), True
    return True, quiet


def get_event_log(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-EventLog -LogName Application [-Source] [-After] [-Before] [-Newest] [-InstanceId]
    [-EntryType] [-Message] [-UserName] [-Index], newest first, as GetEventLogCommand reads a
    log: "No matches found" when nothing matches, unless a filter it reached was a wildcard
    -Source/-Message, -UserName or a date; nothing at all for -Newest 0. -InstanceId is the
    whole InstanceId, severity bits included (an Error's 12014 is 0xC0000000 | 12014), as
    PowerShell compares it: the event ID alone matches nothing, on a server as here."""
    _event_query(ctx, params)  # binding's validation comes first
    newest = params.get("Newest")
    if not _reads_application(ctx, params["LogName"]) or newest == 0:
        return []
    found: list[Any] = []
    quiet = False
    for entry in sorted(ctx.server.events, key=lambda e: e.index, reverse=True):
        if newest is not None and len(found) >= newest:
            break
        matched, silent = _filters_match(entry, params)
        quiet |= silent
        if matched:
            found.append(entry)
    if not found and not quiet:
        ctx.write_error(
            "No matches found",
            exception="System.ArgumentException",
            category="ObjectNotFound",
            code="GetEventLogNoEntriesFound",
        )
    return [event_object(ctx.server, e) for e in found]


OS_TASK = "Microsoft.PowerShell.Commands"
NO_HA_IMPACT = "the lab models no high-availability impact of its monitors"
NO_ROLLUP = "the lab rolls no health up across a group of servers"
CMDLETS = [
    Cmdlet(
        "Get-TransportService",
        get_transport_service,
        [
            Param("Identity", position=0, pipeline=True, not_on_edge=EDGE_IDENTITY),
            DOMAIN_CONTROLLER,
        ],
    ),
    Cmdlet(
        "Get-ServerHealth",
        get_server_health,
        [
            Param("Identity", position=0, mandatory=True, pipeline=True),
            Param("HealthSet"),
            Param(
                "HaImpactingOnly",
                "switch",
                unsimulated=NO_HA_IMPACT,
            ),
        ],
        task="Microsoft.Exchange.Management.Tasks",
    ),
    Cmdlet(
        "Get-HealthReport",
        get_health_report,
        [
            Param("Identity", position=0, mandatory=True, pipeline=True),
            Param("HealthSet"),
            *(
                Param(name, kind, unsimulated=NO_ROLLUP)
                for name, kind in (
                    ("RollupGroup", "switch"),
                    ("GroupSize", "int"),
                    ("MinimumOnlinePercent", "int"),
                )
            ),
            Param("HaImpactingOnly", "switch", unsimulated=NO_HA_IMPACT),
        ],
        task="Microsoft.Exchange.Management.Tasks",
    ),
    Cmdlet(
        "Get-EventLog",
        get_event_log,
        [
            Param("LogName", position=0, mandatory=True, aliases=("LN",)),
            Param("InstanceId", "strs", position=1),
            Param("Source", "strs", aliases=("ABO",)),
            Param("After", "datetime"),
            Param("Before", "datetime"),
            Param("Newest", "int"),
            Param("EntryType", "strs", aliases=("ET",)),
            Param("Message", aliases=("MSG",)),
            Param("UserName", "strs"),
            Param("Index", "strs"),
            Param("ComputerName", "strs", aliases=("Cn",)),
            *(
                Param(name, "switch", unsimulated="the lab writes EventLogEntry objects only")
                for name in ("AsBaseObject", "List", "AsString")
            ),
        ],
        task=OS_TASK,
        exchange=False,
    ),
]
