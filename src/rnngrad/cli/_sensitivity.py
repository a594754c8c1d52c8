"""``rnngrad profile --sensitivity``: the curse of memory as a table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rnngrad.profile.sensitivity import MemorySensitivity
from rnngrad.show.display import number


def print_sensitivity(console: Console, result: MemorySensitivity) -> None:
    """One row per parameter of the recurrence: ``||dh_T/dtheta||`` (exact or estimated,
    with the estimate's interval) and ``||dL/dtheta||``, under ``||h_T||``."""
    steps = result.state_norm.shape[1]
    table = Table(
        title=f"the curse of memory: {result.module_name}, T = {steps}",
        caption="||dh_T/dtheta||: the last token's states' sensitivity to the parameter "
        "(mean over the sequences; exact for per-mode parameters, else Hutchinson's "
        "estimate +- its 95% interval); ||dL/dtheta||: the loss's gradient "
        f"(Zucchet & Orvieto 2024). ||h_T|| = {number(float(result.state_norm[:, -1].mean()))}",
    )
    table.add_column("parameter", no_wrap=True)
    table.add_column("size", justify="right")
    table.add_column("||dh_T/dtheta||", justify="right", no_wrap=True)
    table.add_column("||dL/dtheta||", justify="right", no_wrap=True)
    for entry in result.parameters:
        value = number(float(entry.mean_state_norm[-1]))
        spread = float(entry.ci95[:, -1].mean())
        table.add_row(
            entry.name,
            str(entry.size),
            f"{value} (exact)" if entry.exact else f"{value} +- {number(spread)}",
            number(entry.grad_norm),
        )
    console.print(table)
