"""The module's own fused kernel, run one layer at a time, and what it saves.

``nn.RNN``/``nn.LSTM``/``nn.GRU`` call one fused kernel for all layers, which
returns only the top layer's outputs and the final states. Calling the same
kernel (``torch.rnn_tanh``, ``torch.rnn_relu``, ``torch.lstm``, ``torch.gru``)
with one layer's slice of the module's own parameters yields every layer's
outputs, which the exact backward recursion of :mod:`rnngrad.bptt` needs. In
train mode the dropout between layers is applied here with masks drawn from a
given generator, so that they are known to the recursion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rnngrad.cells import RecurrentLayout, layer_weights
from rnngrad.errors import InvalidInputError, NonFiniteInputError, ShapeError

__all__ = [
    "Trajectory",
    "check_input",
    "from_time_major",
    "initial_state",
    "layer_forward",
    "replaced_forward",
    "to_time_major",
]


_FUSED: dict[str, Callable[..., Any]] = {
    "rnn_tanh": torch.rnn_tanh,
    "rnn_relu": torch.rnn_relu,
    "lstm": torch.lstm,
    "gru": torch.gru,
}


@dataclass
class Trajectory:
    """What the layer-by-layer forward saves (time-major, input order)."""

    inputs: list[torch.Tensor]  # per layer, after dropout: (T, B, D_l)
    outputs: list[torch.Tensor]  # per layer: (T, B, dirs * P)
    masks: list[torch.Tensor | None]  # dropout mask (scaled) applied to layer l's output
    h0: torch.Tensor  # (L * dirs, B, P)
    c0: torch.Tensor | None  # (L * dirs, B, H)
    unbatched: bool


def check_input(layout: RecurrentLayout, module: nn.Module, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise InvalidInputError(
            f"the recurrent module's input must be a tensor, got {type(value).__name__} "
            "(packed sequences are not supported)"
        )
    dtype = next(module.parameters()).dtype
    if value.dtype != dtype:
        raise InvalidInputError(
            f"input dtype {value.dtype} does not match the module's parameters ({dtype})"
        )
    expected = "(T, D) or " + ("(B, T, D)" if layout.batch_first else "(T, B, D)")
    if value.dim() not in (2, 3) or value.shape[-1] != layout.input_size:
        raise ShapeError(
            f"input must have shape {expected} with D = {layout.input_size}, "
            f"got {tuple(value.shape)}"
        )
    steps = value.shape[0] if value.dim() == 2 or not layout.batch_first else value.shape[1]
    if steps == 0:
        raise ShapeError("the input sequence is empty (T = 0)")
    if not torch.isfinite(value).all():
        raise NonFiniteInputError("the input holds NaN or inf")
    return value


def layer_forward(
    module: nn.Module,
    layout: RecurrentLayout,
    x: torch.Tensor,
    hx: tuple[torch.Tensor, torch.Tensor | None],
    generator: torch.Generator,
) -> tuple[Trajectory, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run the fused kernel one layer at a time; return the trajectory and (out, h_n, c_n)."""
    unbatched = x.dim() == 2
    seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if layout.batch_first else x)
    dirs = layout.num_directions
    h0, c0 = hx
    fused = _FUSED[layout.kind]
    inputs, outputs, masks = [], [], []
    finals_h, finals_c = [], []
    with torch.no_grad():
        for layer in range(layout.num_layers):
            weights: list[torch.Tensor] = []
            for direction in range(dirs):
                w = layer_weights(module, layer, direction)
                weights += [w.w_ih, w.w_hh]
                if w.b_ih is not None and w.b_hh is not None:
                    weights += [w.b_ih, w.b_hh]
                if w.w_hr is not None:
                    weights.append(w.w_hr)
            state = slice(layer * dirs, (layer + 1) * dirs)
            layer_hx: Any = (h0[state], c0[state]) if c0 is not None else h0[state]
            result = fused(
                seq, layer_hx, weights, layout.bias, 1, 0.0, False, layout.bidirectional, False
            )
            out = result[0]
            inputs.append(seq)
            outputs.append(out)
            finals_h.append(result[1])
            if c0 is not None:
                finals_c.append(result[2])
            mask = None
            last = layer == layout.num_layers - 1
            if module.training and layout.dropout > 0 and not last:
                keep = 1.0 - layout.dropout
                draw = torch.rand(
                    out.shape, generator=generator, dtype=out.dtype, device=out.device
                )
                mask = (draw < keep).to(out.dtype) / keep
                seq = out * mask
            else:
                seq = out
            masks.append(mask)
    trajectory = Trajectory(inputs, outputs, masks, h0, c0, unbatched)
    h_n = torch.cat(finals_h, dim=0)
    c_n = torch.cat(finals_c, dim=0) if c0 is not None else None
    return trajectory, outputs[-1], h_n, c_n


def initial_state(
    layout: RecurrentLayout, x: torch.Tensor, hx: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    batch = 1 if x.dim() == 2 else (x.shape[0] if layout.batch_first else x.shape[1])
    rows = layout.num_layers * layout.num_directions
    shape_h = (rows, batch, layout.state_size)
    shape_c = (rows, batch, layout.hidden_size)
    if hx is None:
        h0 = torch.zeros(shape_h, dtype=x.dtype, device=x.device)
        c0 = torch.zeros(shape_c, dtype=x.dtype, device=x.device) if layout.kind == "lstm" else None
        return h0, c0
    h0, c0 = (hx[0], hx[1]) if layout.kind == "lstm" else (hx, None)
    if x.dim() == 2:
        h0 = h0.unsqueeze(1)
        c0 = c0.unsqueeze(1) if c0 is not None else None
    if tuple(h0.shape) != shape_h or (c0 is not None and tuple(c0.shape) != shape_c):
        raise ShapeError(f"initial state must have shape {shape_h}, got {tuple(h0.shape)}")
    return h0.detach(), (c0.detach() if c0 is not None else None)


@contextmanager
def replaced_forward(module: nn.Module, forward: Callable[..., Any]) -> Iterator[None]:
    module.forward = forward
    try:
        yield
    finally:
        del module.forward


def to_time_major(value: torch.Tensor, layout: RecurrentLayout, unbatched: bool) -> torch.Tensor:
    if unbatched:
        return value.unsqueeze(1)
    return value.transpose(0, 1) if layout.batch_first else value


def from_time_major(value: torch.Tensor, layout: RecurrentLayout, unbatched: bool) -> torch.Tensor:
    if unbatched:
        return value.squeeze(1)
    return value.transpose(0, 1) if layout.batch_first else value
