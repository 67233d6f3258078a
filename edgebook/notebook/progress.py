"""Progress of a wait (a drain, a synchronisation): a bar in JupyterLab, text lines under
papermill or a terminal. Both are edgebook.change.engine.Progress callables."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TEXT_EVERY_S = 10.0


def text_progress(
    write: Callable[[str], Any] = print, every_s: float = TEXT_EVERY_S
) -> Callable[[str, str, float, float, str], None]:
    """One line when a wait starts, then at most every `every_s`, and when it ends."""
    last: dict[str, float] = {}

    def show(step: str, what: str, elapsed: float, timeout: float, state: str) -> None:
        now = time.monotonic()
        first = step not in last
        if first or state == "done" or now - last[step] >= every_s or elapsed >= timeout:
            last[step] = now
            write(f"[{step}] waiting for {what}: {elapsed:.0f}/{timeout:.0f} s; {state}")

    return show


def widget_progress() -> Callable[[str, str, float, float, str], None]:
    """A bar and a label per waiting step (ipywidgets), displayed when the wait starts."""
    import ipywidgets as widgets
    from IPython.display import display

    shown: dict[str, tuple[Any, Any]] = {}

    def show(step: str, what: str, elapsed: float, timeout: float, state: str) -> None:
        if step not in shown:
            bar = widgets.FloatProgress(min=0.0, max=max(timeout, 1.0), description=step)
            label = widgets.Label()
            display(widgets.HBox([bar, label]))
            shown[step] = (bar, label)
        bar, label = shown[step]
        bar.value = min(elapsed, bar.max)
        label.value = f"{what}: {'done' if state == 'done' else state}"[:200]
        if state == "done":
            bar.bar_style = "success"

    return show


def notebook_progress() -> Callable[[str, str, float, float, str], None]:
    """Both: the bar for JupyterLab, text lines that remain in an executed notebook."""
    text = text_progress()
    try:
        bar = widget_progress()
    except ImportError:
        return text

    def show(*args: Any) -> None:
        bar(*args)
        text(*args)

    return show
