"""The gradient profile of a recurrent cell of one's own, ``h_t = cell(x_t, h_{t-1})``.

Where :mod:`rnngrad.profile.front` reads a fused module through its kernels, a cell
of unknown form is run as it is, one step at a time under autograd, and the
total gradients ``dL/dh_t`` come from one ``torch.autograd.grad`` of the loss
with respect to every state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from rnngrad.cells import RecurrentLayout
from rnngrad.errors import InvalidInputError, NonFiniteInputError, ShapeError, calling_user_code
from rnngrad.profile.carried import carried_norms, carried_seed
from rnngrad.profile.model_call import scalar_loss
from rnngrad.profile.result import GradientProfile, LossSpec
from rnngrad.profile.summary import gradient_norms, summarise
from rnngrad.verdict import RATE_TOLERANCE

__all__ = ["cell_gradient_profile"]


def cell_gradient_profile(
    cell: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    *,
    h0: torch.Tensor | None = None,
    batch_first: bool = False,
    loss: LossSpec = "last",
    keep_gradients: bool = False,
    tolerance: float = RATE_TOLERANCE,
) -> GradientProfile:
    """The gradient profile of a custom cell ``h_t = cell(x_t, h_{t-1})``.

    The protocol: ``cell`` is any callable (usually an ``nn.Module``) that maps
    an input ``x_t`` of shape ``(B, D)`` and a state ``h_{t-1}`` of shape
    ``(B, N)`` to ``h_t`` of shape ``(B, N)``; ``nn.RNNCell`` and ``nn.GRUCell``
    follow it as they are. The state must be one flat tensor (an LSTM cell's
    ``(h, c)`` pair does not qualify; use ``nn.LSTM`` or wrap the cell so that
    it carries ``cat(h, c)``). ``h0`` defaults to zeros of size
    ``cell.hidden_size``.

    The loop runs in Python with autograd and ``torch.autograd.grad`` of the loss
    with respect to every ``h_t`` gives the total gradients. ``loss`` is
    ``"last"`` (``0.5 sum(h_T**2)``), ``"sum"`` (``0.5 sum_t sum(h_t**2)``) or a
    callable on the stacked states, shaped like ``inputs`` with ``N`` features.
    Saturation is not defined for an unknown cell and is reported as NaN.

    Raises:
        ShapeError: ``inputs`` not ``(T, B, D)``/``(B, T, D)``, ``T = 0``, or a
            state that is not a flat ``(B, N)`` tensor.
        NonFiniteInputError: NaN or inf in the inputs.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ShapeError(f"inputs must be a (T, B, D) or (B, T, D) tensor, got {shape}")
    seq = inputs.transpose(0, 1) if batch_first else inputs
    steps, batch = seq.shape[:2]
    if steps == 0:
        raise ShapeError("the input sequence is empty (T = 0)")
    if not torch.isfinite(seq).all():
        raise NonFiniteInputError("the input holds NaN or inf")
    if h0 is None:
        size = getattr(cell, "hidden_size", None)
        if not isinstance(size, int):
            raise InvalidInputError("give h0, or a cell with an integer hidden_size")
        h0 = torch.zeros(batch, size, dtype=seq.dtype, device=seq.device)
    # A leaf of the profile's own: the states then depend on something that requires a
    # gradient even when the cell has no trainable parameters.
    state = h0.detach().requires_grad_(True)
    states: list[torch.Tensor] = []
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        for t in range(steps):
            with calling_user_code("the cell"):
                state = cell(seq[t], state)
            if not isinstance(state, torch.Tensor) or state.shape != h0.shape:
                got = (
                    tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
                )
                raise ShapeError(
                    f"the cell must return a flat state of shape {tuple(h0.shape)}, got {got}"
                )
            states.append(state)
        stacked = torch.stack(states)
        shaped = stacked.transpose(0, 1) if batch_first else stacked
        if callable(loss):
            with calling_user_code("the loss"):
                value = loss(shaped)
        elif loss == "last":
            value = 0.5 * (stacked[-1] ** 2).sum()
        elif loss == "sum":
            value = 0.5 * (stacked**2).sum()
        else:
            raise InvalidInputError(f"unknown loss {loss!r}; expected 'last', 'sum' or a callable")
        grads = torch.autograd.grad(
            scalar_loss(value), states, allow_unused=True, retain_graph=True
        )
        grad = torch.stack(
            [torch.zeros_like(s) if g is None else g for g, s in zip(grads, states, strict=True)]
        ).detach()
        # The carried gradient: <G, h_s*> alone, differentiated through the cell's own
        # recurrence (the only path from an earlier state to h_s*).
        seed = carried_seed(grad)
        ends = {b: int(s) for b, s in enumerate(seed.last.tolist()) if s >= 0}
        entry = sum(
            (torch.dot(seed.h[s, b], states[s][b]) for b, s in ends.items()),
            torch.zeros((), dtype=grad.dtype, device=grad.device),
        )
        carried = torch.autograd.grad(entry, states, allow_unused=True) if ends else grads
    carried_grad = torch.stack(
        [torch.zeros_like(s) if g is None else g for g, s in zip(carried, states, strict=True)]
    ).detach()
    layer = summarise(
        0,
        0,
        gradient_norms(grad),
        math.nan,
        carried=carried_norms(seed, carried_grad),
        tolerance=tolerance,
        grad=grad.transpose(0, 1).clone() if keep_gradients else None,
    )
    layout = RecurrentLayout.single("custom", seq.shape[2], h0.shape[1], batch_first=batch_first)
    return GradientProfile(
        layout=layout,
        module_name=type(cell).__name__,
        steps=steps,
        batch=batch,
        loss=loss if isinstance(loss, str) else "custom",
        loss_value=float(value.detach()),
        dtype=str(seq.dtype).removeprefix("torch."),
        layers=(layer,),
        lengths=np.full(batch, steps, dtype=np.int64),
    )
