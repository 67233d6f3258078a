"""Execute phase notebooks with papermill into new evidence paths and tell how they ended.

papermill marks a failing cell but not a cell timeout or a dead kernel; the runner catches
all three and returns its own verdict. Output paths are created exclusively: evidence is
never overwritten.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from edgebook.errors import EdgebookError
from edgebook.evidence.records import read_records
from edgebook.secrets import REFERENCE_HELP, looks_like_reference

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SECRET_WORDS = ("password", "secret", "passphrase", "token", "private_key")


@dataclass
class PhaseRun:
    """The outcome of one executed notebook."""

    notebook: Path
    html: Path | None
    verdict: str  # "completed", "failed", "timeout", "dead-kernel"
    error: str | None = None
    records: dict[str, Any] = field(default_factory=dict)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus 8 hex characters."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def reserve(path: Path) -> Path:
    """Create an empty file at path, failing if anything is already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.open("x").close()
    except FileExistsError:
        raise EdgebookError(f"{path} already exists; evidence is never overwritten") from None
    return path


def refuse_secrets(parameters: Any, path: str = "parameters") -> None:
    """Refuse a secret-like parameter that is not a reference: papermill writes parameters
    into the notebook (injected cell and metadata) in clear text."""
    items = parameters.items() if isinstance(parameters, dict) else enumerate(parameters)
    for key, value in items:
        where = f"{path}[{key!r}]"
        secret_key = isinstance(key, str) and any(w in key.lower() for w in SECRET_WORDS)
        if secret_key and value is not None and not looks_like_reference(value):
            raise EdgebookError(
                f"{where}: a secret cannot be a notebook parameter (papermill writes parameters "
                f"into the evidence in clear text); pass a reference instead: {REFERENCE_HELP}"
            )
        if isinstance(value, dict | list | tuple):
            refuse_secrets(value, where)


def execute_phase(
    notebook: Path,
    output_dir: Path,
    parameters: dict[str, Any],
    *,
    run_id: str,
    timeout_s: int = 600,
) -> PhaseRun:
    """Run one notebook into output_dir/<utc>_<run_id>.ipynb and render HTML beside it."""
    if not notebook.is_file():
        raise EdgebookError(f"notebook {notebook} not found")
    refuse_secrets(parameters)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    output = reserve(output_dir / f"{stamp}_{run_id}.ipynb")
    verdict, error = "completed", None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout_s,
            cwd=None,
        )
    except papermill.PapermillExecutionError as exc:
        verdict, error = "failed", f"{exc.ename}: {exc.evalue}"
    except CellTimeoutError as exc:
        verdict, error = "timeout", str(exc).splitlines()[0]
    except DeadKernelError as exc:
        verdict, error = "dead-kernel", str(exc).splitlines()[0]
    nb = nbformat.read(str(output), as_version=4)
    return PhaseRun(output, render_html(nb, output), verdict, error, read_records(nb))


def render_html(nb: nbformat.NotebookNode, output: Path) -> Path:
    """Write an HTML rendering next to the executed notebook (never over an existing file)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    html = reserve(output.with_suffix(".html"))
    html.write_text(body, encoding="utf-8")
    return html
