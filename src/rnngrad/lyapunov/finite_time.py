r"""Finite-time spectra of ``dh_T/dh_k``, and the gradient profile's decay beside ``lambda_1``.

Lyapunov exponents describe the infinite-time limit; a gradient backpropagated
over ``T - k`` steps meets the finite product ``dh_T/dh_k``. Its QR stretching
factors, computed backwards with transposed Jacobians, tie the two together,
and :func:`decay_beside_lyapunov` sets the fitted decay of a real gradient
profile beside the exponent measured on the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError
from rnngrad.lyapunov.dynamics import Dynamics, ModuleDynamics
from rnngrad.lyapunov.spectrum import lyapunov_spectrum
from rnngrad.lyapunov.trajectory import (
    DrivingInputs,
    InputSpec,
    as_dynamics,
    check_finite,
    exponent_count,
    measured_system,
    warm_start,
)

__all__ = ["DecayComparison", "FiniteTimeSpectrum", "decay_beside_lyapunov", "finite_time_spectrum"]


@dataclass(frozen=True)
class FiniteTimeSpectrum:
    """QR stretching factors of ``dh_T/dh_k`` for every ``k`` of one trajectory.

    With ``M_k = (dh_T/dh_k)^T`` built backwards, ``M_k = J_{k+1}^T M_{k+1}``,
    and factored ``M_k = Q_k R_k R_{k+1} \\cdots`` by a QR step per ``k``, the
    ``i``-th stretching factor is ``sum_j ln |R_j[i, i]|``. These are the
    finite-time Lyapunov exponents times ``T - k``: the first is a lower bound
    of ``ln ||dh_T/dh_k||_2``, and all converge to ``ln sigma_i(dh_T/dh_k)``
    as ``T - k`` grows (Ershov & Potapov 1998). Exact for diagonal Jacobians.

    The exact singular values come from the whole product, kept as a matrix
    of unit Frobenius norm times a scale carried as a logarithm, and one SVD
    per ``k``: ``ln sigma_i(dh_T/dh_k)``. The SVD's error in ``sigma_i`` is about
    ``eps sigma_1``, so only those above ``1e-8 sigma_1`` are given (to about
    1e-7 in the logarithm); smaller ones are NaN (not resolvable), never a number.

    Attributes:
        log_stretch: ``(T, k)``, row ``k - 1`` for ``dh_T/dh_k`` (nats; row
            ``T - 1`` is 0, the identity), columns descending.
        rates: ``(T, k)``, ``log_stretch / (T - k)`` (nats per step), NaN at ``k = T``.
        log_singular_values: ``(T, k)``, ``ln sigma_i(dh_T/dh_k)``, descending,
            NaN where not resolvable; ``None`` when not asked for.
        steps: ``T``.
    """

    log_stretch: FloatArray
    rates: FloatArray
    steps: int
    log_singular_values: FloatArray | None = None


def finite_time_spectrum(
    system: Dynamics | nn.Module,
    *,
    steps: int = 200,
    warmup: int = 100,
    k: int | None = None,
    seed: int = 0,
    inputs: InputSpec = "zeros",
    singular_values: bool = True,
    module: str | None = None,
    layer: int | None = None,
    direction: int = 0,
) -> FiniteTimeSpectrum:
    """Stretching factors and singular values of ``dh_T/dh_k`` for every ``k`` (one trajectory).

    The trajectory (``O(T n)`` memory) is run forward, then the transposed
    Jacobians are applied backwards with ``torch.func.vjp``: to the ``k``-column
    basis with one QR per step, and (``singular_values=True``) to the whole
    ``n x n`` product with one SVD per step, ``O(T n^3)``.

    ``module``, ``layer`` and ``direction`` choose the recurrence of a model as
    :func:`~rnngrad.lyapunov.spectrum.lyapunov_spectrum` does: a bidirectional module
    one layer and one direction at a time (each a causal recurrence, the
    reverse one run in reverse time, an upper layer driven by the layers below).

    Raises:
        InvalidInputError, NumericalError: as :func:`lyapunov_spectrum`.
    """
    from torch.func import vjp, vmap

    if module is None and layer is None and direction == 0:
        dynamics = as_dynamics(system)
    else:  # one layer and direction of a model, driven as lyapunov_spectrum drives it
        chosen = measured_system(
            system, inputs, module=module, layer=layer, direction=direction, dtype=None,
            batch=1, length=warmup + steps, seed=seed,
        )  # fmt: skip
        dynamics, inputs = chosen.dynamics, chosen.inputs
    if dynamics.tangent_size != dynamics.state_size:
        raise InvalidInputError("finite-time spectra are computed for the whole (stacked) state")
    if steps < 2:
        raise InvalidInputError(f"steps must be >= 2, got {steps}")
    if warmup < 0:
        raise InvalidInputError(f"warmup must be >= 0, got {warmup}")
    count = exponent_count(dynamics, k)
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same draws everywhere
    source = DrivingInputs(inputs, dynamics, 1, warmup + steps, generator)
    with torch.no_grad():
        state = warm_start(dynamics, 1, warmup, source, generator)
        states, xs = [state], []
        for t in range(steps):
            x = source(warmup + t)
            state, _ = dynamics.step(state, x)
            check_finite(state, warmup + t + 1)
            states.append(state)
            xs.append(x)
    n = dynamics.state_size
    basis = torch.eye(n, count, dtype=dynamics.dtype, device=dynamics.device)
    log_stretch = torch.zeros(steps, count, dtype=torch.float64)
    running = torch.zeros(count, dtype=torch.float64)
    dense = torch.eye(n, dtype=dynamics.dtype, device=dynamics.device) if singular_values else None
    log_scale = 0.0
    log_sv = np.full((steps, count), np.nan)
    log_sv[steps - 1] = 0.0
    # states[t] is s_t and xs[t] is x_{t+1}, so J_{t+1} is the derivative of the step
    # from (states[t], xs[t]); M_t = J_{t+1}^T M_{t+1} goes into row t - 1.
    for t in range(steps - 1, 0, -1):
        states[t] = states[t].detach()

        def f(s: torch.Tensor, x: torch.Tensor = xs[t]) -> torch.Tensor:
            return dynamics.step(s.unsqueeze(0), x)[0].squeeze(0)

        pullback = vjp(f, states[t].squeeze(0))[1]

        def pull(v: torch.Tensor, pullback: Any = pullback) -> torch.Tensor:
            result: torch.Tensor = pullback(v)[0]
            return result

        transposed = vmap(pull, in_dims=1, out_dims=1)(basis).detach()
        basis, triangle = torch.linalg.qr(transposed)
        running = running + torch.log(torch.diagonal(triangle).abs()).double().cpu()
        log_stretch[t - 1] = running
        if dense is not None:
            dense = vmap(pull, in_dims=1, out_dims=1)(dense).detach()
            size = float(torch.linalg.matrix_norm(dense))
            if size == 0.0:  # the product is exactly zero from here back
                dense = None
                log_sv[:t] = -np.inf
                continue
            dense = dense / size
            log_scale += float(np.log(size))
            values = torch.linalg.svdvals(dense.double()).cpu().numpy()[:count]
            with np.errstate(divide="ignore"):
                logs = log_scale + np.log(values)
            logs[values < 1e-8 * values[0]] = np.nan
            log_sv[t - 1] = logs
    stretch = -np.sort(-log_stretch.numpy(), axis=1)
    remaining = (steps - np.arange(1, steps + 1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(remaining[:, None] > 0, stretch / remaining[:, None], np.nan)
    return FiniteTimeSpectrum(
        log_stretch=stretch,
        rates=rates,
        steps=steps,
        log_singular_values=log_sv if singular_values else None,
    )


@dataclass(frozen=True)
class DecayComparison:
    """The profile's fitted gradient decay beside the Lyapunov exponent, per layer.

    For one forward layer with the loss on the last step, ``||dL/dh_t||`` decays
    like ``exp(lambda_1 (T - t))``, so ``decay_rate`` should approach
    ``-lambda_1`` of the stack up to that layer as ``T`` grows.

    Attributes:
        layers: ``layer`` indices (0-based).
        decay_rates: the profile's decay rate of each layer (nats per step).
        lambda1: ``lambda_1`` of the stack of layers ``0..layer`` (nats per step).
        ci95: its 95% half-width.
    """

    layers: tuple[int, ...]
    decay_rates: tuple[float | None, ...]
    lambda1: tuple[float, ...]
    ci95: tuple[float, ...]


def decay_beside_lyapunov(
    module: nn.Module,
    inputs: torch.Tensor,
    *,
    loss: Literal["last", "sum"] = "last",
    warmup: int | None = None,
    seed: int = 0,
) -> DecayComparison:
    """Fit the gradient profile's decay on ``inputs`` and measure ``lambda_1`` on the same inputs.

    Args:
        module: a unidirectional ``nn.RNN``/``nn.LSTM``/``nn.GRU``.
        inputs: ``(T, B, D)`` (time-major; transposed here when ``batch_first``).
        loss: the profile's loss.
        warmup: Lyapunov warm-up steps (default ``T // 5``); the rest are measured.
        seed: seeds the initial states and bases.
    """
    from rnngrad.profile.front import gradient_profile

    profile = gradient_profile(module, inputs, loss=loss)
    sequence = inputs.transpose(0, 1) if getattr(module, "batch_first", False) else inputs
    steps_total, batch = sequence.shape[0], sequence.shape[1]
    skip = steps_total // 5 if warmup is None else warmup
    lambdas, widths = [], []
    for count in range(1, profile.layout.num_layers + 1):
        spectrum = lyapunov_spectrum(
            ModuleDynamics(module, layers=count),
            steps=steps_total - skip,
            warmup=skip,
            k=1,
            batch=batch,
            seed=seed,
            progress=False,
            inputs=sequence,
        )
        lambdas.append(float(spectrum.exponents[0]))
        widths.append(float(spectrum.ci95[0]))
    forward = [lp for lp in profile.layers if lp.direction == 0]
    return DecayComparison(
        layers=tuple(lp.layer for lp in forward),
        decay_rates=tuple(lp.decay_rate for lp in forward),
        lambda1=tuple(lambdas),
        ci95=tuple(widths),
    )
