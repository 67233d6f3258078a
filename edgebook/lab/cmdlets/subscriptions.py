"""New/Remove/Get-EdgeSubscription, Start-/Test-EdgeSynchronization."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import xml.etree.ElementTree as ET
from typing import Any

from edgebook.certs import thumbprint
from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import DOMAIN_CONTROLLER, Cmdlet, Context, Param, binding_error
from edgebook.lab.cmdlets.common import (
    INVALID_OPERATION,
    enum,
    mailbox_only,
    not_found,
    target_server,
)
from edgebook.lab.org import edgesync, pki
from edgebook.lab.org.model import Replica, SendConnector, Server, Subscription
from edgebook.lab.org.scenarios import subscribe
from edgebook.lab.winrm.objects import ExObject

DEFAULT_LIFETIME = dt.timedelta(minutes=1440)
MIN_LIFETIME = dt.timedelta(minutes=2)
LOAD_FAILED = "The subscription file failed to load for the following reason: "
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
LEASES = ["None", "Lock", "Option"]
RESULTS = ["Success", "Incomplete", "CouldNotConnect", "CouldNotLease", "LeaseHeld"]
SYNC_TYPES = ["Configuration", "Recipients"]
PADDING = dt.timedelta(minutes=40)
# The questions below are lab wording: Exchange's texts (Strings.ConfirmationMessage... in its
# management assemblies) are not in any public source; see docs/lab-scenarios.md.
SUBSCRIBE_WARNING = (
    "If you create an Edge Subscription, this Edge Transport server will be managed via EdgeSync "
    "replication. Accepted domains, message classifications, remote domains and Send connectors "
    "created manually on this server will be deleted. Complete the Edge Subscription inside the "
    'organization in the next "{minutes}" minutes, before the bootstrap account expires.'
)
RESUBSCRIBE_WARNING = (
    "This Edge Transport server is already subscribed. Creating a new Edge Subscription file "
    "replaces the bootstrap account: complete the subscription inside the organization in the "
    'next "{minutes}" minutes, before the bootstrap account expires.'
)
REMOVE_CONFIRMATION = 'Removing Edge Subscription "{identity}".'
# The ShouldProcess lines -Confirm shows (lab wording, as above).
NEW_CONFIRMATION = 'Creating Edge Subscription for "{identity}".'
SYNC_CONFIRMATION = 'Starting EdgeSync synchronization of "{identity}" from "{source}".'
UNLIMITED_UINT = "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]"
REMOVE_RECIPIENTS = (
    "Remove the recipients EdgeSync replicated to this Edge Transport server? Removing them from "
    "AD LDS can take a long time."
)


def file_key(path: str) -> str:
    """How a Windows path is looked up in a server's simulated filesystem."""
    return path.strip().strip('"').replace("/", "\\").casefold()


def timespan_text(value: dt.timedelta) -> str:
    """.NET TimeSpan.ToString() ("1.00:00:00")."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}.{clock}" if days else clock


def parse_timespan(text: str) -> dt.timedelta:
    """The inverse of timespan_text."""
    match = re.match(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+)$", text.strip())
    if not match:
        raise ValueError(f"invalid Duration {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _only_on(ctx: Context, params: dict[str, Any], names: tuple[str, ...], role: str) -> None:
    """Refuse parameters Microsoft documents for the other role only (the lab refuses them
    rather than ignoring them, so a runbook cannot believe they took effect)."""
    given = [n for n in names if params.get(n) is not None]
    if given:
        where = "a Mailbox server" if role == "Mailbox" else "an Edge Transport server"
        listed = " and ".join(given)
        raise ctx.fail(
            f"The {listed} parameter{'s' if len(given) > 1 else ''} can only be used when "
            f"running on {where}.",
            exception=INVALID_OPERATION,
        )


def _is_edge(ctx: Context, sub: Subscription, identity: str) -> bool:
    """Whether a TransportServerIdParameter (host name or FQDN) names this subscription's Edge."""
    wanted = identity.strip().casefold()
    server = ctx.org.find_server(sub.edge)
    names = {sub.edge.casefold()} | ({server.fqdn.casefold()} if server else set())
    return wanted in names


def _subscription_xml(
    edge: Server, blob: str, now: dt.datetime, lifetime: dt.timedelta, replica: Replica
) -> bytes:
    """The Edge Subscription file: the fields and order of Microsoft's "Edge Subscription
    credentials" page, the ESBRA password in clear text as there (value formats: the lab's)."""
    root = ET.Element("EdgeSubscriptionData")
    fields = {
        "EdgeServerName": edge.name,
        "EdgeServerFQDN": edge.fqdn,
        "EdgeCertificateBlob": blob,
        "ESRAUsername": replica.bootstrap_username,
        "ESRAPassword": replica.bootstrap_password,
        "EffectiveDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Duration": timespan_text(lifetime),
        "AdamSslPort": "50636",
        "ProductID": "00000-000-0000000-00000",
        "VersionNumber": "15.2.1544.4",
        "SerialNumber": "Version 15.2 (Build 1544.4)",
    }
    for name, value in fields.items():
        ET.SubElement(root, name).text = value
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root)


def new_edge_subscription(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """New-EdgeSubscription: writes the file on an Edge, imports it on a Mailbox server."""
    if ctx.server.role == "Edge":
        return _new_on_edge(ctx, params)
    return _new_on_mailbox(ctx, params)


def _new_on_edge(ctx: Context, params: dict[str, Any]) -> list[Any]:
    if params.get("FileData") is not None or params.get("Site"):
        raise ctx.fail(
            "The FileData and Site parameters can only be used when running on a Mailbox server.",
            exception=INVALID_OPERATION,
        )
    _only_on(ctx, params, ("CreateInboundSendConnector", "CreateInternetSendConnector"), "Mailbox")
    path = params.get("FileName")
    if not path:
        raise ctx.fail(
            "The FileName parameter is required when running on an Edge Transport server."
        )
    edge = ctx.server
    lifetime = params.get("AccountExpiryDuration") or DEFAULT_LIFETIME
    if lifetime < MIN_LIFETIME:
        raise ctx.fail("The AccountExpiryDuration parameter must be at least 00:02:00.")
    if not ctx.should_process(NEW_CONFIRMATION.format(identity=edge.name)):
        return []  # -WhatIf, or No to -Confirm
    minutes = f"{lifetime.total_seconds() / 60:g}"
    question = RESUBSCRIBE_WARNING if edge.replica is not None else SUBSCRIBE_WARNING
    if not params.get("Force") and not ctx.should_continue(question.format(minutes=minutes)):
        return []
    if file_key(path) in edge.files and not params.get("Force"):
        raise ctx.fail(
            f"The file {path} already exists. Use the Force parameter to overwrite it.",
            exception="System.IO.IOException",
            target=path,
        )
    default = edge.certificate(edge.internal_transport_thumbprint or "")
    if default is None:
        raise ctx.fail(
            "The internal transport certificate of the local server couldn't be found in the "
            "personal store. Run New-ExchangeCertificate to create one, then retry.",
        )
    if edge.replica is None:
        edge.replica = Replica()
    # A new file replaces the bootstrap account in AD LDS: a new random password each time.
    edge.replica.bootstrap_username = f"ESRA.{edge.name}"
    edge.replica.bootstrap_password = secrets.token_urlsafe(24)
    edge.files[file_key(path)] = base64.b64encode(
        _subscription_xml(edge, default.der_b64, ctx.now, lifetime, edge.replica)
    ).decode()
    return []


def _new_on_mailbox(ctx: Context, params: dict[str, Any]) -> list[Any]:
    if params.get("FileName"):
        raise ctx.fail(
            "The FileName parameter can only be used when running on an Edge Transport server.",
            exception=INVALID_OPERATION,
        )
    _only_on(ctx, params, ("AccountExpiryDuration",), "Edge")
    data = params.get("FileData")
    site = params.get("Site")
    if data is None or not site:
        raise ctx.fail(
            "The FileData and Site parameters are required when running on a Mailbox server."
        )
    if site.casefold() != ctx.org.site.casefold():
        raise not_found(ctx, "site", site)
    try:
        root = ET.fromstring(data.decode("utf-8-sig") if isinstance(data, bytes) else data)
        values = {child.tag: (child.text or "") for child in root}
        edge_name = values["EdgeServerName"]
        blob = values["EdgeCertificateBlob"]
        effective = dt.datetime.fromisoformat(values["EffectiveDate"].replace("Z", "+00:00"))
        lifetime = parse_timespan(values["Duration"])
        credentials = (values["ESRAUsername"], values["ESRAPassword"])
        cert = pki.load(blob)
    except (ET.ParseError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ctx.fail(
            f"{LOAD_FAILED}The file isn't a valid Edge Subscription file ({exc})."
        ) from exc
    if effective.tzinfo is None:
        effective = effective.replace(tzinfo=dt.UTC)
    if ctx.now > effective + lifetime:  # F8
        raise ctx.fail(
            f"{LOAD_FAILED}The EdgeSync bootstrap replication account credentials in the "
            f"subscription file expired at {(effective + lifetime).strftime('%m/%d/%Y %H:%M:%S')} "
            "UTC. Run New-EdgeSubscription -FileName on the Edge Transport server again and "
            "import the new file before it expires."
        )
    thumb = thumbprint(cert)
    if any(m.internal_transport_thumbprint == thumb for m in ctx.org.mailboxes):  # F1
        raise ctx.fail(
            f"{LOAD_FAILED}The direct trust certificate of the subscribed Edge Transport server "
            f"with the thumbprint {thumb} is a duplicate of the certificate of one of the "
            "Hubtransport servers. Sharing the same certificate between Edge and Hub Transport "
            "servers is not allowed"
        )
    edge = ctx.org.find_server(edge_name)
    if edge is None or edge.role != "Edge":
        raise ctx.fail(
            f"{LOAD_FAILED}The Edge Transport server {edge_name} isn't known to the lab."
        )
    if not ctx.should_process(NEW_CONFIRMATION.format(identity=edge.name)):
        return []  # -WhatIf, or No to -Confirm
    subscribe(
        ctx.org,
        edge,
        ctx.now,
        params.get("CreateInboundSendConnector", True) is not False,
        params.get("CreateInternetSendConnector", True) is not False,
        certificate_der_b64=blob,
        esra=credentials,
    )
    return []


def remove_edge_subscription(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Remove-EdgeSubscription (F10 on a Mailbox server; clears AD LDS data on an Edge)."""
    identity = params["Identity"]
    confirmation = REMOVE_CONFIRMATION.format(identity=identity)
    if ctx.server.role == "Edge":
        if identity.casefold() not in (ctx.server.name.casefold(), ctx.server.fqdn.casefold()):
            raise not_found(ctx, "subscription", identity)
        if ctx.should_process(confirmation, high_impact=True):
            ctx.server.replica = None
            # Exchange then asks before it deletes the recipients EdgeSync replicated (the lab
            # models none, so the answer changes nothing); -Force skips the question.
            if not params.get("Force"):
                ctx.should_continue(REMOVE_RECIPIENTS)
        return []
    sub = next((s for s in ctx.org.subscriptions if _is_edge(ctx, s, identity)), None)
    if sub is None:
        raise not_found(ctx, "subscription", identity)
    if not ctx.should_process(confirmation, high_impact=True):
        return []
    ctx.org.subscriptions.remove(sub)
    kept = []
    for connector in ctx.org.send_connectors:
        sources = [
            s for s in connector.source_transport_servers if s.casefold() != sub.edge.casefold()
        ]
        if len(sources) != len(connector.source_transport_servers):
            connector.when_changed = ctx.now
            if not sources:
                continue  # the Edge was the only source: the connector is removed
        connector.source_transport_servers = sources
        kept.append(connector)
    ctx.org.send_connectors = kept
    return []


def get_edge_subscription(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-EdgeSubscription (a null or wrong -Identity returns all)."""
    subs = list(ctx.org.subscriptions)
    if ctx.server.role == "Edge":
        subs = [s for s in subs if s.edge == ctx.server.name and ctx.server.replica is not None]
    wanted = params.get("Identity")
    if wanted:
        chosen = [s for s in subs if _is_edge(ctx, s, wanted)]
        subs = chosen or subs
    return [
        ExObject(
            [T.EDGE_SUBSCRIPTION, "System.Object"],
            {
                "Name": s.edge,
                "Site": s.site,
                "Domain": s.domain,
                "CreateUtc": s.create_utc,
                "LifeTime": "Infinite",
                "LeaseType": enum(T.LEASE_TOKEN_TYPE, LEASES, s.lease_type),
                "IsValid": True,
                "Identity": s.edge,
            },
            to_string=s.edge,
        )
        for s in subs
    ]


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
    source = target_server(ctx, params.get("Server"))
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


DC = DOMAIN_CONTROLLER  # Microsoft: not supported on an Edge (New-/Remove-/Get- pages)
NO_RECIPIENTS = "the lab models no recipients"
CMDLETS = [
    Cmdlet(
        "New-EdgeSubscription",
        new_edge_subscription,
        [
            Param("FileName"),
            Param("FileData", "bytes"),
            Param("Site"),
            Param("CreateInboundSendConnector", "bool"),
            Param("CreateInternetSendConnector", "bool"),
            Param("AccountExpiryDuration", "timespan"),
            Param("Force", "switch"),
            DC,
        ],
    ),
    Cmdlet(
        "Remove-EdgeSubscription",
        remove_edge_subscription,
        [
            Param("Identity", position=0, mandatory=True, pipeline=True),
            Param("Force", "switch"),
            DC,
        ],
    ),
    Cmdlet(
        "Get-EdgeSubscription",
        get_edge_subscription,
        [Param("Identity", position=0, pipeline=True), DC],
    ),
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
