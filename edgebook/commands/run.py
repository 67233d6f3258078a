"""`edgebook run`: the phase notebooks per Edge through papermill, with evidence."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edgebook.commands.output import Output
from edgebook.errors import ConfigError
from edgebook.evidence.layout import PHASES

if TYPE_CHECKING:
    from edgebook.evidence.rollout import Rollout, Step
    from edgebook.evidence.runner import PhaseRun

DEFAULT_CELL_TIMEOUT_S = 900.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `run` command."""
    parser = subparsers.add_parser(
        "run",
        help="run phase notebooks per Edge into outputs/<change>/, with manifests and a report",
        description=(
            "Run the phase notebooks for each Edge in rolling order (the phases in order for "
            "one Edge, then the next), stopping at the first run that is not ok. Each run "
            "writes a notebook, its HTML and a manifest; the change's report.html is "
            "regenerated at the end. Exit 0 when every run is ok, 1 otherwise."
        ),
    )
    parser.add_argument("inventory", metavar="PARAMS", help="the parameters file (YAML)")
    parser.add_argument("--change", required=True, help="the change id (e.g. CHG-2026-0042)")
    parser.add_argument(
        "--phase", required=True, choices=[*PHASES, "all"], help="the phase to run, or all"
    )
    parser.add_argument(
        "--edge", action="append", default=[], metavar="NAME", help="only this Edge (repeatable)"
    )
    parser.add_argument(
        "--apply", action="store_true", help="apply the approved plans (default: plan only)"
    )
    parser.add_argument(
        "--approved-plan",
        action="append",
        default=[],
        metavar="EDGE:PHASE=SHA256",
        help="the plan hash approved for one Edge and phase (repeatable); a bare SHA256 when "
        "one Edge and one changing phase run",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a notebook parameter (YAML value) for the notebooks that declare it",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="Edges inspected at once (inspect only; default 1)"
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=DEFAULT_CELL_TIMEOUT_S,
        metavar="SECONDS",
        help=f"the most one notebook cell may run (default {DEFAULT_CELL_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--outputs", type=Path, help="evidence root (default: $EDGEBOOK_OUTPUTS or ./outputs)"
    )
    parser.set_defaults(func=_run)


def parse_params(values: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs, each value read as YAML (so 10 is a number, true a boolean)."""
    parsed: dict[str, Any] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError(f"--param {value!r}: NAME=VALUE with NAME a notebook parameter")
        try:
            parsed[name.strip()] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            raise ConfigError(f"--param {name}: the value is not valid YAML") from None
    return parsed


def _run(args: argparse.Namespace) -> int:
    from edgebook.evidence.report import write_report
    from edgebook.evidence.rollout import run_change

    if args.cell_timeout <= 0:
        raise ConfigError(f"--cell-timeout must be above 0, not {args.cell_timeout:g}")
    out = Output()
    phases = list(PHASES) if args.phase == "all" else [args.phase]

    def progress(event: str, step: Step, run: PhaseRun | None) -> None:
        if event == "start":
            out.line(f"  … {step}: running")
        elif run is not None:
            out.line(f"  {'✓' if run.ok else '✗'} {step}: {run.verdict} ({run.duration_s:.1f} s)")

    rollout = run_change(
        args.inventory,
        change=args.change,
        phases=phases,
        edges=args.edge,
        apply=args.apply,
        approvals=args.approved_plan,
        extra=parse_params(args.param),
        workers=args.workers,
        timeout_s=args.cell_timeout,
        root=args.outputs,
        progress=progress,
    )
    _summary(out, rollout)
    report = write_report(rollout.folder)
    out.line(f"report: {report}")
    return 0 if rollout.ok else 1


def _summary(out: Output, rollout: Rollout) -> None:
    """The closing table: one line per step, then what to approve and what did not run."""
    out.line()
    out.line(f"change {rollout.change}, run {rollout.run_id}")
    out.line(f"{'EDGE':<16} {'PHASE':<24} {'VERDICT':<12} {'SECONDS':>8}  FINDINGS / PLAN")
    approvals = []
    for step in rollout.steps:
        run = rollout.runs.get(step)
        if run is None:
            out.line(f"{step.edge:<16} {PHASES[step.phase]:<24} {'not run':<12} {'':>8}")
            continue
        out.line(
            f"{step.edge:<16} {PHASES[step.phase]:<24} {run.verdict:<12} "
            f"{run.duration_s or 0:>8.1f}  {_gist(run)}"
        )
        plan = run.records.get("plan_sha256")
        if plan and not run.parameters.get("apply") and run.ok:
            approvals.append(f"--approved-plan {step.edge}:{step.phase}={plan}")
        if run.error:
            out.line(f"{'':<16} {run.error}")
    if rollout.skipped:
        out.line(f"stopped after the first run that was not ok: {len(rollout.skipped)} not run")
    if approvals:
        out.line("to apply the plans above once reviewed: --apply " + " ".join(approvals))
    out.line(f"evidence: {rollout.folder}")


def _gist(run: PhaseRun) -> str:
    findings = run.records.get("findings")
    parts = []
    if isinstance(findings, list):
        counts: dict[str, int] = {}
        for finding in findings:
            severity = str(finding.get("severity", "?"))
            counts[severity] = counts.get(severity, 0) + 1
        parts.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no findings")
    if run.records.get("plan_sha256"):
        parts.append(f"plan {str(run.records['plan_sha256'])[:12]}…")
    return "; ".join(parts)
