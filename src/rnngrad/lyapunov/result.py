"""The result of a Lyapunov spectrum and the Kaplan-Yorke dimension drawn from it.

:class:`LyapunovSpectrum` holds the exponents, their intervals and the running
estimate that :func:`rnngrad.lyapunov.spectrum.lyapunov_spectrum` measured; see
:mod:`rnngrad.lyapunov.spectrum` for the method and the definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rnngrad._types import FloatArray
from rnngrad.lyapunov.summaries import SpectrumSummaries, kaplan_yorke_dimension
from rnngrad.show.display import Displayable, Summary, number
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import shown, t

__all__ = ["LyapunovSpectrum", "kaplan_yorke_dimension", "lyapunov_figure", "lyapunov_trace"]


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
            are not significantly correlated (see :mod:`rnngrad.lyapunov.batch_means`).
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
        method: ``"qr"`` (the Benettin QR method) or ``"exact diagonal"`` (a diagonal
            recurrence's time averages of ``ln |a_{t,j}|``, one per mode, no QR;
            ``per_trajectory`` then keeps the modes' order, not each row's).
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
    method: str = "qr"

    @property
    def summaries(self) -> SpectrumSummaries | None:
        """For a full spectrum (``k`` equal to the state size): the unstable fraction, the
        entropy rate and the Kaplan-Yorke dimension per unit, the mean exponent, and the
        same from each half of the run (:mod:`rnngrad.lyapunov.summaries`); else ``None``."""
        from rnngrad.lyapunov.summaries import spectrum_summaries

        if self.exponents.size != self.state_size:
            return None
        return spectrum_summaries(self.exponents, self.halves)

    def to_frame(self) -> Any:
        """One row per exponent; a full spectrum's summaries in ``frame.attrs["summaries"]``."""
        frame = super().to_frame()
        summaries = self.summaries
        if summaries is not None:
            frame.attrs["summaries"] = summaries.as_dict()
        return frame

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
        per_unit: tuple[tuple[str, str], ...] = ()
        summaries = self.summaries
        if summaries is not None:
            halves = summaries.halves
            split = (
                ""
                if halves is None
                else f" (halves {number(halves[0].entropy_rate_per_unit)}, "
                f"{number(halves[1].entropy_rate_per_unit)})"
            )
            per_unit = (
                ("unstable fraction", number(summaries.unstable_fraction)),
                ("entropy rate per unit", number(summaries.entropy_rate_per_unit) + split),
                ("Kaplan-Yorke dimension per unit", number(summaries.kaplan_yorke_per_unit)),
                ("mean exponent", number(summaries.mean_exponent)),
            )
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
                *per_unit,
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

        return lyapunov_figure(self)


def lyapunov_trace(result: LyapunovSpectrum, name: str) -> Trace:
    """The exponents ``lambda_1 >= lambda_2 >= ...`` against their index."""
    index = list(range(1, result.exponents.size + 1))
    return Trace(shown(name), index, list(result.exponents), "lines+markers")


def lyapunov_figure(result: LyapunovSpectrum) -> Figure:
    """The Lyapunov spectrum, with the 95% interval of each exponent as a band."""
    figure = Figure("lyapunov_spectrum", t("Lyapunov spectrum"), "i",
                    t("lambda_i (nats per step)"), integer_x=True)  # fmt: skip
    index = list(range(1, result.exponents.size + 1))
    if np.isfinite(result.ci95).any():
        figure.traces.append(Trace("", index, list(result.exponents - result.ci95), fill="edge"))
        figure.traces.append(Trace("", index, list(result.exponents + result.ci95), fill="band"))
    name = result.module_name or t("the recurrence")
    figure.traces.append(lyapunov_trace(result, name))
    return figure
