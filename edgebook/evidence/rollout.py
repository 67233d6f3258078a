"""Roll a change out: the phases in order for one Edge, then the next; stop at the first run
that is not ok. Inspect, which changes nothing, may fan out over Edges with bounded workers.

Each notebook gets only the parameters its `parameters` cell declares: ``inventory``,
``edge`` and ``change`` when declared, ``apply`` (always passed, so the evidence says it) and
``approved_plan_sha256`` to a notebook that declares both, and the caller's extra parameters
to the notebooks that declare them. A parameter no selected notebook declares is refused.

Approvals are per Edge and phase, because a plan hash is: ``EDGE01:prepare=<sha256>``. A plain
``<sha256>`` is accepted when the rollout has exactly one Edge and one changing phase. With
``apply``, every changing phase of every selected Edge needs its approval before anything runs.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence.kernels import KernelPool, warm_modules
from edgebook.evidence.layout import (
    OUTPUTS_ENV,
    PHASES,
    change_dir,
    check_folder,
    outputs_root,
    phase_dir,
)
from edgebook.evidence.manifest import (
    build_manifest,
    journal_entry,
    latest_manifest,
    snapshot,
    write_manifest,
    written_since,
)
from edgebook.evidence.runner import (
    NOTEBOOKS,
    PhaseRun,
    declared_parameters,
    execute_phase,
    new_run_id,
    render_run,
    warm_rendering,
)
from edgebook.evidence.writer import EvidenceWriter
from edgebook.notebook import LAZY_IMPORTS

RUNNER_PARAMETERS = ("inventory", "edge", "change", "apply", "approved_plan_sha256")
REQUIRED_PARAMETERS = ("inventory", "edge")
MAX_WORKERS = 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Step:
    """One notebook run of the rollout: an Edge and a phase."""

    edge: str
    phase: str

    def __str__(self) -> str:
        return f"{self.edge} {PHASES[self.phase]}"


@dataclass(frozen=True)
class Scheduled:
    """A step with its notebook and the parameters it will be given."""

    step: Step
    notebook: Path
    parameters: dict[str, Any]


@dataclass
class Rollout:
    """What a rollout ran, in order, and what it did not reach."""

    change: str
    run_id: str
    folder: Path
    steps: list[Step]
    runs: dict[Step, PhaseRun] = field(default_factory=dict)

    @property
    def skipped(self) -> list[Step]:
        """Steps not run because an earlier run was not ok."""
        return [step for step in self.steps if step not in self.runs]

    @property
    def ok(self) -> bool:
        """Whether every step ran and ended ok."""
        return not self.skipped and all(run.ok for run in self.runs.values())


Progress = Callable[[str, Step, PhaseRun | None], None]


def phase_notebook(phase: str) -> Path:
    """The installed notebook of a phase; a clear error when it is not there."""
    if phase not in PHASES:
        raise ConfigError(f"phase {phase!r}: one of {', '.join(PHASES)}")
    path = NOTEBOOKS / f"{PHASES[phase]}.ipynb"
    if not path.is_file():
        raise EdgebookError(
            f"phase {phase}: notebook {path.name} is not installed (looked in {NOTEBOOKS})"
        )
    return path


def schedule(
    inventory: str,
    edges: Sequence[str],
    *,
    change: str,
    phases: Sequence[str],
    apply: bool = False,
    approvals: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> list[Scheduled]:
    """Every step in rolling order with its parameters; all checks before anything runs."""
    extra = dict(extra or {})
    notebooks = {phase: phase_notebook(phase) for phase in phases}
    declared = {phase: set(declared_parameters(nb)) for phase, nb in notebooks.items()}
    for phase, names in declared.items():
        missing = [name for name in REQUIRED_PARAMETERS if name not in names]
        if missing:
            raise ConfigError(
                f"notebook {notebooks[phase].name} does not declare {', '.join(missing)}; "
                "the runner cannot tell it what to work on"
            )
        if "apply" in names and "approved_plan_sha256" not in names:
            raise ConfigError(
                f"notebook {notebooks[phase].name} declares apply but not "
                "approved_plan_sha256; the runner does not apply an unapproved plan"
            )
    changing = [phase for phase in phases if "apply" in declared[phase]]
    if approvals and not apply:
        raise ConfigError("--approved-plan is only meaningful with --apply")
    if apply and not changing:
        raise ConfigError(
            f"--apply: {', '.join(phases)} change nothing (no apply parameter in their notebooks)"
        )
    approved = parse_approvals(approvals, edges, changing)
    if apply:
        missing = [f"{e}:{p}" for e in edges for p in changing if (e, p) not in approved]
        if missing:
            raise ConfigError(
                f"--apply needs an approved plan for {', '.join(missing)}: run without --apply "
                "first, review each plan, then pass --approved-plan EDGE:PHASE=<plan_sha256>"
            )
    for name in extra:
        if name in RUNNER_PARAMETERS:
            raise ConfigError(f"parameter {name!r} is set by the runner, not with --param")
        if not any(name in declared[phase] for phase in phases):
            raise ConfigError(f"parameter {name!r}: no notebook of {', '.join(phases)} declares it")
    steps = []
    for edge in edges:
        for phase in phases:
            given: dict[str, Any] = {"inventory": inventory, "edge": edge, "change": change}
            if phase in changing:
                given["apply"] = apply
                if apply:
                    given["approved_plan_sha256"] = approved[(edge, phase)]
            given |= extra
            parameters = {k: v for k, v in given.items() if k in declared[phase]}
            steps.append(Scheduled(Step(edge, phase), notebooks[phase], parameters))
    return steps


def parse_approvals(
    values: Sequence[str], edges: Sequence[str], changing: Sequence[str]
) -> dict[tuple[str, str], str]:
    """`EDGE:PHASE=SHA256` (or a plain SHA256 for a single Edge and phase) by (Edge, phase)."""
    approved: dict[tuple[str, str], str] = {}
    for value in values:
        target, sep, digest = value.rpartition("=")
        digest = digest.strip().lower()
        if not _SHA256.match(digest):
            raise ConfigError(f"--approved-plan {value!r}: the plan hash is 64 hex characters")
        if not sep:
            if len(edges) != 1 or len(changing) != 1:
                raise ConfigError(
                    f"--approved-plan {digest[:12]}…: say which plan it approves, as "
                    "EDGE:PHASE=SHA256, when more than one Edge or changing phase runs"
                )
            key = (edges[0], changing[0])
        else:
            edge, _, phase = target.partition(":")
            matches = [e for e in edges if e.lower() == edge.strip().lower()]
            if not matches or phase.strip() not in changing:
                raise ConfigError(
                    f"--approved-plan {target}=…: EDGE:PHASE with EDGE one of "
                    f"{', '.join(edges)} and PHASE one of {', '.join(changing) or 'none'}"
                )
            key = (matches[0], phase.strip())
        if key in approved and approved[key] != digest:
            raise ConfigError(
                f"--approved-plan: two different plans approved for {key[0]}:{key[1]}"
            )
        approved[key] = digest
    return approved


def inventory_reference(inventory: str | Path) -> str:
    """What the notebooks get as inventory: a file as an absolute path, else the reference."""
    path = Path(inventory)
    return str(path.resolve()) if path.is_file() else str(inventory)


def kernel_pool(notebooks: Sequence[Path]) -> KernelPool:
    """A pool for runs of these notebooks, in the order they will run. Each run's kernel
    imports ahead what its notebook imports (edgebook.notebook's first-use imports included)
    and the inventory providers (the lab's: about 0.2 s at a run's first resolve_inventory)."""
    from edgebook.config.resolve import provider_modules

    providers = provider_modules()
    modules = {
        notebook: warm_modules([notebook], also=providers, lazy=LAZY_IMPORTS)
        for notebook in set(notebooks)
    }
    return KernelPool(upcoming=[modules[notebook] for notebook in notebooks])


def run_change(
    inventory: str | Path,
    *,
    change: str,
    phases: Sequence[str],
    edges: Sequence[str] = (),
    apply: bool = False,
    approvals: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    workers: int = 1,
    timeout_s: float = 900,
    root: Path | None = None,
    progress: Progress | None = None,
    kernels: KernelPool | None = None,
    evidence: EvidenceWriter | None = None,
) -> Rollout:
    """Run the phases over the Edges into outputs/<change>/, one manifest per run.

    Each run's kernel comes from kernels, the next one started while a run runs; each run's
    HTML and manifest are written by evidence while the next one runs. Without them, a rollout
    of several runs makes its own pool and writer; its own writer is drained before this
    returns (a caller's is the caller's to drain)."""
    from edgebook.config import resolve_inventory

    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers: 1 to {MAX_WORKERS}, not {workers}")
    root = check_folder((root or outputs_root()).resolve(), "outputs root")
    folder = check_folder(change_dir(change, root), "change folder")
    reference = inventory_reference(inventory)
    known = resolve_inventory(reference)
    names = [known.edge(edge).name for edge in edges] or [edge.name for edge in known.edges]
    names = list(dict.fromkeys(names))
    if not names:
        raise ConfigError(f"{known.path}: the inventory has no Edge to run on")
    steps = schedule(
        reference,
        names,
        change=change,
        phases=phases,
        apply=apply,
        approvals=approvals,
        extra=extra,
    )
    warm_rendering()  # while the first notebook runs
    rollout = Rollout(change, new_run_id(), folder, [s.step for s in steps])
    report = progress or (lambda *_: None)
    own_pool = kernels is None and len(steps) > 1
    if own_pool:
        kernels = kernel_pool([s.notebook for s in _in_order(steps, workers)])
    own_writer = evidence is None and len(steps) > 1
    if own_writer:
        evidence = EvidenceWriter()
    finished = False
    try:
        with outputs_env(root):
            _run_steps(steps, rollout, root, timeout_s, report, workers, kernels, evidence)
        finished = True
    finally:
        if own_pool and kernels is not None:
            kernels.close()
        if own_writer and evidence is not None:
            if finished:
                evidence.close()
            else:  # the run's own error is the one to see
                with contextlib.suppress(EdgebookError):
                    evidence.close()
    return rollout


def _run_steps(
    steps: list[Scheduled],
    rollout: Rollout,
    root: Path,
    timeout_s: float,
    report: Progress,
    workers: int,
    kernels: KernelPool | None,
    evidence: EvidenceWriter | None,
) -> None:
    """Inspect fanned out over workers first, then every other step in order; stop at the
    first run that is not ok."""

    def run(scheduled: Scheduled) -> PhaseRun:
        return _run_step(scheduled, rollout, root, timeout_s, report, kernels, evidence)

    fan_out = _fanned_out(steps, workers)
    if fan_out:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgebook") as pool:
            done = list(pool.map(run, fan_out))
        rollout.runs.update((s.step, r) for s, r in zip(fan_out, done, strict=True))
        if not all(r.ok for r in done):
            return
    for scheduled in steps:
        if scheduled.step in rollout.runs:
            continue
        result = run(scheduled)
        rollout.runs[scheduled.step] = result
        if not result.ok:
            return


def _fanned_out(steps: list[Scheduled], workers: int) -> list[Scheduled]:
    """The steps that run side by side, before the others: inspect, given workers."""
    return [s for s in steps if s.step.phase == "inspect"] if workers > 1 else []


def _in_order(steps: list[Scheduled], workers: int) -> list[Scheduled]:
    """The steps in the order they start."""
    first = _fanned_out(steps, workers)
    return first + [s for s in steps if s not in first]


def _run_step(
    scheduled: Scheduled,
    rollout: Rollout,
    root: Path,
    timeout_s: float,
    progress: Progress,
    kernels: KernelPool | None = None,
    evidence: EvidenceWriter | None = None,
) -> PhaseRun:
    """One notebook run; its HTML and manifest written now, or by evidence in order."""
    step = scheduled.step
    edge_folder = rollout.folder / step.edge.upper()
    if evidence is not None:
        evidence.check()  # an earlier run's evidence could not be written: stop here
    before = snapshot(edge_folder)
    progress("start", step, None)
    run = execute_phase(
        scheduled.notebook,
        phase_dir(rollout.change, step.edge, step.phase, root),
        scheduled.parameters,
        run_id=rollout.run_id,
        timeout_s=timeout_s,
        kernels=kernels,
        render=evidence is None,
    )
    html = run.notebook.with_suffix(".html")
    others = evidence.owned() if evidence is not None else set()  # earlier runs' HTML
    written = written_since(edge_folder, before, exclude={run.notebook, html} | others)
    journal = journal_entry(rollout.folder, step.edge)  # as this run left it

    def finish() -> None:
        if run.html is None:
            render_run(run)
        manifest = build_manifest(
            run,
            change=rollout.change,
            edge=step.edge,
            phase=step.phase,
            change_folder=rollout.folder,
            written=written,
            previous=latest_manifest(edge_folder),  # the Edge's runs before are all written
            journal=journal,
        )
        run.manifest = write_manifest(run, manifest)

    if evidence is None:
        finish()
    else:
        evidence.submit(finish, writes={html})
    progress("end", step, run)
    return run


@contextlib.contextmanager
def outputs_env(root: Path) -> Iterator[None]:
    """EDGEBOOK_OUTPUTS for the kernels started meanwhile (they inherit the environment);
    root as run_change resolves it."""
    before = os.environ.get(OUTPUTS_ENV)
    os.environ[OUTPUTS_ENV] = str(root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(OUTPUTS_ENV, None)
        else:
            os.environ[OUTPUTS_ENV] = before
