r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?").

Their gates read the input only, never ``h_{t-1}``, so the recurrence is linear
in ``h`` and its coefficients are known for all steps before the first:

- minGRU: ``z_t = sigma(W_z x_t + b_z)``, ``h~_t = g(W_h x_t + b_h)``,
  ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``;
- minLSTM: ``f_t = sigma(W_f x_t + b_f)``, ``i_t = sigma(W_i x_t + b_i)``,
  normalised to ``f'_t = f_t / (f_t + i_t)``, ``i'_t = i_t / (f_t + i_t)``,
  ``h~_t = g(W_h x_t + b_h)``, ``h_t = f'_t h_{t-1} + i'_t h~_t``;

with ``g(v) = v + 1/2`` for ``v >= 0`` and ``sigma(v)`` below, which keeps the
states positive. The paper scans in log space because its scan is a cumulative
sum, whose ``exp(-A_t)`` overflows on long sequences; the pairwise scan of
:func:`rnngrad.modern.scan.linear_scan` only ever multiplies coefficients in
``(0, 1)`` (a product that underflows goes to its true limit, 0) and adds
positive terms, so it runs in linear space, stable and faster on the CPU
(:func:`rnngrad.modern.scan.log_linear_scan` remains for cumulative-sum scans).
``h0`` defaults to ``g(0) = 1/2`` per unit, as in the paper's code.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.modern.scan import linear_scan

__all__ = ["MinGRU", "MinLSTM"]


def _g(v: torch.Tensor) -> torch.Tensor:
    """``g(v) = v + 1/2`` for ``v >= 0``, ``sigmoid(v)`` below: as ``relu(v) +
    sigmoid(min(v, 0))`` with ``min(v, 0) = -relu(-v)``, the same values without a
    ``torch.where`` in the forward or the backward (``torch.where`` and the mask of
    ``clamp``'s backward cost a fifth to a third of a minGRU training step on the CPU;
    ``relu``'s backward is one cheap pass)."""
    return functional.relu(v) + torch.sigmoid(-functional.relu(-v))


class _Minimal(DiagonalRecurrence):
    gates = 2

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.state_size = input_size, hidden_size
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, self.gates * hidden_size)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return torch.full((batch, self.state_size), 0.5, dtype=like.dtype, device=like.device)

    def _coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``a_t`` and ``b_t`` of ``h_t = a_t h_{t-1} + b_t``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        if h0 is None:
            h0 = self.initial_state(x.shape[1], x)
        a, b = self._coefficients(x)
        return linear_scan(a, b, h0)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        a, b = self._coefficients(x.unsqueeze(0))
        return a[0] * h + b[0]

    def state_jacobian(
        self, x: torch.Tensor, states: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        return self._coefficients(x)[0]


class MinGRU(_Minimal):
    """``h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t + b_h)``, ``z_t = sigma(W_z x_t + b_z)``.

    Args:
        input_size: ``D``; hidden_size: ``N``.
    """

    def _coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.linear(x).chunk(2, dim=-1)
        return torch.sigmoid(-k), torch.sigmoid(k) * _g(v)


class MinLSTM(_Minimal):
    """``h_t = f'_t h_{t-1} + i'_t g(W_h x_t + b_h)`` with ``f' = f/(f+i)``, ``i' = i/(f+i)``.

    Args:
        input_size: ``D``; hidden_size: ``N``.
    """

    gates = 3

    def _coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k_f, k_i, v = self.linear(x).chunk(3, dim=-1)
        # f' = f / (f + i) = sigmoid(-d) and i' = sigmoid(d), d = ln i - ln f, in closed
        # form without dividing: d = softplus(-k_f) - softplus(-k_i).
        difference = functional.softplus(-k_f) - functional.softplus(-k_i)
        return torch.sigmoid(-difference), torch.sigmoid(difference) * _g(v)
