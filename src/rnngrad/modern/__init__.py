"""Modern recurrences that control the textbook quantity, the eigenvalues of the
recurrence, by design: the LRU (a diagonal complex linear recurrence with
ring-initialised eigenvalues), minGRU and minLSTM (gates from the input only),
IndRNN (one recurrent weight per unit), and the scans they share.

Every layer here has a diagonal state Jacobian
(:class:`rnngrad.modern.base.DiagonalRecurrence`), which
:func:`rnngrad.gradient_profile` uses for exact per-step gradients.
"""

from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.modern.indrnn import IndRNN
from rnngrad.modern.lru import LRU
from rnngrad.modern.minimal import MinGRU, MinLSTM
from rnngrad.modern.scan import diagonal_adjoint, linear_scan, log_linear_scan

__all__ = [
    "LRU",
    "DiagonalRecurrence",
    "IndRNN",
    "MinGRU",
    "MinLSTM",
    "diagonal_adjoint",
    "linear_scan",
    "log_linear_scan",
]
