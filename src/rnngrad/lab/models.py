r"""Small recurrent models for the lab, with each remedy as a switch.

Cells: ``rnn`` (tanh), ``relu``, ``lstm``, ``gru``, and the modern
recurrences of :mod:`rnngrad.modern`: ``lru`` (a linear encoder, the LRU with
ring-initialised eigenvalues, its read-out ``Re(C x) + D u`` and a GELU),
``mingru``, ``minlstm`` and ``indrnn`` (its recurrent weights clipped to
``2^(1/T)`` after every optimiser step); one layer and a linear read-out, of
every step (the copy task), of the last step, or (``readout="mean"``) of the
mean of the outputs over the steps, the pooling of Orvieto et al.'s classifiers.
The LRU can be stacked (``layers``): then each layer is the pre-norm residual
block of Orvieto et al. (2023), ``u <- u + GLU(GELU(LRU(LayerNorm(u))))``, with
a position-wise gated linear unit ``GLU(y) = (W_a y) * sigmoid(W_b y)`` between
the recurrences; ``r_min``/``r_max`` set its ring.
Recurrent initialisation of ``W_hh`` (the classic cells):

- ``default``: PyTorch's own, ``U(-1/sqrt(N), 1/sqrt(N))``;
- ``orthogonal``: a Haar-orthogonal matrix (Saxe et al. 2014; per gate block
  for LSTM/GRU);
- ``identity``: ``W_hh = I`` with zero recurrent bias (IRNN, Le et al. 2015;
  per gate block for LSTM/GRU);
- ``radius:R``: the default matrix rescaled to spectral radius ``R``;
- ``chrono:T`` (LSTM): the chrono initialisation of Tallec & Ollivier (2018),
  forget-gate biases ``ln U(1, T - 1)`` and input-gate biases their negatives,
  so that the forget gates keep memories over about ``1..T`` steps.

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
from rnngrad.lab.library_cells import LIBRARY_CELLS, LibraryRecurrence
from rnngrad.modern.lru import LRU

__all__ = [
    "CELLS",
    "CELL_NAMES",
    "READOUTS",
    "LabModel",
    "check_lru_options",
    "check_rate_options",
    "check_readout",
    "parse_init",
]

CELLS = ("rnn", "relu", "lstm", "gru", "rate", "lru", "mingru", "minlstm", "indrnn", "mamba",
         "mlstm", "slstm")  # fmt: skip
#: Each cell's name in figures and tables.
CELL_NAMES = {"rnn": "tanh RNN", "relu": "ReLU RNN", "lstm": "LSTM", "gru": "GRU",
              "rate": "rate network", "lru": "LRU",
              "mingru": "minGRU", "minlstm": "minLSTM", "indrnn": "IndRNN", "mamba": "Mamba",
              "mlstm": "mLSTM", "slstm": "sLSTM"}  # fmt: skip
MODERN = ("lru", "mingru", "minlstm", "indrnn", "mamba", "mlstm", "slstm")
READOUTS = ("last", "mean")


def check_readout(readout: str | None, per_step: bool, task: str) -> None:
    """``last`` or ``mean`` (``None`` is ``last``), for a task read once per sequence."""
    if readout is None:
        return
    if readout not in READOUTS:
        raise InvalidInputError(f"readout must be {' or '.join(READOUTS)}, got {readout!r}")
    if per_step:
        raise InvalidInputError(
            f"readout applies to tasks answered once per sequence; {task} is read at every step"
        )


def check_modern_options(
    cell: str, init: str, orthogonal_constraint: bool, forget_bias: float | None
) -> None:
    """The remedies that do not apply to a modern cell, refused by name."""
    if init != "default":
        raise InvalidInputError(
            f"--init applies to the rnn, relu, lstm and gru cells; {cell} has its own"
        )
    if orthogonal_constraint:
        raise InvalidInputError(
            f"--orthogonal-constraint applies to the rnn and relu cells, not {cell}"
        )
    if forget_bias is not None:
        raise InvalidInputError("forget_bias applies to the lstm cell only")


MAX_LRU_LAYERS = 64


def check_rate_options(
    cell: str, kind: str, orthogonal_constraint: bool, forget_bias: float | None,
    delta: float | None,
) -> None:  # fmt: skip
    """The rate network's options: ``delta`` for it alone; PyTorch's initialisation
    (``U(-1/sqrt(N), 1/sqrt(N))``) and no constraint or gate bias.

    Raises:
        InvalidInputError: naming the option.
    """
    if cell != "rate":
        if delta is not None:
            raise InvalidInputError("delta applies to the rate cell only")
        return
    if delta is not None:
        from rnngrad._checks import check_delta

        check_delta(delta)
    if kind != "default" or orthogonal_constraint or forget_bias is not None:
        raise InvalidInputError(
            "the rate cell takes its default initialisation, without --orthogonal-constraint "
            "or --forget-bias"
        )


def check_lru_options(
    cell: str, layers: int | None, r_min: float | None, r_max: float | None
) -> None:
    """``layers``, ``r_min`` and ``r_max`` are the LRU's: in range, and refused elsewhere."""
    given = [name for name, value in (("layers", layers), ("r_min", r_min), ("r_max", r_max))
             if value is not None]  # fmt: skip
    if given and cell != "lru":
        raise InvalidInputError(f"{' and '.join(given)} apply to the lru cell only, not {cell}")
    if layers is not None and (
        isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= MAX_LRU_LAYERS
    ):
        raise InvalidInputError(
            f"layers must be a whole number in 1..{MAX_LRU_LAYERS}, got {layers!r}"
        )
    low = 0.9 if r_min is None else r_min
    high = 0.999 if r_max is None else r_max
    for name, value in (("r_min", low), ("r_max", high)):
        if not (isinstance(value, int | float) and not isinstance(value, bool)) or not (
            math.isfinite(value)
        ):
            raise InvalidInputError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < low < high < 1.0:
        raise InvalidInputError(
            f"the LRU ring needs 0 < r_min < r_max < 1, got r_min={low}, r_max={high}"
        )


def parse_init(text: str) -> tuple[str, float | None]:
    """``"default"``, ``"orthogonal"``, ``"identity"`` or ``"radius:R"``.

    Raises:
        InvalidInputError: anything else.
    """
    if text in ("default", "orthogonal", "identity"):
        return text, None
    if text.startswith("chrono:"):
        try:
            horizon = float(text.split(":", 1)[1])
        except ValueError:
            horizon = math.nan
        if not (math.isfinite(horizon) and horizon > 2):
            raise InvalidInputError(f"init chrono:T needs a number T > 2, got {text!r}")
        return "chrono", horizon
    if text.startswith("radius:"):
        try:
            radius = float(text.split(":", 1)[1])
        except ValueError:
            radius = math.nan
        if not (math.isfinite(radius) and radius > 0):
            raise InvalidInputError(f"init radius:R needs a positive number R, got {text!r}")
        return "radius", radius
    raise InvalidInputError(
        f"unknown init {text!r}; expected default, orthogonal, identity, radius:R or chrono:T"
    )


class LabModel(nn.Module):
    """One recurrent layer and a linear read-out, at every step or the last.

    Args:
        cell: ``rnn``, ``relu``, ``lstm`` or ``gru``.
        input_size, hidden, output_size: sizes.
        per_step: read out every step (else once per sequence).
        readout: once per sequence, of the ``last`` step or the ``mean`` over the steps.
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
        max_length: int = 100,
        layers: int = 1,
        r_min: float | None = None,
        r_max: float | None = None,
        readout: str | None = None,
        delta: float | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise InvalidInputError(f"unknown cell {cell!r}; expected one of: {', '.join(CELLS)}")
        if hidden < 1:
            raise InvalidInputError(f"hidden must be >= 1, got {hidden}")
        kind, radius = parse_init(init)
        self.cell = cell
        self.per_step = per_step
        check_readout(readout, per_step, "this task")
        self.mean_readout = readout == "mean"
        check_lru_options(cell, None if layers == 1 else layers, r_min, r_max)
        self.layers = layers
        if cell in MODERN:
            check_modern_options(cell, kind, orthogonal_constraint, forget_bias)
            ring = (0.9 if r_min is None else r_min, 0.999 if r_max is None else r_max)
            self._build_modern(cell, input_size, hidden, output_size, max_length, ring)
            return
        if kind == "chrono" and cell != "lstm":
            raise InvalidInputError("init chrono:T applies to the lstm cell only")
        check_rate_options(cell, kind, orthogonal_constraint, forget_bias, delta)
        if cell == "rate":
            from rnngrad.rate.network import RateRNN

            self.rnn: nn.Module = RateRNN(input_size, hidden, delta=0.5 if delta is None else delta)
            self.head = nn.Linear(hidden, output_size)
            return
        if cell in ("rnn", "relu"):
            self.rnn = nn.RNN(input_size, hidden, nonlinearity="tanh" if cell == "rnn" else "relu")
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
            elif kind == "chrono":  # Tallec & Ollivier (2018), gate order i, f, g, o
                assert radius is not None
                forget = torch.log(torch.empty(hidden).uniform_(1.0, radius - 1.0))
                self._parameter("bias_hh_l0")[: 2 * hidden].zero_()
                self._parameter("bias_ih_l0")[hidden : 2 * hidden].copy_(forget)
                self._parameter("bias_ih_l0")[:hidden].copy_(-forget)

    def _build_modern(
        self,
        cell: str,
        input_size: int,
        hidden: int,
        output_size: int,
        max_length: int,
        ring: tuple[float, float],
    ) -> None:
        from rnngrad.modern import LRU, IndRNN, MinGRU, MinLSTM

        if cell == "lru":
            self.encoder: nn.Module | None = nn.Linear(input_size, hidden)
            self.rnn = LRU(hidden, hidden, r_min=ring[0], r_max=ring[1])
            if self.layers > 1:  # the residual blocks; self.rnn is the first one's LRU
                self.upper = nn.ModuleList(
                    LRU(hidden, hidden, r_min=ring[0], r_max=ring[1])
                    for _ in range(self.layers - 1)
                )
                self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(self.layers))
                self.mixers = nn.ModuleList(
                    nn.Linear(hidden, 2 * hidden) for _ in range(self.layers)
                )
        elif cell in LIBRARY_CELLS:  # the encoder is inside the block's wrapper
            self.encoder = None
            self.rnn = LibraryRecurrence(cell, input_size, hidden, max_length)
        else:
            self.encoder = None
            if cell == "mingru":
                self.rnn = MinGRU(input_size, hidden)
            elif cell == "minlstm":
                self.rnn = MinLSTM(input_size, hidden)
            else:
                self.rnn = IndRNN(input_size, hidden, max_length=max_length)
        self.head = nn.Linear(hidden, output_size)

    def after_step(self) -> None:
        """What the cell needs after each optimiser step (IndRNN: clip its weights)."""
        constrain = getattr(self.rnn, "constrain_", None)
        if callable(constrain):
            constrain()

    def spectral_radius(self) -> float:
        """The largest modulus of the recurrence's eigenvalues: of ``W_hh`` (the largest
        over the gate blocks of LSTM/GRU), the LRU's ``lambda``, IndRNN's ``u``; NaN for
        minGRU/minLSTM, Mamba, mLSTM and sLSTM (their coefficients depend on the input, or
        their recurrence is gated per head) and for non-finite weights."""
        with torch.no_grad():
            if self.cell == "lru":
                return max(float(layer.eigenvalues().abs().max()) for layer in self.lru_layers())
            if self.cell == "indrnn":
                recurrent_weights = self.rnn.get_parameter("u")
                return float(recurrent_weights.abs().max())
            if self.cell in ("mingru", "minlstm", *LIBRARY_CELLS):
                return math.nan
            if self.cell == "rate":  # the map's Jacobian at x = 0: (1 - delta) I + delta W
                rate = self.rnn
                weight = rate.get_parameter("weight_hh").detach().double()
                if not torch.isfinite(weight).all():
                    return math.nan
                eye = torch.eye(weight.shape[0], dtype=weight.dtype)
                delta = float(getattr(rate, "delta"))  # noqa: B009 - a module attribute
                jacobian = (1.0 - delta) * eye + delta * weight
                return float(torch.linalg.eigvals(jacobian).abs().max())
            weight = self.recurrent_matrix().detach().double()
            hidden = weight.shape[1]
            if not torch.isfinite(weight).all():
                return math.nan
            return float(torch.linalg.eigvals(weight.reshape(-1, hidden, hidden)).abs().max())

    def lru_layers(self) -> list[LRU]:
        """The LRU layers, bottom first (one unless stacked)."""
        layers = [self.rnn, *getattr(self, "upper", ())]
        assert all(isinstance(layer, LRU) for layer in layers)
        return layers

    def recurrent_matrix(self) -> torch.Tensor:
        """``W_hh`` as used in the forward pass (after any parametrization)."""
        weight = getattr(self.rnn, "weight_hh_l0")  # noqa: B009 - a parametrization's property
        assert isinstance(weight, torch.Tensor)
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_states(x)[0]

    def forward_with_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The prediction and the recurrent module's outputs ``h_1..h_T`` ``(T, B, H)``."""
        if self.cell in MODERN:
            if self.encoder is not None and self.layers > 1:
                output, states = self._stacked_lru(self.encoder(x))
            elif self.encoder is not None:  # the LRU: encoder, scan, read-out, GELU
                encoded = self.encoder(x)
                states = self.rnn(encoded)
                # a head that reads the last step only needs that step's read-out
                read = slice(-1, None) if self._last_only else slice(None)
                output = nn.functional.gelu(self.rnn.read(states[read], encoded[read]))  # type: ignore[operator]
            else:
                output = states = self.rnn(x)
            return self.read_out(output), states
        output, _ = self.rnn(x)
        return self.read_out(output), output

    @property
    def _last_only(self) -> bool:
        return not (self.per_step or self.mean_readout)

    def read_out(self, outputs: torch.Tensor) -> torch.Tensor:
        """The prediction from the outputs ``(T, B, H)`` under the head: at every step, at
        the last, or of their mean over the steps."""
        if self.per_step:
            result: torch.Tensor = self.head(outputs)
        elif self.mean_readout:
            result = self.head(outputs.mean(dim=0))
        else:
            result = self.head(outputs[-1])
        return result

    def _stacked_lru(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The residual LRU blocks; returns the last block's output and the first's states.

        When the head reads the last step only, the top block computes that step alone:
        its LRU's last state as one weighted sum (:meth:`LRU.final_state`, no scan) and
        its read-out, GELU, GLU and residual at that step (``(1, B, H)`` is returned); the
        same numbers, a third fewer trajectory-sized products in training."""
        first_states: torch.Tensor | None = None
        layers = self.lru_layers()
        for index, (layer, norm, mixer) in enumerate(
            zip(layers, self.norms, self.mixers, strict=True)
        ):
            z = norm(u)
            if index == len(layers) - 1 and first_states is not None and self._last_only:
                y = nn.functional.gelu(layer.read(layer.final_state(z).unsqueeze(0), z[-1:]))
                return u[-1:] + nn.functional.glu(mixer(y), dim=-1), first_states
            states = layer(z)
            if first_states is None:
                first_states = states
            y = nn.functional.gelu(layer.read(states, z))
            u = u + nn.functional.glu(mixer(y), dim=-1)
        assert first_states is not None
        return u, first_states
