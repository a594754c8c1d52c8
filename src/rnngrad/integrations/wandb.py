"""The monitor's records in a Weights & Biases run.

``GradientMonitor(model, writer=wandb.init(...))`` logs, at each profile, the same
scalars as for TensorBoard (``rnngrad/<layer>/log10_ratio``, ``decay_rate``,
``horizon``, ``saturation``) and the heat map of ``log10 ||dL/dh_t||`` as a
``wandb.Image``, with the training step under ``rnngrad/step``. The record goes
into the run's current row (``run.log`` without ``step=``), the way Lightning's
W&B logger does it, so the run's own step counter is never pushed backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rnngrad.extras import require

__all__ = ["wandb_writer"]


def wandb_writer(run: Any) -> Callable[[dict[str, float], NDArray[np.uint8], int], None]:
    """A function that logs one monitor record (scalars, heat map, step) to ``run``."""
    wandb = require("wandb", "wandb")

    def write(scalars: dict[str, float], image: NDArray[np.uint8], step: int) -> None:
        row: dict[str, Any] = dict(scalars)
        row["rnngrad/log10_grad_norm"] = wandb.Image(image, caption=f"training step {step}")
        row["rnngrad/step"] = step
        run.log(row)

    return write
