"""The gradient monitor as a PyTorch Lightning callback.

::

    from rnngrad.integrations.lightning import GradientMonitorCallback

    trainer = lightning.Trainer(callbacks=[GradientMonitorCallback()])

After each training batch the callback hands the batch to a
:class:`rnngrad.GradientMonitor` on the LightningModule (profiles on the monitor's
schedule, warnings once per event), with the trainer's global step. By default it
re-runs the module's own ``training_step`` on the batch it was given, with the
module's logging silenced and the global RNG restored, and profiles every recurrent
module that step calls (:func:`rnngrad.profile_call`): batches that are dicts or
dataclasses, and windows built inside ``training_step`` (as forecasting libraries do),
work without arguments. ``inputs=`` (and ``targets=``, ``loss=``) take a batch apart
instead, for a model whose ``training_step`` cannot be re-run.

The records go to the trainer's own logger when it is a TensorBoard or W&B logger
(``writer="auto"``), to a writer given, or nowhere (``writer=None``). Only the
global-zero process profiles. A library that copies its callbacks still reaches the
same monitor: every copy shares it, and the trainer keeps it as
``trainer.rnngrad_monitor``. The callback never stops training: a failure warns once
and switches the monitor off.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from rnngrad.extras import require
from rnngrad.monitor.alerts import switched_off
from rnngrad.monitor.monitor import GradientMonitor, MonitorEvent

_pl = require("lightning.pytorch", "lightning", what="lightning")

__all__ = ["GradientMonitorCallback"]


def _first(batch: Any) -> Any:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _second(batch: Any) -> Any:
    return batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None


class _Shared:
    """What every copy of one callback shares: the monitor."""

    monitor: GradientMonitor | None = None


class GradientMonitorCallback(_pl.Callback):  # type: ignore[misc,name-defined]
    """Runs :class:`rnngrad.GradientMonitor` inside ``Trainer.fit``.

    Args:
        loss: the profile's loss when the batch is taken apart: ``"last"``, ``"sum"``,
            or a callable ``loss(output, y)`` (given the batch's targets) or
            ``loss(output)``. Given alone, the batch's first element is the model's
            input (as before this callback re-ran ``training_step``). Without ``loss=``
            and ``inputs=`` the loss is the one ``training_step`` returns.
        inputs: the model's input from a batch; ``None`` (the default, without
            ``loss=``) re-runs ``training_step`` instead.
        targets: the targets from a batch, with ``inputs=`` (the second element of a
            tuple by default).
        writer: ``"auto"`` (the trainer's TensorBoard or W&B logger, if any), a writer
            the monitor accepts, or ``None``.
        every, overhead, module, on_warning, color_range, sensitivity, directions: as for
            the monitor.

    Attributes:
        monitor: the :class:`rnngrad.GradientMonitor`, built when training starts
            (shared by every copy a library makes of the callback).
    """

    def __init__(
        self,
        *,
        loss: Any = None,
        inputs: Callable[[Any], Any] | None = None,
        targets: Callable[[Any], Any] = _second,
        writer: Any = "auto",
        every: int | None = None,
        overhead: float = 0.05,
        module: str | None = None,
        on_warning: Callable[[MonitorEvent], Any] | None = None,
        color_range: tuple[float, float] | None = None,
        sensitivity: bool = False,
        directions: int = 4,
    ) -> None:
        super().__init__()
        if loss is not None and inputs is None:
            inputs = _first  # a loss given for the batch's first element, as before
        self.loss, self.inputs, self.targets, self.writer = loss, inputs, targets, writer
        self.options: dict[str, Any] = {
            "every": every, "overhead": overhead, "module": module,
            "on_warning": on_warning, "color_range": color_range,
            "sensitivity": sensitivity, "directions": directions,
        }  # fmt: skip
        self._shared = _Shared()

    @property
    def monitor(self) -> GradientMonitor | None:
        return self._shared.monitor

    def __deepcopy__(self, memo: dict[int, Any]) -> GradientMonitorCallback:
        """A copy that shares the monitor: a library that copies its callbacks still
        leaves the results where the user's own callback reads them."""
        duplicate = copy.copy(self)
        memo[id(self)] = duplicate
        return duplicate

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        with _never_stops_training(self):
            writer = _logger_writer(trainer) if self.writer == "auto" else self.writer
            if self.inputs is None and not getattr(pl_module, "automatic_optimization", True):
                raise ValueError(
                    "the module optimises manually, so its training_step cannot be re-run "
                    "without stepping the optimiser: give inputs= (and loss=)"
                )
            self._shared.monitor = GradientMonitor(
                pl_module, loss=self.loss if self.loss is not None else "last", writer=writer,
                **self.options,
            )  # fmt: skip
            trainer.rnngrad_monitor = self._shared.monitor

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        monitor = self.monitor
        if monitor is None or monitor.disabled is not None or not trainer.is_global_zero:
            return
        step = int(trainer.global_step)
        with _never_stops_training(self):
            if self.inputs is None:
                monitor.step_call(lambda: _training_loss(pl_module, batch, batch_idx), step=step)
            else:
                targets = self.targets(batch) if callable(self.loss) else None
                monitor.step(self.inputs(batch), targets, step=step)


@contextmanager
def _never_stops_training(callback: GradientMonitorCallback) -> Iterator[None]:
    """A failure of the callback's own warns once and switches the monitor off."""
    try:
        yield
    except Exception as error:
        reason = switched_off(error, "gradient monitor callback")
        if callback.monitor is not None:
            callback.monitor.disabled = reason


def _training_loss(pl_module: Any, batch: Any, batch_idx: int) -> torch.Tensor:
    """The loss the module's own ``training_step`` returns on ``batch``, its logging
    silenced (``self.log`` and ``self.log_dict`` do nothing during the call)."""
    silenced = {name: vars(pl_module).get(name) for name in ("log", "log_dict")}
    pl_module.log = pl_module.log_dict = lambda *args, **kwargs: None
    try:
        result = pl_module.training_step(batch, batch_idx)
    finally:
        for name, previous in silenced.items():
            if previous is None:
                vars(pl_module).pop(name, None)
            else:
                setattr(pl_module, name, previous)
    if isinstance(result, dict):
        result = result.get("loss")
    if not isinstance(result, torch.Tensor):
        raise ValueError(
            f"training_step returned {type(result).__name__}, not a loss tensor (or a dict "
            "with 'loss'): give inputs= and loss= to the callback"
        )
    return result


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
