"""Typed reading of a parsed YAML tree, with errors naming the file, the key path, what was
found and what was expected."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from edgebook.errors import ConfigError
from edgebook.secrets import REFERENCE_HELP, SecretError, looks_like_reference, parse_reference

MISSING: Any = object()
SECRET_WORDS = ("password", "secret", "passphrase")
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*$")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (a likely typo)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{path}: the parameters file does not exist") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path}: is a folder, not a parameters file; give the path of the YAML file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the parameters file: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


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


def refuse_literal_secrets(file: Path, value: Any, path: str = "") -> None:
    """Refuse any secret-like key (password, secret, passphrase) that is not a reference."""
    items: Iterator[tuple[str | int, Any]]
    if isinstance(value, dict):
        items = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        return
    for key, child in items:
        child_path = join(path, key if isinstance(key, int) else str(key))
        is_secret_key = isinstance(key, str) and any(w in key.lower() for w in SECRET_WORDS)
        if is_secret_key and child is not None:
            if not looks_like_reference(child):
                raise ConfigError(
                    f"{file}: {child_path}: a literal secret is not allowed in a parameters "
                    f"file (papermill copies parameters into every notebook in clear text); "
                    f"write a reference instead: {REFERENCE_HELP}"
                )
            try:
                parse_reference(child, what=f"{file}: {child_path}")
            except SecretError as exc:
                raise ConfigError(str(exc)) from None
        else:
            refuse_literal_secrets(file, child, child_path)


class Section:
    """A mapping of the parameters file being read: unknown keys are refused."""

    def __init__(self, file: Path, value: Any, path: str, allowed: tuple[str, ...]) -> None:
        self.file = file
        self.path = path
        if not isinstance(value, dict):
            raise self.error(path, value, f"a mapping with keys {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"{file}: {join(path, str(key))}: unknown key; {hint}"
                    f"allowed here: {', '.join(allowed)}"
                )
        self.value: dict[str, Any] = value

    def error(self, path: str, found: Any, expected: str) -> ConfigError:
        """A ConfigError naming file, key path, what was found and what was expected."""
        return ConfigError(
            f"{self.file}: {path or '(top level)'}: found {describe(found)}, expected {expected}"
        )

    def key(self, key: str) -> str:
        """The key path of a key of this section."""
        return join(self.path, key)

    def raw(self, key: str) -> Any:
        """The raw value, MISSING when absent; null counts as absent."""
        value = self.value.get(key, MISSING)
        return MISSING if value is None else value

    def section(self, key: str, allowed: tuple[str, ...]) -> Section:
        """A required nested mapping."""
        return Section(self.file, self.raw(key), self.key(key), allowed)

    def optional_section(self, key: str, allowed: tuple[str, ...]) -> Section | None:
        """A nested mapping, None when absent."""
        if self.raw(key) is MISSING:
            return None
        return self.section(key, allowed)

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

    def text(self, key: str, default: Any = MISSING) -> str:
        """A non-empty string."""
        value = self.raw(key)
        if value is MISSING and default is not MISSING:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(self.key(key), value, "a non-empty string")
        return value.strip()

    def host(self, key: str, default: Any = MISSING) -> str:
        """A DNS name or an IP address; an IPv6 literal loses its brackets ([::1] -> ::1)."""
        value = self.text(key, default)
        if not is_host(value):
            raise self.error(self.key(key), value, "a DNS name or an IP address")
        return value[1:-1] if value.startswith("[") and value.endswith("]") else value

    def integer(self, key: str, default: Any, low: int, high: int) -> int:
        """An integer in [low, high]."""
        value = self.raw(key)
        if value is MISSING and default is not MISSING:
            return int(default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(self.key(key), value, f"a whole number from {low} to {high}")
        return value

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

    def file_path(self, key: str) -> Path | None:
        """A file path; relative paths resolve against the parameters file's folder.

        Existence is checked when the file is used (the shell reports a missing CA bundle),
        so an inventory can be validated on a machine without the files.
        """
        value = self.raw(key)
        if value is MISSING:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(self.key(key), value, "a file path")
        return resolve_path(self.file, value.strip())

    def reference(self, key: str) -> str:
        """A required secret reference (refuse_literal_secrets checked its syntax)."""
        value = self.optional_reference(key)
        if value is None:
            raise self.error(self.key(key), MISSING, f"a secret reference: {REFERENCE_HELP}")
        return value

    def optional_reference(self, key: str) -> str | None:
        """A secret reference or None; a relative file: path is made absolute."""
        value = self.raw(key)
        if value is MISSING:
            return None
        if not isinstance(value, str) or not looks_like_reference(value):
            raise self.error(self.key(key), "(hidden)", f"a secret reference: {REFERENCE_HELP}")
        if value.startswith("file:"):
            return "file:" + str(resolve_path(self.file, value[len("file:") :]))
        return value


def resolve_path(file: Path, value: str) -> Path:
    """A path from the parameters file: ~ expanded, relative to the file's folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (file.parent / path).resolve()


def is_host(value: str) -> bool:
    """Whether a string is a DNS name or an IP address (an IPv6 literal may be in brackets)."""
    bracketed = value.startswith("[") and value.endswith("]")
    try:
        address = ipaddress.ip_address(value[1:-1] if bracketed else value)
    except ValueError:
        return not bracketed and bool(_HOST.match(value))
    return address.version == 6 or not bracketed
