"""What the modern recurrent layers share: a state Jacobian that is diagonal.

Each layer maps an input sequence ``x`` ``(T, B, D)`` to its states ``h``
``(T, B, N)`` (complex for the LRU) by a recurrence whose Jacobian
``dh_t/dh_{t-1}`` is diagonal, which is what makes both the parallel scan of
training and the exact gradient profile cheap: the profile's backward
recursion is the adjoint scan of :func:`rnngrad.modern.scan.diagonal_adjoint`
with the coefficients of :meth:`DiagonalRecurrence.state_jacobian`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DiagonalRecurrence"]


class DiagonalRecurrence(nn.Module):
    """Base class: ``forward`` (the scan), ``step`` (one step, the definition) and
    ``state_jacobian`` (the diagonal of ``dh_t/dh_{t-1}`` along a trajectory).

    Attributes:
        input_size: ``D``; state_size: ``N``; complex_state: ``h`` is complex.
    """

    input_size: int
    state_size: int
    complex_state: bool = False

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """Zeros ``(B, N)`` in the state's dtype."""
        dtype = torch.complex128 if like.dtype == torch.float64 else torch.complex64
        return torch.zeros(
            batch, self.state_size, dtype=dtype if self.complex_state else like.dtype,
            device=like.device,
        )  # fmt: skip

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``h_t`` from ``x_t`` ``(B, D)`` and ``h_{t-1}`` ``(B, N)``."""
        raise NotImplementedError

    def state_jacobian(
        self, x: torch.Tensor, states: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        """``dh_t/dh_{t-1}`` as a diagonal ``(T, B, N)`` (or broadcastable ``(N,)``)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """The states ``(T, B, N)`` of the input ``(T, B, D)``."""
        raise NotImplementedError
