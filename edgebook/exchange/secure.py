"""Secrets as cmdlet parameters: sent as PSRP SecureStrings, never shown."""

from __future__ import annotations


class SecureText:
    """A secret the shell sends as a SecureString (encrypted with the PSRP session key)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for the wire."""
        return self._value

    def __repr__(self) -> str:
        return "SecureText('********')"

    __str__ = __repr__
