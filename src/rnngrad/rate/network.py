r"""The rate network: the Euler map of ``tau dx/dt = -x + W phi(x) + U u + b``.

.. math::

    x_{t+1} = (1 - \delta)\, x_t + \delta\,\big(W \phi(x_t) + U u_t + b\big),
    \qquad \delta = \Delta t / \tau \in (0, 1],

with ``x`` ``(N,)`` the units' currents and ``phi(x)`` their rates (``tanh``). One
step's Jacobian is

.. math::

    \frac{\partial x_{t+1}}{\partial x_t}
        = (1 - \delta) I + \delta\, W \operatorname{diag}(\phi'(x_t)).

``delta = 1`` is the tanh network ``h_{t+1} = tanh(W h_t + U u_t + b)`` in other
coordinates (``h = phi(x)``, a smooth change of variables that leaves the Lyapunov
exponents unchanged); ``delta < 1`` leaks, and as ``delta -> 0`` the map follows the
continuous-time flow, whose exponents per unit time are the map's divided by
``delta`` (Sompolinsky, Crisanti & Sommers 1988; Engelken, Wolf & Abbott 2023).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rnngrad._checks import check_delta
from rnngrad.errors import InvalidInputError, ShapeError

__all__ = ["ACTIVATIONS", "RateRNN", "random_rate_network"]

ACTIVATIONS = ("tanh",)


class RateRNN(nn.Module):
    """A rate network of ``hidden`` units (see the module docstring).

    Args:
        input_size, hidden: ``D`` and ``N``.
        delta: ``dt / tau`` in ``(0, 1]``.
        activation: ``"tanh"``.
        bias: learn ``b``.
        batch_first: inputs ``(B, T, D)`` instead of ``(T, B, D)``.
        gain: draw ``W_ij ~ N(0, g^2 / N)``, the random network of Sompolinsky, Crisanti
            & Sommers (1988), chaotic for ``g > 1`` (from the global generator, as
            PyTorch's modules draw their weights); ``None``: PyTorch's uniform
            ``U(-1/sqrt(N), 1/sqrt(N))``, ``g = 1/sqrt(3)``.

    ``forward(u, x0=None)`` returns the rates ``phi(x_t)`` for ``t = 1..T`` (time-major,
    or batch-first as the inputs) and the last currents ``x_T`` ``(B, N)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden: int,
        *,
        delta: float = 0.5,
        activation: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        gain: float | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InvalidInputError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        if input_size < 1 or hidden < 1:
            raise InvalidInputError(
                f"input_size and hidden must be >= 1, got {input_size} and {hidden}"
            )
        self.input_size, self.hidden_size = input_size, hidden
        self.delta = check_delta(delta)
        self.activation = activation
        self.batch_first = batch_first
        bound = 1.0 / math.sqrt(hidden)
        if gain is not None and not (math.isfinite(gain) and gain > 0.0):
            raise InvalidInputError(f"gain must be a positive number, got {gain!r}")
        self.weight_hh = nn.Parameter(
            torch.empty(hidden, hidden).uniform_(-bound, bound)
            if gain is None
            else torch.randn(hidden, hidden) * (gain / math.sqrt(hidden))
        )
        self.weight_ih = nn.Parameter(torch.empty(hidden, input_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(hidden)) if bias else None

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """The rates ``phi(x)``."""
        return torch.tanh(x)

    def step(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``x_{t+1}`` ``(B, N)`` from ``x_t`` ``(B, N)`` and ``u_t`` ``(B, D)``."""
        drive = self.phi(x) @ self.weight_hh.T + u @ self.weight_ih.T
        if self.bias is not None:
            drive = drive + self.bias
        return (1.0 - self.delta) * x + self.delta * drive

    def forward(
        self, u: torch.Tensor, x0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if u.dim() != 3 or u.shape[-1] != self.input_size:
            raise ShapeError(
                f"RateRNN takes inputs (T, B, {self.input_size}) "
                f"{'batch-first ' if self.batch_first else ''}got {tuple(u.shape)}"
            )
        sequence = u.transpose(0, 1) if self.batch_first else u
        x = (
            torch.zeros(sequence.shape[1], self.hidden_size, dtype=u.dtype, device=u.device)
            if x0 is None
            else x0
        )
        rates = []
        for u_t in sequence:
            x = self.step(x, u_t)
            rates.append(self.phi(x))
        out = torch.stack(rates)
        return (out.transpose(0, 1) if self.batch_first else out), x

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, delta={self.delta:g}, "
            f"activation={self.activation}"
        )


def random_rate_network(
    size: int, gain: float, delta: float, *, seed: int = 0, dtype: torch.dtype = torch.float64
) -> RateRNN:
    """``x_{t+1} = (1 - delta) x_t + delta W tanh(x_t)`` with ``W_ij ~ N(0, g^2 / N)``
    drawn from ``seed`` (the same ``W`` as :func:`rnngrad.lyapunov.spectrum.random_tanh_network`
    for the same seed), no bias, and one input meant to stay zero."""
    network = RateRNN(1, size, delta=delta, bias=False).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weights = torch.randn(size, size, generator=generator, dtype=dtype)
        network.weight_hh.copy_(weights * (gain / math.sqrt(size)))
        network.weight_ih.zero_()
    return network
