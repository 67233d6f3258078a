"""Get-Queue and the queue cmdlets a drain uses: Suspend-Queue, Resume-Queue, Retry-Queue."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import uuid
from collections.abc import Callable
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.cmdlets.common import enum, not_found, target_server
from edgebook.lab.org import mailflow
from edgebook.lab.org.model import STOPPED, TRANSPORT, Queue, Server
from edgebook.lab.winrm.objects import ExObject

QUEUE_STATUSES = ["None", "Active", "Ready", "Retry", "Suspended", "Connecting"]
DELIVERY_TYPES = [
    "Undefined",
    "DnsConnectorDelivery",
    "SmartHostConnectorDelivery",
    "SmtpRelayToMailboxDeliveryGroup",
    "Unreachable",
]
# QueueViewerIncludesAndExcludes: Internal, External and the DeliveryType values (Microsoft's
# NextHopSolutionKey list).
INCLUDES = (
    "Internal",
    "External",
    *DELIVERY_TYPES,
    "MapiDelivery",
    "NonSmtpGatewayDelivery",
    "SmtpRelayToRemoteAdSite",
    "SmtpRelayToServers",
    "SmtpRelayWithinAdSite",
    "SmtpRelayWithinAdSiteToEdge",
    "SmtpRelayToDag",
    "SmtpRelayToConnectorSourceServers",
    "SmtpDeliveryToMailbox",
    "ShadowRedundancy",
    "DeliveryAgent",
    "Heartbeat",
)
INCLUDES_TYPE = "Microsoft.Exchange.Data.QueueViewer.QueueViewerIncludesAndExcludes"
QUEUE_VIEWER_EXCEPTION = "Microsoft.Exchange.Data.QueueViewer.QueueViewerException"
NIL_GUID = uuid.UUID(int=0)
RETRY_INTERVAL = dt.timedelta(minutes=5)
# Lab wording: the confirmation texts of the queue tasks are not in any public source.
CONFIRMATIONS = {
    "Suspend-Queue": 'Suspending queue "{identity}".',
    "Resume-Queue": 'Resuming queue "{identity}".',
    "Retry-Queue": 'Retrying queue "{identity}".',
}


def _queue_identity(server: Server, queue: Queue) -> str:
    if queue.kind == "submission":
        return f"{server.name}\\Submission"
    if queue.kind == "unreachable":
        return f"{server.name}\\Unreachable"
    return f"{server.name}\\{queue.number}"


def _connector_guid(server: Server, name: str | None) -> uuid.UUID:
    """The GUID of the (replicated) send connector a queue routes through; the nil GUID else."""
    found = next((c for c in mailflow.replicated_connectors(server) if c.name == name), None)
    return uuid.UUID(found.guid) if found is not None and found.guid else NIL_GUID


def queue_object(server: Server, queue: Queue) -> ExObject:
    """An ExtensibleQueueInfo (NextHopConnector: the GUID of the send connector the queue
    routes through, the nil GUID for the others, as Microsoft documents it)."""
    delivery = "Unreachable" if queue.kind == "unreachable" else queue.delivery_type
    props: dict[str, Any] = {
        "Identity": _queue_identity(server, queue),
        "DeliveryType": enum(T.DELIVERY_TYPE, DELIVERY_TYPES, delivery),
        "NextHopDomain": queue.next_hop_domain,
        "TlsDomain": queue.tls_domain,
        "NextHopConnector": _connector_guid(server, queue.connector),
        "Status": enum(T.QUEUE_STATUS, QUEUE_STATUSES, queue.status),
        "MessageCount": queue.message_count,
        "LastError": queue.last_error,
        "RetryCount": queue.retry_count,
        "LastRetryTime": queue.last_retry,
        "NextRetryTime": queue.last_retry + RETRY_INTERVAL if queue.last_retry else None,
        "FirstRetryTime": queue.first_retry,
        "NextHopCategory": enum(
            T.NEXT_HOP_CATEGORY, ["Internal", "External"], queue.next_hop_category
        ),
        "IncomingRate": 0.0,
        "OutgoingRate": 0.0,
        "Velocity": 0.0,
        # the lab queues every message at Normal priority and defers or locks none
        "MessageCountsPerPriority": [0, queue.message_count, 0, 0],
        "DeferredMessageCount": 0,
        "DeferredMessageCountsPerPriority": [0, 0, 0, 0],
        "LockedMessageCount": 0,
        "PriorityDescriptions": ["High", "Normal", "Low", "None"],
        "OutboundIPPool": 0,
        "OverrideSource": None,
        "RiskLevel": "Normal",
    }
    return ExObject([T.QUEUE, "System.Object"], props, to_string=props["Identity"])


_CLAUSE = re.compile(
    r"^\s*\$?(\w+)\s+-(eq|ne|gt|lt|ge|le|like|notlike|contains)\s+"
    r"(?:'([^']*)'|\"([^\"]*)\"|(\S+))\s*$",
    re.I,
)
_AND = re.compile(r"\s+-and\s+", re.I)


def _filter(ctx: Context, text: str) -> Callable[[ExObject], bool]:
    """An OPATH queue filter: clauses "Property -op value" joined by -and."""
    body = text.strip()
    while body[:1] in "({" and body[-1:] in ")}" and body:
        body = body[1:-1].strip()
    tests = []
    for clause in _AND.split(body):
        match = _CLAUSE.match(clause.strip("() "))
        if not match:
            raise ctx.fail(
                f'The filter "{text}" isn\'t valid: use "Property -op \'value\'" clauses joined by '
                "-and (operators -eq -ne -gt -lt -ge -le -like -notlike -contains).",
                exception=QUEUE_VIEWER_EXCEPTION,
                category="InvalidArgument",
            )
        name, op = match.group(1), match.group(2).lower()
        value = next(g for g in match.groups()[2:] if g is not None)
        tests.append(_clause(name, op, value))
    return lambda obj: all(test(obj) for test in tests)


def _clause(name: str, op: str, value: str) -> Callable[[ExObject], bool]:
    def test(obj: ExObject) -> bool:
        key = next((k for k in obj.properties if k.casefold() == name.casefold()), "")
        actual = obj.properties.get(key)
        text = str(actual) if actual is not None else ""
        if op in ("like", "notlike"):
            return fnmatch.fnmatch(text.casefold(), value.casefold()) == (op == "like")
        if op == "contains":
            return value.casefold() in text.casefold()
        if isinstance(actual, int) and value.lstrip("-").isdigit():
            a, b = actual, int(value)
            return {"eq": a == b, "ne": a != b, "gt": a > b, "lt": a < b, "ge": a >= b}.get(
                op, a <= b
            )
        equal = text.casefold() == value.casefold()
        return equal if op == "eq" else not equal if op == "ne" else False

    return test


def _kinds(obj: ExObject) -> set[str]:
    """What -Include/-Exclude match: NextHopCategory and DeliveryType."""
    return {str(obj["NextHopCategory"]).casefold(), str(obj["DeliveryType"]).casefold()}


def _server_queues(ctx: Context, params: dict[str, Any]) -> tuple[Server, list[ExObject]]:
    """The server a queue cmdlet addresses (-Server or the server in -Identity) and its queues
    (its transport must run)."""
    server = target_server(ctx, params.get("Server"))
    identity = params.get("Identity")
    if identity and "\\" in identity:
        server = target_server(ctx, identity.split("\\")[0])
    if server.services.get(TRANSPORT, STOPPED) == STOPPED:
        raise ctx.fail(
            f"Couldn't connect to the Microsoft Exchange Transport service on computer "
            f"{server.fqdn}. Verify that the service is running.",
            exception=QUEUE_VIEWER_EXCEPTION,
            category="ReadError",
        )
    objects = [queue_object(server, q) for q in server.queues]
    if identity:
        objects = [
            o
            for o in objects
            if o["Identity"].casefold() == identity.casefold()
            or o["Identity"].split("\\")[1].casefold() == identity.casefold()
        ]
        if not objects:
            raise not_found(ctx, "queue", identity)
    if params.get("Filter"):
        test = _filter(ctx, params["Filter"])
        objects = [o for o in objects if test(o)]
    return server, objects


def get_queue(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-Queue: -Identity, or -Server with -Filter; -Include/-Exclude; -ResultSize."""
    _, objects = _server_queues(ctx, params)
    if params.get("Include"):
        wanted = {i.casefold() for i in params["Include"]}
        objects = [o for o in objects if _kinds(o) & wanted]
    if params.get("Exclude"):
        unwanted = {i.casefold() for i in params["Exclude"]}
        objects = [o for o in objects if not _kinds(o) & unwanted]
    size = params.get("ResultSize")
    if size is not None and str(size).casefold() != "unlimited":
        try:
            objects = objects[: int(size)]
        except ValueError:
            raise ctx.fail(
                f"Cannot bind parameter 'ResultSize'. Cannot convert value \"{size}\" to type "
                '"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]".',
                exception="System.Management.Automation.ParameterBindingException",
                category="InvalidArgument",
            ) from None
    return objects


def _act(ctx: Context, params: dict[str, Any], action: Callable[[Server, Queue], None]) -> None:
    server, objects = _server_queues(ctx, params)
    by_identity = {_queue_identity(server, q): q for q in server.queues}
    template = CONFIRMATIONS[ctx.cmdlet.name]
    for obj in objects:
        if ctx.should_process(template.format(identity=obj["Identity"])):
            action(server, by_identity[obj["Identity"]])


def suspend_queue(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Suspend-Queue: the queue stops delivering (its messages wait) until resumed."""
    _act(ctx, params, lambda _, queue: setattr(queue, "status", "Suspended"))
    return []


def resume_queue(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Resume-Queue: a suspended queue delivers again (at once, in the lab)."""

    def resume(server: Server, queue: Queue) -> None:
        if queue.status == "Suspended":
            queue.status = "Ready"
            mailflow.evaluate_queue(ctx.org, server, queue, ctx.now)

    _act(ctx, params, resume)
    return []


def retry_queue(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Retry-Queue: a queue in Retry connects now instead of waiting for its retry interval."""

    def retry(server: Server, queue: Queue) -> None:
        if queue.status == "Retry":
            mailflow.evaluate_queue(ctx.org, server, queue, ctx.now, force=True)

    _act(ctx, params, retry)
    return []


def _queue_params(*extra: Param) -> list[Param]:
    """Identity (its own set) or -Filter with -Server (the Filter set)."""
    return [
        Param("Identity", position=0, mandatory=True, pipeline=True, sets=("Identity",)),
        Param("Filter", mandatory=True, sets=("Filter",)),
        Param("Server", pipeline=True, sets=("Filter",)),
        *extra,
    ]


TASK = "Microsoft.Exchange.Management.QueueViewerTasks"
PAGING = "the lab returns every queue in one page"
CMDLETS = [
    Cmdlet(
        "Get-Queue",
        get_queue,
        [
            Param("Identity", position=0, pipeline=True, sets=("Identity",)),
            Param("Server", pipeline=True, sets=("Server",)),
            Param("Filter", sets=("Server",)),
            Param("Include", "strs", values=INCLUDES, net_type=INCLUDES_TYPE),
            Param("Exclude", "strs", values=INCLUDES, net_type=INCLUDES_TYPE),
            Param("ResultSize", "any"),
            Param("BookmarkIndex", "int", unsimulated=PAGING),
            Param("BookmarkObject", "any", unsimulated=PAGING),
            Param("IncludeBookmark", "bool"),  # no effect without a bookmark, as in Exchange
            Param("ReturnPageInfo", "bool", unsimulated=PAGING),
            Param("SearchForward", "bool"),  # one page: the same result either way
            Param("SortOrder", "strs", unsimulated="the lab returns queues by identity"),
        ],
        task=TASK,
        default_set="Server",
    ),
    Cmdlet("Suspend-Queue", suspend_queue, _queue_params(), task=TASK, default_set="Identity"),
    Cmdlet("Resume-Queue", resume_queue, _queue_params(), task=TASK, default_set="Identity"),
    Cmdlet(
        "Retry-Queue",
        retry_queue,
        _queue_params(
            Param("Resubmit", "bool", unsimulated="the lab does not re-route queued messages")
        ),
        task=TASK,
        default_set="Identity",
    ),
]
