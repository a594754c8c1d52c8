"""PNG plots of a lab run: the learning curve and the gradient profiles over training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnngrad.lab.result import TrainResult
    from rnngrad.lab.tasks import Task

__all__ = ["plot_run"]


def plot_run(result: TrainResult, folder: Path, task: Task) -> None:
    """``learning_curve.png`` and ``gradient_profiles.png`` in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = result.records["history"]
    evaluations = result.records["evaluations"]
    config = result.config
    title = (
        f"{config.task} T={config.seq_len}, {config.cell}, init {config.init}, clip {config.clip}"
    )

    figure, axis = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in history if r["loss"] is not None]
    axis.plot(
        steps,
        [r["loss"] for r in history if r["loss"] is not None],
        lw=0.6,
        alpha=0.6,
        label="training loss",
    )
    axis.plot(
        [r["step"] for r in evaluations],
        [r["loss"] for r in evaluations],
        "o-",
        ms=3,
        label="held-out loss",
    )
    axis.axhline(task.baseline_loss, color="grey", ls="--", label="memoryless baseline")
    axis.set_yscale("log")
    axis.set_xlabel("training step")
    axis.set_ylabel("loss")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, folder / "learning_curve.png")
    plt.close(figure)

    profiles = result.records["profiles"]
    figure, axis = plt.subplots(figsize=(7, 4))
    taken = sorted({r["step"] for r in profiles})
    colours = plt.get_cmap("viridis")
    for index, step in enumerate(taken):
        rows = [r for r in profiles if r["step"] == step and r["log10_grad_norm"] is not None]
        colour = colours(index / max(1, len(taken) - 1))
        times = [r["t"] for r in rows]
        values = [r["log10_grad_norm"] for r in rows]
        axis.plot(times, values, color=colour, lw=1, label=f"step {step}")
    axis.set_xlabel("time step t")
    axis.set_ylabel("log10 ||dL/dh_t||")
    axis.set_title("gradient profile over training: " + title, fontsize=9)
    if taken:
        axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    _save(figure, folder / "gradient_profiles.png")
    plt.close(figure)


def _save(figure: Any, path: Path) -> None:
    """The PNG through :mod:`rnngrad.atomic`: whole or absent."""
    from rnngrad.atomic import atomic_write_with

    atomic_write_with(path, lambda handle: figure.savefig(handle, format="png", dpi=110))
