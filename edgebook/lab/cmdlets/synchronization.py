"""Start-EdgeSynchronization and Test-EdgeSynchronization: EdgeSync run and checked from a
Mailbox server (the subscriptions themselves: edgebook.lab.cmdlets.subscriptions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param, binding_error
from edgebook.lab.cmdlets.common import INVALID_OPERATION, enum, mailbox_only, target_server
from edgebook.lab.cmdlets.subscriptions import LEASES
from edgebook.lab.org import edgesync
from edgebook.lab.org.model import SendConnector, Server
from edgebook.lab.winrm.objects import ExObject

# ValidationStatus and EdgeConfigStatus's SyncStatus, in Microsoft's documented member order.
VALIDATION = ["NoSyncConfigured", "Normal", "Warning", "Failed", "Inconclusive", "FailedUrgent"]
CONFIG_SYNC = [
    "Synchronized",
    "NotSynchronized",
    "NotStarted",
    "InProgress",
    "Skipped",
    "DirectoryError",
    "Expired",
]
CONFIG_STATUS = "Microsoft.Exchange.EdgeSync.Validation.EdgeConfigStatus"
CONFIG_SYNC_TYPE = "Microsoft.Exchange.EdgeSync.Validation.SyncStatus"
RESULTS = ["Success", "Incomplete", "CouldNotConnect", "CouldNotLease", "LeaseHeld"]
SYNC_TYPES = ["Configuration", "Recipients"]
# The ShouldProcess line -Confirm shows (lab wording: Exchange's texts are not public).
SYNC_CONFIRMATION = 'Starting EdgeSync synchronization of "{identity}" from "{source}".'
UNLIMITED_UINT = "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]"
NO_RECIPIENTS = "the lab models no recipients"


def _targets(ctx: Context, target: str | None) -> list[Server]:
    edges = [ctx.org.server(s.edge) for s in ctx.org.subscriptions]
    if not target:
        return edges
    wanted = target.casefold()
    chosen = [e for e in edges if wanted in (e.name.casefold(), e.fqdn.casefold())]
    if not chosen:
        raise ctx.fail(
            f"The Edge Transport server {target} doesn't have an Edge Subscription in this "
            "organization.",
            exception=INVALID_OPERATION,
            target=target,
        )
    return chosen


def _source(ctx: Context, params: dict[str, Any]) -> Server:
    """The Mailbox server whose EdgeSync runs the task (-Server; the local one by default)."""
    mailbox_only(ctx)
    named = ctx.org.find_server(params.get("Server") or "")
    # An Edge runs no EdgeSync: say so, not target_server's "run it on the Edge itself".
    source = named if named and named.role == "Edge" else target_server(ctx, params.get("Server"))
    if source.role != "Mailbox":
        raise ctx.fail(
            f"{source.name} isn't a Mailbox server: EdgeSync runs on Mailbox servers only.",
            exception=INVALID_OPERATION,
            target=params.get("Server"),
        )
    return source


def _changes(before: list[SendConnector], after: list[SendConnector]) -> dict[str, int]:
    """Added, Deleted and Updated: how the Edge's replicated connectors changed."""
    old = {c.name: c for c in before}
    new = {c.name: c for c in after}
    return {
        "Added": len(new.keys() - old.keys()),
        "Deleted": len(old.keys() - new.keys()),
        "Updated": sum(1 for name in new.keys() & old.keys() if new[name] != old[name]),
    }


def start_edge_synchronization(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Start-EdgeSynchronization: replicate now, always a full synchronisation (what
    -ForceFullSync asks for); F4: a TlsCertificateName > 256 is skipped; F22 from -Server.
    Nothing is replicated under -WhatIf or when -Confirm is answered No."""
    source = _source(ctx, params)
    out = []
    for edge in _targets(ctx, params.get("TargetServer")):
        question = SYNC_CONFIRMATION.format(identity=edge.name, source=source.name)
        if not ctx.should_process(question):
            continue
        before = list(edge.replica.connectors) if edge.replica else []
        for result, kind, detail in edgesync.replicate(ctx.org, edge, ctx.now, source):
            counted = kind == "Configuration" and result != "CouldNotConnect"
            after = edge.replica.connectors if edge.replica else []
            changes = _changes(before, after) if counted else {}
            out.append(
                ExObject(
                    [T.EDGE_SYNC_RESULT, "System.Object"],
                    {
                        "Result": enum(T.EDGE_SYNC_RESULT_STATUS, RESULTS, result),
                        "Type": enum(T.EDGE_SYNC_TYPE, SYNC_TYPES, kind),
                        "Name": edge.name,
                        "FailureDetails": detail,
                        "StartUTC": ctx.now,
                        "EndUTC": ctx.now,
                        "Added": changes.get("Added", 0),
                        "Deleted": changes.get("Deleted", 0),
                        "Updated": changes.get("Updated", 0),
                        "Scanned": len(ctx.org.send_connectors) if kind == "Configuration" else 0,
                        "TargetScanned": 0,
                    },
                )
            )
    return out


def test_edge_synchronization(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Test-EdgeSynchronization: one EdgeSubscriptionStatus per subscribed Edge, as the local
    Mailbox server's EdgeSync sees it (F22). The lab finds no inconsistencies to list, so a
    valid -MaxReportSize limits nothing."""
    mailbox_only(ctx)
    _max_report_size(ctx, params.get("MaxReportSize"))
    edges = _targets(ctx, params.get("TargetServer"))
    if not edges:
        return [_status(ctx, None, "NoSyncConfigured", "", None, params)]
    out = []
    for edge in edges:
        failure = edgesync.sync_failure(ctx.org, edge, ctx.server)
        last = edge.replica.last_sync if edge.replica else None
        sub = ctx.org.subscription(edge.name)
        if failure is None and (last is None or (sub and last < sub.create_utc)):
            out.append(_status(ctx, edge, "Inconclusive", "", last, params))
        elif failure is None:
            out.append(_status(ctx, edge, "Normal", "", last, params))
        else:
            out.append(_status(ctx, edge, "Failed", failure, last, params))
    return out


def _max_report_size(ctx: Context, value: Any) -> int | None:
    """-MaxReportSize (Unlimited): "Unlimited" (None) or a whole number of at least 1 (Microsoft:
    "The minimum value for this parameter is 1"); the lab's error texts follow PowerShell's."""
    if value is None or str(value).strip().casefold() == "unlimited":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).strip())
    except ValueError:
        raise binding_error(
            ctx.cmdlet,
            f"Cannot bind parameter 'MaxReportSize'. Cannot convert value \"{value}\" to type "
            f'"{UNLIMITED_UINT}". Error: "Input string was not in a correct format."',
            "CannotConvertArgumentNoMessage",
        ) from None
    if number < 1:
        raise binding_error(
            ctx.cmdlet,
            f"Cannot validate argument on parameter 'MaxReportSize'. The argument \"{number}\" "
            'is less than the minimum allowed range of "1". Supply an argument that is greater '
            'than or equal to "1" and then try the command again.',
            "ParameterArgumentValidationError",
            category="InvalidData",
        )
    return number


def _config(state: str, count: int = 0) -> ExObject:
    """An EdgeConfigStatus (its SyncStatus and how many objects are synchronised)."""
    return ExObject(
        [CONFIG_STATUS, "System.Object"],
        {"SyncStatus": enum(CONFIG_SYNC_TYPE, CONFIG_SYNC, state), "SynchronizedObjects": count},
        to_string=state,
    )


def _status(
    ctx: Context,
    edge: Server | None,
    status: str,
    detail: str,
    last: dt.datetime | None,
    params: dict[str, Any],
) -> ExObject:
    """An EdgeSubscriptionStatus. The per-type statuses are compared only with -FullCompareMode
    (otherwise Skipped, as Exchange leaves them): then Synchronized when the sync is Normal,
    else NotSynchronized; recipients likewise unless -ExcludeRecipientTest (then Skipped). The
    lab models no recipients: none differ, none are counted."""
    if not params.get("FullCompareMode"):
        state = "Skipped"
    else:
        state = "Synchronized" if status == "Normal" else "NotSynchronized"
    lease = "Option" if status == "Normal" else "None"
    holder = ctx.org.mailboxes[0].name if ctx.org.mailboxes else ""
    props: dict[str, Any] = {
        "SyncStatus": enum(T.VALIDATION_STATUS, VALIDATION, status),
        "UtcNow": ctx.now,
        "Name": edge.name if edge else None,
        "LeaseHolder": f"CN={holder},CN=Servers,CN=Exchange Administrative Group,"
        f"CN={ctx.org.domain}",
        "LeaseType": enum(T.LEASE_TOKEN_TYPE, LEASES, lease),
        "LeaseExpiryUtc": ctx.now + dt.timedelta(hours=1) if status == "Normal" else last,
        "LastSynchronizedUtc": last,
        "FailureDetail": detail,
    }
    for name in (
        "TransportServerStatus",
        "TransportConfigStatus",
        "AcceptedDomainStatus",
        "RemoteDomainStatus",
        "SendConnectorStatus",
        "MessageClassificationStatus",
    ):
        props[name] = _config(state if edge is not None else "NotStarted")
    if params.get("ExcludeRecipientTest"):
        recipients = "Skipped"
    else:
        recipients = state if edge is not None else "NotStarted"
    props["RecipientStatus"] = _config(recipients)
    props["CredentialRecords"] = f"Number of credentials {2 * len(ctx.org.mailboxes)}"
    props["CookieRecords"] = []
    return ExObject(
        [T.EDGE_SYNC_STATUS, "System.Object"], props, to_string=edge.name if edge else ""
    )


CMDLETS = [
    Cmdlet(
        "Start-EdgeSynchronization",
        start_edge_synchronization,
        [
            Param("Server"),
            Param("TargetServer"),
            Param("ForceFullSync", "switch"),
            Param(
                "ForceUpdateCookie",
                "switch",
                unsimulated="the lab keeps no synchronisation cookies",
            ),
        ],
        task="Microsoft.Exchange.EdgeSync",
    ),
    Cmdlet(
        "Test-EdgeSynchronization",
        test_edge_synchronization,
        [
            Param(
                "VerifyRecipient",
                mandatory=True,
                sets=("SingleValidation",),
                unsimulated=NO_RECIPIENTS,
            ),
            Param("TargetServer", sets=("Default",)),
            Param("ExcludeRecipientTest", "switch", sets=("Default",)),
            Param("FullCompareMode", "switch", sets=("Default",)),
            Param("MaxReportSize", "any", sets=("Default",)),  # it reports no differences
            Param(
                "MonitoringContext",
                "bool",
                sets=("Default",),
                unsimulated="the lab writes no monitoring events or performance counters",
            ),
            Param("DomainController"),  # its page does not refuse it on an Edge
        ],
        task="Microsoft.Exchange.EdgeSync.Validation",
        default_set="Default",
    ),
]
