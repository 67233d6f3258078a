"""Printing that survives a closed or broken stdout: the work goes on, the output stops."""

from __future__ import annotations

import os
import sys


class Output:
    """Writes lines to stdout until it breaks (closed, `| head`), then drops them quietly."""

    def __init__(self) -> None:
        self.broken = sys.stdout is None

    def line(self, text: str = "") -> None:
        """Print one line and flush it (progress must show as it happens)."""
        if self.broken:
            return
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            self.broken = True
            _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        sys.stdout = None
