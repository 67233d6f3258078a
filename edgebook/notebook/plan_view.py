"""A plan in a notebook: its table, and in JupyterLab an Approve button that applies exactly the
shown plan (the button passes that plan's hash; nothing waits on it under papermill)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from edgebook.change.outcome import ApplyResult
from edgebook.change.plan import Plan

PLAN_COLUMNS = ["step", "server", "does", "runs", "before", "after", "undo", "questions"]


def plan_table(plan: Plan) -> pd.DataFrame:
    """One row per step: what it runs, what must hold before and after, its undo, questions."""
    return pd.DataFrame(plan.rows(), columns=PLAN_COLUMNS)


def outcome_table(result: ApplyResult) -> pd.DataFrame:
    """One row per step of an apply or rollback: done, skipped, failed, rolled back."""
    return pd.DataFrame(result.rows(), columns=["step", "server", "status", "message"])


def record_outcome(result: ApplyResult) -> None:
    """Record what an apply did (its outcome and Exchange's questions answered) for the runner,
    and show the outcome table."""
    from IPython.display import display

    from edgebook.evidence.records import record

    outcome = {"completed": result.completed, "error": result.error, "steps": result.rows()}
    record("outcome", outcome)
    record("answers", [a.to_dict() for a in result.answers])
    display(outcome_table(result))


def approval_widget(plan: Plan, apply: Callable[[str], ApplyResult]) -> Any:
    """Show the plan, and return an Approve button for it; a click calls apply(plan.sha256)
    once and shows the outcome below. No Output widget: an Output widget capturing a display
    made some headless (papermill) executions wait for ever; the plan is a plain output."""
    import html

    import ipywidgets as widgets
    from IPython.display import display

    from edgebook.errors import EdgebookError

    button = widgets.Button(description="Approve and apply", button_style="danger")
    label = widgets.HTML(f"<code>plan sha256: {plan.sha256}</code>")
    outcome = widgets.HTML()

    def clicked(_button: Any) -> None:
        button.disabled = True
        try:
            result = apply(plan.sha256)
        except EdgebookError as exc:
            outcome.value = f"<b>not applied:</b> {html.escape(str(exc))}"
            return
        outcome.value = outcome_table(result).to_html(index=False)

    button.on_click(clicked)
    display(plan_table(plan))
    return widgets.VBox([label, button, outcome])
