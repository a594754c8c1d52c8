r"""The independently recurrent neural network (Li et al. 2018, "IndRNN").

.. math:: h_t = \mathrm{relu}(W x_t + u \odot h_{t-1} + b),

each unit its own recurrence with one recurrent weight ``u_j``: the Jacobian
``dh_t/dh_{t-1} = diag(u \odot relu'(\cdot))`` is diagonal, so the gradient of
unit ``j`` over ``k`` steps is a product of ``k`` factors ``u_j`` or 0, and
keeping ``|u_j| <= u_max = 2^{1/T}`` bounds its growth over a sequence of ``T``
steps by 2 (:meth:`IndRNN.constrain_`, called after each optimiser step).
The recurrence is nonlinear, so it runs step by step; the input products are
computed for all steps at once.
"""

from __future__ import annotations

import torch
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.modern.base import DiagonalRecurrence

__all__ = ["IndRNN"]


class IndRNN(DiagonalRecurrence):
    """``h_t = relu(W x_t + u * h_{t-1} + b)`` with ``|u| <= u_max``.

    Args:
        input_size: ``D``; hidden_size: ``N``.
        max_length: ``T`` of the sequences trained on; ``u_max = 2^(1/T)``.
        generator: draws ``u ~ U(0, u_max)`` (the global RNG when omitted).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        max_length: int = 100,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1 or max_length < 1:
            raise InvalidInputError(
                f"IndRNN sizes must be >= 1, got {input_size}, {hidden_size}, {max_length}"
            )
        self.input_size, self.state_size = input_size, hidden_size
        self.hidden_size = hidden_size
        self.u_max = 2.0 ** (1.0 / max_length)
        self.input = nn.Linear(input_size, hidden_size)
        self.u = nn.Parameter(torch.rand(hidden_size, generator=generator) * self.u_max)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Clip ``u`` into ``[-u_max, u_max]`` (after each optimiser step)."""
        self.u.clamp_(-self.u_max, self.u_max)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        driven = self.input(x)
        h = self.initial_state(x.shape[1], x) if h0 is None else h0
        states = []
        for t in range(x.shape[0]):
            h = torch.relu(torch.addcmul(driven[t], self.u, h))
            states.append(h)
        return torch.stack(states)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.input(x) + self.u * h)

    def state_jacobian(
        self, x: torch.Tensor, states: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        return self.u * (states > 0).to(states.dtype)
