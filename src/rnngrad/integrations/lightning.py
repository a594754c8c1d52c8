"""The gradient monitor as a PyTorch Lightning callback.

::

    from rnngrad.integrations.lightning import GradientMonitorCallback

    trainer = lightning.Trainer(callbacks=[GradientMonitorCallback(loss=F.cross_entropy)])

After each training batch the callback hands the batch to a
:class:`rnngrad.GradientMonitor` on the LightningModule (profiles on the
monitor's schedule, warnings once per event), with the trainer's global step.
The batch's first element is the model's input and its second the target (a
``(x, y)`` pair, as most data loaders give); ``inputs=`` and ``targets=`` take
other layouts apart. The records go to the trainer's own logger when it is a
TensorBoard or W&B logger (``writer="auto"``), to a writer given, or nowhere
(``writer=None``). Only the global-zero process profiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rnngrad.extras import require
from rnngrad.monitor.monitor import GradientMonitor, MonitorEvent

_pl = require("lightning.pytorch", "lightning", what="lightning")

__all__ = ["GradientMonitorCallback"]


def _first(batch: Any) -> Any:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _second(batch: Any) -> Any:
    return batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None


class GradientMonitorCallback(_pl.Callback):  # type: ignore[misc,name-defined]
    """Runs :class:`rnngrad.GradientMonitor` inside ``Trainer.fit``.

    Args:
        loss: the profile's loss: ``"last"``, ``"sum"``, or a callable ``loss(output, y)``
            (given the batch's targets) or ``loss(output)`` (when ``targets`` gives ``None``).
        inputs: the model's input from a batch (the first element by default).
        targets: the targets from a batch (the second element, when there is one).
        writer: ``"auto"`` (the trainer's TensorBoard or W&B logger, if any), a writer
            the monitor accepts, or ``None``.
        every, overhead, module, on_warning, color_range: as for the monitor.

    Attributes:
        monitor: the :class:`rnngrad.GradientMonitor`, built when training starts.
    """

    def __init__(
        self,
        *,
        loss: Any = "last",
        inputs: Callable[[Any], Any] = _first,
        targets: Callable[[Any], Any] = _second,
        writer: Any = "auto",
        every: int | None = None,
        overhead: float = 0.05,
        module: str | None = None,
        on_warning: Callable[[MonitorEvent], Any] | None = None,
        color_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.loss, self.inputs, self.targets, self.writer = loss, inputs, targets, writer
        self.options: dict[str, Any] = {
            "every": every, "overhead": overhead, "module": module,
            "on_warning": on_warning, "color_range": color_range,
        }  # fmt: skip
        self.monitor: GradientMonitor | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        writer = _logger_writer(trainer) if self.writer == "auto" else self.writer
        self.monitor = GradientMonitor(pl_module, loss=self.loss, writer=writer, **self.options)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.monitor is None or not trainer.is_global_zero:
            return
        targets = self.targets(batch) if callable(self.loss) else None
        self.monitor.step(self.inputs(batch), targets, step=int(trainer.global_step))


def _logger_writer(trainer: Any) -> Any:
    """The experiment of the trainer's first TensorBoard or W&B logger, else ``None``."""
    for logger in getattr(trainer, "loggers", []) or []:
        experiment = getattr(logger, "experiment", None)
        if experiment is None:
            continue
        if callable(getattr(experiment, "add_scalar", None)) or callable(
            getattr(experiment, "log", None)
        ):
            return experiment
    return None
