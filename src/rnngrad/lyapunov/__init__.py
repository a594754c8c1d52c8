"""Lyapunov spectra of recurrent networks, with their error bars.

- :mod:`~rnngrad.lyapunov.spectrum`: the QR method (Benettin et al. 1980) and
  :func:`lyapunov_spectrum`; :mod:`~rnngrad.lyapunov.result` its result;
- :mod:`~rnngrad.lyapunov.finite_time`: finite-time spectra, and the gradient's
  decay beside ``lambda_1``;
- :mod:`~rnngrad.lyapunov.dynamics`: a network as a map and its Jacobian-vector
  products; :mod:`~rnngrad.lyapunov.trajectory`: the recurrence a spectrum is
  measured along and the inputs that drive it;
- :mod:`~rnngrad.lyapunov.orthonormal` (QR factorisations) and
  :mod:`~rnngrad.lyapunov.batch_means` (the error bars).
"""

from rnngrad.lyapunov.result import LyapunovSpectrum
from rnngrad.lyapunov.spectrum import (
    kaplan_yorke_dimension,
    lyapunov_spectrum,
    random_tanh_network,
    student_t_975,
)

__all__ = [
    "LyapunovSpectrum",
    "kaplan_yorke_dimension",
    "lyapunov_spectrum",
    "random_tanh_network",
    "student_t_975",
]
