"""Get-TransportService, Get-ServerHealth and Get-EventLog."""

from __future__ import annotations

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


def get_server_health(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-ServerHealth (the EdgeTransport health set of the local Edge)."""
    server = target_server(ctx, params.get("Identity"))
    health_set = "EdgeTransport" if server.role == "Edge" else "HubTransport"
    wanted = params.get("HealthSet")
    if wanted and wanted.casefold() != health_set.casefold():
        return []
    alerts = health_alerts(ctx, server) if server.role == "Edge" else {}
    rows = []
    monitors = (
        HEALTH_MONITORS
        if server.role == "Edge"
        else [("Transport.ServerCertExpireSoon.Monitor", "")]
    )
    for name, target in monitors:
        alert = alerts.get(name, "Healthy")
        rows.append(
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
                    "AlertValue": enum(T.MONITOR_ALERT_STATE, ALERTS, alert),
                    "ServerComponentName": health_set,
                    "ServerComponent": health_set,
                    "LastTransitionTime": ctx.now,
                },
                to_string=name,
            )
        )
    return rows


def event_object(server: Server, entry: Any) -> ExObject:
    """A System.Diagnostics.EventLogEntry as Get-EventLog writes it: PowerShell's
    GetEventLogCommand puts two type names before the class's, <class>#<log>/<source>/<id> and
    <class>#<log>/<source> (what Select-Object then names Selected.<the first>)."""
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
        },
        to_string="System.Diagnostics.EventLogEntry",
    )


ENTRY_TYPE_SET = ("Error", "Information", "FailureAudit", "SuccessAudit", "Warning")
LOCAL_COMPUTERS = (".", "localhost", "127.0.0.1")


def _validation_error(ctx: Context, name: str, detail: str, value: Any) -> CmdletError:
    return ctx.fail(
        f"Cannot validate argument on parameter '{name}'. {detail}",
        exception="System.Management.Automation.ParameterBindingValidationException",
        category="InvalidData",
        target=str(value),
        code="ParameterArgumentValidationError",
    )


def _event_query(ctx: Context, params: dict[str, Any]) -> None:
    """Refuse what PowerShell 5.1 refuses: another computer (not simulated), an entry type
    outside its ValidateSet, a negative -Newest, an -InstanceId that is no Int64."""
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
    newest = params.get("Newest")
    if newest is not None and newest < 0:
        raise _validation_error(
            ctx,
            "Newest",
            f"The {newest} argument is less than the minimum allowed range of 0. Supply an "
            "argument that is greater than or equal to 0 and then try the command again.",
            newest,
        )
    numbers = [("InstanceId", "Int64", v) for v in params.get("InstanceId") or []]
    numbers += [("Index", "Int32", v) for v in params.get("Index") or []]
    for name, type_name, value in numbers:
        if not str(value).strip().isdigit():
            raise ctx.fail(
                f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
                f'"System.{type_name}". Error: "Input string was not in a correct format."',
                exception="System.Management.Automation.ParameterBindingException",
                category="InvalidArgument",
                code="CannotConvertArgumentNoMessage",
            )


def _like_any(value: str | None, patterns: list[str]) -> bool:
    text = (value or "").casefold()
    return value is not None and any(fnmatch.fnmatchcase(text, p.casefold()) for p in patterns)


def get_event_log(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-EventLog -LogName Application [-Source] [-After] [-Before] [-Newest] [-InstanceId]
    [-EntryType] [-Message] [-UserName] [-Index], newest first; "No matches found" when a
    query finds nothing. -InstanceId is the whole InstanceId, severity bits included (an
    Error's 12014 is 0xC0000000 | 12014), as PowerShell compares it: the event ID alone
    matches nothing, on a server as here."""
    log = params["LogName"]
    if log.casefold() != "application":
        raise ctx.fail(
            f"The event log '{log}' on computer '.' does not exist.",
            exception="System.InvalidOperationException",
            category="ObjectNotFound",
        )
    _event_query(ctx, params)
    entries = sorted(ctx.server.events, key=lambda e: e.index, reverse=True)
    if params.get("Source"):
        entries = [e for e in entries if _like_any(e.source, params["Source"])]
    if params.get("Message"):
        entries = [e for e in entries if _like_any(e.message, [params["Message"]])]
    if params.get("UserName"):
        entries = [e for e in entries if _like_any(None, params["UserName"])]
    if params.get("Index"):
        wanted = {int(i) for i in params["Index"]}
        entries = [e for e in entries if e.index in wanted]
    if params.get("After"):
        entries = [e for e in entries if e.time > params["After"]]
    if params.get("Before"):
        entries = [e for e in entries if e.time < params["Before"]]
    if params.get("InstanceId"):
        ids = {int(i) for i in params["InstanceId"]}
        entries = [e for e in entries if (SEVERITY_BITS[e.entry_type] | e.event_id) in ids]
    if params.get("EntryType"):
        kinds = {k.casefold() for k in params["EntryType"]}
        entries = [e for e in entries if e.entry_type.casefold() in kinds]
    if params.get("Newest") is not None:
        entries = entries[: params["Newest"]]
    if not entries:
        ctx.write_error(
            "No matches found",
            exception="System.ArgumentException",
            category="ObjectNotFound",
            code="GetEventLogNoEntriesFound",
        )
    return [event_object(ctx.server, e) for e in entries]


OS_TASK = "Microsoft.PowerShell.Commands"
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
                unsimulated="the lab models no high-availability impact of its monitors",
            ),
        ],
        task="Microsoft.Exchange.Management.Tasks",
    ),
    Cmdlet(
        "Get-EventLog",
        get_event_log,
        [
            Param("LogName", position=0, mandatory=True),
            Param("InstanceId", "strs", position=1),
            Param("Source", "strs"),
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
