"""A step of a change: the cmdlets it runs on one server, what must hold before and after, the
state its undo needs, its undo (or why it has none), and the questions Exchange will ask."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from edgebook.change import values
from edgebook.exchange.command import Command
from edgebook.exchange.questions import ExpectedQuestion
from edgebook.facts import values as v

_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,79}$")


@dataclass(frozen=True)
class Call:
    """One cmdlet with its parameters (plan values); `select` pipes it into Select-Object."""

    cmdlet: str
    params: Mapping[str, Any] = field(default_factory=dict)
    select: tuple[str, ...] = ()

    def command(self, state: Mapping[str, Mapping[str, Any]] | None = None) -> Command:
        """The shell Command, with secrets resolved, files read and placeholders filled."""
        command = Command(self.cmdlet, values.wire(dict(self.params), state))
        return command.select(self.select) if self.select else command

    def filled(self, state: Mapping[str, Mapping[str, Any]]) -> Call:
        """This call with its placeholders replaced by state values (secrets stay references)."""
        return Call(self.cmdlet, values.fill(dict(self.params), state), self.select)

    def text(self) -> str:
        """PowerShell-like text, secrets masked."""
        parts = [self.cmdlet] + [f"-{k} {values.display(p)}" for k, p in self.params.items()]
        line = " ".join(parts)
        return f"{line} | Select-Object {','.join(self.select)}" if self.select else line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "cmdlet": self.cmdlet,
            "params": values.to_json(dict(self.params)),
            "select": list(self.select),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Call:
        """The inverse of to_dict."""
        return cls(data["cmdlet"], values.from_json(data["params"]), tuple(data["select"]))


def contains(item: str) -> dict[str, str]:
    """In a Check's `where`: a multi-valued or flags property holds this item."""
    return {"contains": item}


def differs(value: Any) -> dict[str, Any]:
    """In a Check's `where`: the property is anything but this value."""
    return {"not": value}


def _same(found: Any, wanted: Any) -> bool:
    """Exchange values compared as text, case-insensitively; lists as sets; contains() and
    differs() as operators."""
    if isinstance(wanted, Mapping) and set(wanted) == {"not"}:
        return not _same(found, wanted["not"])
    if isinstance(wanted, Mapping) and set(wanted) == {"contains"}:
        items = {part.strip().casefold() for t in v.texts(found) for part in t.split(",")}
        return str(wanted["contains"]).casefold() in items
    if isinstance(wanted, list | tuple):
        have = {t.casefold() for t in v.texts(found)}
        return have == {str(w).casefold() for w in wanted}
    if isinstance(wanted, bool):
        return v.boolean(found) is wanted
    if wanted is None:
        return found is None or v.text(found) == ""
    text = getattr(found, "to_string", None) or found
    return v.text(text).casefold() == str(wanted).casefold()


@dataclass(frozen=True)
class Check:
    """A condition read back from the server: some (or no) output object has these values."""

    says: str
    read: Call
    where: Mapping[str, Any]
    expect: Literal["present", "absent"] = "present"

    def holds(self, records: list[Any]) -> bool:
        """Whether the read's output satisfies the condition."""
        objects = [r for r in records if isinstance(r, Mapping)]
        found = any(
            all(_same(v.get(r, name), wanted) for name, wanted in self.where.items())
            for r in objects
        )
        return found if self.expect == "present" else not found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "says": self.says,
            "read": self.read.to_dict(),
            "where": values.to_json(dict(self.where)),
            "expect": self.expect,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        """The inverse of to_dict."""
        return cls(
            data["says"],
            Call.from_dict(data["read"]),
            values.from_json(data["where"]),
            data["expect"],
        )


@dataclass(frozen=True)
class Probe:
    """A postcondition seen from here: the certificate an Edge presents on SMTP (25) or LDAPS
    (50636) has this thumbprint (edgebook.probes)."""

    says: str
    server: str
    kind: Literal["smtp", "ldaps"]
    thumbprint: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "says": self.says,
            "server": self.server,
            "kind": self.kind,
            "thumbprint": self.thumbprint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Probe:
        """The inverse of to_dict."""
        return cls(data["says"], data["server"], data["kind"], data["thumbprint"])


@dataclass(frozen=True)
class Wait:
    """A step whose postcondition comes true later: read it again every `every_s` seconds for
    at most `timeout_s` (a drain, a synchronisation)."""

    timeout_s: float
    every_s: float = 5.0
    what: str = "its postcondition"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"timeout_s": self.timeout_s, "every_s": self.every_s, "what": self.what}


def _question_dicts(questions: tuple[ExpectedQuestion, ...]) -> list[dict[str, str]]:
    return [q.to_dict() for q in questions]


def _questions(data: list[Mapping[str, str]]) -> tuple[ExpectedQuestion, ...]:
    return tuple(ExpectedQuestion(**q) for q in data)


@dataclass(frozen=True)
class Step:
    """One step of a plan, run on one server."""

    id: str
    server: str
    does: str  # one line: what the step does
    calls: tuple[Call, ...]
    post: tuple[Check, ...]  # read back after the step; all must hold
    pre: tuple[Check, ...] = ()  # must hold before the step runs
    before: Call | None = None  # its first output (the selected properties) is kept for the undo
    undo: tuple[Call, ...] = ()
    no_undo: str = ""  # why this step has no undo (shown in the plan before approval)
    questions: tuple[ExpectedQuestion, ...] = ()
    undo_questions: tuple[ExpectedQuestion, ...] = ()
    probes: tuple[Probe, ...] = ()  # postconditions seen from here (after `post`)
    wait: Wait | None = None  # poll `post` (and `probes`) until they hold
    keeps: str = ""  # keep the bytes the calls output in memory under this name (Carried)
    once: bool = False  # its effect cannot be read back: skipped only when journalled done
    final: bool = False  # no undo, and undoing the steps before it would harm: rollback stops
    journals_text: bool = False  # journal the text its calls output (public only: a request)

    def __post_init__(self) -> None:
        if not _STEP_ID.match(self.id):
            raise ValueError(f"step id {self.id!r}: lower-case letters, digits, '.', '-'")
        if not self.calls or not (self.post or self.keeps):
            raise ValueError(f"step {self.id}: a step needs calls and a postcondition")
        if bool(self.undo) == bool(self.no_undo):
            raise ValueError(f"step {self.id}: give an undo or say why there is none, not both")
        if self.before is not None and not self.before.select:
            raise ValueError(f"step {self.id}: the before-read must select the properties kept")

    @property
    def reversible(self) -> bool:
        """Whether rollback can revert this step."""
        return bool(self.undo)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the plan hash covers)."""
        return {
            "id": self.id,
            "server": self.server,
            "does": self.does,
            "calls": [c.to_dict() for c in self.calls],
            "pre": [c.to_dict() for c in self.pre],
            "post": [c.to_dict() for c in self.post],
            "before": self.before.to_dict() if self.before else None,
            "undo": [c.to_dict() for c in self.undo],
            "no_undo": self.no_undo,
            "questions": _question_dicts(self.questions),
            "undo_questions": _question_dicts(self.undo_questions),
            "probes": [p.to_dict() for p in self.probes],
            "wait": self.wait.to_dict() if self.wait else None,
            "keeps": self.keeps,
            "once": self.once,
            "final": self.final,
            "journals_text": self.journals_text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """The inverse of to_dict."""
        return cls(
            id=data["id"],
            server=data["server"],
            does=data["does"],
            calls=tuple(Call.from_dict(c) for c in data["calls"]),
            pre=tuple(Check.from_dict(c) for c in data["pre"]),
            post=tuple(Check.from_dict(c) for c in data["post"]),
            before=Call.from_dict(data["before"]) if data["before"] else None,
            undo=tuple(Call.from_dict(c) for c in data["undo"]),
            no_undo=data["no_undo"],
            questions=_questions(data["questions"]),
            undo_questions=_questions(data["undo_questions"]),
            probes=tuple(Probe.from_dict(p) for p in data.get("probes", [])),
            wait=Wait(**data["wait"]) if data.get("wait") else None,
            keeps=data.get("keeps", ""),
            once=bool(data.get("once", False)),
            final=bool(data.get("final", False)),
            journals_text=bool(data.get("journals_text", False)),
        )
