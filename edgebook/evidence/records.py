"""Record named values from inside a notebook and read them back from an executed notebook.

A record is a display_data output with a vendor JSON mimetype (and a text fallback), so it
survives papermill, nbconvert and JupyterLab unchanged. Values must be JSON-serialisable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nbformat

MIMETYPE = "application/vnd.edgebook.record+json"


def record(name: str, value: Any) -> None:
    """Emit a record into the running notebook (no-op text outside IPython)."""
    payload = {"name": name, "value": json.loads(json.dumps(value, default=str))}
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency of the kernel
        return
    display({MIMETYPE: payload, "text/plain": f"<edgebook record {name!r}>"}, raw=True)


def read_records(notebook: Path | nbformat.NotebookNode) -> dict[str, Any]:
    """All records of an executed notebook, by name (a later record of a name wins)."""
    import nbformat  # not at import: the kernels import this module, nbformat costs them ~3 s

    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, Path) else notebook
    records: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIMETYPE)
            if payload:
                records[payload["name"]] = payload["value"]
    return records
