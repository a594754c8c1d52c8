"""What both backward routes of a fused layer share: the gates recomputed from a saved
trajectory, the result of one layer and direction, and the saturation count.

:mod:`rnngrad.profile.recursion` (the loop over time) and
:mod:`rnngrad.profile.fused_backward` (the kernel's own backward) both rebuild an
LSTM's or GRU's gates from the layer's input and saved outputs, with the
equations of :mod:`rnngrad.profile.recursion`'s docstring, and count the
derivatives that are saturated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnngrad.cells import CellKind, LayerWeights
from rnngrad.profile.forward_loops import gru_input_side

__all__ = [
    "BLOCK",
    "SATURATION_THRESHOLD",
    "DirectionGradients",
    "SaturationCount",
    "count_rnn_saturation",
    "gru_gates",
    "lstm_gates",
    "rnn_derivative",
]


# Derivatives below this share of their maximum count as saturated.
SATURATION_THRESHOLD = 0.1


# Steps of an RNN layer's phi' computed at a time.
BLOCK = 128


@dataclass(frozen=True)
class DirectionGradients:
    """Result of one layer and direction, time-major in processing order.

    Attributes:
        grad_h: ``(T, B, P)``, total ``dL/dh_t``.
        grad_c: ``(T, B, H)``, total ``dL/dc_t`` (LSTM) or ``None``.
        grad_input: ``(T, B, D)``, ``dL/dx_t`` handed to the layer below
            (``None`` when not asked for).
        saturated: share of the cell's nonlinearity derivatives below 10% of
            their maximum, pooled over steps, sequences, units and gates.
    """

    grad_h: torch.Tensor
    grad_c: torch.Tensor | None
    grad_input: torch.Tensor | None
    saturated: float


def _gate_preactivations(
    x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, w: LayerWeights
) -> torch.Tensor:
    """``W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` for all steps: two products into one buffer."""
    steps, batch, _ = x.shape
    if w.b_ih is not None and w.b_hh is not None:
        out = torch.addmm(w.b_ih + w.b_hh, x.reshape(steps * batch, -1), w.w_ih.T)
    else:
        out = x.reshape(steps * batch, -1) @ w.w_ih.T
    out = out.view(steps, batch, -1)
    # h_{t-1} is h0 for the first step and the previous output after it: no copy needed.
    out[0].addmm_(h0, w.w_hh.T)
    if steps > 1:
        out[1:].view((steps - 1) * batch, -1).addmm_(
            h[:-1].reshape((steps - 1) * batch, -1), w.w_hh.T
        )
    return out


class SaturationCount:
    """Counts derivatives below ``SATURATION_THRESHOLD`` times their maximum, at the
    ``valid`` ``(T, B)`` steps only when given (padding is no step of the sequence)."""

    def __init__(self, valid: torch.Tensor | None = None) -> None:
        self.count = 0
        self.total = 0
        self.valid = valid
        self._below: torch.Tensor | None = None  # reused: a fresh array costs page faults

    def add(self, derivative: torch.Tensor, maximum: float, start: int = 0) -> None:
        """Counts ``derivative`` ``(T', B, ...)``, the steps from ``start`` on."""
        size = derivative.numel()
        if self._below is None or self._below.numel() < size:
            self._below = torch.empty(size, dtype=torch.bool, device=derivative.device)
        below = torch.lt(
            derivative,
            SATURATION_THRESHOLD * maximum,
            out=self._below[:size].view(derivative.shape),
        )
        if self.valid is None:
            self.count += int(torch.count_nonzero(below))
            self.total += derivative.numel()
            return
        rows = self.valid[start : start + derivative.shape[0]]
        valid = rows.reshape(*rows.shape, *([1] * (derivative.dim() - 2)))
        self.count += int(torch.count_nonzero(below.logical_and_(valid)))
        self.total += int(valid.sum()) * (derivative[0, 0].numel())

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0


def rnn_derivative(kind: CellKind, h: torch.Tensor) -> torch.Tensor:
    """``phi'`` at the steps of ``h``, from ``h``: ``tanh' = 1 - h^2``, ``relu' = [h > 0]``."""
    if kind == "rnn_tanh":
        return torch.mul(h, h).neg_().add_(1.0)
    return (h > 0).to(h.dtype)


def count_rnn_saturation(kind: CellKind, h: torch.Tensor, saturation: SaturationCount) -> None:
    """Adds an RNN layer's ``phi'`` at every step to ``saturation``, a block at a time."""
    for start in range(0, h.shape[0], BLOCK):
        saturation.add(rnn_derivative(kind, h[start : start + BLOCK]), 1.0, start)


def lstm_gates(x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, w: LayerWeights) -> torch.Tensor:
    """``(T, B, 4, H)``: an LSTM layer's gates ``i, f, g, o`` after their nonlinearities,
    recomputed from its input and saved outputs."""
    steps, batch, _ = h.shape
    gates = _gate_preactivations(x, h, h0, w).view(steps, batch, 4, w.w_hh.shape[0] // 4)
    gates[:, :, 0:2].sigmoid_()
    gates[:, :, 3].sigmoid_()
    gates[:, :, 2].tanh_()
    return gates


def gru_gates(
    w: LayerWeights, x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gates (``r, z, n`` activated) and ``W_hn h_{t-1} + b_hn`` of every step from
    the saved outputs: the r and z pre-activations, both sides and both biases, in one
    buffer; the hidden side of n apart (r scales it). h_{t-1} is h0, then h[:-1]."""
    steps, batch, hidden = h.shape
    gates = gru_input_side(w, x, hidden)
    rows = gates.view(steps * batch, 3 * hidden)[:, : 2 * hidden]
    w_rz, w_n = w.w_hh[: 2 * hidden], w.w_hh[2 * hidden :]
    rows[:batch].addmm_(h0, w_rz.T)
    hidden_n = torch.empty_like(h)
    torch.mm(h0, w_n.T, out=hidden_n[0])
    if steps > 1:
        previous = h[:-1].reshape((steps - 1) * batch, hidden)
        rows[batch:].addmm_(previous, w_rz.T)
        torch.mm(previous, w_n.T, out=hidden_n[1:].view((steps - 1) * batch, hidden))
    if w.b_hh is not None:
        hidden_n += w.b_hh[2 * hidden :]
    gates[:, :, 0:2].sigmoid_()
    r, _, n = gates.unbind(2)
    n.addcmul_(r, hidden_n).tanh_()
    return gates, hidden_n
