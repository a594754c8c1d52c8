r"""Lyapunov spectra of recurrent networks along their real trajectories.

The Lyapunov exponents of ``s_t = F(s_{t-1}, x_t)`` are the asymptotic growth
rates of the products of the Jacobians ``J_t = dF/ds_{t-1}``:

.. math:: \lambda_i = \lim_{T \to \infty} \frac{1}{T} \ln \sigma_i(J_T \cdots J_1),

in nats per step (divide by ``ln 10`` for decades, by ``ln 2`` for bits per
step). Over long spans a backpropagated gradient grows or decays like
``exp(lambda_1 (T - t))``: the nonlinear counterpart of the textbook's
``rho(W)`` (Pascanu et al. 2013; Vogt et al. 2022; Engelken et al. 2023).

Algorithm (Benettin et al. 1980; Eckmann & Ruelle 1985): carry an orthonormal
basis ``Q`` of ``k`` tangent vectors along the trajectory, ``Q <- J_t Q``
(a Jacobian-vector product, :mod:`rnngrad.lyapunov.dynamics`), and now and then factor
``Q = Q' R`` and add ``ln |R_ii|``; then ``lambda_i`` is the sum over the run
divided by its length. How often to factor is chosen from the last
factorisation so that rounding cannot move the exponents (``reorth="auto"``,
:mod:`rnngrad.lyapunov.orthonormal`): the exponents are those of factoring every step,
at a fraction of the cost. The 95% interval is the larger of two: across a
batch of trajectories from random initial states (Student's t), and batch
means over ten windows along them (:mod:`rnngrad.lyapunov.batch_means`), which sees an
estimate that every trajectory shares but that is still drifting; an exponent
whose two halves of the run disagree is not ``reliable``. The largest exponent
is cross-checked by two nearby trajectories whose separation is renormalised
every step, and the sum of all ``n`` exponents equals the mean of
``ln |det J_t|``. Memory is ``O(B n k)``: no ``n x n`` matrix is kept per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from rnngrad._types import FloatArray
from rnngrad.devices import drawn
from rnngrad.errors import InvalidInputError
from rnngrad.lyapunov.batch_means import student_t_975, window_boundaries
from rnngrad.lyapunov.dynamics import Dynamics
from rnngrad.lyapunov.orthonormal import QR_METHODS, QRMethod
from rnngrad.lyapunov.result import LyapunovSpectrum, kaplan_yorke_dimension
from rnngrad.lyapunov.trajectory import (
    DrivingInputs,
    InputSpec,
    MeasuredSystem,
    check_finite,
    exponent_count,
    measured_system,
    warm_start,
)
from rnngrad.progress import ProgressSpec, progress_callback

__all__ = [
    "LyapunovSpectrum",
    "kaplan_yorke_dimension",
    "lyapunov_spectrum",
    "random_tanh_network",
    "resolved_from_neighbours",
    "student_t_975",
]


def random_tanh_network(
    size: int, gain: float, *, seed: int = 0, dtype: torch.dtype = torch.float64
) -> nn.RNN:
    """``h_{t+1} = tanh(W h_t)`` with ``W_ij ~ N(0, g^2 / N)`` drawn from ``seed``: an
    ``nn.RNN`` without biases whose (one) input is meant to stay zero."""
    network = nn.RNN(1, size, bias=False).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weights = torch.randn(size, size, generator=generator, dtype=dtype)
        network.get_parameter("weight_hh_l0").copy_(weights * (gain / math.sqrt(size)))
    return network


def _batch_inside(basis: torch.Tensor) -> torch.Tensor:
    """``basis`` ``(B, n, k)`` stored as ``(n, B, k)``: the Jacobian products then run as
    one wide matrix product with contiguous results (see ``rnngrad.lyapunov.dynamics._mat``)."""
    return basis.transpose(0, 1).contiguous().transpose(0, 1)


def _random_orthonormal(
    batch: int, n: int, k: int, like: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    gaussian = drawn(batch, n, k, generator=generator, dtype=like.dtype, device=like.device)
    q: torch.Tensor = torch.linalg.qr(gaussian)[0]
    return q


def _validate_run(
    steps: int, warmup: int, reorth: int | str, batch: int, seed: int, qr: str
) -> None:
    """The run's settings, checked before anything is built or drawn."""
    from rnngrad.limits import MAX_LYAPUNOV_STEPS, check_seed, check_whole

    check_seed(seed)
    check_whole(steps, "steps", 1, MAX_LYAPUNOV_STEPS)
    check_whole(warmup, "warmup", 0, MAX_LYAPUNOV_STEPS)
    if reorth != "auto":
        if isinstance(reorth, str):
            raise InvalidInputError(f"reorth must be 'auto' or a whole number, got {reorth!r}")
        check_whole(reorth, "reorth")
    check_whole(batch, "batch")
    if qr not in QR_METHODS:
        raise InvalidInputError(f"qr must be one of {', '.join(QR_METHODS)}, got {qr!r}")


def lyapunov_spectrum(
    system: Dynamics | nn.Module,
    *,
    steps: int = 1000,
    warmup: int | None = None,
    k: int | None = None,
    reorth: int | Literal["auto"] = "auto",
    qr: QRMethod = "householder",
    batch: int = 4,
    seed: int = 0,
    inputs: InputSpec = "zeros",
    checkpoints: int = 100,
    module: str | None = None,
    layer: int | None = None,
    direction: int = 0,
    dtype: torch.dtype | None = torch.float64,
    progress: ProgressSpec = True,
    method: Literal["auto", "qr", "exact"] = "auto",
) -> LyapunovSpectrum:
    """The first ``k`` Lyapunov exponents by the QR (Benettin) method, or exactly for a
    diagonal recurrence.

    Args:
        system: an ``nn.RNN``/``nn.LSTM``/``nn.GRU``, one of their cells, a model
            that contains one (found as :func:`rnngrad.gradient_profile` finds
            it), or any :class:`rnngrad.lyapunov.dynamics.Dynamics` (a cell of your own:
            :class:`rnngrad.CellDynamics`).
        steps: measured steps ``T`` (after the warm-up).
        warmup: steps run first and discarded, so that the trajectory reaches
            its attractor; default: as many as ``steps`` (only the state runs
            then, which costs little beside the tangent basis), or what a given
            input sequence has beyond ``steps``. Random networks
            near the edge of chaos can take thousands of steps to settle, and no
            interval computed from the measured steps alone can see that.
        k: how many exponents (default: the state size, the full spectrum).
        reorth: ``"auto"``: factor before rounding could move any ``|R_ii|`` by
            more than 1e-3 relative (see :mod:`rnngrad.lyapunov.orthonormal`); a whole number:
            steps between factorisations. Either way the basis is also factored
            at every checkpoint and window edge, so the running estimate is exact.
        qr: ``"householder"`` (LAPACK) or ``"cholesky2"`` (CholeskyQR2, matrix
            products, Householder where the basis is too ill-conditioned).
        batch: trajectories, each from its own random initial state.
        seed: seeds the initial states, the basis and random inputs.
        inputs: ``"zeros"`` (the autonomous dynamics), ``"random"`` (seeded
            N(0, 1) per step), or a tensor ``(warmup + steps, D)`` or
            ``(warmup + steps, B, D)``.
        checkpoints: how many points of the running estimate to keep.
        module: the recurrent submodule's name, when the model has several.
        layer: one layer's recurrence alone, driven by the layers below (default:
            the stacked state of all layers).
        direction: 0, or 1 for the reverse direction of a bidirectional module
            (driven by the input in reverse time; a bidirectional module is
            measured one layer and one direction at a time).
        dtype: the dtype to compute in; a model in another dtype (float32, a
            half-precision model) is measured on a converted copy and the result
            says so (``converted_from``). ``None`` keeps the model's own.
        progress: ``True``: a progress bar in a terminal or notebook (see
            :mod:`rnngrad.progress`); ``False``: none; a callable: called as
            ``progress(t, steps)`` every ``steps // 100`` steps.
        method: ``"auto"``: exact for a diagonal recurrence of :mod:`rnngrad.modern`
            (the time averages of ``ln |a_{t,j}|``, :mod:`rnngrad.lyapunov.diagonal`),
            QR otherwise; ``"qr"``: the QR method whatever the system (a check);
            ``"exact"``: refused for a system that is not diagonal.

    The QR route marks an exponent unreliable when its interval overlaps a
    neighbour's: two exponents the run has not resolved from each other are mixed by
    the basis (it aligns with their modes only over ``1 / gap`` steps), and the
    estimate of each can sit outside its interval.

    Raises:
        InvalidInputError: ``k`` out of range, ``steps <= warmup``, and the like.
        NumericalError: the trajectory diverged (a non-finite state).
    """
    if warmup is None:  # as long as the measurement, or what a given sequence leaves
        given = inputs.shape[0] if isinstance(inputs, torch.Tensor) else 2 * steps
        warmup = max(0, min(steps, given - steps))
    _validate_run(steps, warmup, reorth, batch, seed, qr)
    chosen = measured_system(
        system, inputs, module=module, layer=layer, direction=direction, dtype=dtype,
        batch=batch, length=warmup + steps, seed=seed,
    )  # fmt: skip
    dynamics, inputs = chosen.dynamics, chosen.inputs
    count = exponent_count(dynamics, k)
    if method not in ("auto", "qr", "exact"):
        raise InvalidInputError(f"method must be 'auto', 'qr' or 'exact', got {method!r}")
    if method == "exact" and chosen.diagonal is None:
        raise InvalidInputError(
            "method='exact' applies to a diagonal recurrence (rnngrad.modern's layers); "
            "this system's Jacobian is not diagonal: use the QR method"
        )
    if chosen.diagonal is not None and method != "qr":
        from rnngrad.lyapunov.diagonal import exact_diagonal_spectrum

        return exact_diagonal_spectrum(
            chosen.diagonal, chosen, steps=steps, warmup=warmup, batch=batch, count=count,
            checkpoints=checkpoints, generator=torch.Generator().manual_seed(seed),
            boundaries=window_boundaries(steps, checkpoints),
        )  # fmt: skip
    from rnngrad.limits import check_memory

    itemsize = torch.tensor([], dtype=dynamics.dtype).element_size()
    check_memory(
        float(batch) * (dynamics.state_size * (count + 4) * 6 + dynamics.input_size) * itemsize,
        f"a Lyapunov spectrum of {count} exponents over a batch of {batch}",
    )
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same draws everywhere
    source = DrivingInputs(inputs, dynamics, batch, warmup + steps, generator)
    # Autocast would round the Jacobian products; the analysis runs in the dynamics' dtype.
    with progress_callback(progress, "Lyapunov spectrum", steps) as report:
        return _qr_spectrum(
            dynamics, source, batch=batch, warmup=warmup, steps=steps, count=count,
            reorth=reorth, qr=qr, checkpoints=checkpoints, generator=generator, progress=report,
            chosen=chosen,
        )  # fmt: skip


def resolved_from_neighbours(exponents: FloatArray, ci95: FloatArray) -> NDArray[np.bool_]:
    """``(k,)``: each exponent's interval lies clear of its neighbours' (descending
    ``exponents``, half-widths ``ci95``; a NaN half-width, or exact equality of
    non-finite values, cannot be judged and counts as clear)."""
    count = exponents.size
    clear = np.ones(count, dtype=bool)
    with np.errstate(invalid="ignore"):
        gaps = exponents[:-1] - exponents[1:]
        widths = ci95[:-1] + ci95[1:]
        apart = ~(gaps <= widths)  # NaN (unknown width, -inf - -inf) counts as apart
    clear[:-1] &= apart
    clear[1:] &= apart
    return clear


def _qr_spectrum(
    dynamics: Dynamics,
    source: DrivingInputs,
    *,
    batch: int,
    warmup: int,
    steps: int,
    count: int,
    reorth: int | Literal["auto"],
    qr: QRMethod,
    checkpoints: int,
    generator: torch.Generator,
    progress: Callable[[int, int], None] | None,
    chosen: MeasuredSystem,
) -> LyapunovSpectrum:
    """The Benettin loop of :func:`lyapunov_spectrum` on checked settings."""
    from rnngrad.lyapunov.batch_means import window_statistics
    from rnngrad.lyapunov.orthonormal import log_abs_diag_qr, next_interval

    n = dynamics.tangent_size
    part = dynamics.tangent_slice
    # The basis is factored at every window edge (ten per run), so that the windows are
    # exact; a checkpoint records the estimate as of the latest factorisation.
    marks, edges = window_boundaries(steps, checkpoints)
    forced = set(edges)
    interval = 1 if reorth == "auto" else reorth
    factorisations = 0
    with torch.no_grad(), torch.autocast(dynamics.device.type, enabled=False):
        state = warm_start(dynamics, batch, warmup, source, generator)
        basis = _batch_inside(_random_orthonormal(batch, n, count, state, generator))
        # The companion trajectory for the two-trajectory estimate of lambda_1.
        epsilon = 1e-8 if dynamics.dtype == torch.float64 else 1e-4
        offset = torch.zeros_like(state)
        offset[:, part] = drawn(
            batch, n, generator=generator, dtype=state.dtype, device=state.device
        )
        companion = state + epsilon * offset / offset.norm(dim=1, keepdim=True)
        # Each step's separation before renormalisation; their logs are summed at the end.
        distances = torch.empty(steps, batch, dtype=state.dtype, device=state.device)

        log_sums = torch.zeros(batch, count, dtype=torch.float64, device=state.device)
        every = max(1, steps // 100)
        running: list[torch.Tensor] = []
        running_steps: list[int] = []
        snapshots: list[torch.Tensor] = [log_sums.clone()]
        since = 0
        factorised_at = 0  # the step of the latest factorisation
        for t in range(steps):
            if progress is not None and t % every == 0:
                progress(t, steps)
            x = source(warmup + t)
            state, cache = dynamics.step(state, x)
            basis = dynamics.apply_jacobian(cache, basis)
            since += 1
            if since >= interval or t + 1 in forced:
                # checked here, not every step: a non-finite state makes the basis
                # non-finite too, and nothing is accumulated between factorisations
                check_finite(state, warmup + t + 1)
                basis, logs = log_abs_diag_qr(basis, qr)
                basis = _batch_inside(basis)
                log_sums += logs
                factorisations += 1
                if reorth == "auto":
                    interval = next_interval(logs, since, basis.dtype)
                since = 0
                factorised_at = t + 1
            companion, _ = dynamics.step(companion, x)
            separation = companion.sub_(state)
            distance = torch.linalg.vector_norm(separation, dim=1, out=distances[t])
            companion = torch.addcmul(state, separation, (epsilon / distance).unsqueeze(1))
            if t + 1 in marks and factorised_at > 0 and running_steps[-1:] != [factorised_at]:
                running_steps.append(factorised_at)
                running.append(log_sums.mean(dim=0) / factorised_at)
            if t + 1 in forced:
                snapshots.append(log_sums.clone())
        if progress is not None:
            progress(steps, steps)
    companion_log = torch.log(distances.double() / epsilon).sum(dim=0)
    lambda1_two = float(companion_log.mean().item() / steps)
    # Each trajectory's exponents in descending order; the windows follow the same order.
    order = torch.argsort(log_sums, dim=1, descending=True).cpu()
    stacked = torch.stack(snapshots).cpu()
    sums: FloatArray = torch.gather(stacked, 2, order.unsqueeze(0).expand_as(stacked)).numpy()
    per_trajectory = sums[-1] / steps
    mean = per_trajectory.mean(axis=0)
    exact_zero = np.isneginf(mean)
    windows = window_statistics(sums, np.asarray(edges, dtype=np.int64))
    ci95 = windows.ci95.copy()
    ci95[exact_zero | ~np.isfinite(ci95)] = np.nan
    history = torch.stack(running).cpu().numpy()
    history = -np.sort(-history, axis=1)
    reliable = (
        np.isfinite(mean)
        & windows.halves_agree
        & windows.windows_independent
        & resolved_from_neighbours(mean, ci95)
    )
    return LyapunovSpectrum(
        exponents=mean,
        per_trajectory=per_trajectory,
        ci95=ci95,
        total=float(mean.sum()),
        kaplan_yorke_dim=kaplan_yorke_dimension(mean, complete=count == n),
        lambda1_two_trajectories=lambda1_two,
        running_steps=np.asarray(running_steps, dtype=np.int64),
        running=history,
        reliable=reliable,
        steps=steps,
        warmup=warmup,
        reorth=reorth,
        batch=batch,
        state_size=n,
        module_name=chosen.module_name,
        layer=chosen.layer,
        direction=chosen.direction,
        dtype=str(dynamics.dtype).removeprefix("torch."),
        converted_from=chosen.converted_from,
        exact_zero=exact_zero,
        factorisations=factorisations,
        qr=qr,
        ci95_trajectories=windows.ci95_trajectories,
        ci95_windows=windows.ci95_windows,
        halves=windows.halves,
    )
