"""`edgebook inspect` (facts and findings) and `edgebook check` (a monitoring plugin)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from edgebook import monitoring
from edgebook.errors import EdgebookError

if TYPE_CHECKING:
    from edgebook.phases.inspect import InspectResult


INSPECT_TIMEOUT_S = 300.0
CHECK_TIMEOUT_S = 50.0  # below the usual 60 s plugin timeout of Nagios and Icinga


class _PluginParser(argparse.ArgumentParser):
    """A plugin's usage error is UNKNOWN (exit 3) on one status line, not argparse's exit 2."""

    def error(self, message: str) -> NoReturn:
        print(monitoring.unknown(f"usage: {message}")[1])
        sys.exit(monitoring.UNKNOWN)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds, not {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(
            f"a number of seconds above 0 and at most 86400, not {text}"
        )
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `inspect` and `check` commands."""
    for name, func, text, timeout in (
        (
            "inspect",
            _inspect,
            "inspect the Edges and the organisation; print the findings",
            INSPECT_TIMEOUT_S,
        ),
        (
            "check",
            _check,
            "monitoring plugin (Nagios/Icinga): exit 0 OK .. 3 UNKNOWN",
            CHECK_TIMEOUT_S,
        ),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        if name == "check":
            parser.__class__ = _PluginParser
            parser.set_defaults(usage_error=parser.error)  # edgebook.cli: unknown options too
        parser.add_argument("inventory", type=Path, help="the parameters file (YAML)")
        parser.add_argument("--edge", help="only this Edge (default: all)")
        parser.add_argument("--warning-days", type=int, help="override change.warning_days")
        parser.add_argument(
            "--timeout",
            type=_seconds,
            default=timeout,
            metavar="SECONDS",
            help=f"the most each server's read may take; probes take 10 s at most "
            f"(default {timeout:g})",
        )
        if name == "inspect":
            parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(func=func)


def _run(args: argparse.Namespace) -> InspectResult:
    if args.warning_days is not None and args.warning_days < 1:
        raise EdgebookError(f"--warning-days must be 1 or more, not {args.warning_days}")
    from edgebook.config import resolve_inventory
    from edgebook.phases.inspect import inspect

    inventory = resolve_inventory(args.inventory)
    return inspect(inventory, args.edge, warning_days=args.warning_days, timeout=args.timeout)


def _inspect(args: argparse.Namespace) -> int:
    result = _run(args)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        for finding in result.findings:
            print(f"{finding.severity!s:<8} {finding.server or '-':<8} {finding.slug}")
            print(f"         {finding.message}")
        if not result.findings:
            print("no findings")
    worst = max((f.severity for f in result.findings), default=None)
    return int(worst) if worst is not None and worst > 0 else 0


def expiries(result: InspectResult) -> list[monitoring.CertificateExpiry]:
    """Days to expiry of the certificates in use on each inspected Edge."""
    from edgebook.rules.usage import usage

    now = result.org.now
    rows = []
    for edge in result.edges:
        if result.edge and edge.name != result.edge:
            continue
        for cert in edge.certificates:
            if usage(result.org, edge, cert).in_use and cert.not_after is not None:
                days = (cert.not_after - now).total_seconds() / 86400
                rows.append(monitoring.CertificateExpiry(edge.name, cert.thumbprint, days))
    return rows


def _check(args: argparse.Namespace) -> int:
    try:
        result = _run(args)
        code, line = monitoring.plugin_result(
            result.findings, expiries(result), result.org.settings.warning_days
        )
    except EdgebookError as exc:
        code, line = monitoring.unknown(str(exc))
    except Exception as exc:  # a plugin must answer UNKNOWN, never a traceback
        code, line = monitoring.unknown(f"{type(exc).__name__}: {exc}")
    print(line)
    sys.stdout.flush()
    return code
