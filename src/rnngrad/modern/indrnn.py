r"""The independently recurrent neural network (Li et al. 2018, "IndRNN").

.. math:: h_t = \mathrm{relu}(W x_t + u \odot h_{t-1} + b),

each unit its own recurrence with one recurrent weight ``u_j``: the Jacobian
``dh_t/dh_{t-1} = diag(u \odot relu'(\cdot))`` is diagonal, so the gradient of
unit ``j`` over ``k`` steps is a product of ``k`` factors ``u_j`` or 0, and
keeping ``|u_j| <= u_max = 2^{1/T}`` bounds its growth over a sequence of ``T``
steps by 2 (:meth:`IndRNN.constrain_`, called after each optimiser step).
The recurrence is nonlinear, so its forward runs step by step (two elementwise
operations a step, outside autograd; the input products for all steps at once);
its backward is linear in the gradient,
``g_t = G_t + u \odot relu'(z_{t+1}) \odot g_{t+1}``, and runs as one scan
(:func:`rnngrad.modern.scan.diagonal_adjoint`) instead of autograd's replay of
the loop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from rnngrad.errors import InvalidInputError
from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.modern.scan import diagonal_adjoint

__all__ = ["IndRNN"]


class IndRNN(DiagonalRecurrence):
    """``h_t = relu(W x_t + u * h_{t-1} + b)`` with ``|u| <= u_max``.

    Args:
        input_size: ``D``; hidden_size: ``N``.
        max_length: ``T`` of the sequences trained on; ``u_max = 2^(1/T)``.
        generator: draws ``u ~ U(0, u_max)`` (the global RNG when omitted).
    """

    #: Parameters of which each state entry depends on one entry (the memory sensitivity
    #: of :mod:`rnngrad.profile.sensitivity` is exact for them).
    mode_parameters = ("u",)

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
        states: torch.Tensor = _Recurrence.apply(driven, self.u, h)  # type: ignore[no-untyped-call]
        return states

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.input(x) + self.u * h)

    def state_jacobian(
        self, x: torch.Tensor, states: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        return self.u * (states > 0).to(states.dtype)


class _Recurrence(torch.autograd.Function):
    """``h_t = relu(p_t + u h_{t-1})``, ``t = 1..T``, from ``p`` ``(T, B, N)``, ``u``
    ``(N,)`` and ``h0`` ``(B, N)``. Backward: with ``m_t = [h_t > 0]`` (relu's own
    derivative), ``g_t = G_t + u m_{t+1} g_{t+1}`` by one scan, ``dL/dp_t = m_t g_t``,
    ``dL/du = sum_t dL/dp_t h_{t-1}``, ``dL/dh0 = u dL/dp_1`` (differentiable once)."""

    @staticmethod
    def forward(ctx: Any, driven: torch.Tensor, u: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        states = torch.empty(
            driven.shape, dtype=torch.promote_types(driven.dtype, h0.dtype), device=driven.device
        )
        h = h0
        for t in range(driven.shape[0]):
            h = torch.addcmul(driven[t], u, h, out=states[t]).clamp_(min=0)
        ctx.save_for_backward(u, h0, states)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        u, h0, states = ctx.saved_tensors
        alive = states > 0
        total = diagonal_adjoint(grad, u * alive)
        grad_driven = total.mul_(alive)
        grad_u = grad_h0 = None
        if ctx.needs_input_grad[1]:
            grad_u = (grad_driven[1:] * states[:-1]).sum(dim=(0, 1)) + (grad_driven[0] * h0).sum(
                dim=0
            )
        if ctx.needs_input_grad[2]:
            grad_h0 = u * grad_driven[0]
        return grad_driven, grad_u, grad_h0
