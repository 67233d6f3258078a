"""edgebook.notebook.LAZY_IMPORTS lists exactly what each notebook module imports on first use
(inside its functions) that neither importing the module nor a kernel already brings: kernels
started ahead import those for the notebooks that use the module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgebook.notebook
from edgebook.notebook import LAZY_IMPORTS

PACKAGE = Path(edgebook.notebook.__file__).parent
MODULES = sorted(f"edgebook.notebook.{path.stem}" for path in PACKAGE.glob("[!_]*.py"))


def _imports_inside_functions(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module.rpartition('.')[2]}.py").read_text())
    found: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return found


@pytest.mark.parametrize("module", MODULES)
def test_lazy_imports_are_the_first_use_imports_importing_the_module_leaves_out(module):
    inside = sorted(_imports_inside_functions(module))
    code = (
        "import importlib, json, sys\n"
        "import ipykernel.ipkernel\n"  # what every kernel has imported
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([n for n in {inside!r} if n not in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first_use = set(json.loads(done.stdout))
    assert first_use == set(LAZY_IMPORTS.get(module, ())), module
