"""The import rules of docs/architecture.md, read from the source with ast.

Every import counts: module level, inside functions, under `if TYPE_CHECKING`, relative or
absolute (not `importlib.import_module` with a computed name, which only cli.py uses, for the
command groups). The rules:

- only the lab itself, `edgebook.demo` and `edgebook.commands.*` import `edgebook.lab`;
- the lab imports from the rest of edgebook only `edgebook.certs`, `edgebook.errors`, the wire
  type names `edgebook.exchange.wire_types`, `edgebook.exchange.secure` (SecureText, what a
  SecureString parameter is on either side of the wire, as the wire type names are), the file
  readers `edgebook.textfile` and `edgebook.yamlfile` (bounded, UTF-8, clear errors: the lab
  reads its scenario files the way edgebook reads parameters files, so the two must not drift
  apart) and the file writer `edgebook.fileio` (never overwrite, or replace atomically: the
  lab's state needs the same guarantees as evidence). Those modules import nothing from
  edgebook but `edgebook.errors` and each other, so the lab gets nothing else through them;
- no two modules import each other in a circle, however long;
- the organisation simulation and the cmdlets (`edgebook.lab.org`, `edgebook.lab.cmdlets`)
  take from the WSMan/PSRP server only its value types and pipeline contract
  (`edgebook.lab.winrm.objects`, `edgebook.lab.winrm.protocol`), and import neither psrpcore
  nor pypsrp: what goes on the wire is the server's business;
- no two packages (edgebook.config, edgebook.exchange, ...) depend on each other in a circle.
  A module that imports nothing from edgebook (wire_types, errors) is a leaf: using it does
  not tie its package to the user's, so it does not count as a package dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB = "edgebook.lab"
LAB_IMPORTERS = ("edgebook.demo", "edgebook.commands")
LAB_MAY_IMPORT = (
    "edgebook.certs",
    "edgebook.errors",
    "edgebook.exchange.wire_types",
    "edgebook.exchange.secure",
    "edgebook.textfile",
    "edgebook.yamlfile",
    "edgebook.fileio",
)
SHARED_LEAVES = LAB_MAY_IMPORT[1:]  # all but edgebook.certs, a package of its own
SIMULATION = ("edgebook.lab.org", "edgebook.lab.cmdlets")
SIMULATION_MAY_USE = ("edgebook.lab.winrm.objects", "edgebook.lab.winrm.protocol")
WIRE_LIBRARIES = ("psrpcore", "pypsrp")


@dataclass(frozen=True)
class Module:
    """One Python file of the package: its dotted name and whether it is a package's __init__."""

    name: str
    path: Path
    is_package: bool


def find_modules(root: Path, package: str = "edgebook") -> dict[str, Module]:
    """Every module of the package under root, by dotted name."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _known(name: str, modules: dict[str, Module]) -> str | None:
    """The module a dotted name lands in (a name inside a module counts as that module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: Module, modules: dict[str, Module]) -> set[str]:
    """The modules of the package that a module imports anywhere in its file."""
    here = module.name if module.is_package else module.name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"  # `from pkg import module`
                named.add(candidate if candidate in modules else source)
    resolved = {_known(name, modules) for name in named}
    return {name for name in resolved if name is not None and name != module.name}


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    return {name: imports_of(module, modules) for name, module in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative so that deep graphs cannot hit the recursion limit.
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def describe_cycle(component: Iterable[str], graph: dict[str, set[str]]) -> str:
    """The members of a cycle and which of them imports which."""
    members = sorted(component)
    edges = [f"{a} -> {b}" for a in members for b in sorted(graph[a]) if b in members]
    return f"{', '.join(members)} ({'; '.join(edges)})"


def group_of(name: str) -> str:
    """The top-level package or module of a module (edgebook.lab.org.pki -> edgebook.lab)."""
    parts = name.split(".")
    return name if len(parts) <= 2 else ".".join(parts[:2])


def package_graph(modules: dict[str, Module], graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Top-level package -> the packages it depends on, leaf modules not counted."""
    leaves = {name for name, imported in graph.items() if not imported}
    packages: dict[str, set[str]] = {group_of(name): set() for name in modules}
    for name, imported in graph.items():
        for target in imported - leaves:
            if group_of(target) != group_of(name):
                packages[group_of(name)].add(group_of(target))
    packages.pop("edgebook", None)  # the root __init__ re-exports; nothing imports "edgebook"
    return {name: targets - {"edgebook"} for name, targets in packages.items()}


def lab_importers(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Modules outside the lab (and outside the allowed callers) that import it, with what."""
    return {
        name: sorted(t for t in imported if _within(t, LAB))
        for name, imported in sorted(graph.items())
        if not _within(name, LAB)
        and not any(_within(name, allowed) for allowed in LAB_IMPORTERS)
        and any(_within(t, LAB) for t in imported)
    }


def lab_dependencies(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Lab modules that import edgebook modules the lab may not use, with those modules."""
    found = {}
    for name, imported in sorted(graph.items()):
        if not _within(name, LAB):
            continue
        bad = sorted(
            t
            for t in imported
            if not _within(t, LAB) and not any(_within(t, ok) for ok in LAB_MAY_IMPORT)
        )
        if bad:
            found[name] = bad
    return found


# --- the rules on the real source -----------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return find_modules(ROOT)


@pytest.fixture(scope="module")
def graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    return import_graph(modules)


def test_only_the_lab_demo_and_commands_import_the_lab(graph):
    assert lab_importers(graph) == {}, (
        "product code must not import edgebook.lab (reach it through the inventory provider "
        "registry, edgebook.config.resolve); offenders: " + repr(lab_importers(graph))
    )


def test_the_lab_imports_only_certs_errors_wire_types_secure_text_and_the_file_modules(graph):
    assert lab_dependencies(graph) == {}, (
        f"the lab may import from edgebook only {', '.join(LAB_MAY_IMPORT)}; "
        f"offenders: {lab_dependencies(graph)!r}"
    )


def wire_imports(module: Module) -> set[str]:
    """The WSMan/PSRP libraries (psrpcore, pypsrp) a module imports anywhere in its file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        found.update(n for n in names if n.split(".")[0] in WIRE_LIBRARIES)
    return found


def simulation_leaks(
    modules: dict[str, Module], graph: dict[str, set[str]]
) -> dict[str, list[str]]:
    """Simulation modules that reach into the WSMan/PSRP server or its libraries, with what."""
    found = {}
    for name, module in sorted(modules.items()):
        if not any(_within(name, part) for part in SIMULATION):
            continue
        server = {t for t in graph[name] if _within(t, "edgebook.lab.winrm")}
        bad = sorted(server - set(SIMULATION_MAY_USE)) + sorted(wire_imports(module))
        if bad:
            found[name] = bad
    return found


def test_the_simulation_takes_only_value_types_and_the_pipeline_contract_from_the_server(
    modules, graph
):
    assert simulation_leaks(modules, graph) == {}


def test_a_simulation_module_reaching_into_the_wire_is_named(tmp_path):
    package = tmp_path / "edgebook"
    for folder in ("lab/winrm", "lab/cmdlets"):
        (package / folder).mkdir(parents=True)
    for init in ("", "lab/", "lab/winrm/", "lab/cmdlets/"):
        (package / f"{init}__init__.py").write_text("")
    (package / "lab/winrm/objects.py").write_text("")
    (package / "lab/winrm/wire.py").write_text("")
    (package / "lab/cmdlets/good.py").write_text("from edgebook.lab.winrm.objects import X\n")
    (package / "lab/cmdlets/bad.py").write_text(
        "from edgebook.lab.winrm.wire import to_wire\n"
        "def f():\n    from psrpcore.types import PSDateTime\n"
    )
    found = find_modules(tmp_path)
    assert simulation_leaks(found, import_graph(found)) == {
        "edgebook.lab.cmdlets.bad": ["edgebook.lab.winrm.wire", "psrpcore.types"]
    }


def test_the_modules_the_lab_shares_import_only_each_other(graph):
    assert set(SHARED_LEAVES) <= set(graph)
    for shared in SHARED_LEAVES:
        assert graph[shared] <= set(SHARED_LEAVES), (shared, graph[shared])


def test_no_module_imports_itself_in_a_circle(graph):
    found = [describe_cycle(c, graph) for c in cycles(graph)]
    assert found == [], "modules in an import cycle: " + " | ".join(found)


def test_no_two_packages_depend_on_each_other_in_a_circle(modules, graph):
    packages = package_graph(modules, graph)
    found = [describe_cycle(c, packages) for c in cycles(packages)]
    assert found == [], "packages in a dependency cycle: " + " | ".join(found)


def test_the_scan_sees_the_whole_package(modules, graph):
    assert {"edgebook.cli", "edgebook.lab.winrm.wsman", "edgebook.exchange.shell"} <= set(modules)
    assert "edgebook.errors" in graph["edgebook.cli"]  # a plain module-level import is seen


# --- the scanner itself, on a made-up package -----------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return find_modules(root)


def test_function_level_relative_and_type_checking_imports_are_seen(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "edgebook/__init__.py": "",
            "edgebook/errors.py": "",
            "edgebook/lab/__init__.py": "",
            "edgebook/lab/org/__init__.py": "",
            "edgebook/lab/org/store.py": "from .. import folder\n",
            "edgebook/lab/folder.py": "",
            "edgebook/rules/__init__.py": "",
            "edgebook/rules/late.py": "def f():\n    from edgebook.lab.org import store\n",
            "edgebook/rules/typed.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    import edgebook.lab.folder\n"
            ),
            "edgebook/rules/fine.py": "from edgebook.errors import X\n",
        },
    )
    graph = import_graph(modules)
    assert graph["edgebook.lab.org.store"] == {"edgebook.lab.folder"}
    assert lab_importers(graph) == {
        "edgebook.rules.late": ["edgebook.lab.org.store"],
        "edgebook.rules.typed": ["edgebook.lab.folder"],
    }


def test_a_lab_import_of_product_code_is_named(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "edgebook/__init__.py": "",
            "edgebook/errors.py": "",
            "edgebook/exchange/__init__.py": "",
            "edgebook/exchange/wire_types.py": "",
            "edgebook/exchange/shell.py": "",
            "edgebook/lab/__init__.py": "",
            "edgebook/lab/backend.py": (
                "from edgebook.exchange import wire_types\nfrom edgebook.errors import E\n"
                "def f():\n    from edgebook.exchange.shell import ExchangeShell\n"
            ),
        },
    )
    assert lab_dependencies(import_graph(modules)) == {
        "edgebook.lab.backend": ["edgebook.exchange.shell"]
    }


def test_cycles_are_reported_by_module_name(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "edgebook/__init__.py": "",
            "edgebook/a.py": "import edgebook.b\n",
            "edgebook/b.py": "def f():\n    from edgebook import c\n",
            "edgebook/c.py": "from edgebook.a import thing\n",
            "edgebook/d.py": "import edgebook.a\n",
        },
    )
    graph = import_graph(modules)
    assert cycles(graph) == [["edgebook.a", "edgebook.b", "edgebook.c"]]
    assert describe_cycle(cycles(graph)[0], graph) == (
        "edgebook.a, edgebook.b, edgebook.c "
        "(edgebook.a -> edgebook.b; edgebook.b -> edgebook.c; edgebook.c -> edgebook.a)"
    )


def test_package_cycles_ignore_leaf_modules(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "edgebook/__init__.py": "",
            "edgebook/config/__init__.py": "",
            "edgebook/config/loader.py": "from edgebook.exchange.names import SHAPE\n",
            "edgebook/exchange/__init__.py": "",
            "edgebook/exchange/names.py": "SHAPE = 1\n",
            "edgebook/exchange/shell.py": "from edgebook.config.loader import load\n",
            "edgebook/rules/__init__.py": "",
            "edgebook/rules/a.py": "from edgebook.facts.b import x\n",
            "edgebook/facts/__init__.py": "",
            "edgebook/facts/b.py": "def f():\n    from edgebook.rules.c import y\n",
            "edgebook/rules/c.py": "import edgebook.config.loader\n",
        },
    )
    graph = import_graph(modules)
    assert cycles(graph) == []
    assert cycles(package_graph(modules, graph)) == [["edgebook.facts", "edgebook.rules"]]
