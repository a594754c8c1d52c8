"""A Mamba forecaster, as mambapy builds it: a linear embedding of the features, a stack
of Mamba blocks (pure PyTorch, its parallel scan), a linear head read at the last step.

``rnngrad profile --model examples/mamba_forecaster.py:Forecaster --input X.pt`` profiles
the state of every block per token, exactly; ``rnngrad report`` with the same arguments
writes its page (the eigenvalues token by token, the exact Lyapunov exponents). Needs
``pip install 'rnngrad[ssm]'``.
"""

from __future__ import annotations

import torch
from mambapy.mamba import Mamba, MambaConfig
from torch import nn


class Forecaster(nn.Module):
    """``(B, T, features)`` to the next value ``(B, 1)``."""

    def __init__(self, features: int = 3, width: int = 16, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(features, width)
        self.mamba = Mamba(MambaConfig(d_model=width, n_layers=layers, d_state=8))
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.head(self.mamba(self.embed(x)))[:, -1]
        return output
