"""The `edgebook` command. Each command group lives in edgebook.commands.<group>."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys

from edgebook.errors import EdgebookError

# Each module exposes register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = ("cert", "lab", "inspect", "run", "evidence", "demo", "rehearse")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="edgebook",
        description="Replace the certificate on Exchange Edge Transport servers, with evidence.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgebook.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; user errors print one line to stderr and return 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the command's own parser says so (`check` answers UNKNOWN, exit 3)
        usage_error = getattr(args, "usage_error", parser.error)
        usage_error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code = int(args.func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()
        return code
    except EdgebookError as exc:
        _stderr(f"edgebook: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _stderr("edgebook: interrupted")
        return 130
    except BrokenPipeError:
        return _discard_stdout()
    except (OSError, ValueError) as exc:
        if not _output_failed(exc):
            raise
        reason = exc.strerror if isinstance(exc, OSError) else exc
        _stderr(f"edgebook: error: cannot write the output ({reason}); check where it goes")
        return _discard_stdout()


def _stderr(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: the exit code still tells
        if sys.stderr is not None:
            print(line, file=sys.stderr)


def _output_failed(exc: OSError | ValueError) -> bool:
    """Whether stdout is closed or a write without a file name (stdout's) hit a full or
    failing device."""
    if sys.stdout is None or sys.stdout.closed:
        return True
    return (
        isinstance(exc, OSError)
        and exc.filename is None
        and exc.errno in (errno.ENOSPC, errno.EIO, errno.EBADF)
    )


def _discard_stdout() -> int:
    """The reader of stdout went away (`| head`): exit quietly, as CPython's docs recommend."""
    with contextlib.suppress(OSError, AttributeError, ValueError):  # e.g. a captured stdout
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
    return 1


if __name__ == "__main__":
    sys.exit(main())
