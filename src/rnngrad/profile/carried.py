r"""The gradient carried back: the quantity the textbook's derivation judges.

The derivation judges ``dy/dh_1 = d * prod_t dh_{t+1}/dh_t``: the product of the
step Jacobians applied to the gradient where the loss enters. A profile's *total*
gradient

.. math:: g_s = G_s + J_{s+1}^\top g_{s+1}

adds the loss's own entries ``G_s`` at every step ``s`` (in the direction's
processing order): with a loss on every step the total stays level however fast
the recurrence forgets, and a lower layer receives a fresh entry from the layer
above at every step. The total says where the loss enters; the verdict asks what
the recurrence does to a gradient. So each sequence's *last loss-bearing step*
``s*`` (the last step whose direct gradient, at ``h`` or at an LSTM's ``c``, is
not zero) keeps its entry and every other entry is dropped:

.. math:: \tilde g_{s^*} = G_{s^*}, \qquad \tilde g_s = J_{s+1}^\top \tilde g_{s+1}
          \quad (s < s^*),

propagated by the same exact recursion as the total (one more pass of the same
route), over the whole state: ``(h, c)`` for an LSTM, whose gradient can travel
through ``c`` while ``dL/dh`` fades. With the loss at one step only the two
gradients are the same. Bengio et al. 1994; Pascanu et al. 2013.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from rnngrad._types import FloatArray

__all__ = [
    "CarriedNorms",
    "CarriedSeed",
    "carried_norms",
    "carried_seed",
    "source_positions",
]


@dataclass(frozen=True)
class CarriedSeed:
    """The direct gradient of each sequence's last loss-bearing step, alone.

    Attributes:
        h: ``(T, B, P)``, zeros but at ``(last[b], b)``, processing order.
        c_steps: ``(T, B, H)`` the same at an LSTM's cell state, else ``None``.
        last: ``(B,)`` the processing step (0-based) of each sequence's last
            loss-bearing step, ``-1`` where the loss reaches none.
        alone: the loss enters each sequence at one step at most, so the carried
            gradient is the total one (no second pass needed); ``h`` and ``c_steps``
            are then the direct gradients themselves (``c_steps`` ``None`` where
            they came as one final-state gradient).
    """

    h: torch.Tensor
    c_steps: torch.Tensor | None
    last: torch.Tensor
    alone: bool = False

    def mask(self) -> torch.Tensor:
        """``(T, B)`` bool: the processing steps the carried gradient covers (``s <= s*``)."""
        steps = self.h.shape[0]
        index = torch.arange(steps, device=self.last.device).unsqueeze(1)
        return index <= self.last.unsqueeze(0)


def carried_seed(
    direct: torch.Tensor,
    direct_c_last: torch.Tensor | None = None,
    direct_c_steps: torch.Tensor | None = None,
) -> CarriedSeed:
    """Each sequence's last loss-bearing step and its direct gradient alone.

    Args:
        direct: ``(T, B, P)`` direct gradients at ``h``, processing order (the
            final state's included at each sequence's last step).
        direct_c_last: ``(B, H)`` an LSTM's direct gradient at the final cell state
            (at step ``T``), or ``None``.
        direct_c_steps: ``(T, B, H)`` an LSTM's direct gradients at the cell state
            per step (sequences of different lengths), or ``None``.
    """
    steps, batch = direct.shape[:2]
    bearing = (direct != 0).any(dim=2)  # NaN counts as bearing: it is not zero
    if direct_c_steps is not None:
        bearing |= (direct_c_steps != 0).any(dim=2)
    elif direct_c_last is not None:
        bearing[-1] |= (direct_c_last != 0).any(dim=1)
    index = torch.arange(steps, device=direct.device).unsqueeze(1).expand(steps, batch)
    last = torch.where(bearing, index, torch.full_like(index, -1)).amax(dim=0)
    if bool((bearing.sum(dim=0) <= 1).all()):
        # The loss enters each sequence at one step: the direct gradients are the seed
        # already (no trajectory-sized copy; the carried gradient is the total).
        return CarriedSeed(direct, direct_c_steps, last, alone=True)
    c_steps = direct_c_steps
    if c_steps is None and direct_c_last is not None:
        c_steps = direct.new_zeros((steps, *direct_c_last.shape))
        c_steps[-1] = direct_c_last
    reached = torch.nonzero(last >= 0).flatten()
    at = last[reached]
    seed_h = torch.zeros_like(direct)
    seed_h[at, reached] = direct[at, reached]
    seed_c = None
    if c_steps is not None:
        seed_c = torch.zeros_like(c_steps)
        seed_c[at, reached] = c_steps[at, reached]
    return CarriedSeed(seed_h, seed_c, last)


@dataclass(frozen=True)
class CarriedNorms:
    """Per-sequence norms of the carried gradient, input order.

    Attributes:
        h: ``(B, T)``, ``||g~_t||`` at the hidden state.
        c: ``(B, T)`` at an LSTM's cell state, else ``None``.
        covered: ``(B, T)`` bool, the steps the carried gradient covers (from each
            sequence's last loss-bearing step back to its first step).
        source: ``(B,)`` the input position ``t`` (1-based) of each sequence's last
            loss-bearing step, ``0`` where the loss reaches none.
    """

    h: FloatArray
    c: FloatArray | None
    covered: NDArray[np.bool_]
    source: NDArray[np.int64]

    @property
    def state(self) -> FloatArray:
        """``(B, T)`` the norm over the whole state, ``sqrt(||g~_h||^2 + ||g~_c||^2)``."""
        if self.c is None:
            return self.h
        whole: FloatArray = np.hypot(self.h, self.c)
        return whole


def source_positions(
    last: torch.Tensor, lengths: torch.Tensor | None, steps: int, reverse: bool
) -> NDArray[np.int64]:
    """``(B,)`` the input positions ``t`` (1-based) of processing steps ``last`` (0-based;
    ``-1``, none, gives 0): ``t = s + 1`` forward, ``t = len_b - s`` reverse."""
    processing = last.cpu().numpy().astype(np.int64)
    if reverse:
        length = np.full_like(processing, steps) if lengths is None else lengths.cpu().numpy()
        positions = length - processing
    else:
        positions = processing + 1
    result: NDArray[np.int64] = np.where(processing >= 0, positions, 0).astype(np.int64)
    return result


def carried_norms(
    seed: CarriedSeed, grad_h: torch.Tensor, grad_c: torch.Tensor | None = None
) -> CarriedNorms:
    """The norms of a forward direction's carried gradient ``(T, B, F)`` (time-major,
    input order, all sequences of length ``T``; complex states as their real and
    imaginary parts)."""

    def norms(values: torch.Tensor) -> FloatArray:
        real = torch.view_as_real(values).flatten(-2) if values.is_complex() else values
        result: FloatArray = (
            torch.linalg.vector_norm(real, dim=2, dtype=torch.float64).T.cpu().numpy()
        )
        return result

    return CarriedNorms(
        norms(grad_h),
        None if grad_c is None else norms(grad_c),
        seed.mask().T.cpu().numpy(),
        source_positions(seed.last, None, grad_h.shape[0], reverse=False),
    )
