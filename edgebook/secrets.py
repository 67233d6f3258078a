"""Secret references: parameters name where a secret lives, never the secret itself.

A reference is one of:

* ``env:NAME`` — the environment variable NAME;
* ``keyring:service/user`` — the OS keyring entry (``keyring`` package; the user is the part
  after the last ``/``), stored beforehand with ``keyring set service user``;
* ``prompt`` — asked interactively (a terminal, or a Jupyter kernel that allows input);
* ``file:PATH`` — the first line of a file readable by its owner only (used by the lab).

Resolved secrets are never logged, never shown by ``repr()`` and never put in exceptions.
`read_secret` serves the command line (an environment variable or a terminal prompt), and
SECRET_WORDS says which keys and parameters hold secrets.
"""

from __future__ import annotations

import getpass
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import keyring.errors

from edgebook.errors import EdgebookError
from edgebook.textfile import SECRET_LIMIT, read_text

SECRET_WORDS = ("password", "secret", "passphrase", "token", "private_key", "credential")
REFERENCE_HELP = "env:NAME, keyring:service/user, prompt or file:PATH"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretError(EdgebookError):
    """A secret reference is malformed or cannot be resolved."""


@dataclass(frozen=True)
class SecretReference:
    """A parsed reference: its kind (env, keyring, prompt, file) and its argument."""

    kind: str
    argument: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "prompt" else f"{self.kind}:{self.argument}"


@dataclass(frozen=True)
class Credential:
    """A username with its resolved password; repr() never shows the password."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password=<hidden>)"


def is_secret_name(name: object) -> bool:
    """Whether a key or parameter name says it holds a secret (password, credential, ...)."""
    return isinstance(name, str) and any(word in name.lower() for word in SECRET_WORDS)


def looks_like_reference(value: object) -> bool:
    """Whether a value is written as a secret reference (it may still be malformed)."""
    if not isinstance(value, str):
        return False
    return value == "prompt" or value.split(":", 1)[0] in ("env", "keyring", "file")


def parse_reference(value: str, *, what: str) -> SecretReference:
    """Parse a reference; the error never echoes the value (it may be a literal secret)."""
    if value == "prompt":
        return SecretReference("prompt")
    kind, _, argument = value.partition(":")
    if kind == "env":
        if not _ENV_NAME.fullmatch(argument):
            raise SecretError(
                f"{what}: env: needs an environment variable name (letters, digits, _), "
                "for example env:EDGEBOOK_EDGE01_PASSWORD"
            )
    elif kind == "keyring":
        service, _, user = argument.rpartition("/")
        if not service or not user:
            raise SecretError(
                f"{what}: keyring: needs service/user, for example keyring:edgebook/EDGE01"
            )
    elif kind == "file":
        if not argument:
            raise SecretError(f"{what}: file: needs a path, for example file:/run/edgebook/pw")
    else:
        raise SecretError(
            f"{what}: not a secret reference; write {REFERENCE_HELP} "
            "(a parameters file must never contain the secret itself)"
        )
    return SecretReference(kind, argument)


def resolve_secret(ref: str, *, what: str) -> str:
    """Return the secret a reference points to; `what` names it in errors and prompts."""
    reference = parse_reference(ref, what=what)
    resolver = {
        "env": _from_env,
        "keyring": _from_keyring,
        "prompt": _from_prompt,
        "file": _from_file,
    }[reference.kind]
    secret = resolver(reference.argument, what)
    if not secret:
        raise SecretError(f"{what}: {reference} gave an empty secret")
    return secret


def _from_env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise SecretError(
            f"{what}: the environment variable {name} is not set "
            f"(set it in the environment that starts edgebook or Jupyter)"
        )
    return value


def _from_keyring(argument: str, what: str) -> str:
    service, _, user = argument.rpartition("/")
    try:
        value = keyring.get_password(service, user)
    except keyring.errors.KeyringError as exc:
        raise SecretError(
            f"{what}: the keyring could not be read ({type(exc).__name__}); "
            "check that a keyring backend is available, or use env:NAME"
        ) from None
    if value is None:
        raise SecretError(
            f"{what}: no keyring entry for service {service!r}, user {user!r}; "
            f"store it with: keyring set {service} {user}"
        )
    return value


def _stdin_available() -> bool:
    """A terminal, or a Jupyter kernel that forwards input (it replaces getpass.getpass)."""
    if getattr(getpass.getpass, "__module__", "getpass") != "getpass":
        return True
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _from_prompt(_argument: str, what: str) -> str:
    if not _stdin_available():
        raise SecretError(
            f"{what}: 'prompt' needs a terminal or an interactive notebook, and none is "
            "available here (e.g. under papermill); use env:NAME or keyring:service/user"
        )
    try:
        return getpass.getpass(f"{what}: ")
    except EOFError:
        raise SecretError(
            f"{what}: the input ended before a password was typed; type it at the prompt, "
            "or use env:NAME or keyring:service/user"
        ) from None


def _from_file(argument: str, what: str) -> str:
    path = Path(argument).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretError(f"{what}: the secret file {path} does not exist") from None
    except NotADirectoryError:
        raise SecretError(
            f"{what}: the secret file {path} does not exist (a part of its path is a file, "
            "not a folder)"
        ) from None
    except OSError as exc:
        raise SecretError(
            f"{what}: the secret file {path} cannot be read ({exc.strerror or exc})"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretError(f"{what}: the secret file {path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise SecretError(
            f"{what}: the secret file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run: chmod 600 {path}"
        )
    try:
        text = read_text(path, what="secret file", limit=SECRET_LIMIT, error=SecretError)
    except SecretError as exc:
        raise SecretError(f"{what}: {exc}") from None
    return text.splitlines()[0] if text else ""


def read_secret(
    env_var: str | None, prompt: str, *, confirm: bool = False, allow_prompt: bool = True
) -> str:
    """The secret from env_var; if it is unset and a terminal is there, ask for it.

    confirm asks twice (for a new passphrase); allow_prompt=False makes an unset variable an
    error even on a terminal. Empty secrets are refused.
    """
    if env_var:
        value = os.environ.get(env_var)
        if value is not None:
            if not value:
                raise SecretError(f"environment variable {env_var} is empty: {prompt} must be set")
            return value
    if allow_prompt and _stdin_available():
        first = _ask(f"{prompt}: ", prompt)
        if not first:
            raise SecretError(f"{prompt}: an empty value is not accepted")
        if confirm and _ask(f"{prompt} (again): ", prompt) != first:
            raise SecretError(f"{prompt}: the two entries differ")
        return first
    if env_var:
        raise SecretError(
            f"environment variable {env_var} is not set: export it with the {prompt.lower()}"
        )
    raise SecretError(f"{prompt} needed: name an environment variable that holds it")


def _ask(text: str, prompt: str) -> str:
    try:
        return getpass.getpass(text)
    except EOFError:
        raise SecretError(f"{prompt}: the input ended before it was typed") from None
