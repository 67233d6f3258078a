"""Inventory providers: installed ones are found once per process, and their modules are what
a kernel started ahead imports so that a run's first resolve_inventory imports nothing."""

from __future__ import annotations

import subprocess
import sys

from edgebook.config import resolve
from edgebook.evidence.rollout import kernel_pool, phase_notebook


def test_installed_providers_are_found_once_per_process(monkeypatch):
    scans = []
    real = resolve.entry_points

    def counting(**kwargs):
        scans.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(resolve, "entry_points", counting)
    resolve._installed.cache_clear()
    try:
        assert "lab" in resolve.providers()
        resolve.providers()
        assert resolve.provider_modules() == ("edgebook.lab.control",)
        assert scans == [{"group": resolve.ENTRY_POINT_GROUP}]
    finally:
        resolve._installed.cache_clear()


def test_kernels_import_the_providers_ahead_so_resolving_imports_nothing():
    pool = kernel_pool([phase_notebook("prepare")])
    try:
        (modules,) = pool.upcoming
    finally:
        pool.close()
    assert "edgebook.lab.control" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    try: importlib.import_module(name)\n"
        "    except Exception: pass\n"
        "before = set(sys.modules)\n"
        "from edgebook.config.resolve import providers\n"
        "providers()\n"
        "print(sorted(n for n in set(sys.modules) - before if n.startswith('edgebook')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
