r"""A rate network as the Lyapunov machinery's dynamical system.

``J_t v = (1 - delta) v + delta W (phi'(x_t) * v)`` applied to a basis ``(B, N, k)``
without forming ``J_t`` (``phi' = 1 - tanh^2``).
"""

from __future__ import annotations

from typing import Any

import torch

from rnngrad.devices import drawn
from rnngrad.lyapunov.dynamics import Dynamics
from rnngrad.rate.network import RateRNN

__all__ = ["RateDynamics"]


class RateDynamics(Dynamics):
    """The map ``x_{t+1} = (1 - delta) x_t + delta (W phi(x_t) + U u_t + b)`` of ``network``."""

    def __init__(self, network: RateRNN) -> None:
        self.network = network
        self.state_size = network.hidden_size
        self.input_size = network.input_size
        self.dtype = network.weight_hh.dtype
        self.device = network.weight_hh.device

    def initial_state(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Currents ``x`` standard normal."""
        return drawn(batch, self.state_size, generator=generator, dtype=self.dtype,
                     device=self.device)  # fmt: skip

    def step(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        rates = self.network.phi(state)
        return self.network.step(state, x), 1.0 - rates * rates

    def jacobian_product(self, cache: Any, basis: torch.Tensor) -> torch.Tensor:
        delta = self.network.delta
        pulled = torch.matmul(self.network.weight_hh, cache.unsqueeze(-1) * basis)
        return (1.0 - delta) * basis + delta * pulled

    @torch.no_grad()
    def apply_jacobian(self, cache: Any, basis: torch.Tensor) -> torch.Tensor:
        return self.jacobian_product(cache, basis)
