"""`edgebook demo`: the main job against the built-in lab."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the main job against a fresh lab",
        description="Start a fresh lab, inspect every Edge with notebook 01, keep the evidence.",
    )
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="evidence folder")
    parser.add_argument("--scenario", default="seed-incident", help="lab scenario")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from edgebook.demo import run_demo  # papermill and nbformat load slowly: only when needed
    from edgebook.evidence.layout import check_folder
    from edgebook.lab.org.scenarios import load_scenario

    check_folder(args.outputs.resolve(), "--outputs")  # both refused before a lab starts
    load_scenario(args.scenario)
    runs = run_demo(args.outputs, args.scenario)
    failed = False
    for edge, run in runs.items():
        print(f"== {edge}: notebook {run.verdict}")
        if run.error:
            failed = True
            print(f"   {run.error}")
        for finding in run.records.get("findings", []):
            print(f"   {finding['severity']:<8} {finding['slug']:<34} {finding['message']}")
        print(f"   evidence: {run.notebook}")
        print(f"             {run.html}")
    return 1 if failed else 0
