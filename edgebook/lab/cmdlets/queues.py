"""Get-Queue and the queue cmdlets a drain uses: Suspend-Queue, Resume-Queue, Retry-Queue."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Cmdlet, Context, Param
from edgebook.lab.cmdlets.binding import parse_datetime
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
# QueueViewerIncludesAndExcludes: Internal, External, the DeliveryType values (Microsoft's
# NextHopSolutionKey list) and Empty ("Get-Queue -Exclude Empty").
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
    "Empty",
)
INCLUDES_TYPE = "Microsoft.Exchange.Data.QueueViewer.QueueViewerIncludesAndExcludes"
QUEUE_VIEWER_EXCEPTION = "Microsoft.Exchange.Data.QueueViewer.QueueViewerException"
NIL_GUID = uuid.UUID(int=0)
# Microsoft (Suspend-/Resume-Queue pages): with -Identity the queue is acted on "only if the
# identity matches a single queue. If the identity matches more than one queue, you receive an
# error"; the text of that error is not public (lab wording). Retry-Queue's page says nothing.
IDENTITY_MATCHES_SEVERAL = (
    "The identity '{identity}' matches {count} queues. {cmdlet} -Identity acts on a single "
    "queue: use the Filter parameter to act on more than one queue."
)
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
        "NextRetryTime": mailflow.next_retry(queue),
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


# Microsoft's "Queue properties" page: the properties a queue filter compares by number or time
# (-eq -ne -gt -ge -lt -le); the enum properties it compares with -eq and -ne only, to one of the
# enum's names; every other filterable property is compared as text (-eq -ne -like -notlike
# -contains).
INT_PROPERTIES = ("MessageCount", "RetryCount", "DeferredMessageCount", "LockedMessageCount")
RATE_PROPERTIES = ("IncomingRate", "OutgoingRate", "Velocity")
TIME_PROPERTIES = ("FirstRetryTime", "LastRetryTime", "NextRetryTime")
ENUM_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Status": tuple(QUEUE_STATUSES),
    "DeliveryType": tuple(i for i in INCLUDES if i not in ("Internal", "External", "Empty")),
    "NextHopCategory": ("Internal", "External"),
}
ORDER_OPERATORS = ("gt", "ge", "lt", "le")
TEXT_OPERATORS = ("like", "notlike", "contains")
_TOKEN = re.compile(
    r"\s*(?:(?P<open>[({])|(?P<close>[)}])|-(?P<op>[a-z]+)\b|'(?P<sq>(?:[^']|'')*)'"
    r"|\"(?P<dq>(?:[^\"]|\"\")*)\"|(?P<word>[^\s(){}'\"]+))",
    re.I,
)
# Lab wording: Exchange's filter parser messages are not in any public source.
FILTER_SYNTAX = (
    'The filter "{text}" isn\'t valid: {why}. Use clauses "Property -op \'value\'" '
    "(operators -eq -ne -gt -ge -lt -le -like -notlike -contains) joined by -and or -or, "
    "negated with -not, grouped with parentheses."
)
Test = Callable[[ExObject], bool]


class _FilterError(Exception):
    """A queue filter that cannot be parsed (the reason)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of a filter: open, close, op, value, word."""
    out: list[tuple[str, str]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _FilterError(f"unexpected text at '{text[pos:].strip()}'")
        pos = match.end()
        if match["open"]:
            out.append(("open", "("))
        elif match["close"]:
            out.append(("close", ")"))
        elif match["op"]:
            out.append(("op", match["op"].casefold()))
        elif match["sq"] is not None:
            out.append(("value", match["sq"].replace("''", "'")))
        elif match["dq"] is not None:
            out.append(("value", match["dq"].replace('""', '"')))
        else:
            out.append(("word", match["word"]))
    return out


class _Parser:
    """OPath over queue properties: -or of -and of [-not] (comparison or parenthesised)."""

    def __init__(self, tokens: list[tuple[str, str]], sample: ExObject) -> None:
        self.tokens = tokens
        self.pos = 0
        self.names = {k.casefold(): k for k in sample.properties}

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def parse(self) -> Test:
        test = self.either()
        if self.peek()[0] != "end":
            raise _FilterError(f"unexpected '{self.peek()[1]}'")
        return test

    def either(self) -> Test:
        return self.joined("or", self.both, any)

    def both(self) -> Test:
        return self.joined("and", self.single, all)

    def joined(
        self, op: str, operand: Callable[[], Test], combine: Callable[[Iterable[bool]], bool]
    ) -> Test:
        """Operands joined by -op (-and binds tighter than -or: both() is either()'s operand)."""
        tests = [operand()]
        while self.peek() == ("op", op):
            self.take()
            tests.append(operand())
        return tests[0] if len(tests) == 1 else lambda o: combine(t(o) for t in tests)

    def single(self) -> Test:
        kind, text = self.take()
        if (kind, text) == ("op", "not"):
            inner = self.single()
            return lambda o: not inner(o)
        if kind == "open":
            inner = self.either()
            if self.take()[0] != "close":
                raise _FilterError("a parenthesis is not closed")
            return inner
        if kind != "word":
            raise _FilterError(f"a property name was expected, not '{text or 'the end'}'")
        name = self.names.get(text.lstrip("$").casefold())
        if name is None:
            raise _FilterError(f"'{text}' isn't a queue property")
        kind, op = self.take()
        if kind != "op" or op in ("and", "or", "not"):
            raise _FilterError(f"a comparison operator was expected after {name}")
        kind, value = self.take()
        if kind not in ("value", "word"):
            raise _FilterError(f"a value was expected after {name} -{op}")
        return _comparison(name, op, value)


def _comparison(name: str, op: str, value: str) -> Test:
    """One clause, compared by number, time or (case-insensitive) text as the property is."""
    if op not in ("eq", "ne", *ORDER_OPERATORS, *TEXT_OPERATORS):
        raise _FilterError(f"-{op} isn't a comparison operator")
    typed = name in INT_PROPERTIES + RATE_PROPERTIES + TIME_PROPERTIES
    if typed and op in TEXT_OPERATORS:
        raise _FilterError(f"-{op} can't be used with {name}")
    if not typed and op in ORDER_OPERATORS:
        raise _FilterError(f"-{op} can't be used with {name} (a text property)")
    if typed:
        return _ordered(name, op, value)
    if name in ENUM_PROPERTIES:
        _check_member(name, op, value)

    def textual(obj: ExObject) -> bool:
        texts = _texts(obj, name)
        if op in ("like", "notlike"):
            found = any(_wildcard(value).fullmatch(t.casefold()) for t in texts)
            return found == (op == "like")
        if op == "contains":
            return any(value.casefold() in t.casefold() for t in texts)
        equal = any(t.casefold() == value.casefold() for t in texts)
        return equal == (op == "eq")

    return textual


def _check_member(name: str, op: str, value: str) -> None:
    """An enum property: -eq or -ne, to one of the enum's names (case-insensitive)."""
    if op not in ("eq", "ne"):
        raise _FilterError(f"-{op} can't be used with {name} (use -eq or -ne)")
    members = ENUM_PROPERTIES[name]
    if value.casefold() not in (m.casefold() for m in members):
        raise _FilterError(
            f"'{value}' isn't a valid value for {name} (valid values: {', '.join(members)})"
        )


def _ordered(name: str, op: str, value: str) -> Test:
    """A comparison of a count, rate or time."""
    wanted: Any
    try:
        if name in TIME_PROPERTIES:
            wanted = parse_datetime(value)
        elif name in INT_PROPERTIES:
            wanted = int(value)
        else:
            wanted = float(value)
    except ValueError:
        raise _FilterError(f"'{value}' isn't a valid value for {name}") from None

    def test(obj: ExObject) -> bool:
        actual = obj.properties.get(name)
        if actual is None:
            return op == "ne"
        return bool(
            {
                "eq": actual == wanted,
                "ne": actual != wanted,
                "gt": actual > wanted,
                "ge": actual >= wanted,
                "lt": actual < wanted,
                "le": actual <= wanted,
            }[op]
        )

    return test


def _wildcard(pattern: str) -> re.Pattern[str]:
    """A -like pattern (* only, case-insensitive) as a regular expression."""
    return re.compile(".*".join(re.escape(p) for p in pattern.casefold().split("*")), re.S)


def _texts(obj: ExObject, name: str) -> list[str]:
    """The texts a text comparison sees; a delivery queue's Identity also matches as
    Server\\NextHopDomain (Microsoft's example: Identity -like "*contoso.com")."""
    actual = obj.properties.get(name)
    if isinstance(actual, list):
        return [", ".join(str(a) for a in actual)]
    texts = [str(actual) if actual is not None else ""]
    if name == "Identity" and obj["NextHopDomain"]:
        texts.append(f"{obj['Identity'].split(chr(92))[0]}\\{obj['NextHopDomain']}")
    return texts


def _filter(ctx: Context, text: str, sample: ExObject) -> Test:
    """An OPath queue filter (Microsoft's "Find queues and messages in queues")."""
    try:
        return _Parser(_tokens(text), sample).parse()
    except _FilterError as exc:
        raise ctx.fail(
            FILTER_SYNTAX.format(text=text, why=exc),
            exception=QUEUE_VIEWER_EXCEPTION,
            category="InvalidArgument",
        ) from None


def _kinds(obj: ExObject) -> set[str]:
    """What -Include/-Exclude match: NextHopCategory, DeliveryType, and Empty (MessageCount 0)."""
    kinds = {str(obj["NextHopCategory"]).casefold(), str(obj["DeliveryType"]).casefold()}
    return kinds | ({"empty"} if obj["MessageCount"] == 0 else set())


def _identity_matches(obj: ExObject, wanted: str) -> bool:
    """Microsoft's queue identities: <Queue> is a persistent queue's name, a delivery queue's
    integer or NextHopDomain, or * (all queues)."""
    names = (obj["Identity"].split("\\", 1)[1], str(obj["NextHopDomain"] or ""))
    return any(_wildcard(wanted).fullmatch(n.casefold()) for n in names if n)


def _server_queues(ctx: Context, params: dict[str, Any]) -> tuple[Server, list[ExObject]]:
    """The server a queue cmdlet addresses (-Server, or the server in -Identity
    "<Server>\\<Queue>") and its queues (its transport must run)."""
    server = target_server(ctx, params.get("Server"))
    identity = params.get("Identity")
    queue = identity
    if identity and "\\" in identity and not identity.casefold().startswith("shadow\\"):
        host, queue = identity.split("\\", 1)
        server = target_server(ctx, host)
    if server.services.get(TRANSPORT, STOPPED) == STOPPED:
        raise ctx.fail(
            f"Couldn't connect to the Microsoft Exchange Transport service on computer "
            f"{server.fqdn}. Verify that the service is running.",
            exception=QUEUE_VIEWER_EXCEPTION,
            category="ReadError",
        )
    objects = [queue_object(server, q) for q in server.queues]
    if identity:
        objects = [o for o in objects if _identity_matches(o, queue or "")]
        if not objects:
            raise not_found(ctx, "queue", identity)
    if params.get("Filter"):
        sample = queue_object(server, Queue(0, "connector", "", "Undefined"))
        test = _filter(ctx, params["Filter"], sample)
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
    """Run action on the queues a call selects (Suspend-/Resume-Queue -Identity: one only)."""
    server, objects = _server_queues(ctx, params)
    single = ctx.cmdlet.name in ("Suspend-Queue", "Resume-Queue")
    if single and params.get("Identity") and len(objects) > 1:
        raise ctx.fail(
            IDENTITY_MATCHES_SEVERAL.format(
                identity=params["Identity"], count=len(objects), cmdlet=ctx.cmdlet.name
            ),
            exception=QUEUE_VIEWER_EXCEPTION,
            category="InvalidArgument",
            target=params["Identity"],
        )
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
    """Resume-Queue: a suspended queue connects again at once (the lab's choice), whatever its
    retry schedule was."""

    def resume(server: Server, queue: Queue) -> None:
        if queue.status == "Suspended":
            queue.status = "Ready"
            mailflow.evaluate_queue(ctx.org, server, queue, ctx.now, force=True)

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
