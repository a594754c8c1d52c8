"""The outcome of a training run: its JSON summary, its table and its figure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rnngrad.lab.config import TrainConfig
from rnngrad.logspace import finite_or_none
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import t

__all__ = ["TrainResult", "training_figure"]


@dataclass(frozen=True, repr=False)
class TrainResult(Displayable):
    """The outcome of a run (the JSON summary).

    Attributes:
        config: the configuration.
        final_loss: held-out loss at the end.
        final_accuracy: held-out accuracy at the end, where the task has one.
        baseline_loss: the task's memoryless baseline.
        solved: the task's solved rule was met.
        solved_at: the step at which it was, or ``None``.
        steps: steps taken (the budget is ``config.steps``, ``step_budget`` in
            the summary).
        skipped_steps: steps skipped for a non-finite gradient norm.
        clipped_steps: steps at which clipping acted.
        wall_s: wall time of this process's part of the run.
        resumed_from: the checkpoint's step when resumed, else ``None``.
        device: where it ran; threads: torch's intra-op threads on a CPU.
    """

    config: TrainConfig
    final_loss: float
    final_accuracy: float | None
    baseline_loss: float
    solved: bool
    solved_at: int | None
    steps: int
    skipped_steps: int
    clipped_steps: int
    wall_s: float
    resumed_from: int | None = None
    checkpoint_set_aside: str | None = None
    task_seq_len: int | None = None
    device: str = "cpu"
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    threads: int = 1

    def summary(self) -> dict[str, Any]:
        """The JSON summary: the contract's fields, then the rest of the configuration."""
        config = asdict(self.config)
        budget = config.pop("steps")
        configured_length = config.pop("seq_len")
        return {
            "task": config.pop("task"),
            "seq_len": self.task_seq_len or configured_length,
            "cell": config.pop("cell"),
            "init": config.pop("init"),
            "clip": config.pop("clip"),
            "final_loss": finite_or_none(self.final_loss),
            "baseline_loss": self.baseline_loss,
            "solved": self.solved,
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
            "wall_s": round(self.wall_s, 3),
            "final_accuracy": self.final_accuracy,
            "solved_at": self.solved_at,
            "clipped_steps": self.clipped_steps,
            "resumed_from": self.resumed_from,
            "step_budget": budget,
            "checkpoint_set_aside": self.checkpoint_set_aside,
            "device": self.device,
            "threads": self.threads,
            **config,
        }

    def _summary(self) -> Summary:
        c = self.config
        outcome = (f"solved at step {self.solved_at}" if self.solved
                   else f"not solved in {self.steps} steps")  # fmt: skip
        numbers = [
            ("held-out loss", number(self.final_loss)),
            ("memoryless baseline", number(self.baseline_loss)),
            ("steps (budget)", f"{self.steps} ({c.steps})"),
            ("clipped / skipped steps", f"{self.clipped_steps} / {self.skipped_steps}"),
            ("wall time", f"{self.wall_s:.1f} s on {self.device}"),
        ]
        if self.final_accuracy is not None:
            numbers.insert(1, ("held-out accuracy", f"{self.final_accuracy:.2%}"))
        return Summary(
            what=f"{c.task} T={self.task_seq_len or c.seq_len}, {c.cell}, init {c.init}, "
            f"clip {c.clip}",
            verdict="solved" if self.solved else "not solved",
            sentence=f"{outcome}; held-out loss {number(self.final_loss)} against the "
            f"memoryless baseline {number(self.baseline_loss)}.",
            numbers=tuple(numbers),
        )

    def _columns(self) -> dict[str, Any]:
        """One row per evaluation: step, held-out loss and accuracy, spectral radius."""
        rows = self.records.get("evaluations", [])
        keys = ("step", "loss", "accuracy", "spectral_radius")
        return {key: [row.get(key) for row in rows] for key in keys}

    def _figure(self, which: str | None = None) -> Figure:

        return training_figure(self)


def training_figure(result: TrainResult) -> Figure:
    """The held-out loss against the training step, beside the memoryless baseline."""
    evaluations = result.records.get("evaluations", [])
    steps = [row["step"] for row in evaluations]
    figure = Figure(
        "learning_curve", t("held-out loss during training"), t("training step"), t("loss"),
        log_y=True, integer_x=True,
    )  # fmt: skip
    figure.traces.append(Trace(t("held-out loss"), steps, [row["loss"] for row in evaluations]))
    if steps:
        figure.traces.append(
            Trace(t("memoryless baseline"), [steps[0], steps[-1]], [result.baseline_loss] * 2,
                  dash=True)
        )  # fmt: skip
    return figure
