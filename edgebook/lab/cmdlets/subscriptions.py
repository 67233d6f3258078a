"""New/Remove/Get-EdgeSubscription (EdgeSync's cmdlets: edgebook.lab.cmdlets.synchronization)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import xml.etree.ElementTree as ET
from typing import Any

from edgebook.certs import thumbprint
from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import DOMAIN_CONTROLLER, Cmdlet, Context, Param
from edgebook.lab.cmdlets.common import INVALID_OPERATION, enum, not_found
from edgebook.lab.cmdlets.filesystem import file_key, folder_exists
from edgebook.lab.org import pki
from edgebook.lab.org.model import Replica, Server, Subscription
from edgebook.lab.org.scenarios import subscribe
from edgebook.lab.winrm.objects import ExObject

DEFAULT_LIFETIME = dt.timedelta(minutes=1440)
MIN_LIFETIME = dt.timedelta(minutes=2)
LOAD_FAILED = "The subscription file failed to load for the following reason: "
LEASES = ["None", "Lock", "Option"]  # LeaseTokenType, in Microsoft's member order
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
REMOVE_RECIPIENTS = (
    "Remove the recipients EdgeSync replicated to this Edge Transport server? Removing them from "
    "AD LDS can take a long time."
)


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
    """Refuse parameters Microsoft documents for the other role only. Exchange ignores them
    there; the lab says so instead (its own refusal, not Exchange's), so that a runbook cannot
    believe they took effect (F10: the connectors are created by the Mailbox server's import)."""
    given = [n for n in names if params.get(n) is not None]
    if given:
        where = "a Mailbox server" if role == "Mailbox" else "an Edge Transport server"
        listed = " and ".join(f"-{n}" for n in given)
        raise ctx.fail(
            f"The edgebook lab refuses {listed} of New-EdgeSubscription on this server: Exchange "
            f"uses {'them' if len(given) > 1 else 'it'} only on {where} and ignores "
            f"{'them' if len(given) > 1 else 'it'} here. Give {'them' if len(given) > 1 else 'it'} "
            f"to New-EdgeSubscription on {where}.",
            exception="System.Management.Automation.PSNotSupportedException",
            category="NotImplemented",
            code="LabParameterNotSimulated",
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
    _check_file_name(ctx, path)
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


def _check_file_name(ctx: Context, path: str) -> None:
    """-FileName is "the full path of the Edge Subscription file" (Microsoft): a relative one is
    refused (lab's wording: the Exchange process would not resolve it against the session's
    location); a folder's own path, or one whose folder does not exist, fails as any .NET file
    write does (Microsoft does not say that the cmdlet creates folders: the lab does not)."""
    key = file_key(path)
    if not re.match(r"^[a-z]:\\", key):
        raise ctx.fail(
            f"The FileName parameter needs the full path of the Edge Subscription file, such as "
            f"C:\\Data\\EdgeSubscription.xml; '{path}' isn't one.",
            exception="System.ArgumentException",
            category="InvalidArgument",
            target=path,
        )
    if not folder_exists(ctx.server, key.rsplit("\\", 1)[0]):
        raise ctx.fail(
            f"Could not find a part of the path '{path}'.",
            exception="System.IO.DirectoryNotFoundException",
            category="ObjectNotFound",
            target=path,
        )
    if folder_exists(ctx.server, key):
        raise ctx.fail(
            f"Access to the path '{path}' is denied.",
            exception="System.UnauthorizedAccessException",
            category="WriteError",
            target=path,
        )


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


DC = DOMAIN_CONTROLLER  # Microsoft: not supported on an Edge (New-/Remove-/Get- pages)
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
]
