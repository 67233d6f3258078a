"""Reads batched into as few pipelines as outputs can be told apart.

A batch's outputs come back as one list, so a statement's objects are found by their wire type
name. A read piped into Select-Object gives `Selected.<type>`; reads of distinct cmdlets whose
type is known (below) share one pipeline, anything else gets its own. A step's own cmdlets may
run in the same pipeline as its read-back: their outputs are not `Selected.` objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgebook.change.plan import Plan
from edgebook.change.step import Call
from edgebook.change.values import canonical
from edgebook.exchange import wire_types as types

OUTPUT_TYPES = {
    "get-exchangecertificate": types.EXCHANGE_CERTIFICATE,
    "get-transportservice": types.TRANSPORT_SERVICE,
    "get-sendconnector": types.SEND_CONNECTOR,
    "get-receiveconnector": types.RECEIVE_CONNECTOR,
    "get-queue": types.QUEUE,
    "get-service": types.SERVICE_CONTROLLER,
    "get-edgesubscription": types.EDGE_SUBSCRIPTION,
    "test-edgesynchronization": types.EDGE_SYNC_STATUS,
}

Fail = Callable[[str], Exception]


def tag(call: Call) -> str | None:
    """The type name a read's objects carry on the wire, when it tells them apart."""
    known = OUTPUT_TYPES.get(call.cmdlet.casefold())
    return f"Selected.{known}" if known and call.select else None


def groups(reads: list[Call]) -> list[list[Call]]:
    """Distinct reads in pipelines: taggable ones of distinct types together, others alone."""
    distinct = list({canonical(c.to_dict()): c for c in reads}.values())
    shared: dict[str, Call] = {}
    alone: list[list[Call]] = []
    for call in distinct:
        key = tag(call)
        if key is None or key in shared:
            alone.append([call])
        else:
            shared[key] = call
    return ([list(shared.values())] if shared else []) + alone


def pipelines(reads: list[Call]) -> int:
    """How many pipelines read_all needs for these reads."""
    return len(groups(reads))


def split(records: list[Any], batch: list[Call]) -> dict[bytes, list[Any]]:
    """The outputs of one batch, per read."""
    if len(batch) == 1 and tag(batch[0]) is None:
        return {canonical(batch[0].to_dict()): list(records)}
    found: dict[bytes, list[Any]] = {canonical(c.to_dict()): [] for c in batch}
    by_tag = {tag(c): canonical(c.to_dict()) for c in batch}
    for record in records:
        names = getattr(record, "type_names", None) or []
        key = by_tag.get(names[0] if names else None)
        if key is not None:
            found[key].append(record)
    return found


def read_all(shell: Any, reads: list[Call], fail: Fail) -> list[list[Any]]:
    """The output of each read, in order, in as few pipelines as possible; errors raise."""
    outputs: dict[bytes, list[Any]] = {}
    for batch in groups(reads):
        result = shell.run_batch([c.command() for c in batch], errors="return")
        if result.errors:
            raise fail("; ".join(e.message for e in result.errors))
        outputs |= split(list(result.records), batch)
    return [outputs[canonical(c.to_dict())] for c in reads]


def run_then_read(
    shell: Any, commands: list[Any], questions: tuple, reads: list[Call]
) -> tuple[Any, list[Any], list[list[Any]] | None]:
    """A step's cmdlets and, in the same pipeline when their outputs can be told apart, its
    read-back. Returns (the run's result, the cmdlets' own outputs, the reads' outputs or None
    when they must be read in pipelines of their own)."""
    extra = {"questions": questions} if questions else {}
    batch = groups(reads)
    together = len(batch) == 1 and all(tag(c) for c in batch[0])
    calls = [c.command() for c in batch[0]] if together else []
    result = shell.run_batch([*commands, *calls], errors="return", **extra)
    if not together:
        return result, list(result.records), None
    tags = {tag(c) for c in batch[0]}
    own = [r for r in result.records if (getattr(r, "type_names", None) or [None])[0] not in tags]
    outputs = split(list(result.records), batch[0])
    return result, own, [outputs[canonical(c.to_dict())] for c in reads]


def round_trips(plan: Plan, skipped: set[str] | frozenset[str] = frozenset()) -> dict[str, int]:
    """The pipelines applying the plan takes per server when every wait holds at its first
    read (the lock's are apart); a skipped step costs its first read only."""
    counts: dict[str, int] = {}
    for step in plan.steps:
        reads = [c.read for c in step.post] + [c.read for c in step.pre]
        reads += [step.before] if step.before else []
        trips = pipelines(reads)
        if step.id not in skipped:
            post = groups([c.read for c in step.post])
            together = len(post) == 1 and all(tag(c) for c in post[0])
            trips += 1 + (0 if together or not post else len(post))
        counts[step.server] = counts.get(step.server, 0) + trips
    return counts
