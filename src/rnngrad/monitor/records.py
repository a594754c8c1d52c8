"""What the training monitor records and says: one record per profile, one event per
change it warns about, and the warnings' classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GradientWarning",
    "MonitorDisabledWarning",
    "MonitorEvent",
    "MonitorRecord",
    "ParameterRecord",
    "ScalarWriter",
]


class GradientWarning(UserWarning):
    """A layer's gradient turned vanishing, exploding or non-finite."""


class MonitorDisabledWarning(UserWarning):
    """The monitor failed on a batch and switched itself off; training goes on."""


class ScalarWriter(Protocol):
    """What the monitor needs of ``torch.utils.tensorboard.SummaryWriter``."""

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> Any: ...

    def add_image(
        self, tag: str, img_tensor: Any, global_step: int, dataformats: str = ...
    ) -> Any: ...


@dataclass(frozen=True)
class MonitorEvent:
    """One change the monitor warns about.

    Attributes:
        step: the training step of the profile that saw it.
        layer: the layer and direction's name (``"layer 0"``, ``"layer 1 reverse"``).
        kind: ``"vanishing"``, ``"exploding"`` or ``"non-finite"``.
        time_step: for ``"non-finite"``, the first time step ``t`` whose ``dL/dh_t``
            is not finite; else ``None``.
        message: the warning's text.
    """

    step: int
    layer: str
    kind: Literal["vanishing", "exploding", "non-finite"]
    time_step: int | None
    message: str


@dataclass(frozen=True)
class ParameterRecord:
    """One parameter of a recurrence, in a profile taken with ``sensitivity=True``
    (:func:`rnngrad.memory_sensitivity`).

    Attributes:
        module: the recurrence's name in the model.
        name: the parameter's name in the recurrence (``"nu_log"``, ``"weight_hh_l0"``).
        grad_norm: ``||dL/dtheta||`` of the profile's loss.
        state_sensitivity: ``||dh_T/dtheta||_F`` at the last token, the mean over the
            batch's sequences.
        exact: ``state_sensitivity`` is exact (a per-mode parameter), not Hutchinson's
            estimate.
    """

    module: str
    name: str
    grad_norm: float
    state_sensitivity: float
    exact: bool


@dataclass(frozen=True)
class MonitorRecord:
    """One profile taken during training.

    Attributes:
        step: the training step (the monitor's count of ``step`` calls unless given).
        labels: verdict per layer and direction, in the profile's order.
        log10_ratio, decay_rate, horizon, saturation: the summaries, same order.
        log10_grad_norm: ``(layers * directions, T)``, the per-step profile (rows of a
            shorter module, a decoder's, padded with NaN).
        seconds: the wall time of the monitor's call that took it (profile, warnings
            and writer).
        nonfinite_step: per layer, the first time step whose gradient is not finite.
        parameters: with ``sensitivity=True``, one :class:`ParameterRecord` per parameter
            of each recurrence measured; else empty.
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
    nonfinite_step: tuple[int | None, ...] = ()
    parameters: tuple[ParameterRecord, ...] = ()
