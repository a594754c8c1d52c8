"""The lab's cells from other libraries: Mamba (mambapy) and xLSTM's mLSTM and sLSTM
(the ``xlstm`` package, its PyTorch backends), ``pip install 'rnngrad[ssm]'``.

Each is one block of its library behind a linear encoder, in the lab's time-major
convention: :class:`LibraryRecurrence` takes ``(T, B, D)`` and returns the block's
outputs ``(T, B, H)``, which the lab's head reads like any cell's.
"""

from __future__ import annotations

import torch
from torch import nn

from rnngrad.errors import InvalidInputError, MissingExtraError

__all__ = ["LIBRARY_CELLS", "LibraryRecurrence"]

#: The cells that come from other libraries.
LIBRARY_CELLS = ("mamba", "mlstm", "slstm")


def _missing(package: str) -> MissingExtraError:
    return MissingExtraError(f"the {package} package is not installed: pip install 'rnngrad[ssm]'")


class LibraryRecurrence(nn.Module):
    """A linear encoder and one block of Mamba, mLSTM or sLSTM, time-major.

    Args:
        cell: ``mamba``, ``mlstm`` or ``slstm``.
        input_size, hidden: the input's and the block's widths.
        max_length: the task's length ``T``; the mLSTM's causal mask is built for
            ``T + 64`` steps (the copy problem's sequences are ``T + 20`` long).
    """

    def __init__(self, cell: str, input_size: int, hidden: int, max_length: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(input_size, hidden)
        self.context = max_length + 64
        if cell == "mamba":
            try:
                from mambapy.mamba import Mamba, MambaConfig
            except ImportError:
                raise _missing("mambapy") from None
            self.block: nn.Module = Mamba(MambaConfig(d_model=hidden, n_layers=1, d_state=16))
            return
        try:
            import xlstm
        except ImportError:
            raise _missing("xlstm") from None
        # Four heads where each keeps at least two units (the sLSTM's gate initialisation
        # spreads over a head's units and needs two), else fewer.
        heads = next(h for h in (4, 2, 1) if hidden % h == 0 and (hidden // h >= 2 or h == 1))
        if cell == "mlstm":
            config = xlstm.xLSTMBlockStackConfig(
                mlstm_block=xlstm.mLSTMBlockConfig(
                    mlstm=xlstm.mLSTMLayerConfig(num_heads=heads, context_length=self.context)
                ),
                context_length=self.context, num_blocks=1, embedding_dim=hidden,
            )  # fmt: skip
        else:
            config = xlstm.xLSTMBlockStackConfig(
                slstm_block=xlstm.sLSTMBlockConfig(
                    slstm=xlstm.sLSTMLayerConfig(backend="vanilla", num_heads=heads),
                    feedforward=None,
                ),
                context_length=self.context, num_blocks=1, embedding_dim=hidden,
                slstm_at="all",
            )  # fmt: skip
        self.block = xlstm.xLSTMBlockStack(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's outputs ``(T, B, H)`` of the inputs ``(T, B, D)``."""
        if x.shape[0] > self.context:
            raise InvalidInputError(
                f"the block was built for sequences of at most {self.context} steps, got "
                f"{x.shape[0]}"
            )
        output: torch.Tensor = self.block(self.encoder(x).transpose(0, 1))
        return output.transpose(0, 1)
