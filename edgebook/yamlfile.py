"""YAML files (parameters, scenarios): bounded loading and typed reading with clear errors.

`load_yaml` reads a file through edgebook.textfile (size limit, UTF-8) and parses it with a
safe loader that refuses a key given twice, recursive aliases, alias expansion beyond
MAX_VALUES values and nesting beyond MAX_DEPTH levels, so no file can make it hang.
`Section` reads a mapping of the parsed tree: unknown keys are refused and every accessor's
error names the file, the key path, what was found and what was expected.
Dependency-free apart from PyYAML and edgebook.errors/textfile, so the lab may import it.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Self

import yaml

from edgebook.errors import EdgebookError
from edgebook.textfile import TEXT_LIMIT, read_text

MISSING: Any = object()
MAX_VALUES = 100_000  # values of the document with every alias expanded
MAX_DEPTH = 64


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader (libyaml's parser when PyYAML has it: ~5x faster) that refuses a key
    given twice in one mapping (a likely typo)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`, flattened below
            continue
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Bounds:
    """Counts the values of a node graph with aliases expanded; refuses cycles and excess."""

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()

    def size(self, node: yaml.Node) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.open:
            raise _Refused("an alias refers to a value that contains it (a recursive alias)", node)
        self.open.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total += self.size(child)
            if total > MAX_VALUES:
                raise _Refused(
                    f"its aliases expand to more than {MAX_VALUES} values (an alias bomb?)", node
                )
        self.open.discard(key)
        self.sizes[key] = total
        return total


class _Refused(Exception):
    def __init__(self, problem: str, node: yaml.Node | yaml.Event) -> None:
        super().__init__(problem)
        mark = node.start_mark
        self.problem = problem
        self.where = f" (line {mark.line + 1})" if mark else ""


def _check_depth(text: str) -> None:
    """Refuse deep nesting from the event stream, before PyYAML's scanner (quadratic in the
    depth) and composer (recursive) see all of it."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(f"values are nested more than {MAX_DEPTH} levels deep", event)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_yaml(text: str, source: str | Path, error: type[EdgebookError]) -> Any:
    """Parse YAML text within the bounds; every problem is an `error` naming the source."""
    loader = _Loader(text)
    try:
        _check_depth(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _Bounds().size(node)
        return loader.construct_document(node)
    except _Refused as exc:
        raise error(f"{source}: refused YAML{exc.where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own bound, met before ours
            raise error(
                f"{source}: refused YAML{where}: values are nested more than {MAX_DEPTH} "
                "levels deep"
            ) from None
        raise error(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:  # aliases nesting nested values: deeper than Python recurses
        raise error(f"{source}: refused YAML: its aliases nest values too deeply") from None
    finally:
        loader.dispose()


def load_yaml(
    path: str | Path,
    *,
    what: str,
    error: type[EdgebookError] = EdgebookError,
    limit: int = TEXT_LIMIT,
) -> Any:
    """Read and parse a YAML file (`what` names it in errors, e.g. "parameters file")."""
    return parse_yaml(read_text(path, what=what, limit=limit, error=error), path, error)


def join(path: str, key: str | int) -> str:
    """Extend a key path: join('edges', 1) == 'edges[1]', join('edges[1]', 'winrm')."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    """A short description of a found value for messages."""
    if value is MISSING:
        return "nothing (the key is missing)"
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Section:
    """A mapping of a YAML document being read: unknown keys are refused, required ones
    demanded; subclasses set `error_type` (ConfigError, ScenarioError)."""

    error_type: type[EdgebookError] = EdgebookError

    def __init__(
        self,
        file: str | Path,
        value: Any,
        path: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> None:
        self.file = file
        self.path = path
        if not isinstance(value, dict):
            raise self.error(path, value, f"a mapping with keys {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error_type(
                    f"{file}: {join(path, str(key))}: unknown key; {hint}"
                    f"allowed here: {', '.join(allowed)}"
                )
        self.value: dict[str, Any] = value
        for key in required:
            if self.raw(key) is MISSING:
                raise self.error(self.key(key), MISSING, f"this key (it is required): {key}")

    def error(self, path: str, found: Any, expected: str) -> EdgebookError:
        """An error naming file, key path, what was found and what was expected."""
        return self.error_type(self.problem(path, found, expected))

    def problem(self, path: str, found: Any, expected: str) -> str:
        """The text of error(): file, key path, what was found and what was expected."""
        return f"{self.file}: {path or '(top level)'}: found {describe(found)}, expected {expected}"

    def key(self, key: str) -> str:
        """The key path of a key of this section."""
        return join(self.path, key)

    def raw(self, key: str) -> Any:
        """The raw value, MISSING when absent; null counts as absent."""
        value = self.value.get(key, MISSING)
        return MISSING if value is None else value

    def section(self, key: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> Self:
        """A required nested mapping."""
        return type(self)(self.file, self.raw(key), self.key(key), allowed, required)

    def optional_section(
        self, key: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> Self | None:
        """A nested mapping, None when absent."""
        if self.raw(key) is MISSING:
            return None
        return self.section(key, allowed, required)

    def items(self, key: str, *, minimum: int = 0) -> list[tuple[str, Any]]:
        """The entries of a list, each with its key path."""
        value = self.raw(key)
        if value is MISSING and minimum == 0:
            return []
        if not isinstance(value, list) or len(value) < minimum:
            expected = {0: "a list", 1: "a list of at least one entry"}.get(
                minimum, f"a list of at least {minimum} entries"
            )
            raise self.error(self.key(key), value, expected)
        return [(join(self.key(key), index), item) for index, item in enumerate(value)]

    def sections(
        self,
        key: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        *,
        minimum: int = 0,
    ) -> list[Self]:
        """The mappings of a list."""
        return [
            type(self)(self.file, item, path, allowed, required)
            for path, item in self.items(key, minimum=minimum)
        ]

    def text(self, key: str, default: Any = MISSING) -> str:
        """A non-empty string (surrounding blanks removed)."""
        value = self.raw(key)
        if value is MISSING and default is not MISSING:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(self.key(key), value, "a non-empty string")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        """A non-empty string, or None when absent."""
        return self.text(key, None)

    def texts(self, key: str) -> list[str]:
        """A list of non-empty strings (a single string counts as a one-entry list)."""
        value = self.raw(key)
        if value is MISSING:
            return []
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v.strip() for v in values
        ):
            raise self.error(self.key(key), value, "a list of non-empty strings")
        return [v.strip() for v in values]

    def integer(self, key: str, default: Any, low: int, high: int) -> int:
        """A whole number in [low, high]."""
        value = self.raw(key)
        if value is MISSING and default is not MISSING:
            return int(default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(self.key(key), value, f"a whole number from {low} to {high}")
        return value

    def number(self, key: str, default: Any, low: float, high: float) -> float:
        """A finite number in [low, high] (not .nan, not .inf)."""
        value = self.raw(key)
        if value is MISSING and default is not MISSING:
            return float(default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise self.error(self.key(key), value, f"a number from {low:g} to {high:g}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        """true or false."""
        value = self.raw(key)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(self.key(key), value, "true or false")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = MISSING) -> str:
        """One of the options (exact spelling)."""
        value = self.raw(key)
        if value is MISSING and default is not MISSING:
            return default
        if value not in options:
            raise self.error(self.key(key), value, f"one of {', '.join(options)}")
        return str(value)
