"""What a process pays to import edgebook's notebook tooling."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import edgebook, nbformat, papermill, sys
nbformat.validate(nbformat.v4.new_notebook())  # validation itself still works
print(sorted(name for name in ("lark", "rfc3987_syntax") if sys.modules.get(name)))
"""


def test_notebook_tooling_does_not_compile_jsonschemas_iri_grammars():
    """jsonschema would import rfc3987_syntax, which builds 38 Lark grammars (~2.5 s)."""
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stderr
