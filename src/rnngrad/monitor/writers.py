"""Where the monitor's records go: a TensorBoard ``SummaryWriter`` or a Weights & Biases
run, each record as scalars per layer and a heat map of ``log10 ||dL/dh_t||``.

``GradientMonitor(model, writer=wandb.init(...))`` logs, at each profile, the same
scalars as for TensorBoard (``rnngrad/<layer>/log10_ratio``, ``decay_rate``,
``horizon``, ``saturation``) and the heat map as a ``wandb.Image``, with the
training step under ``rnngrad/step``. The record goes into the run's current row
(``run.log`` without ``step=``), the way Lightning's W&B logger does it, so the
run's own step counter is never pushed backwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rnngrad.errors import InvalidInputError
from rnngrad.extras import require

__all__ = ["default_color_range", "heat_map", "wandb_writer", "writer_for"]

#: One record's writer: its scalars, its heat map ``(H, W, 3)``, its training step.
RecordWriter = Callable[[dict[str, float], NDArray[np.uint8], int], None]


def writer_for(writer: Any) -> RecordWriter:
    """A function that writes one record's scalars and heat map to ``writer``."""
    if callable(getattr(writer, "add_scalar", None)) and callable(
        getattr(writer, "add_image", None)
    ):

        def tensorboard(scalars: dict[str, float], image: NDArray[np.uint8], step: int) -> None:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)
            writer.add_image("rnngrad/log10_grad_norm", image, step, dataformats="HWC")

        return tensorboard
    if callable(getattr(writer, "log", None)):
        return wandb_writer(writer)
    raise InvalidInputError(
        "writer must be a TensorBoard SummaryWriter (add_scalar, add_image) or a "
        f"Weights & Biases run (log), got {type(writer).__name__}"
    )


def wandb_writer(run: Any) -> RecordWriter:
    """A function that logs one monitor record (scalars, heat map, step) to ``run``."""
    wandb = require("wandb", "wandb")

    def write(scalars: dict[str, float], image: NDArray[np.uint8], step: int) -> None:
        row: dict[str, Any] = dict(scalars)
        row["rnngrad/log10_grad_norm"] = wandb.Image(image, caption=f"training step {step}")
        row["rnngrad/step"] = step
        run.log(row)

    return write


def default_color_range(log10_norms: NDArray[np.float64]) -> tuple[float, float]:
    """The heat map's scale from a first profile: its finite range widened to whole
    decades, then by two decades on each side (``(-1, 1)`` when nothing is finite)."""
    values = np.asarray(log10_norms, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    return float(math.floor(finite.min()) - 2), float(math.ceil(finite.max()) + 2)


def heat_map(
    log10_norms: NDArray[np.float64],
    names: tuple[str, ...] | list[str],
    color_range: tuple[float, float],
    step: int | None = None,
) -> NDArray[np.uint8]:
    """An RGB image ``(H, W, 3)`` of ``log10 ||dL/dh_t||``: one row per layer and
    direction (labelled), time steps across, a colour bar on the fixed ``color_range``
    (values beyond it take the end colours; exact zeros and non-finite values are grey)."""
    from rnngrad.show.draw import heat_map_rgb

    image: NDArray[np.uint8] = heat_map_rgb(
        np.asarray(log10_norms, dtype=np.float64),
        list(names),
        color_range,
        title="log10 ||dL/dh_t||" + ("" if step is None else f", training step {step}"),
    )
    return image
