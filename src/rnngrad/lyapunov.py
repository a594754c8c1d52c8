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
(a Jacobian-vector product, :mod:`rnngrad.dynamics`), and now and then factor
``Q = Q' R`` and add ``ln |R_ii|``; then ``lambda_i`` is the sum over the run
divided by its length. How often to factor is chosen from the last
factorisation so that rounding cannot move the exponents (``reorth="auto"``,
:mod:`rnngrad.orthonormal`): the exponents are those of factoring every step,
at a fraction of the cost. The 95% interval is the larger of two: across a
batch of trajectories from random initial states (Student's t), and batch
means over ten windows along them (:mod:`rnngrad.batch_means`), which sees an
estimate that every trajectory shares but that is still drifting; an exponent
whose two halves of the run disagree is not ``reliable``. The largest exponent
is cross-checked by two nearby trajectories whose separation is renormalised
every step, and the sum of all ``n`` exponents equals the mean of
``ln |det J_t|``. Memory is ``O(B n k)``: no ``n x n`` matrix is kept per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from rnngrad.batch_means import student_t_975
from rnngrad.display import Displayable, Summary, number
from rnngrad.dynamics import Dynamics, ModuleDynamics
from rnngrad.errors import InvalidInputError, NumericalError, ShapeError
from rnngrad.orthonormal import QR_METHODS, QRMethod
from rnngrad.progress import ProgressSpec, progress_callback

if TYPE_CHECKING:
    from rnngrad.report.figures import Figure

__all__ = [
    "LyapunovSpectrum",
    "kaplan_yorke_dimension",
    "lyapunov_spectrum",
    "random_tanh_network",
    "student_t_975",
]

FloatArray = NDArray[np.float64]
InputSpec = Literal["zeros", "random"] | torch.Tensor

# Windows along the measured steps for the batch-means interval (rnngrad.batch_means).
WINDOWS = 10


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


def kaplan_yorke_dimension(exponents: FloatArray, complete: bool) -> float | None:
    """``D_KY = j + (lambda_1 + ... + lambda_j) / |lambda_{j+1}|`` (Kaplan & Yorke 1979).

    ``j`` is the largest index with a non-negative partial sum. Returns 0 when
    ``lambda_1 < 0``, the state size when every partial sum is non-negative and
    the spectrum is ``complete``, and ``None`` when that cannot be decided from
    the ``k`` exponents at hand.
    """
    values = np.sort(np.asarray(exponents, dtype=np.float64))[::-1]
    if values.size == 0 or not np.isfinite(values[0]):
        return None
    sums = np.cumsum(values)
    if sums[0] < 0:
        return 0.0
    nonnegative = np.flatnonzero(sums >= 0)
    j = int(nonnegative[-1]) + 1  # count of exponents in the non-negative prefix
    if j == values.size:
        return float(j) if complete else None
    following = values[j]
    if following == -math.inf:
        return float(j)
    return float(j + sums[j - 1] / abs(following))


@dataclass(frozen=True, repr=False)
class LyapunovSpectrum(Displayable):
    """The first ``k`` Lyapunov exponents of a recurrent map, in nats per step.

    Attributes:
        exponents: ``(k,)`` batch means, descending.
        per_trajectory: ``(B, k)``, each trajectory's exponents, descending.
        ci95: ``(k,)`` half-widths of the 95% confidence interval of the mean:
            the larger of ``ci95_trajectories`` and ``ci95_windows``; NaN for an
            exact zero.
        total: the sum of the ``k`` exponents.
        kaplan_yorke_dim: see :func:`kaplan_yorke_dimension`.
        lambda1_two_trajectories: the largest exponent from two nearby
            trajectories (batch mean), an independent check of ``exponents[0]``.
        running_steps: ``(C,)`` steps at which ``running`` was recorded (the
            factorisation at or before each checkpoint).
        running: ``(C, k)`` the running estimate (batch mean), to show convergence.
        reliable: ``(k,)``: finite, the two halves of the run agree (their
            averages differ by less than 3.29 standard errors of the difference,
            or by less than 1e-3 nats per step: the running estimate at half
            time is within that bound of the final one), and consecutive windows
            are not significantly correlated (see :mod:`rnngrad.batch_means`).
        steps, warmup, reorth, batch: the run's settings (``reorth`` is
            ``"auto"`` or the fixed interval asked for); state_size: the
            dimension of the analysed tangent space.
        units: ``"nats per step"``.
        module_name: the recurrent submodule measured (``""``: the system itself).
        layer, direction: the one layer and direction measured, when one was.
        dtype: the dtype the spectrum was computed in; converted_from: the
            model's own dtype when it was computed on a converted copy.
        exact_zero: ``(k,)``: the exponent is ``-inf`` because the Jacobian
            products lose volume exactly in that direction (a unit whose
            derivative is exactly zero, such as a dead relu); its interval is NaN.
        factorisations: how many QR factorisations the run made.
        qr: the factorisation (``"householder"`` or ``"cholesky2"``).
        ci95_trajectories: ``(k,)`` the interval across trajectories (NaN for one).
        ci95_windows: ``(k,)`` the batch-means interval over windows along them.
        halves: ``(2, k)`` the averages over the first and second half of the run.
    """

    exponents: FloatArray
    per_trajectory: FloatArray
    ci95: FloatArray
    total: float
    kaplan_yorke_dim: float | None
    lambda1_two_trajectories: float
    running_steps: NDArray[np.int64]
    running: FloatArray
    reliable: NDArray[np.bool_]
    steps: int
    warmup: int
    reorth: int | str
    batch: int
    state_size: int
    units: str = "nats per step"
    module_name: str = ""
    layer: int | None = None
    direction: int = 0
    dtype: str = "float64"
    converted_from: str | None = None
    exact_zero: NDArray[np.bool_] | None = None
    factorisations: int = 0
    qr: str = "householder"
    ci95_trajectories: FloatArray | None = None
    ci95_windows: FloatArray | None = None
    halves: FloatArray | None = None

    @property
    def exponents_log10(self) -> FloatArray:
        """The exponents in decades per step: ``lambda / ln 10``."""
        return self.exponents / math.log(10.0)

    @property
    def exponents_bits(self) -> FloatArray:
        """The exponents in bits per step: ``lambda / ln 2``."""
        return self.exponents / math.log(2.0)

    def _summary(self) -> Summary:
        top = float(self.exponents[0])
        if not math.isfinite(top):
            verdict, sentence = None, "The largest exponent is not a finite number."
        elif top > 0:
            verdict = "chaotic"
            sentence = (f"lambda_1 = {top:.4g} nats per step > 0: nearby trajectories part, "
                        "and gradients over long spans can explode.")  # fmt: skip
        else:
            verdict = "contracting"
            sentence = (f"lambda_1 = {top:.4g} nats per step <= 0: perturbations die out, "
                        "and gradients over long spans vanish.")  # fmt: skip
        if not bool(np.all(self.reliable)):
            sentence += " Some exponents have not settled: see `reliable` and `running`."
        ci = float(self.ci95[0])
        interval = f" +- {number(ci, 2)}" if math.isfinite(ci) else ""
        settings = f"{self.steps}, {self.warmup}, {self.factorisations}"
        return Summary(
            what=f"Lyapunov spectrum, {self.exponents.size} of {self.state_size} exponents, "
            f"{self.steps} steps x {self.batch} trajectories",
            verdict=verdict,
            sentence=sentence,
            numbers=(
                ("lambda_1 (nats per step)", number(top) + interval),
                ("lambda_1 from two trajectories", number(self.lambda1_two_trajectories)),
                ("sum of exponents", number(self.total)),
                ("Kaplan-Yorke dimension", number(self.kaplan_yorke_dim)),
                ("reliable", f"{int(np.sum(self.reliable))} of {self.reliable.size}"),
                ("steps, warm-up, QR factorisations", settings),
            ),
        )

    def _columns(self) -> dict[str, Any]:
        """One row per exponent ``i``."""
        nan = np.full(self.exponents.size, np.nan)
        return {
            "i": np.arange(1, self.exponents.size + 1), "exponent": self.exponents,
            "ci95": self.ci95, "exponent_log10": self.exponents_log10,
            "reliable": self.reliable,
            "ci95_trajectories": nan if self.ci95_trajectories is None
            else self.ci95_trajectories,
            "ci95_windows": nan if self.ci95_windows is None else self.ci95_windows,
            "first_half": nan if self.halves is None else self.halves[0],
            "second_half": nan if self.halves is None else self.halves[1],
        }  # fmt: skip

    def _figure(self, which: str | None = None) -> Figure:
        from rnngrad.report.result_figures import lyapunov_figure

        return lyapunov_figure(self)


@dataclass(frozen=True)
class _System:
    dynamics: Dynamics
    inputs: InputSpec
    module_name: str = ""
    layer: int | None = None
    direction: int = 0
    converted_from: str | None = None


def _diagonal_dynamics(layer: Any) -> Dynamics:
    """A diagonal recurrence of :mod:`rnngrad.modern` as a map of a flat real state
    (real and imaginary parts side by side for a complex one), through torch.func."""
    from rnngrad.dynamics import CellDynamics

    size = layer.state_size
    dtype = next(layer.parameters()).dtype

    def cell(x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        if not layer.complex_state:
            new: torch.Tensor = layer.step(x, state)
            return new
        stepped = layer.step(x, torch.complex(state[..., :size], state[..., size:]))
        return torch.cat([stepped.real, stepped.imag], dim=-1)

    width = 2 * size if layer.complex_state else size
    return CellDynamics(cell, state_size=width, input_size=layer.input_size, dtype=dtype)


def _as_dynamics(system: Dynamics | nn.Module) -> Dynamics:
    """A model's recurrent module (all layers, its own dtype) as dynamics; a Dynamics as is."""
    if isinstance(system, Dynamics):
        return system
    found = _system(
        system, "zeros", module=None, layer=None, direction=0, dtype=None, batch=1, length=1,
        seed=0,
    )  # fmt: skip
    return found.dynamics


def _driving_sequence(
    spec: InputSpec, size: int, batch: int, length: int, seed: int, like: torch.Tensor
) -> torch.Tensor:
    """The input sequence ``(length, B, D)`` as a tensor (seeded N(0, 1) for ``"random"``)."""
    from rnngrad.limits import check_memory

    check_memory(
        3.0 * length * batch * max(size, 1) * like.element_size() * 4,
        f"the driving sequence of {length} steps",
    )
    if isinstance(spec, torch.Tensor):
        data = spec.to(device=like.device, dtype=like.dtype)
        if data.dim() == 2:
            data = data.unsqueeze(1).expand(-1, batch, -1)
        if data.dim() != 3 or data.shape[1:] != (batch, size) or data.shape[0] < length:
            raise ShapeError(
                f"inputs must have shape (T, {size}) or (T, {batch}, {size}) with T >= {length}, "
                f"got {tuple(spec.shape)}"
            )
        return data[:length]
    if spec == "zeros":
        return torch.zeros(length, batch, size, dtype=like.dtype, device=like.device)
    if spec == "random":
        generator = torch.Generator(device=like.device).manual_seed(seed + 1)
        return torch.randn(
            length, batch, size, generator=generator, dtype=like.dtype, device=like.device
        )
    raise InvalidInputError(f"inputs must be 'zeros', 'random' or a tensor, got {spec!r}")


def _system(
    system: Dynamics | nn.Module,
    inputs: InputSpec,
    *,
    module: str | None,
    layer: int | None,
    direction: int,
    dtype: torch.dtype | None,
    batch: int,
    length: int,
    seed: int,
) -> _System:
    """The dynamics to measure and the inputs that drive them."""
    if isinstance(system, Dynamics):
        if module is not None or layer is not None or direction != 0:
            raise InvalidInputError("module=, layer= and direction= apply to a PyTorch model")
        return _System(system, inputs, converted_from=getattr(system, "converted_from", None))
    import copy

    from rnngrad.cells import describe_module, find_recurrent_module
    from rnngrad.fused import FUSED_KERNELS, kernel_weights

    name, rnn = find_recurrent_module(system, module)
    own = next(rnn.parameters()).dtype
    converted = None
    if dtype is not None and own != dtype:
        rnn, converted = copy.deepcopy(rnn).to(dtype), str(own).removeprefix("torch.")
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(rnn, DiagonalRecurrence):
        if layer is not None or direction != 0:
            raise InvalidInputError(f"{type(rnn).__name__} has one layer and one direction")
        return _System(_diagonal_dynamics(rnn), inputs, name, None, 0, converted)
    layout = describe_module(rnn)
    if layer is not None and not 0 <= layer < layout.num_layers:
        raise InvalidInputError(f"layer must be in 0..{layout.num_layers - 1}, got {layer}")
    if not layout.bidirectional:
        if direction != 0:
            raise InvalidInputError(f"{name or 'the module'} is unidirectional: direction is 0")
        dynamics = (
            ModuleDynamics(rnn)
            if layer is None
            else ModuleDynamics(rnn, layers=layer + 1, only_top=True)
        )
        return _System(dynamics, inputs, name, layer, 0, converted)
    if layer is None and layout.num_layers > 1:
        raise InvalidInputError(
            f"{name or 'the module'} is bidirectional with {layout.num_layers} layers: name "
            "one layer (layer=L, --layer L) and one direction; each is a causal recurrence"
        )
    chosen = layer or 0
    dynamics = ModuleDynamics(rnn, first=chosen, layers=1, direction=direction)
    if chosen == 0 and (not isinstance(inputs, torch.Tensor) or direction == 0):
        # zeros and i.i.d. draws look the same in either time direction
        driving: InputSpec = inputs
    else:
        like = next(rnn.parameters())
        sequence = _driving_sequence(inputs, layout.input_size, batch, length, seed, like)
        if chosen == 0:
            driving = sequence.flip(0)
        else:
            with torch.no_grad():  # the layers below, over the whole sequence, both directions
                for below in range(chosen):
                    zeros = torch.zeros(
                        2, batch, layout.state_size, dtype=like.dtype, device=like.device
                    )
                    hx: Any = zeros
                    if layout.kind == "lstm":
                        hx = (zeros, zeros.new_zeros(2, batch, layout.hidden_size))
                    sequence = FUSED_KERNELS[layout.kind](
                        sequence, hx, kernel_weights(rnn, layout, below), layout.bias, 1, 0.0,
                        False, True, False,
                    )[0]  # fmt: skip
            driving = sequence.flip(0) if direction == 1 else sequence
    return _System(dynamics, driving, name, chosen, direction, converted)


class _Inputs:
    """Yields ``x_t`` of shape ``(B, D)``: zeros, seeded N(0, 1), or a given sequence."""

    def __init__(
        self,
        spec: InputSpec,
        dynamics: Dynamics,
        batch: int,
        length: int,
        generator: torch.Generator,
    ) -> None:
        self.generator = generator
        self.shape = (batch, dynamics.input_size)
        self.dtype, self.device = dynamics.dtype, dynamics.device
        self.kind = spec if isinstance(spec, str) else "given"
        if isinstance(spec, torch.Tensor):
            data = spec.to(device=self.device, dtype=self.dtype)
            if data.dim() == 2:
                data = data.unsqueeze(1).expand(-1, batch, -1)
            if data.dim() != 3 or data.shape[1:] != self.shape:
                raise ShapeError(
                    f"inputs must have shape (T, {dynamics.input_size}) or "
                    f"(T, {batch}, {dynamics.input_size}), got {tuple(spec.shape)}"
                )
            if data.shape[0] < length:
                raise ShapeError(
                    f"the input sequence has {data.shape[0]} steps; "
                    f"warm-up plus steps need {length}"
                )
            if not torch.isfinite(data).all():
                raise InvalidInputError("the input sequence holds NaN or inf")
            self.data: torch.Tensor | None = data
        elif spec in ("zeros", "random"):
            self.data = None
            self.zeros = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        else:
            raise InvalidInputError(f"inputs must be 'zeros', 'random' or a tensor, got {spec!r}")

    def __call__(self, t: int) -> torch.Tensor:
        if self.data is not None:
            return self.data[t]
        if self.kind == "zeros":
            return self.zeros
        return torch.randn(
            self.shape, generator=self.generator, dtype=self.dtype, device=self.device
        )


def _check_finite(state: torch.Tensor, t: int) -> None:
    if not torch.isfinite(state).all():
        raise NumericalError(
            f"the trajectory diverged by step {t}: the state is no longer finite, "
            "so no exponent can be measured"
        )


def _batch_inside(basis: torch.Tensor) -> torch.Tensor:
    """``basis`` ``(B, n, k)`` stored as ``(n, B, k)``: the Jacobian products then run as
    one wide matrix product with contiguous results (see ``rnngrad.dynamics._mat``)."""
    return basis.transpose(0, 1).contiguous().transpose(0, 1)


def _random_orthonormal(
    batch: int, n: int, k: int, like: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    gaussian = torch.randn(batch, n, k, generator=generator, dtype=like.dtype, device=like.device)
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


def _exponent_count(dynamics: Dynamics, k: int | None) -> int:
    """``k``, or the tangent space's size when omitted; an error when out of range."""
    count = dynamics.tangent_size if k is None else k
    if not 1 <= count <= dynamics.tangent_size:
        raise InvalidInputError(
            f"k must be between 1 and the state size {dynamics.tangent_size}, got {count}"
        )
    return count


def _warm_start(
    dynamics: Dynamics, batch: int, warmup: int, source: _Inputs, generator: torch.Generator
) -> torch.Tensor:
    """Random initial states run through ``warmup`` steps of ``source``'s inputs."""
    state = dynamics.initial_state(batch, generator)
    for t in range(warmup):
        state, _ = dynamics.step(state, source(t))
        _check_finite(state, t + 1)
    return state


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
) -> LyapunovSpectrum:
    """The first ``k`` Lyapunov exponents by the QR (Benettin) method.

    Args:
        system: an ``nn.RNN``/``nn.LSTM``/``nn.GRU``, one of their cells, a model
            that contains one (found as :func:`rnngrad.gradient_profile` finds
            it), or any :class:`rnngrad.dynamics.Dynamics` (a cell of your own:
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
            more than 1e-3 relative (see :mod:`rnngrad.orthonormal`); a whole number:
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

    Raises:
        InvalidInputError: ``k`` out of range, ``steps <= warmup``, and the like.
        NumericalError: the trajectory diverged (a non-finite state).
    """
    if warmup is None:  # as long as the measurement, or what a given sequence leaves
        given = inputs.shape[0] if isinstance(inputs, torch.Tensor) else 2 * steps
        warmup = max(0, min(steps, given - steps))
    _validate_run(steps, warmup, reorth, batch, seed, qr)
    chosen = _system(
        system, inputs, module=module, layer=layer, direction=direction, dtype=dtype,
        batch=batch, length=warmup + steps, seed=seed,
    )  # fmt: skip
    dynamics, inputs = chosen.dynamics, chosen.inputs
    count = _exponent_count(dynamics, k)
    from rnngrad.limits import check_memory

    itemsize = torch.tensor([], dtype=dynamics.dtype).element_size()
    check_memory(
        float(batch) * (dynamics.state_size * (count + 4) * 6 + dynamics.input_size) * itemsize,
        f"a Lyapunov spectrum of {count} exponents over a batch of {batch}",
    )
    generator = torch.Generator(device=dynamics.device).manual_seed(seed)
    source = _Inputs(inputs, dynamics, batch, warmup + steps, generator)
    # Autocast would round the Jacobian products; the analysis runs in the dynamics' dtype.
    with progress_callback(progress, "Lyapunov spectrum", steps) as report:
        return _qr_spectrum(
            dynamics, source, batch=batch, warmup=warmup, steps=steps, count=count,
            reorth=reorth, qr=qr, checkpoints=checkpoints, generator=generator, progress=report,
            chosen=chosen,
        )  # fmt: skip


def _boundaries(steps: int, checkpoints: int) -> tuple[set[int], list[int]]:
    """Checkpoint steps of the running estimate, and the window edges (``0`` first)."""
    every = max(1, steps // max(1, checkpoints))
    marks = {*range(every, steps + 1, every), steps}
    windows = min(WINDOWS, steps)
    edges = sorted({round(w * steps / windows) for w in range(windows + 1)})
    return marks, edges


def _qr_spectrum(
    dynamics: Dynamics,
    source: _Inputs,
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
    chosen: _System,
) -> LyapunovSpectrum:
    """The Benettin loop of :func:`lyapunov_spectrum` on checked settings."""
    from rnngrad.batch_means import window_statistics
    from rnngrad.orthonormal import log_abs_diag_qr, next_interval

    n = dynamics.tangent_size
    part = dynamics.tangent_slice
    # The basis is factored at every window edge (ten per run), so that the windows are
    # exact; a checkpoint records the estimate as of the latest factorisation.
    marks, edges = _boundaries(steps, checkpoints)
    forced = set(edges)
    interval = 1 if reorth == "auto" else reorth
    factorisations = 0
    with torch.no_grad(), torch.autocast(dynamics.device.type, enabled=False):
        state = _warm_start(dynamics, batch, warmup, source, generator)
        basis = _batch_inside(_random_orthonormal(batch, n, count, state, generator))
        # The companion trajectory for the two-trajectory estimate of lambda_1.
        epsilon = 1e-8 if dynamics.dtype == torch.float64 else 1e-4
        offset = torch.zeros_like(state)
        offset[:, part] = torch.randn(
            (batch, n), generator=generator, dtype=state.dtype, device=state.device
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
                _check_finite(state, warmup + t + 1)
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
    reliable = np.isfinite(mean) & windows.halves_agree & windows.windows_independent
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
