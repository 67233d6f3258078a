"""Secrets from an environment variable or, on a terminal, an interactive prompt."""

from __future__ import annotations

import getpass
import os
import sys

from edgebook.errors import EdgebookError


class SecretError(EdgebookError):
    """A secret (password, passphrase) could not be obtained."""


def _ask(text: str, prompt: str) -> str:
    try:
        return getpass.getpass(text)
    except EOFError:
        raise SecretError(f"{prompt}: the input ended before it was typed") from None


def _prompt(prompt: str, confirm: bool) -> str:
    first = _ask(f"{prompt}: ", prompt)
    if not first:
        raise SecretError(f"{prompt}: an empty value is not accepted")
    if confirm and _ask(f"{prompt} (again): ", prompt) != first:
        raise SecretError(f"{prompt}: the two entries differ")
    return first


def read_secret(
    env_var: str | None, prompt: str, *, confirm: bool = False, allow_prompt: bool = True
) -> str:
    """The secret from env_var; if it is unset and stdin is a terminal, ask for it.

    confirm asks twice (for a new passphrase); allow_prompt=False makes an unset variable an
    error even on a terminal. Empty secrets are refused.
    """
    if env_var:
        value = os.environ.get(env_var)
        if value is not None:
            if not value:
                raise SecretError(f"environment variable {env_var} is empty: {prompt} must be set")
            return value
    if allow_prompt and sys.stdin is not None and sys.stdin.isatty():
        return _prompt(prompt, confirm)
    if env_var:
        raise SecretError(
            f"environment variable {env_var} is not set: export it with the {prompt.lower()}"
        )
    raise SecretError(f"{prompt} needed: name an environment variable that holds it")
