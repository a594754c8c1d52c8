r"""Eigen- and singular-value analysis of the recurrent matrix ``W_hh``.

Linearised around a state where ``phi' = 1`` the recurrence is
``h_t = W h_{t-1}``, and for a diagonalizable ``W = V D V^{-1}``

.. math:: W^k = V D^k V^{-1}, \qquad \|W^k\|_2 \le \kappa(V)\,\rho^k,

so the spectral radius ``rho = max |lambda_i|`` decides the long run: vanishing
for ``rho < 1``, exploding for ``rho > 1`` (Bengio et al. 1994). The factor
``kappa(V) = ||V||_2 ||V^{-1}||_2`` is why that is not the whole truth: for a
non-normal ``W`` (``kappa(V) >> 1``, or no eigenbasis at all) ``||W^k||_2`` can
grow by orders of magnitude before it decays (Trefethen & Embree 2005). The
singular values bound every step instead: ``||diag(phi') W||_2 <= gamma
sigma_max`` so ``sigma_max gamma < 1`` guarantees vanishing (Pascanu et al.
2013).

:func:`transient_growth` finds ``max_k ||W^k||_2`` exactly: by
submultiplicativity, once some ``||W^K||_2 < 1`` no later power can exceed the
largest of ``||W^1||..||W^K||`` (write ``n = jK + r``), so the search stops
with a certificate. Powers are renormalised at every step and their norms kept
as ``log10``, so they never overflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rnngrad._checks import require_finite
from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError, ShapeError
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import shown, t
from rnngrad.theory.activations import Activation, get_activation
from rnngrad.verdict import TRANSIENT_THRESHOLD, SpectrumVerdict, spectrum_verdict

__all__ = [
    "DIAGONALIZABLE_CONDITION_LIMIT",
    "FIGURE_POWERS",
    "ExampleKind",
    "RecurrentSpectrum",
    "TransientGrowth",
    "as_square_matrix",
    "example_matrix",
    "power_norms",
    "recurrent_spectrum",
    "spectrum_figures",
    "transient_growth",
]

ExampleKind = Literal["random", "orthogonal", "nonnormal"]

#: ``W`` counts as (numerically) diagonalizable when ``kappa(V)`` is below
#: ``0.1 / eps``, about 4.5e14: beyond it ``V^{-1}`` keeps barely one significant
#: digit in float64 and the eigenvectors are linearly dependent to working
#: precision. A 2x2 Jordan block gives about 1e16; random Gaussian matrices
#: give 1e2 to 1e3.
DIAGONALIZABLE_CONDITION_LIMIT = 0.1 / float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class TransientGrowth:
    """The largest norm of a power of ``W``.

    Attributes:
        log10_norms: shape ``(K,)``, ``log10 ||W^k||_2`` for ``k = 1..K``.
        max_growth: ``max_k ||W^k||_2`` over ``k >= 1`` (``inf`` when it
            overflows float64; see ``log10_max_growth``).
        log10_max_growth: its ``log10``.
        peak_step: the ``k`` where the maximum is reached.
        certified: True when the maximum holds for all ``k >= 1`` (a power with
            norm below 1 was found); False when the search stopped at
            ``max_steps`` (for ``rho >= 1`` the norms do not decay).
        max_steps: the largest power the search would examine.
    """

    log10_norms: FloatArray
    max_growth: float
    log10_max_growth: float
    peak_step: int
    certified: bool
    max_steps: int = 2_000


# The default search examines at most 2,000 powers, and fewer for large N so that it
# costs about as much as 2,000 powers of a 530 x 530 matrix (tens of seconds on 2 cores):
# ``min(2000, max(10, WORK / N^3))``. An explicit max_steps overrides it.
DEFAULT_TRANSIENT_STEPS = 2_000
TRANSIENT_WORK = 3e11


def default_transient_steps(size: int) -> int:
    """The default number of powers searched for a ``size x size`` matrix."""
    return min(DEFAULT_TRANSIENT_STEPS, max(10, int(TRANSIENT_WORK / float(size) ** 3)))


@dataclass(frozen=True, repr=False)
class RecurrentSpectrum(Displayable):
    """Everything the eigen- and singular-value criteria need about ``W_hh``.

    Attributes:
        eigenvalues: complex, shape ``(N,)``, sorted by decreasing modulus (of a rate
            network's ``(1 - delta) I + delta W`` when ``delta < 1``, as the transient).
        spectral_radius: ``rho = max |lambda_i|``.
        singular_values: shape ``(N,)``, decreasing.
        norm2: ``||W||_2 = sigma_max``.
        diagonalizable: ``eigvec_condition < DIAGONALIZABLE_CONDITION_LIMIT``.
        eigvec_condition: ``kappa(V)`` of the unit-norm eigenvector matrix
            (``inf`` when ``V`` is singular).
        transient: the transient growth of ``||W^k||_2``.
        activation: the activation whose bound ``gamma`` enters the verdict.
        gamma: ``sup|phi'|``.
        verdict: both criteria and where they disagree.
        delta: a rate network's ``dt / tau`` (1: ``W_hh`` itself).
    """

    eigenvalues: NDArray[np.complex128]
    spectral_radius: float
    singular_values: FloatArray
    norm2: float
    diagonalizable: bool
    eigvec_condition: float
    transient: TransientGrowth
    activation: str
    gamma: float
    verdict: SpectrumVerdict
    delta: float = 1.0

    @property
    def size(self) -> int:
        """The hidden size ``N``."""
        return int(self.singular_values.shape[0])

    def _summary(self) -> Summary:
        verdict = self.verdict
        return Summary(
            what=f"spectrum of a {self.size}x{self.size} W_hh, {self.activation}"
            + ("" if self.delta == 1 else f", a rate network's step, delta = {self.delta:g}"),
            verdict=verdict.label,
            sentence=verdict.sentence
            + (f" {verdict.disagreement}" if verdict.disagreement else ""),
            numbers=(
                ("spectral radius rho", number(self.spectral_radius)),
                ("||W||_2 = sigma_max", number(self.norm2)),
                ("sigma_max * gamma", number(verdict.norm2_times_gamma)),
                ("max_k ||W^k||_2", number(self.transient.max_growth)),
                ("kappa(V) of the eigenvectors", number(self.eigvec_condition)),
                ("eigenvalue criterion", verdict.eigenvalue_label),
                ("singular-value criterion", verdict.singular_value_label),
            ),
        )

    def _columns(self) -> dict[str, Any]:
        values = self.eigenvalues
        return {
            "i": np.arange(1, self.size + 1), "eigenvalue_real": values.real,
            "eigenvalue_imag": values.imag, "eigenvalue_modulus": np.abs(values),
            "singular_value": self.singular_values,
        }  # fmt: skip

    def _figure(self, which: str | None = None) -> Figure:
        """``which``: ``"eigenvalues"`` (the default), ``"singular"`` or ``"growth"``."""

        figures = dict(zip(("eigenvalues", "singular", "growth"),
                           spectrum_figures({"W_hh": self}), strict=True))  # fmt: skip
        key = which or "eigenvalues"
        if key not in figures:
            raise InvalidInputError(
                f"unknown figure {which!r}; expected 'eigenvalues', 'singular' or 'growth'"
            )
        return figures[key]


def as_square_matrix(W: ArrayLike, name: str = "W_hh") -> FloatArray:
    """``W`` as a finite float64 square matrix, or a clear error.

    Raises:
        ShapeError: not two-dimensional, not square, or empty.
        InvalidInputError: not numeric.
        NonFiniteInputError: NaN or inf.
    """
    try:
        matrix = np.asarray(W)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"{name} must be a numeric matrix: {error}") from None
    if matrix.dtype == object or not (
        np.issubdtype(matrix.dtype, np.number) or matrix.dtype == np.bool_
    ):
        raise InvalidInputError(f"{name} must be numeric, got dtype {matrix.dtype}")
    if np.iscomplexobj(matrix):
        raise InvalidInputError(f"{name} must be real, got dtype {matrix.dtype}")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ShapeError(f"{name} must be a non-empty square matrix, got shape {matrix.shape}")
    matrix = matrix.astype(np.float64)
    require_finite(matrix, name)
    return matrix


def _spectral_norm(matrix: FloatArray) -> float:
    """``||M||_2`` as the root of the top eigenvalue of ``M^T M`` (half the cost of an SVD)."""
    scale = float(np.max(np.abs(matrix)))
    if scale == 0.0:
        return 0.0
    unit = matrix / scale  # keeps M^T M from overflowing
    top = float(np.linalg.eigvalsh(unit.T @ unit)[-1])
    return scale * math.sqrt(max(top, 0.0))


def _log10_power_norms(matrix: FloatArray) -> Iterator[float]:
    """``log10 ||W^k||_2`` for ``k = 1, 2, ...`` without end: the stored power is
    renormalised to unit norm and its log10 scale kept apart, so nothing overflows;
    ``-inf`` from the first ``k`` with ``W^k = 0`` on."""
    power = matrix.copy()
    log10_scale = 0.0
    while True:
        norm = _spectral_norm(power)
        if norm == 0.0:  # nilpotent: W^k = 0 from here on
            while True:
                yield -math.inf
        log10_norm = log10_scale + math.log10(norm)
        yield log10_norm
        power /= norm
        log10_scale = log10_norm
        power = power @ matrix


def power_norms(W: ArrayLike, steps: int) -> FloatArray:
    """``log10 ||W^k||_2`` for ``k = 1..steps``, shape ``(steps,)``: the whole curve, also
    past the point where :func:`transient_growth` stops (figures show the decay after the
    peak); ``-inf`` where ``W^k = 0``."""
    from itertools import islice

    from rnngrad.limits import MAX_TRANSIENT_STEPS, check_whole

    check_whole(steps, "steps", 1, MAX_TRANSIENT_STEPS)
    return np.fromiter(islice(_log10_power_norms(as_square_matrix(W)), steps), float, steps)


def transient_growth(
    W: ArrayLike,
    *,
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TransientGrowth:
    """``max_{k >= 1} ||W^k||_2`` and where it peaks, with a stopping certificate.

    Algorithm: form ``W^k`` by repeated multiplication, renormalising so the
    stored matrix has unit spectral norm and its log10 scale is kept apart;
    stop at the first ``K`` with ``||W^K||_2 < 1`` (then the peak is certain)
    or at ``max_steps``. Each step costs one ``N x N`` product and one
    symmetric eigenvalue problem (``||P||_2^2 = lambda_max(P^T P)``), so
    ``O(K N^3)`` in all; a spectral radius close to 1 needs many steps.

    Args:
        W: a square matrix, shape ``(N, N)``.
        max_steps: the largest power examined, at most ``MAX_TRANSIENT_STEPS``
            (100,000); by default :func:`default_transient_steps` (2,000, fewer
            for ``N`` above about 530).
        progress: called as ``progress(k, max_steps)`` after each power.
    """
    from rnngrad.limits import MAX_TRANSIENT_STEPS, check_memory, check_whole

    matrix = as_square_matrix(W)
    if max_steps is None:
        max_steps = default_transient_steps(matrix.shape[0])
    check_whole(max_steps, "max_steps", 1, MAX_TRANSIENT_STEPS)
    check_memory(4 * matrix.nbytes, f"the powers of a {matrix.shape[0]} x {matrix.shape[0]} W")
    log10_norms: list[float] = []
    certified = False
    for k, log10_norm in enumerate(_log10_power_norms(matrix)):
        if progress is not None and k:
            progress(k, max_steps)
        log10_norms.append(log10_norm)
        if log10_norm < 0.0:  # below 1 (or W^k = 0): the peak is behind
            certified = True
            break
        if k + 1 == max_steps:
            break
    norms = np.asarray(log10_norms)
    peak = int(np.argmax(norms))
    log10_max = float(norms[peak])
    max_growth = 10.0**log10_max if log10_max < 308 else math.inf
    return TransientGrowth(
        log10_norms=norms,
        max_growth=max_growth,
        log10_max_growth=log10_max,
        peak_step=peak + 1,
        certified=certified,
        max_steps=max_steps,
    )


def recurrent_spectrum(
    W: ArrayLike,
    activation: str | Activation = "tanh",
    *,
    max_steps: int | None = None,
    transient_threshold: float = TRANSIENT_THRESHOLD,
    progress: Callable[[int, int], None] | None = None,
    delta: float = 1.0,
) -> RecurrentSpectrum:
    """Eigenvalues, singular values, transient growth and verdict of ``W_hh``.

    Args:
        W: the recurrent matrix, shape ``(N, N)``.
        delta: a rate network's ``dt / tau`` (:mod:`rnngrad.rate`): its step's
            Jacobian is ``(1 - delta) I + delta W diag(phi')``, so the eigenvalues and
            the transient growth are those of ``(1 - delta) I + delta W``
            (``1 - delta + delta mu_i``), and every step is bounded by
            ``(1 - delta) + delta sigma_max gamma`` (the singular values stay ``W``'s).
        activation: whose ``gamma`` enters the singular-value criterion.
        max_steps: the largest power examined for transient growth (default:
            :func:`default_transient_steps`).
        progress: called as ``progress(k, max_steps)`` during that search.
        transient_threshold: ``max_k ||W^k||_2`` above which a matrix with
            ``rho < 1`` is flagged.

    Raises:
        ShapeError, InvalidInputError, NonFiniteInputError: see :func:`as_square_matrix`.
    """
    from rnngrad._checks import check_delta
    from rnngrad.limits import check_memory

    delta = check_delta(delta)
    weights = as_square_matrix(W)
    matrix = (1.0 - delta) * np.eye(weights.shape[0]) + delta * weights if delta < 1 else weights
    act = get_activation(activation)
    # eig (with vectors), their condition number, the SVD and the powers: about ten copies
    check_memory(10 * matrix.nbytes, f"the spectrum of a {matrix.shape[0]} x {matrix.shape[0]} W")
    eigenvalues, vectors = np.linalg.eig(matrix)
    order = np.lexsort((-eigenvalues.imag, -eigenvalues.real, -np.abs(eigenvalues)))
    eigenvalues = eigenvalues[order].astype(np.complex128)
    condition = float(np.linalg.cond(vectors))
    if not math.isfinite(condition):
        condition = math.inf
    singular_values = np.linalg.svd(weights, compute_uv=False).astype(np.float64)
    radius = float(np.max(np.abs(eigenvalues)))
    norm2 = float(singular_values[0])
    transient = transient_growth(matrix, max_steps=max_steps, progress=progress)
    verdict = spectrum_verdict(
        radius,
        norm2,
        act.gamma,
        transient.max_growth,
        transient_threshold=transient_threshold,
        leak=1.0 - delta,
    )
    return RecurrentSpectrum(
        eigenvalues=eigenvalues,
        spectral_radius=radius,
        singular_values=singular_values,
        norm2=norm2,
        diagonalizable=condition < DIAGONALIZABLE_CONDITION_LIMIT,
        eigvec_condition=condition,
        transient=transient,
        activation=act.name,
        gamma=act.gamma,
        verdict=verdict,
        delta=delta,
    )


def example_matrix(
    kind: ExampleKind = "nonnormal",
    *,
    hidden: int = 64,
    radius: float = 0.9,
    seed: int = 0,
) -> FloatArray:
    """A built-in ``W_hh`` with spectral radius ``radius``.

    Kinds:
        ``random``: Gaussian entries ``N(0, 1/N)`` rescaled to spectral radius
            ``radius`` (nearly normal for large ``N``: circular law).
        ``orthogonal``: ``radius * Q`` with ``Q`` Haar-orthogonal; normal, every
            singular value equals ``radius``.
        ``nonnormal``: ``Q (D + U) Q^T`` with ``D`` diagonal with entries spread
            evenly in ``[-radius, radius]``, ``U`` strictly upper triangular
            Gaussian of scale ``3/sqrt(N)`` and ``Q`` orthogonal. Its eigenvalues
            are exactly ``D`` (so ``rho = radius``), yet ``||W^k||_2`` grows far
            above 1 before it decays (to about 3e3 at ``k = 51`` for the
            defaults).

    Raises:
        InvalidInputError: unknown kind, ``hidden < 1`` or a negative radius.
    """
    from rnngrad.limits import check_memory, check_seed, check_whole

    check_whole(hidden, "hidden")
    check_memory(8.0 * hidden * hidden * 4, f"a {hidden} x {hidden} example matrix")
    require_finite(float(radius), "radius")
    if radius < 0:
        raise InvalidInputError(f"radius must be >= 0, got {radius}")
    rng = np.random.default_rng(check_seed(seed))
    if kind == "random":
        matrix = rng.standard_normal((hidden, hidden)) / math.sqrt(hidden)
        current = float(np.max(np.abs(np.linalg.eigvals(matrix))))
        return matrix * (radius / current) if current > 0 else matrix
    q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    q = q * np.sign(np.diag(r))  # Haar measure (Mezzadri 2007)
    if kind == "orthogonal":
        return radius * q
    if kind == "nonnormal":
        diagonal = np.linspace(-radius, radius, hidden) if hidden > 1 else np.array([radius])
        upper = np.triu(rng.standard_normal((hidden, hidden)), k=1) * (3.0 / math.sqrt(hidden))
        nonnormal: FloatArray = q @ (np.diag(diagonal) + upper) @ q.T
        return nonnormal
    raise InvalidInputError(
        f"unknown example {kind!r}; expected one of: random, orthogonal, nonnormal"
    )


#: The powers ``||W^k||_2`` a figure draws: ``k = 1..200``.
FIGURE_POWERS = 200


def spectrum_figures(
    results: dict[str, RecurrentSpectrum], matrices: Mapping[str, ArrayLike] | None = None
) -> tuple[Figure, Figure, Figure]:
    """Eigenvalues beside the unit circle, singular values, and ``||W^k||_2``: over
    ``k = 1..200`` for the ``matrices`` given (keyed as ``results``), else as far as the
    transient search went (it stops once ``||W^k||_2 < 1``, the peak behind it)."""
    eigen = Figure(
        "eigenvalues", t("eigenvalues of W_hh and the unit circle"), "Re", "Im", equal_axes=True
    )
    angle = np.linspace(0, 2 * np.pi, 181)
    eigen.traces.append(
        Trace(t("unit circle"), list(np.cos(angle)), list(np.sin(angle)), dash=True, fixed=True)
    )
    singular = Figure("singular_values", t("singular values of W_hh"), "i", "sigma_i",
                      log_y=True, integer_x=True)  # fmt: skip
    growth = Figure(
        "transient_growth",
        t("transient growth ||W^k||_2"),
        "k",
        "||W^k||_2",
        log_y=True,
        integer_x=True,
    )
    for name, result in results.items():
        label = shown(name)
        values = result.eigenvalues
        eigen.traces.append(Trace(label, list(values.real), list(values.imag), "markers"))
        index = list(range(1, result.size + 1))
        singular.traces.append(Trace(label, index, list(result.singular_values), "lines+markers"))
        if matrices is not None and name in matrices:
            logs = power_norms(matrices[name], FIGURE_POWERS)
        else:
            logs = result.transient.log10_norms[:FIGURE_POWERS]
        norms = 10.0**logs
        growth.traces.append(Trace(label, list(range(1, norms.size + 1)), list(norms)))
    return eigen, singular, growth
