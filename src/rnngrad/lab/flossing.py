r"""Gradient flossing (Engelken 2023): training on the Lyapunov spectrum.

The loss gains ``w * sum_{i=1..k} lambda_i^2``, the squared ``k`` leading finite-time
Lyapunov exponents of the model's recurrence along a window of its own inputs
(:func:`rnngrad.lyapunov.differentiable.differentiable_exponents`, averaged over the
batch), which pushes them towards zero: the long-term Jacobian's ``k`` leading
singular values towards 1, so that the gradient carried back over long delays
neither vanishes nor explodes in ``k`` directions. As in the paper, the model is
flossed alone before training (``before`` steps of Adam on the penalty, with inputs
drawn from the task), and, when ``every`` is set, the penalty joins the task's loss
every ``every`` steps of training.

The recurrence is the lab model's ``nn.RNN`` (tanh or ReLU), ``nn.LSTM`` (state
``(h, c)``, so ``k <= 2 * hidden``), ``nn.GRU`` or rate network; its Jacobians are
rnngrad's analytic ones (:class:`rnngrad.lyapunov.dynamics.ModuleDynamics`,
:class:`rnngrad.lyapunov.rate.RateDynamics`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rnngrad.errors import InvalidInputError

__all__ = [
    "FLOSSING_CELLS",
    "Flossing",
    "check_flossing",
    "floss_alone",
    "flossing_exponents",
    "flossing_penalty",
]

#: The lab's cells whose Jacobians rnngrad has for flossing.
FLOSSING_CELLS = ("rnn", "relu", "lstm", "gru", "rate")


@dataclass(frozen=True)
class Flossing:
    """The flossing settings of a run.

    Attributes:
        k: exponents flossed.
        before: steps of flossing alone before training.
        every: steps between flossing steps during training (``None``: before only).
        window: steps of the inputs that the exponents are measured over (``None``:
            the task's whole sequence).
        weight: ``w``, the penalty's weight; 0 records the exponents without flossing
            (the control arm of a comparison).
    """

    k: int
    before: int = 500
    every: int | None = None
    window: int | None = None
    weight: float = 1.0


def tangent_size(cell: str, hidden: int) -> int:
    """The dimension of the cell's state: ``(h, c)`` for the LSTM."""
    return 2 * hidden if cell == "lstm" else hidden


def check_flossing(cell: str, hidden: int, flossing: Flossing) -> None:
    """Refuse settings that cannot be flossed, in one line each.

    Raises:
        InvalidInputError: a cell without rnngrad's Jacobians, ``k`` outside
            ``1..state size``, a window or a schedule below 1, a weight that is not a
            positive number.
    """
    if cell not in FLOSSING_CELLS:
        raise InvalidInputError(
            f"gradient flossing needs a cell whose Jacobians rnngrad has "
            f"({', '.join(FLOSSING_CELLS)}), got {cell!r}"
        )
    size = tangent_size(cell, hidden)
    if not 1 <= flossing.k <= size:
        raise InvalidInputError(
            f"--floss K must be in 1..{size} (the {cell} cell's state size), got {flossing.k}"
        )
    if flossing.window is not None and flossing.window < 1:
        raise InvalidInputError(f"--floss-window must be >= 1 step, got {flossing.window}")
    if flossing.every is not None and flossing.every < 1:
        raise InvalidInputError(f"--floss-every must be >= 1 step, got {flossing.every}")
    if flossing.before < 0:
        raise InvalidInputError(f"--floss-before must be >= 0 steps, got {flossing.before}")
    weight = flossing.weight
    if not (isinstance(weight, float | int) and 0 <= weight < float("inf")):
        raise InvalidInputError(f"--floss-weight must be a number >= 0, got {weight!r}")


def flossing_exponents(
    rnn: nn.Module, inputs: torch.Tensor, k: int, generator: torch.Generator
) -> torch.Tensor:
    """The ``k`` leading finite-time exponents of ``rnn`` along ``inputs`` ``(T, B, D)``
    from the zero state, each trajectory from its own random orthonormal basis drawn
    from ``generator``: ``(B, k)``, with their graph back to the module's parameters."""
    from rnngrad.lyapunov.differentiable import differentiable_exponents, random_basis
    from rnngrad.lyapunov.dynamics import Dynamics, ModuleDynamics
    from rnngrad.lyapunov.rate import RateDynamics
    from rnngrad.rate.network import RateRNN

    dynamics: Dynamics = RateDynamics(rnn) if isinstance(rnn, RateRNN) else ModuleDynamics(rnn)
    batch = inputs.shape[1]
    state = torch.zeros(batch, dynamics.state_size, dtype=inputs.dtype, device=inputs.device)
    basis = random_basis(batch, dynamics.tangent_size, k, generator, inputs.dtype)
    return differentiable_exponents(dynamics, inputs, state, basis.to(inputs.device))


def flossing_penalty(exponents: torch.Tensor) -> torch.Tensor:
    """``sum_i lambda_i^2`` per trajectory, averaged over the batch: ``(B, k) -> ()``."""
    return (exponents**2).sum(dim=-1).mean()


#: Sequences of the held-out batch that the exponents recorded at each evaluation follow.
RECORDED_SEQUENCES = 16


def window_of(inputs: torch.Tensor, flossing: Flossing) -> torch.Tensor:
    """The first ``window`` steps of ``inputs`` ``(T, B, D)`` (all of them by default)."""
    return inputs if flossing.window is None else inputs[: flossing.window]


def exponent_rows(step: int, phase: str, exponents: torch.Tensor) -> list[dict[str, object]]:
    """Records of the batch's mean exponents ``(B, k)``: one row per exponent."""
    from rnngrad.logspace import finite_or_none

    means = exponents.detach().mean(dim=0).tolist()
    return [
        {"step": step, "phase": phase, "i": i, "lambda": finite_or_none(float(value))}
        for i, value in enumerate(means, start=1)
    ]


def floss_alone(
    rnn: nn.Module,
    sample: Callable[[], torch.Tensor],
    flossing: Flossing,
    lr: float,
    generator: torch.Generator,
) -> list[dict[str, object]]:
    """Floss ``rnn`` before training: ``flossing.before`` Adam steps (learning rate
    ``lr``, gradients clipped by norm 1, a step with a non-finite gradient skipped) on
    ``sum_i lambda_i^2`` along the windows ``sample()`` draws. Returns the exponents'
    records, every tenth step and the last, at steps ``-before + 1 .. 0``."""
    parameters = [p for p in rnn.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(parameters, lr=lr)
    rows: list[dict[str, object]] = []
    for step in range(1, flossing.before + 1):
        exponents = flossing_exponents(rnn, window_of(sample(), flossing), flossing.k, generator)
        penalty = flossing_penalty(exponents)
        optimiser.zero_grad(set_to_none=True)
        penalty.backward()  # type: ignore[no-untyped-call]
        norm = torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        if bool(torch.isfinite(norm)):
            optimiser.step()
        if step == 1 or step % 10 == 0 or step == flossing.before:
            rows += exponent_rows(step - flossing.before, "before", exponents)
    return rows
