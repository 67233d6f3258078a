"""Reads batched into as few pipelines as outputs can be told apart, and the next step's reads
carried along.

A batch's outputs come back as one list, so a statement's objects are found by their wire type
name. A read piped into Select-Object gives `Selected.<type>`; reads of distinct cmdlets whose
type is known (below) share one pipeline, anything else gets its own, and a read sent twice is
sent once. A step's own cmdlets may run in the same pipeline as its read-back: their outputs are
not `Selected.` objects.

Exchange's endpoint runs no script, so the read that gates a step cannot sit in the step's own
pipeline before its cmdlets. Instead the reads the next step of the same server starts with
(`condition_reads`) ride after this step's reads (`riders`): nothing runs on that server in
between, so they show exactly what the next step will find. `round_trips` counts the pipelines
by the same rule the engine follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgebook.change.step import Call, Step
from edgebook.change.values import canonical
from edgebook.exchange import wire_types as types

if TYPE_CHECKING:
    from edgebook.change.plan import Plan

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
Seen = dict[bytes, list[Any]]  # the output of each read, by the read's canonical JSON (key)


def key(call: Call) -> bytes:
    """What identifies a read: its canonical JSON (the same call is the same read)."""
    return canonical(call.to_dict())


def tag(call: Call) -> str | None:
    """The type name a read's objects carry on the wire, when it tells them apart."""
    known = OUTPUT_TYPES.get(call.cmdlet.casefold())
    return f"Selected.{known}" if known and call.select else None


def condition_reads(step: Step | None) -> list[Call]:
    """What a step reads before it runs: its postconditions (skip, resume), its preconditions
    and the state its undo needs."""
    if step is None:
        return []
    reads = [c.read for c in step.post] + [c.read for c in step.pre]
    return reads + ([step.before] if step.before else [])


def following(steps: Sequence[Step], index: int) -> list[Call]:
    """The reads of the step after `index` when it runs on the same server (else none)."""
    later = steps[index + 1] if index + 1 < len(steps) else None
    return condition_reads(later) if later and later.server == steps[index].server else []


def groups(reads: list[Call]) -> list[list[Call]]:
    """Distinct reads in pipelines: taggable ones of distinct types together, others alone."""
    distinct = list({key(c): c for c in reads}.values())
    shared: dict[str, Call] = {}
    alone: list[list[Call]] = []
    for call in distinct:
        name = tag(call)
        if name is None or name in shared:
            alone.append([call])
        else:
            shared[name] = call
    return ([list(shared.values())] if shared else []) + alone


def riders(sent: list[Call], ahead: Iterable[Call], busy: Iterable[str] = ()) -> list[Call]:
    """The reads of `ahead` that can ride in a pipeline whose reads are `sent` (all tagged): not
    a read sent already (its output serves both), not one without a known type or whose type
    is taken, not one of a cmdlet the pipeline runs itself (`busy`: errors are told apart by
    cmdlet)."""
    keys = {key(c) for c in sent}
    taken = {tag(c) for c in sent}
    running = {name.casefold() for name in busy}
    out: list[Call] = []
    for call in ahead:
        name = tag(call)
        if key(call) in keys or name is None or name in taken:
            continue
        if call.cmdlet.casefold() in running:
            continue
        keys.add(key(call))
        taken.add(name)
        out.append(call)
    return out


def batches(reads: list[Call], ahead: Iterable[Call] = ()) -> list[list[Call]]:
    """The pipelines reading `reads`; the reads of `ahead` that fit ride in the shared one."""
    found = groups(reads)
    if found and all(tag(c) for c in found[0]):
        found[0] = found[0] + riders(found[0], ahead)
    return found


def read_back(step: Step, ahead: Iterable[Call] = ()) -> list[Call] | None:
    """The reads that run in the step's own pipeline after its cmdlets (its read-back, then the
    next step's reads that fit), or None when its read-back needs pipelines of its own."""
    post = groups([c.read for c in step.post])
    if len(post) > 1 or (post and not all(tag(c) for c in post[0])):
        return None
    sent = post[0] if post else []
    return sent + riders(sent, ahead, (c.cmdlet for c in step.calls))


def split(records: list[Any], batch: list[Call]) -> Seen:
    """The outputs of one batch, per read."""
    if len(batch) == 1 and tag(batch[0]) is None:
        return {key(batch[0]): list(records)}
    found: Seen = {key(c): [] for c in batch}
    by_tag = {tag(c): key(c) for c in batch}
    for record in records:
        names = getattr(record, "type_names", None) or []
        owner = by_tag.get(names[0] if names else None)
        if owner is not None:
            found[owner].append(record)
    return found


def outputs(seen: Seen, reads: list[Call]) -> list[list[Any]]:
    """The output of each read, in order."""
    return [seen[key(c)] for c in reads]


def _theirs(errors: list[Any], ridden: list[Call]) -> tuple[list[Any], bool]:
    """The errors that are not the riders' and whether a rider failed (its cmdlet wrote one;
    the riders' cmdlets are no other statement's)."""
    names = {c.cmdlet.casefold() for c in ridden}
    mine = [e for e in errors if (getattr(e, "cmdlet", None) or "").casefold() not in names]
    return mine, len(mine) < len(errors)


def read_all(shell: Any, reads: list[Call], fail: Fail, ahead: Iterable[Call] = ()) -> Seen:
    """The output of each read, in as few pipelines as possible, plus those of `ahead` that
    ride along (all of them, or none when one of theirs failed); errors of `reads` raise."""
    seen: Seen = {}
    wanted = {key(c) for c in reads}
    for batch in batches(reads, list(ahead)):
        result = shell.run_batch([c.command() for c in batch], errors="return")
        ridden = [c for c in batch if key(c) not in wanted]
        errors, rider_failed = _theirs(list(result.errors), ridden)
        if errors:
            raise fail("; ".join(e.message for e in errors))
        found = split(list(result.records), batch)
        seen |= {k: v for k, v in found.items() if k in wanted or not rider_failed}
    return seen


@dataclass
class Ran:
    """A step's own pipeline: the shell's result, the cmdlets' own outputs and errors, and the
    reads that ran after them (None when the read-back needs pipelines of its own)."""

    result: Any
    own: list[Any]
    errors: list[Any]
    seen: Seen | None


def run_then_read(shell: Any, step: Step, commands: list[Any], ahead: Iterable[Call] = ()) -> Ran:
    """A step's cmdlets and, in the same pipeline when their outputs can be told apart, its
    read-back and the next step's reads that fit (dropped when one of theirs failed)."""
    extra = {"questions": step.questions} if step.questions else {}
    reads = read_back(step, list(ahead))
    result = shell.run_batch(
        [*commands, *(c.command() for c in reads or [])], errors="return", **extra
    )
    if reads is None:
        return Ran(result, list(result.records), list(result.errors), None)
    wanted = {key(c.read) for c in step.post}
    errors, rider_failed = _theirs(list(result.errors), [c for c in reads if key(c) not in wanted])
    tags = {tag(c) for c in reads}
    own = [r for r in result.records if (getattr(r, "type_names", None) or [None])[0] not in tags]
    found = split(list(result.records), reads) if reads else {}
    seen = {k: v for k, v in found.items() if k in wanted or not rider_failed}
    return Ran(result, own, errors, seen)


def round_trips(plan: Plan, skipped: set[str] | frozenset[str] = frozenset()) -> dict[str, int]:
    """The pipelines applying the plan takes per server when every wait holds at its first
    read (the lock's are apart), by the engine's rule: a step reads what the previous step of
    its server did not carry for it; a step skipped by its postcondition costs that read only."""
    counts: dict[str, int] = {}
    carried: set[bytes] = set()
    for index, step in enumerate(plan.steps):
        if index == 0 or plan.steps[index - 1].server != step.server:
            carried = set()
        ahead = following(plan.steps, index)
        missing = [c for c in condition_reads(step) if key(c) not in carried]
        sent = batches(missing, ahead) if missing else []
        carried |= {key(c) for batch in sent for c in batch}
        trips = len(sent)
        if step.id not in skipped:
            back = read_back(step, ahead)
            sent = [back] if back is not None else batches([c.read for c in step.post], ahead)
            trips += 1 + (0 if back is not None else len(sent))
            carried = {key(c) for batch in sent for c in batch}
        counts[step.server] = counts.get(step.server, 0) + trips
    return counts
