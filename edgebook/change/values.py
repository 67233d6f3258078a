"""Parameter values a plan holds: JSON, plus secrets by reference, file contents by hash, and
placeholders an undo fills from the state read before its step, from the step's output, or
from what its read-back finds that was not there before (Appeared). A property that was empty
before the step is restored as $null (NULL, sent on purpose).

A plan is pure data: it can be written, hashed, shown and read back. Its canonical form is
JSON with sorted keys and no whitespace; secrets appear there as references only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgebook.errors import EdgebookError
from edgebook.exchange.secure import SecureText
from edgebook.exchange.wire_values import NULL, Null
from edgebook.secrets import resolve_secret

MASK = "********"
P = TypeVar("P")


class PlanValueError(EdgebookError):
    """A plan value cannot be used (a changed file, a missing state value)."""


@dataclass(frozen=True)
class Secret:
    """A secret named by its reference (env:, keyring:, prompt, file:); sent as a SecureString."""

    reference: str
    what: str = "a secret of the plan"

    def resolve(self) -> SecureText:
        """The secret itself, wrapped so that the shell sends it as a SecureString."""
        return SecureText(resolve_secret(self.reference, what=self.what))


@dataclass(frozen=True)
class FileBytes:
    """A local file's bytes, pinned by their sha256 when the plan was made."""

    path: str
    sha256: str
    size: int

    @classmethod
    def of(cls, path: Path) -> FileBytes:
        """Pin a file's current content."""
        data = path.read_bytes()
        return cls(str(path), hashlib.sha256(data).hexdigest(), len(data))

    def read(self) -> bytes:
        """The bytes, refused when the file changed since the plan was made."""
        try:
            data = Path(self.path).read_bytes()
        except OSError as exc:
            raise PlanValueError(f"{self.path}: cannot be read ({exc.strerror})") from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise PlanValueError(
                f"{self.path} changed since the plan was made (sha256 differs): make and approve "
                "a new plan"
            )
        return data


@dataclass(frozen=True)
class Before:
    """In an undo: a property of the state read before the step."""

    property: str


@dataclass(frozen=True)
class Output:
    """In an undo: a property of the step's first output object."""

    property: str


@dataclass(frozen=True)
class Appeared:
    """In an undo: a property of the one object the step's first postcondition matches after the
    step and did not before it (what the step made, when its output does not name it:
    New-ExchangeCertificate -GenerateRequest returns the request text only)."""

    property: str


@dataclass(frozen=True)
class Carried:
    """Data an earlier step of the same run read (a subscription file): kept in memory only,
    never written to the plan, the journal or the evidence."""

    name: str


_MARKERS = {
    "$secret": Secret,
    "$file": FileBytes,
    "$before": Before,
    "$output": Output,
    "$appeared": Appeared,
    "$carried": Carried,
}


def to_json(value: Any) -> Any:
    """The JSON form of a plan value (markers as {"$kind": ...} objects)."""
    if isinstance(value, Secret):
        return {"$secret": value.reference, "what": value.what}
    if isinstance(value, FileBytes):
        return {"$file": value.path, "sha256": value.sha256, "size": value.size}
    if isinstance(value, Before):
        return {"$before": value.property}
    if isinstance(value, Output):
        return {"$output": value.property}
    if isinstance(value, Appeared):
        return {"$appeared": value.property}
    if isinstance(value, Carried):
        return {"$carried": value.name}
    if isinstance(value, Null):
        return {"$null": True}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a plan cannot hold a {type(value).__name__} value")


def from_json(value: Any) -> Any:
    """The plan value of a JSON form (the inverse of to_json)."""
    if isinstance(value, dict):
        if "$secret" in value:
            return Secret(value["$secret"], value.get("what", "a secret of the plan"))
        if "$file" in value:
            return FileBytes(value["$file"], value["sha256"], value["size"])
        if "$before" in value:
            return Before(value["$before"])
        if "$output" in value:
            return Output(value["$output"])
        if "$appeared" in value:
            return Appeared(value["$appeared"])
        if "$carried" in value:
            return Carried(value["$carried"])
        if "$null" in value:
            return NULL
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 (what the plan hash covers)."""
    return json.dumps(
        to_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def sha256_of(value: Any) -> str:
    """The sha256 (hex) of a value's canonical JSON."""
    return hashlib.sha256(canonical(value)).hexdigest()


def display(value: Any) -> str:
    """How a parameter value is shown in a plan: secrets masked, files by size and hash."""
    if isinstance(value, Secret):
        return f"{MASK} ({value.reference})"
    if isinstance(value, FileBytes):
        return f"<{Path(value.path).name}: {value.size} bytes, sha256 {value.sha256[:12]}…>"
    if isinstance(value, Before):
        return f"<{value.property} before the step>"
    if isinstance(value, Output):
        return f"<{value.property} of the step's output>"
    if isinstance(value, Appeared):
        return f"<{value.property} of what the step made, read back>"
    if isinstance(value, Carried):
        return f"<the {value.name} read by an earlier step, kept in memory only>"
    if isinstance(value, Null):
        return "$null"
    if isinstance(value, bool):
        return f"${str(value).lower()}"
    if isinstance(value, Mapping):
        return "@{" + "; ".join(f"{k}={display(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return ",".join(display(v) for v in value)
    if isinstance(value, str):
        return f"'{value}'" if not value.isalnum() else value
    return str(value)


def wire(value: Any, state: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """The value to send: secrets resolved (SecureText), files read, placeholders filled."""
    if isinstance(value, Secret):
        return value.resolve()
    if isinstance(value, FileBytes):
        return value.read()
    if isinstance(value, Before | Output | Appeared):
        kind = {Before: "before", Output: "output", Appeared: "appeared"}[type(value)]
        found = (state or {}).get(kind, {}).get(value.property)
        if found is None and kind == "appeared":
            raise PlanValueError(
                f"the read-back after the step shows no single new object to take "
                f"{value.property} from: this undo cannot be built; find what the step made on "
                "the server and remove it by hand"
            )
        if found is None and value.property in (state or {}).get(kind, {}):
            return NULL  # it was empty: the undo clears it again
        if found is None:
            raise PlanValueError(
                f"the {kind} state has no value for {value.property}: this undo cannot be built"
            )
        return found
    if isinstance(value, Carried):
        kept = (state or {}).get("carried", {}).get(value.name)
        if kept is None:
            raise PlanValueError(
                f"the {value.name} an earlier step read is not in memory (a new run): the step "
                "that reads it runs again first"
            )
        return kept
    if isinstance(value, Mapping):
        return {k: wire(v, state) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v, state) for v in value]
    return value


def fill(value: Any, state: Mapping[str, Mapping[str, Any]]) -> Any:
    """Placeholders replaced by state values; secrets and files stay references (journal-safe)."""
    if isinstance(value, Before | Output | Appeared):
        return wire(value, state)
    if isinstance(value, Mapping):
        return {k: fill(v, state) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill(v, state) for v in value]
    return value


def placeholders(calls: Iterable[Any], kind: type[P]) -> list[P]:
    """The placeholders of one kind in these calls' parameters, in order."""
    found: list[P] = []

    def walk(value: Any) -> None:
        if isinstance(value, kind):
            found.append(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for call in calls:
        walk(dict(call.params))
    return found


def appeared(step: Any, first: list[list[Any]], after: list[list[Any]]) -> dict[str, Any]:
    """The state Appeared placeholders read: the properties they name, of the one object the
    step's first postcondition matches in its read-back (`after`) and not in the same read
    before the step (`first`); empty when there is no such object or more than one."""
    wanted = [p.property for p in placeholders(step.undo, Appeared)]
    if not wanted or not step.post or step.post[0].expect != "present":
        return {}
    names, check = tuple(dict.fromkeys(wanted)), step.post[0]
    seen = [snapshot(r, names) for r in first[0] if isinstance(r, Mapping) and check.holds([r])]
    new = [
        r
        for r in after[0]
        if isinstance(r, Mapping) and check.holds([r]) and snapshot(r, names) not in seen
    ]
    return snapshot(new[0], names) if len(new) == 1 else {}


def snapshot(record: Mapping[str, Any], properties: tuple[str, ...]) -> dict[str, Any]:
    """The listed properties of a record as JSON values (texts, lists of texts, booleans)."""
    from edgebook.facts import values as v

    taken: dict[str, Any] = {}
    for name in properties:
        value = v.get(record, name)
        taken[name] = _json_value(value)
    return taken


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    to_string = getattr(value, "to_string", None)
    if isinstance(to_string, str) and to_string:
        return to_string
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_value(v) for v in value]
    items = getattr(value, "items", None)
    if isinstance(items, list):
        return [_json_value(v) for v in items]
    return str(value)
