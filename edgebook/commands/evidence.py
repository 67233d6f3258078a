"""`edgebook report DIR` and `edgebook evidence verify DIR`: a change folder's report and the
check of its hashes (and, on request, that no secret reached it)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from edgebook.commands.output import Output
from edgebook.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` and `evidence` commands."""
    report = subparsers.add_parser(
        "report",
        help="write a change folder's report.html",
        description="Write DIR/report.html (verdicts, findings before and after, plans, "
        "journal, certificate timeline) and DIR/report.json, replacing earlier ones.",
    )
    report.add_argument("folder", type=Path, metavar="DIR", help="a change folder")
    report.set_defaults(func=_report)

    evidence = subparsers.add_parser("evidence", help="check evidence")
    commands = evidence.add_subparsers(dest="evidence_command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="recompute every hash of a change folder",
        description="Recompute every hash the manifests record; fail on any changed, missing "
        "or extra file, and on a journal whose earlier bytes changed. Exit 0 when all is as "
        "recorded, 1 otherwise.",
    )
    verify.add_argument("folder", type=Path, metavar="DIR", help="a change folder")
    verify.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help="also prove that the value of this environment variable appears in no file "
        "(repeatable)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(func=_verify)


def _report(args: argparse.Namespace) -> int:
    from edgebook.evidence.report import write_report

    Output().line(str(write_report(args.folder)))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edgebook.evidence.verify import scan_secrets, verify_change

    secrets = {}
    for name in args.secret_env:
        if not os.environ.get(name):
            raise ConfigError(f"--secret-env {name}: the environment variable is not set")
        secrets[name] = os.environ[name]
    result = verify_change(args.folder)
    problems = result.problems + (scan_secrets(args.folder, secrets) if secrets else [])
    out = Output()
    if args.json:
        document = {
            "ok": not problems,
            "manifests": result.manifests,
            "files": result.files,
            "heads": result.heads,
            "secrets_scanned": sorted(secrets),
            "problems": [{"path": p.path, "message": p.message} for p in problems],
        }
        out.line(json.dumps(document, indent=2))
        return 0 if not problems else 1
    for problem in problems:
        out.line(f"FAIL {problem}")
    verdict = "OK" if not problems else f"FAILED ({len(problems)} problems)"
    scanned = f", no trace of {', '.join(sorted(secrets))}" if secrets and not problems else ""
    out.line(f"{verdict}: {result.manifests} runs, {result.files} files checked{scanned}")
    for edge, digest in sorted(result.heads.items()):
        out.line(f"  {edge}: last manifest sha256 {digest}")
    return 0 if not problems else 1
