"""Exact per-step gradients of a model around a diagonal recurrence.

During one forward pass of the model the layer's states get a zero probe added
(as in :mod:`rnngrad.profile.stepped`); ``dL/dprobe`` is the direct gradient ``G_t``
at every step, and the total is the adjoint scan
``g_t = G_t + conj(a_{t+1}) g_{t+1}`` with ``a_t = dh_t/dh_{t-1}`` from
:meth:`~rnngrad.modern.base.DiagonalRecurrence.state_jacobian`; the same scan
from the last loss-bearing step's ``G`` alone gives the carried gradient
(:mod:`rnngrad.profile.carried`). Norms of complex states are the norms of
their real and imaginary parts together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.cells import RecurrentLayout
from rnngrad.errors import InvalidInputError, calling_user_code
from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.modern.scan import diagonal_adjoint
from rnngrad.profile.carried import carried_norms, carried_seed
from rnngrad.profile.model_call import (
    forked_rng,
    loss_gradients,
    output_loss,
    recorded_calls,
    recurrent_base,
)
from rnngrad.profile.result import GradientProfile, LossSpec
from rnngrad.profile.summary import gradient_norms, summarise

__all__ = ["diagonal_profile"]


def diagonal_profile(
    model: nn.Module,
    arguments: tuple[Any, ...],
    name: str,
    layer: DiagonalRecurrence,
    *,
    loss: LossSpec,
    keep_gradients: bool,
    tolerance: float,
) -> GradientProfile:
    """The profile of ``layer`` inside ``model`` (or of ``layer`` itself), inputs time-major."""
    saved: dict[str, Any] = {}
    original = recurrent_base(type(layer)).forward

    def forward(x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        if saved:
            raise InvalidInputError(
                f"{name or type(layer).__name__} was called more than once in one forward "
                "pass; a diagonal recurrence is profiled over one call"
            )
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[0] == 0:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InvalidInputError(f"{type(layer).__name__} takes (T, B, D) inputs, got {got}")
        start = layer.initial_state(x.shape[1], x) if h0 is None else h0
        states: torch.Tensor = original(layer, x, start)
        probe = torch.zeros_like(states, requires_grad=True)
        saved.update(x=x.detach(), h0=start.detach(), states=states.detach(), probe=probe)
        return states + probe

    with forked_rng(arguments):
        with recorded_calls(layer, forward), calling_user_code(type(model).__name__):
            output = model(*arguments)
        if not saved:
            raise InvalidInputError(f"the model never called its recurrent module {name!r}")
        states = saved["states"]
        value = output_loss(output, loss, time_dim=0)
        (direct,) = loss_gradients(value, [saved["probe"]], allow_unused=True)
    if direct is None:
        direct = torch.zeros_like(states)
    with torch.no_grad():
        coefficients = layer.state_jacobian(saved["x"], states, saved["h0"])
        total = diagonal_adjoint(direct.detach(), coefficients.detach())
        real = torch.view_as_real(total).flatten(-2) if total.is_complex() else total
        seed = carried_seed(direct.detach())
        carried = carried_norms(seed, diagonal_adjoint(seed.h, coefficients.detach()))
    profile = summarise(
        0,
        0,
        gradient_norms(real),
        float("nan"),
        carried=carried,
        tolerance=tolerance,
        grad=total.transpose(0, 1).clone() if keep_gradients else None,
    )
    steps, batch = (int(n) for n in states.shape[:2])
    layout = RecurrentLayout.single("custom", layer.input_size, layer.state_size)
    return GradientProfile(
        layout=layout,
        module_name=name or type(layer).__name__,
        steps=steps,
        batch=batch,
        loss=loss if isinstance(loss, str) else "custom",
        loss_value=float(value.detach()),
        dtype=str(saved["x"].dtype).removeprefix("torch."),
        layers=(profile,),
        lengths=np.full(batch, steps, dtype=np.int64),
    )
