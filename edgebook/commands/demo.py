"""`edgebook demo`: a whole certificate change against a fresh lab, with its evidence."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from edgebook.commands.output import Output

if TYPE_CHECKING:
    from edgebook.demo import DemoResult


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="a whole certificate change against a fresh lab, with its evidence",
        description=(
            "Start a fresh lab (two Edges), inspect both, then change one Edge after the other "
            "(prepare, resubscribe, verify: each planned, then applied with that plan's hash) "
            "through the runner; verify the evidence, write the report, stop the lab. The demo "
            "approves its own plans; real use never does. Exit 0 when everything ended ok."
        ),
    )
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="evidence root")
    parser.add_argument("--scenario", default="seed-incident", help="lab scenario")
    parser.add_argument(
        "--lab-dir", type=Path, help="lab folder, kept afterwards (default: a temporary one)"
    )
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from edgebook.demo import SELF_APPROVAL, run_demo  # papermill loads slowly: only when needed
    from edgebook.errors import ConfigError
    from edgebook.evidence.layout import check_folder
    from edgebook.lab.folder import edges_without_renewal, renewal_file
    from edgebook.lab.org.scenarios import load_scenario

    check_folder(args.outputs.resolve(), "--outputs")  # all refused before a lab starts
    scenario = load_scenario(args.scenario)
    missing = edges_without_renewal(scenario)
    if missing:
        raise ConfigError(
            f"scenario {scenario.name}: no renewed certificate for {', '.join(missing)}; the "
            "demo changes every Edge's certificate, so the scenario must write one per Edge "
            f"(a certificate with lab_files: [{renewal_file(missing[0])}], see seed-incident): "
            "use seed-incident, or add one to a copy of the scenario"
        )
    out = Output()
    out.line(f"edgebook demo: a whole certificate change against a fresh lab ({args.scenario})")
    out.line(f"note: {SELF_APPROVAL}")
    result = run_demo(args.outputs, args.scenario, lab_dir=args.lab_dir, say=out.line)
    _summary(out, result)
    return 0 if result.ok else 1


def _summary(out: Output, result: DemoResult) -> None:
    """Per Edge the phases with their verdicts, phase 04's checks, the evidence, the time."""
    out.line()
    out.line(f"change {result.change}")
    edges = list(dict.fromkeys(step.edge for step, _, _ in result.runs))
    for edge in edges:
        runs = [(step, applied, run) for step, applied, run in result.runs if step.edge == edge]
        phases = ", ".join(
            f"{step.phase}{' (applied)' if applied else ''} {run.verdict}"
            for step, applied, run in runs
            if applied or step.phase == "inspect" or not run.ok
        )
        out.line(f"  {edge}: {phases}")
        verdict = next(
            (run.records.get("verdict") for step, applied, run in reversed(runs)
             if step.phase == "verify" and applied),
            None,
        )  # fmt: skip
        if isinstance(verdict, list):
            counts: dict[str, int] = {}
            for row in verdict:
                counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
            out.line(f"    phase 04 checks: {', '.join(f'{n} {v}' for v, n in counts.items())}")
        for _, _, run in runs:
            if run.error:
                out.line(f"    {run.error}")
    if not result.changed:
        out.line("  the change stopped at the first run that was not ok (see its notebook)")
    check = result.verification
    if check is not None:
        state = "ok" if check.ok else f"{len(check.problems)} problem(s)"
        out.line(f"evidence: {result.folder} ({check.manifests} manifests, {check.files} files)")
        out.line(f"evidence verify: {state}")
        for problem in check.problems:
            out.line(f"  FAIL {problem}")
        for edge, head in check.heads.items():
            out.line(f"  {edge} last manifest sha256 {head}")
    if result.report is not None:
        out.line(f"report: {result.report}")
    out.line(
        f"elapsed: {result.elapsed_s:.1f} s (lab start {result.lab_start_s:.1f} s, "
        f"{len(result.runs)} notebook runs)"
    )
