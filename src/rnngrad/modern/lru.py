r"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting recurrent neural
networks for long sequences").

A diagonal, complex, linear recurrence whose eigenvalues are parameters:

.. math:: x_t = \lambda \odot x_{t-1} + \gamma \odot (B u_t), \qquad
          y_t = \mathrm{Re}(C x_t) + D \odot u_t,

with ``lambda_j = exp(-exp(nu_j) + i exp(theta_j))`` (so ``|lambda_j| < 1``
always), ``gamma_j = sqrt(1 - |lambda_j|^2)`` (inputs normalised so that white
noise keeps the state's variance), and the *ring initialisation*: ``|lambda_j|``
uniform on the ring ``r_min <= |lambda| <= r_max`` of the complex plane and the
phase uniform in ``[0, max_phase]``. The textbook criterion is built in: each
``|lambda_j|`` is exactly how fast the ``j``-th direction forgets, and
``r_max`` close to 1 keeps gradients alive over ``1 / (1 - r_max)`` steps.
Training uses the parallel scan (:func:`rnngrad.modern.scan.linear_scan`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.modern.scan import linear_scan

__all__ = ["LRU"]


class LRU(DiagonalRecurrence):
    """One LRU layer: ``u`` ``(T, B, D)`` to complex states ``(T, B, N)``; :meth:`read` gives ``y``.

    Args:
        input_size: ``D`` (also the size of ``y``, as in the paper).
        state_size: ``N``.
        r_min, r_max: the ring of ``|lambda|`` at initialisation, ``0 < r_min < r_max < 1``.
        max_phase: the largest initial phase of ``lambda`` (radians, ``> 0``).
        generator: draws the initialisation (the global RNG when omitted).

    Raises:
        InvalidInputError: ``r_min``/``r_max`` out of order or outside ``(0, 1)``,
            ``max_phase <= 0``, or sizes below 1.
    """

    complex_state = True

    #: Parameters of which each state entry depends on one entry (the memory sensitivity
    #: of :mod:`rnngrad.profile.sensitivity` is exact for them).
    mode_parameters = ("nu_log", "theta_log", "gamma_log")

    def __init__(
        self,
        input_size: int,
        state_size: int,
        *,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = math.pi / 10,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or state_size < 1:
            raise InvalidInputError(f"LRU sizes must be >= 1, got {input_size}, {state_size}")
        if not (0.0 < r_min < r_max < 1.0):
            raise InvalidInputError(
                f"the LRU ring needs 0 < r_min < r_max < 1, got r_min={r_min}, r_max={r_max}"
            )
        if not (math.isfinite(max_phase) and max_phase > 0):
            raise InvalidInputError(f"max_phase must be > 0, got {max_phase}")
        self.input_size, self.state_size = input_size, state_size
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        u1 = torch.rand(state_size, generator=generator)
        u2 = torch.rand(state_size, generator=generator)
        # |lambda|^2 uniform on [r_min^2, r_max^2]: uniform on the ring's area
        radius_squared = u1 * (r_max**2 - r_min**2) + r_min**2
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(radius_squared)))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2.clamp_min(1e-12)))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1.0 - radius_squared)))
        scale_b = 1.0 / math.sqrt(2 * input_size)
        self.B_re = nn.Parameter(torch.randn(state_size, input_size, generator=generator) * scale_b)
        self.B_im = nn.Parameter(torch.randn(state_size, input_size, generator=generator) * scale_b)
        scale_c = 1.0 / math.sqrt(state_size)
        self.C_re = nn.Parameter(torch.randn(input_size, state_size, generator=generator) * scale_c)
        self.C_im = nn.Parameter(torch.randn(input_size, state_size, generator=generator) * scale_c)
        self.D = nn.Parameter(torch.randn(input_size, generator=generator))

    def eigenvalues(self) -> torch.Tensor:
        """``lambda`` ``(N,)``, complex: the recurrence's eigenvalues, exactly."""
        return torch.exp(self._log_eigenvalues())

    def _log_eigenvalues(self) -> torch.Tensor:
        """``ln lambda = -exp(nu) + i exp(theta)`` ``(N,)``: the parametrisation itself."""
        return torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log))

    def _input(self, u: torch.Tensor) -> torch.Tensor:
        """``gamma * (B u)``: one real product whose rows interleave ``B_re`` and ``B_im``,
        read as complex numbers in place (``view_as_complex``; no copy forward or back)."""
        weight = torch.stack([self.B_re, self.B_im], dim=1).flatten(0, 1)  # (2N, D)
        scale = torch.exp(self.gamma_log).repeat_interleave(2)
        parts = (u @ weight.T) * scale  # (..., 2N): Re, Im of state 1, then of state 2, ...
        return torch.view_as_complex(parts.reshape(*parts.shape[:-1], self.state_size, 2))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        return linear_scan(self.eigenvalues(), self._input(x), h0)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.eigenvalues() * h + self._input(x)

    def final_state(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """The last state ``x_T`` alone ``(B, N)``: ``sum_k lambda^(T-k) gamma B u_k``
        (plus ``lambda^T h0``), one weighted sum over the steps instead of a scan, for a
        read-out that needs only the last step. The powers are ``exp(k ln lambda)`` with
        ``ln lambda = -exp(nu) + i exp(theta)`` exactly, not repeated products."""
        steps = x.shape[0]
        log_lambda = self._log_eigenvalues()
        ages = torch.arange(steps - 1, -1, -1, dtype=self.nu_log.dtype, device=x.device)
        powers = torch.exp(ages.unsqueeze(1) * log_lambda)  # (T, N): lambda^(T-k)
        state = (powers.unsqueeze(1) * self._input(x)).sum(0)
        if h0 is not None:
            state = state + torch.exp(steps * log_lambda) * h0
        return state

    def state_jacobian(
        self, x: torch.Tensor, states: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        return self.eigenvalues()

    def read(self, states: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``y_t = Re(C x_t) + D u_t`` ``(T, B, D)``."""
        # Re(C x) = C_re Re(x) - C_im Im(x): one real product of the states read as
        # interleaved (Re, Im) pairs in place, whose backward is a view too, where .real
        # and .imag would each fill and copy a complex tensor of the states' size.
        weight = torch.stack([self.C_re, -self.C_im], dim=-1).flatten(-2)  # (D, 2N)
        return torch.view_as_real(states).flatten(-2) @ weight.T + u * self.D
