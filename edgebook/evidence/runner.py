"""Execute one phase notebook with papermill into a new evidence path and tell how it ended.

papermill marks a failing cell but neither a cell timeout nor a dead kernel: the output then
says "completed" everywhere. The runner catches all three, stamps its verdict into
``metadata.edgebook``, and puts a red banner at the top of any notebook papermill did not mark.
Output paths are created exclusively: evidence is never overwritten. Given a KernelPool, a run
uses a kernel the pool started (and warmed) ahead; ``metadata.edgebook.kernel`` says so.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence.kernels import KernelPool, import_ipython
from edgebook.evidence.records import read_records
from edgebook.secrets import REFERENCE_HELP, is_secret_name, looks_like_reference

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
VERDICTS = ("ok", "failed", "timeout", "dead-kernel")
BANNER_TAG = "edgebook-verdict-banner"
_RENDERING = threading.Lock()  # one exporter for every run (building one per run cost ~0.5 s)
_REMEMBERED = 512  # rendered cell sources and HTML fragments the exporter keeps
_HTML_TEMPLATE = """{%- extends "lab/index.html.j2" -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
"""


@dataclass
class PhaseRun:
    """The outcome of one executed notebook."""

    notebook: Path
    html: Path | None
    verdict: str  # one of VERDICTS
    error: str | None = None
    records: dict[str, Any] = field(default_factory=dict)
    template: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    manifest: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether every cell ran without error."""
        return self.verdict == "ok"

    @property
    def duration_s(self) -> float | None:
        """Wall time of the run in seconds."""
        if self.started is None or self.ended is None:
            return None
        return round((self.ended - self.started).total_seconds(), 3)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus 8 hex characters."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def reserve(path: Path) -> Path:
    """Create an empty file at path, failing if anything is already there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EdgebookError(
            f"cannot create the evidence folder {path.parent}: a file is in the way "
            "(the outputs root and its change/Edge/phase folders must be folders)"
        ) from None
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
        if is_secret_name(key) and value is not None and not looks_like_reference(value):
            raise EdgebookError(
                f"{where}: a secret cannot be a notebook parameter (papermill writes parameters "
                f"into the evidence in clear text); pass a reference instead: {REFERENCE_HELP}"
            )
        if isinstance(value, dict | list | tuple):
            refuse_secrets(value, where)


def declared_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook's `parameters` cell declares (papermill.inspect_notebook)."""
    if not notebook.is_file():
        raise EdgebookError(f"notebook {notebook} not found")
    return papermill.inspect_notebook(str(notebook))


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Refuse a parameter the notebook does not declare (papermill would only warn)."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigError(
            f"notebook {notebook.name} has no parameter {', '.join(map(repr, unknown))} "
            f"(it declares: {', '.join(declared) or 'none'})"
        )


def execute_phase(
    notebook: Path,
    output_dir: Path,
    parameters: dict[str, Any],
    *,
    run_id: str,
    timeout_s: float = 600,
    kernels: KernelPool | None = None,
    render: bool = True,
) -> PhaseRun:
    """Run one notebook into output_dir/<utc>_<run_id>.ipynb and render HTML beside it (unless
    not render: then `render_run` does later); with kernels, in a kernel from that pool."""
    refuse_secrets(parameters)
    check_parameters(notebook, parameters)
    started = dt.datetime.now(dt.UTC)
    output = reserve(output_dir / f"{started:%Y%m%dT%H%M%SZ}_{run_id}.ipynb")
    verdict, error = "ok", None
    kernel: dict[str, Any] = {"started_ahead": False}
    km = None
    try:
        engine: dict[str, Any] = {}
        if kernels is not None:
            km = engine["km"] = kernels.take()
            kernel = kernels.describe(km)
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout_s,
            cwd=None,
            **engine,
        )
    except papermill.PapermillExecutionError as exc:
        verdict, error = "failed", f"{exc.ename}: {exc.evalue}"
    except CellTimeoutError as exc:
        verdict, error = "timeout", f"a cell ran longer than {timeout_s:g} s: {_first_line(exc)}"
    except DeadKernelError as exc:
        verdict, error = "dead-kernel", f"the kernel died: {_first_line(exc)}"
    except Exception as exc:  # the kernel did not start, the notebook could not be read, ...
        verdict, error = "failed", f"{type(exc).__name__}: {_first_line(exc)}"
    finally:
        if kernels is not None and km is not None:
            kernels.release(km)
    ended = dt.datetime.now(dt.UTC)
    nb = _read_output(output, notebook)
    stamp_verdict(nb, verdict, error, run_id)
    nb.metadata["edgebook"]["kernel"] = kernel
    nbformat.write(nb, str(output))
    return PhaseRun(
        notebook=output,
        html=render_html(nb, output) if render else None,
        verdict=verdict,
        error=error,
        records=read_records(nb),
        template=notebook,
        parameters=dict(parameters),
        started=started,
        ended=ended,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_output(output: Path, template: Path) -> nbformat.NotebookNode:
    """The executed notebook, or the template when papermill never wrote one."""
    try:
        return nbformat.read(str(output), as_version=4)
    except Exception:  # empty: papermill failed before its first write
        return nbformat.read(str(template), as_version=4)


def stamp_verdict(nb: nbformat.NotebookNode, verdict: str, error: str | None, run_id: str) -> None:
    """Record the verdict in metadata.edgebook; banner and honest cell states if unmarked."""
    nb.metadata["edgebook"] = {"verdict": verdict, "error": error, "run_id": run_id}
    papermill_meta = nb.metadata.get("papermill", {})
    if verdict == "ok" or papermill_meta.get("exception"):
        return  # papermill's own banner and cell states already tell the failure
    interrupted = _interrupted_cell(nb)
    for index, cell in enumerate(nb.cells):
        state = cell.get("metadata", {}).get("papermill")
        if state is None or interrupted is None or index < interrupted:
            continue
        state["status"] = "failed" if index == interrupted else "pending"
    if papermill_meta:
        papermill_meta["exception"] = True
    where = f" at cell {interrupted}" if interrupted is not None else ""
    nb.cells.insert(0, _banner(f"This run did not finish: {verdict}{where}. {error or ''}"))


def _interrupted_cell(nb: nbformat.NotebookNode) -> int | None:
    """The last cell papermill started: the one running when the run ended."""
    started = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    return started[-1] if started else None


def _banner(text: str) -> nbformat.NotebookNode:
    import html

    return nbformat.v4.new_markdown_cell(
        '<div style="background:#c00;color:#fff;padding:1em;font-weight:bold;font-size:120%">'
        f"edgebook: {html.escape(text)} Cells after it did not run; do not read this notebook "
        "as a success.</div>",
        metadata={"tags": [BANNER_TAG]},
    )


def render_run(run: PhaseRun) -> Path:
    """Render a run's HTML from its saved notebook (a run executed without render)."""
    run.html = render_html(nbformat.read(str(run.notebook), as_version=4), run.notebook)
    return run.html


def render_html(nb: nbformat.NotebookNode, output: Path) -> Path:
    """Write a self-contained HTML rendering next to the notebook (never over a file)."""
    import_ipython()  # nbconvert's highlighting imports it (the writer's thread, too)
    with _RENDERING:
        body, _ = _html_exporter().from_notebook_node(nb)
    html = reserve(output.with_suffix(".html"))
    html.write_text(body, encoding="utf-8")
    return html


@functools.cache
def warm_rendering() -> threading.Thread:
    """Build the HTML exporter in the background, once per process: importing nbconvert and
    compiling its templates cost about 2 s at the first render, on the first run's critical
    path."""
    thread = threading.Thread(target=_warm_exporter, name="edgebook-html-warm", daemon=True)
    thread.start()
    return thread


def _warm_exporter() -> None:
    import_ipython()  # nbconvert's highlighting imports it, as a kernel start does
    sample = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("#"), nbformat.v4.new_code_cell("pass")]
    )
    with _RENDERING:
        _html_exporter().from_notebook_node(sample)


@functools.cache
def _html_exporter() -> Any:
    """nbconvert's HTML exporter with edgebook's offline template (no CDN, no script), its two
    costliest filters remembered: a phase notebook's code cells are the same in every run."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        extra_loaders=[DictLoader({"edgebook.html.j2": _HTML_TEMPLATE})],
        template_file="edgebook.html.j2",
        filters={"highlight_code": _highlight_code, "clean_html": _clean_html},
    )


def _highlight_code(source: str, language: str | None = None, metadata: Any = None) -> str:
    """nbconvert's highlight_code for the phase notebooks' ipython3 cells, remembered."""
    return _highlighted(source, language, metadata.get("magics_language") if metadata else None)


@functools.lru_cache(maxsize=_REMEMBERED)
def _highlighted(source: str, language: str | None, magics: str | None) -> str:
    from nbconvert.filters import Highlight2HTML

    highlight = Highlight2HTML(pygments_lexer="ipython3")
    return str(highlight(source, language, {"magics_language": magics} if magics else None))


def _clean_html(element: str | bytes) -> str:
    """nbconvert's clean_html (bleach), remembered."""
    return _cleaned(element.decode() if isinstance(element, bytes) else str(element))


@functools.lru_cache(maxsize=_REMEMBERED)
def _cleaned(text: str) -> str:
    from nbconvert.filters import clean_html

    return str(clean_html(text))
