r"""Small recurrent models for the lab, with each remedy as a switch.

Cells: ``rnn`` (tanh), ``relu``, ``lstm``, ``gru``, one layer and a linear
read-out. Recurrent initialisation of ``W_hh``:

- ``default``: PyTorch's own, ``U(-1/sqrt(N), 1/sqrt(N))``;
- ``orthogonal``: a Haar-orthogonal matrix (Saxe et al. 2014; per gate block
  for LSTM/GRU);
- ``identity``: ``W_hh = I`` with zero recurrent bias (IRNN, Le et al. 2015;
  per gate block for LSTM/GRU);
- ``radius:R``: the default matrix rescaled to spectral radius ``R``.

``orthogonal_constraint`` keeps ``W_hh`` orthogonal during training through
``torch.nn.utils.parametrizations.orthogonal`` (plain RNN cells, whose
``W_hh`` is square). ``forget_bias`` sets the LSTM forget-gate biases
(Gers et al. 2000; Jozefowicz et al. 2015 recommend 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rnngrad.errors import InvalidInputError

__all__ = ["CELLS", "LabModel", "parse_init"]

CELLS = ("rnn", "relu", "lstm", "gru")


def parse_init(text: str) -> tuple[str, float | None]:
    """``"default"``, ``"orthogonal"``, ``"identity"`` or ``"radius:R"``.

    Raises:
        InvalidInputError: anything else.
    """
    if text in ("default", "orthogonal", "identity"):
        return text, None
    if text.startswith("radius:"):
        try:
            radius = float(text.split(":", 1)[1])
        except ValueError:
            radius = math.nan
        if not (math.isfinite(radius) and radius > 0):
            raise InvalidInputError(f"init radius:R needs a positive number R, got {text!r}")
        return "radius", radius
    raise InvalidInputError(
        f"unknown init {text!r}; expected default, orthogonal, identity or radius:R"
    )


class LabModel(nn.Module):
    """One recurrent layer and a linear read-out, at every step or the last.

    Args:
        cell: ``rnn``, ``relu``, ``lstm`` or ``gru``.
        input_size, hidden, output_size: sizes.
        per_step: read out every step (else only the last).
        init: see the module docstring.
        orthogonal_constraint: parametrize ``W_hh`` as orthogonal.
        forget_bias: LSTM forget-gate bias (``None``: PyTorch's default).
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden: int,
        output_size: int,
        *,
        per_step: bool,
        init: str = "default",
        orthogonal_constraint: bool = False,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise InvalidInputError(f"unknown cell {cell!r}; expected one of: {', '.join(CELLS)}")
        if hidden < 1:
            raise InvalidInputError(f"hidden must be >= 1, got {hidden}")
        kind, radius = parse_init(init)
        if cell in ("rnn", "relu"):
            self.rnn: nn.Module = nn.RNN(
                input_size, hidden, nonlinearity="tanh" if cell == "rnn" else "relu"
            )
        elif cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden)
        else:
            self.rnn = nn.GRU(input_size, hidden)
        self.head = nn.Linear(hidden, output_size)
        self.per_step = per_step
        self._initialise(kind, radius, hidden)
        if forget_bias is not None:
            if cell != "lstm":
                raise InvalidInputError("forget_bias applies to the lstm cell only")
            with torch.no_grad():
                self._parameter("bias_ih_l0")[hidden : 2 * hidden].fill_(forget_bias)
                self._parameter("bias_hh_l0")[hidden : 2 * hidden].zero_()
        if orthogonal_constraint:
            if cell not in ("rnn", "relu"):
                raise InvalidInputError(
                    "the orthogonal constraint needs a square W_hh: use the rnn or relu cell"
                )
            nn.utils.parametrizations.orthogonal(self.rnn, "weight_hh_l0")

    def _parameter(self, name: str) -> torch.Tensor:
        return self.rnn.get_parameter(name)

    def _initialise(self, kind: str, radius: float | None, hidden: int) -> None:
        weight = self._parameter("weight_hh_l0")
        blocks = weight.shape[0] // hidden
        with torch.no_grad():
            if kind == "orthogonal":
                for block in range(blocks):
                    nn.init.orthogonal_(weight[block * hidden : (block + 1) * hidden])
            elif kind == "identity":
                for block in range(blocks):
                    weight[block * hidden : (block + 1) * hidden].copy_(torch.eye(hidden))
                self._parameter("bias_hh_l0").zero_()
                if blocks == 1:
                    self._parameter("bias_ih_l0").zero_()
            elif kind == "radius":
                assert radius is not None
                for block in range(blocks):
                    part = weight[block * hidden : (block + 1) * hidden]
                    current = torch.linalg.eigvals(part).abs().max()
                    part.mul_(radius / current)

    def recurrent_matrix(self) -> torch.Tensor:
        """``W_hh`` as used in the forward pass (after any parametrization)."""
        weight = getattr(self.rnn, "weight_hh_l0")  # noqa: B009 - a parametrization's property
        assert isinstance(weight, torch.Tensor)
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_states(x)[0]

    def forward_with_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The prediction and the recurrent module's outputs ``h_1..h_T`` ``(T, B, H)``."""
        output, _ = self.rnn(x)
        result: torch.Tensor = self.head(output if self.per_step else output[-1])
        return result, output

    def read_out(self, states: torch.Tensor) -> torch.Tensor:
        """The prediction from the recurrent outputs (the head at every or the last step)."""
        result: torch.Tensor = self.head(states if self.per_step else states[-1])
        return result
