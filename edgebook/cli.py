"""The `edgebook` command. Each command group lives in edgebook.commands.<group>."""

from __future__ import annotations

import argparse
import importlib
import sys

from edgebook.errors import EdgebookError

# Each module exposes register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = ("cert", "lab", "inspect", "demo")


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
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgebookError as exc:
        print(f"edgebook: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgebook: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
