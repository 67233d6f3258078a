"""Inventories by reference: a parameters file, or what a registered provider makes of a name.

A provider turns a reference ("lab", a file naming a lab, ...) into the path of a parameters
file, or returns None when the reference is not its own. Providers come from the entry-point
group ``edgebook.inventories`` (the lab registers itself there, so no product module imports
it) or from `register` at run time, the way papermill registers its engines.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from edgebook.config.loader import load_inventory
from edgebook.config.model import Inventory
from edgebook.errors import ConfigError

ENTRY_POINT_GROUP = "edgebook.inventories"

Provider = Callable[[str], Path | None]

_providers: dict[str, Provider] = {}


def register(name: str, provider: Provider) -> None:
    """Add (or replace) an inventory provider."""
    _providers[name] = provider


def providers() -> dict[str, Provider]:
    """The registered providers, those of installed entry points first loaded."""
    for point in _installed():
        if point.name not in _providers:
            _providers[point.name] = point.load()
    return dict(_providers)


def provider_modules() -> tuple[str, ...]:
    """The modules the installed providers live in (a kernel started ahead imports them)."""
    return tuple(point.module for point in _installed())


@functools.cache
def _installed() -> tuple[EntryPoint, ...]:
    """The installed providers' entry points, found once per process (a scan of every
    installed distribution's metadata, about 50 ms)."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def resolve_inventory(reference: str | Path) -> Inventory:
    """Load the inventory a reference names: a provider's, else the parameters file itself."""
    text = str(reference)
    for provider in providers().values():
        path = provider(text)
        if path is not None:
            return load_inventory(path)
    if text == "lab":
        raise ConfigError(
            "inventory 'lab': the built-in lab is not installed here (install edgebook with "
            "its lab, or give the path of a parameters file)"
        )
    return load_inventory(Path(text))  # names a missing file, a folder, bad YAML
