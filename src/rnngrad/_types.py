"""The type aliases that several modules share, each defined once."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["FloatArray"]

#: A float64 array; its shape is spelled out where it is used (``(T,)``, ``(N, N)``).
FloatArray = NDArray[np.float64]
