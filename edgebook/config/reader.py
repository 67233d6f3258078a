"""Parameters files: the typed reader (edgebook.yamlfile's Section with hosts, paths and
secret references) and the refusal of literal secrets; errors never show a secret."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgebook import yamlfile
from edgebook.errors import ConfigError
from edgebook.secrets import (
    REFERENCE_HELP,
    SecretError,
    is_secret_name,
    looks_like_reference,
    parse_reference,
)
from edgebook.yamlfile import MISSING, describe, join

__all__ = ["MISSING", "Section", "describe", "is_host", "join", "load_yaml", "resolve_path"]
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*$")


def load_yaml(path: Path) -> Any:
    """Parse a parameters file (bounded, UTF-8); every problem is a ConfigError."""
    return yamlfile.load_yaml(path, what="parameters file", error=ConfigError)


def refuse_literal_secrets(file: Path, value: Any, path: str = "") -> None:
    """Refuse a secret-like key (password, credential, ...) holding anything but a reference.

    The message names the key, never the value: it may be the secret itself.
    """
    items: Iterator[tuple[str | int, Any]]
    if isinstance(value, dict):
        items = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        return
    for key, child in items:
        child_path = join(path, key if isinstance(key, int) else str(key))
        if is_secret_name(key) and child is not None and not isinstance(child, dict | list):
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


class Section(yamlfile.Section):
    """A mapping of the parameters file being read: unknown keys are refused."""

    error_type = ConfigError

    def error(self, path: str, found: Any, expected: str) -> ConfigError:
        """A ConfigError naming file, key path, what was found and what was expected; a
        value under a secret-like key (password, credential, ...) is never shown."""
        parts = re.split(r"[.\[]", path)
        if found is not MISSING and any(is_secret_name(part) for part in parts):
            found = _NotShown()
        return ConfigError(self.problem(path, found, expected))

    def host(self, key: str, default: Any = MISSING) -> str:
        """A DNS name or an IP address; an IPv6 literal loses its brackets ([::1] -> ::1)."""
        value = self.text(key, default)
        if not is_host(value):
            raise self.error(self.key(key), value, "a DNS name or an IP address")
        return value[1:-1] if value.startswith("[") and value.endswith("]") else value

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
        return resolve_path(Path(self.file), value.strip())

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
            raise self.error(self.key(key), value, f"a secret reference: {REFERENCE_HELP}")
        if value.startswith("file:"):
            return "file:" + str(resolve_path(Path(self.file), value[len("file:") :]))
        return value


class _NotShown:
    def __repr__(self) -> str:
        return "a value (not shown)"


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
