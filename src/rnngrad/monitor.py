"""A training-loop monitor: the gradient profile every N steps, with warnings.

One line in a training loop::

    monitor = rnngrad.GradientMonitor(model, writer=summary_writer)   # once
    for step, (x, y) in enumerate(loader):
        ...
        monitor.step(x)          # the added line: profiles on schedule

``step`` profiles the model on the given batch with
:func:`rnngrad.gradient_profile`, which builds its own autograd graph from
leaves of its own: the model's ``.grad`` fields, the optimizer and the global
RNG are left exactly as they were. By default the schedule adapts so that
profiling takes at most ``overhead`` (5%) of the wall time: after each profile
it waits until the training time since then is ``cost / overhead``.

It keeps a history of summary records, warns (a :class:`GradientWarning` and a
record on the ``rnngrad.monitor`` logger) when a layer turns vanishing or
exploding or a gradient becomes non-finite, naming the first layer and time step
where it did, and writes scalars and a layer-by-time heat map of
``log10 ||dL/dh_t||`` to TensorBoard when given a ``SummaryWriter``
(``pip install rnngrad[tensorboard]``).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.profile import GradientProfile, LossSpec, gradient_profile
from rnngrad.verdict import RATE_TOLERANCE

__all__ = ["GradientMonitor", "GradientWarning", "MonitorRecord", "ScalarWriter"]

logger = logging.getLogger("rnngrad.monitor")


class GradientWarning(UserWarning):
    """A layer's gradient turned vanishing, exploding or non-finite."""


class ScalarWriter(Protocol):
    """What the monitor needs of ``torch.utils.tensorboard.SummaryWriter``."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> Any: ...

    def add_image(
        self, tag: str, img_tensor: Any, global_step: int, dataformats: str = ...
    ) -> Any: ...


@dataclass(frozen=True)
class MonitorRecord:
    """One profile taken during training.

    Attributes:
        step: the training step (the monitor's count of ``step`` calls unless given).
        labels: verdict per layer and direction, in the profile's order.
        log10_ratio, decay_rate, horizon, saturation: the summaries, same order.
        log10_grad_norm: ``(layers * directions, T)``, the per-step profile.
        seconds: the profile's wall time.
    """

    step: int
    names: tuple[str, ...]
    labels: tuple[str, ...]
    log10_ratio: tuple[float | None, ...]
    decay_rate: tuple[float | None, ...]
    horizon: tuple[int | None, ...]
    saturation: tuple[float, ...]
    log10_grad_norm: NDArray[np.float64]
    seconds: float


class GradientMonitor:
    """Profiles a recurrent model during training and warns when its gradients turn.

    Args:
        model: the model, or its recurrent module (see :func:`rnngrad.gradient_profile`).
        every: profile every ``every`` calls of :meth:`step`; ``None`` adapts the
            interval so that profiling stays within ``overhead`` of the run time.
        overhead: the share of wall time profiling may take when ``every`` is None.
        loss: the profile's loss (``"last"``, ``"sum"`` or a callable on the
            model's output).
        module: the recurrent submodule's name, when the model has several.
        writer: a TensorBoard ``SummaryWriter`` (or anything with ``add_scalar``
            and ``add_image``).
        tolerance: per-step tolerance of the growth rule.
        clock: the wall clock in seconds (``time.perf_counter``; replaceable in tests).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int | None = None,
        overhead: float = 0.05,
        loss: LossSpec = "last",
        module: str | None = None,
        writer: ScalarWriter | None = None,
        tolerance: float = RATE_TOLERANCE,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidInputError(
                f"GradientMonitor needs the model (an nn.Module), got {type(model).__name__}"
            )
        from rnngrad.cells import find_recurrent_module

        find_recurrent_module(model, module)  # the recurrent module is there, and only one
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)):
            raise InvalidInputError(f"every must be a whole number, got {every!r}")
        if every is not None and every < 1:
            raise InvalidInputError(f"every must be >= 1, got {every}")
        if not 0.0 < overhead < 1.0:
            raise InvalidInputError(f"overhead must be in (0, 1), got {overhead}")
        self.model = model
        self.every = every
        self.overhead = overhead
        self.loss = loss
        self.module = module
        self.writer = writer
        self.tolerance = tolerance
        self.clock = clock
        self.history: list[MonitorRecord] = []
        self.calls = 0
        self.profile_seconds = 0.0
        self._last_call: float | None = None
        self._training_since_profile = 0.0
        self._last_cost = 0.0

    def _due(self) -> bool:
        if self.every is not None:
            return (self.calls - 1) % self.every == 0
        if not self.history:
            return True
        return self._training_since_profile >= self._last_cost / self.overhead

    def step(self, inputs: Any, *, step: int | None = None) -> GradientProfile | None:
        """Count one training step; profile ``inputs`` when the schedule says so.

        Returns:
            The profile when one was taken, else ``None``.
        """
        now = self.clock()
        if self._last_call is not None:
            self._training_since_profile += now - self._last_call
        self.calls += 1
        if not self._due():
            self._last_call = self.clock()
            return None
        profile = gradient_profile(
            self.model, inputs, loss=self.loss, module=self.module, tolerance=self.tolerance
        )
        cost = self.clock() - now
        self._last_cost = cost
        self.profile_seconds += cost
        self._training_since_profile = 0.0
        record = self._record(profile, self.calls if step is None else step, cost)
        self._warn(record, profile)
        self.history.append(record)
        if self.writer is not None:
            self._write(record)
        self._last_call = self.clock()
        return profile

    def _record(self, profile: GradientProfile, step: int, seconds: float) -> MonitorRecord:
        layers = profile.layers
        return MonitorRecord(
            step=step,
            names=tuple(lp.name for lp in layers),
            labels=tuple(lp.verdict.label for lp in layers),
            log10_ratio=tuple(lp.log10_ratio for lp in layers),
            decay_rate=tuple(lp.decay_rate for lp in layers),
            horizon=tuple(lp.horizon for lp in layers),
            saturation=tuple(lp.saturation for lp in layers),
            log10_grad_norm=np.stack([lp.log10_grad_norm for lp in layers]),
            seconds=seconds,
        )

    def _warn(self, record: MonitorRecord, profile: GradientProfile) -> None:
        previous = self.history[-1].labels if self.history else None
        for lp in profile.layers:
            if lp.first_nonfinite_step is not None:
                self._emit(
                    f"training step {record.step}: non-finite gradient dL/dh_t in {lp.name}, "
                    f"first at time step t = {lp.first_nonfinite_step}"
                )
                break
        for index, lp in enumerate(profile.layers):
            if lp.first_nonfinite_step is not None:
                continue  # said above, once: a non-finite gradient is its own event
            label = lp.verdict.label
            turned = previous is None or previous[index] != label
            if label in ("vanishing", "exploding") and turned:
                self._emit(
                    f"training step {record.step}: {lp.name} turned {label}. {lp.verdict.sentence}"
                )

    @staticmethod
    def _emit(message: str) -> None:
        logger.warning(message)
        warnings.warn(message, GradientWarning, stacklevel=3)

    def _write(self, record: MonitorRecord) -> None:
        assert self.writer is not None
        for index, name in enumerate(record.names):
            tag = "rnngrad/" + name.replace(" ", "_")
            values = {
                "log10_ratio": record.log10_ratio[index],
                "decay_rate": record.decay_rate[index],
                "horizon": record.horizon[index],
                "saturation": record.saturation[index],
            }
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"{tag}/{key}", float(value), record.step)
        self.writer.add_image(
            "rnngrad/log10_grad_norm",
            heat_map(record.log10_grad_norm),
            record.step,
            dataformats="HW",
        )


def heat_map(log10_norms: NDArray[np.float64], row_height: int = 8) -> torch.Tensor:
    """A ``(rows * row_height, T)`` image in ``[0, 1]``: one band per layer, time across.

    Each value is ``log10 ||dL/dh_t||`` scaled between the finite minimum and
    maximum of the whole map; zeros and non-finite values are black.
    """
    values = np.asarray(log10_norms, dtype=np.float64)
    finite = np.isfinite(values)
    image = np.zeros_like(values)
    if finite.any():
        low, high = values[finite].min(), values[finite].max()
        span = high - low if high > low else 1.0
        image[finite] = (values[finite] - low) / span
    return torch.from_numpy(np.repeat(image, row_height, axis=0).astype(np.float32))
