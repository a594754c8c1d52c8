"""One view of PyTorch's recurrent modules: their kind, shape and per-layer weights.

``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` keep their parameters as
``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}[_reverse]``, the biases
``bias_ih_l{k}``/``bias_hh_l{k}`` and, for an LSTM with ``proj_size > 0``,
``weight_hr_l{k}``. Gates are stacked along the first axis in PyTorch's order:
``(i, f, g, o)`` for LSTM, ``(r, z, n)`` for GRU. :class:`RecurrentLayout`
describes a module; :func:`layer_weights` hands out the module's own tensors
(never copies), :func:`kernel_weights` one layer's in the order the fused kernels
(:data:`FUSED_KERNELS`) take them, and :func:`find_recurrent_module` locates the one
recurrent module inside a larger model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from rnngrad.errors import UnsupportedModuleError

__all__ = [
    "FUSED_KERNELS",
    "CellKind",
    "LayerWeights",
    "RecurrentLayout",
    "describe_module",
    "find_recurrent_module",
    "find_recurrent_modules",
    "is_cell",
    "kernel_weights",
    "layer_weights",
]

CellKind = Literal["rnn_tanh", "rnn_relu", "lstm", "gru", "custom"]


@dataclass(frozen=True)
class RecurrentLayout:
    """The shape of a fused recurrent module.

    Attributes:
        kind: ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"``, ``"gru"``, or
            ``"custom"`` for a cell profiled through the cell protocol.
        input_size, hidden_size: as in the module.
        proj_size: LSTM projection size, 0 when absent.
        num_layers: stacked layers.
        bidirectional: two directions per layer.
        batch_first: inputs are ``(B, T, D)`` instead of ``(T, B, D)``.
        bias: the module has biases.
        dropout: dropout probability between layers (train mode only).
    """

    kind: CellKind
    input_size: int
    hidden_size: int
    proj_size: int
    num_layers: int
    bidirectional: bool
    batch_first: bool
    bias: bool
    dropout: float

    @property
    def num_directions(self) -> int:
        """1, or 2 when bidirectional."""
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """Size of ``h_t``: ``proj_size`` when projecting, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    @property
    def gates(self) -> int:
        """Gate blocks stacked in ``weight_hh``: 1 (RNN), 4 (LSTM), 3 (GRU)."""
        return {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "custom": 1}[self.kind]

    @classmethod
    def single(
        cls,
        kind: CellKind,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        batch_first: bool = False,
    ) -> RecurrentLayout:
        """One layer, one direction: a cell, a diagonal recurrence, a cell of one's own."""
        return cls(
            kind=kind,
            input_size=int(input_size),
            hidden_size=int(hidden_size),
            proj_size=0,
            num_layers=1,
            bidirectional=False,
            batch_first=batch_first,
            bias=bias,
            dropout=0.0,
        )

    def layer_input_size(self, layer: int) -> int:
        """Feature size of layer ``layer``'s input."""
        return self.input_size if layer == 0 else self.state_size * self.num_directions


@dataclass(frozen=True)
class LayerWeights:
    """The module's own parameter tensors of one layer and direction.

    Shapes (``G`` gate blocks, ``H`` hidden, ``P`` state size, ``D`` input):
    ``w_ih (G*H, D)``, ``w_hh (G*H, P)``, ``b_ih``/``b_hh (G*H,)`` or ``None``,
    ``w_hr (P, H)`` or ``None``.
    """

    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None
    w_hr: torch.Tensor | None


CELLS = (nn.RNNCell, nn.LSTMCell, nn.GRUCell)
FUSED = (nn.RNN, nn.LSTM, nn.GRU)


def _recurrent_types() -> tuple[type[nn.Module], ...]:
    """Fused modules, their cells and the diagonal recurrences of :mod:`rnngrad.modern`."""
    from rnngrad.modern.base import DiagonalRecurrence

    return (*FUSED, *CELLS, DiagonalRecurrence)


def is_cell(module: nn.Module) -> bool:
    """``nn.RNNCell``, ``nn.LSTMCell`` or ``nn.GRUCell``: one step per call."""
    return isinstance(module, CELLS)


def describe_module(module: nn.Module) -> RecurrentLayout:
    """The layout of an ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``, or of a cell
    (``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``: one layer, one direction).

    Raises:
        UnsupportedModuleError: any other module.
    """
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(module, DiagonalRecurrence):
        return RecurrentLayout.single("custom", module.input_size, module.state_size)
    if isinstance(module, CELLS):
        cell_kind: CellKind
        if isinstance(module, nn.LSTMCell):
            cell_kind = "lstm"
        elif isinstance(module, nn.GRUCell):
            cell_kind = "gru"
        else:
            cell_kind = "rnn_relu" if module.nonlinearity == "relu" else "rnn_tanh"
        return RecurrentLayout.single(
            cell_kind, module.input_size, module.hidden_size, bias=bool(module.bias)
        )
    if isinstance(module, nn.LSTM):
        kind: CellKind = "lstm"
    elif isinstance(module, nn.GRU):
        kind = "gru"
    elif isinstance(module, nn.RNN):
        kind = "rnn_relu" if module.nonlinearity == "relu" else "rnn_tanh"
    else:
        raise UnsupportedModuleError(
            f"unsupported module {type(module).__name__}; expected nn.RNN, nn.LSTM, nn.GRU or "
            "their cells (or a custom cell through rnngrad.cell_gradient_profile)"
        )
    return RecurrentLayout(
        kind=kind,
        input_size=int(module.input_size),
        hidden_size=int(module.hidden_size),
        proj_size=int(getattr(module, "proj_size", 0)),
        num_layers=int(module.num_layers),
        bidirectional=bool(module.bidirectional),
        batch_first=bool(module.batch_first),
        bias=bool(module.bias),
        dropout=float(module.dropout),
    )


def layer_weights(module: nn.Module, layer: int, direction: int) -> LayerWeights:
    """The parameters of ``layer`` (0-based) and ``direction`` (0 forward, 1 reverse);
    a cell has one layer and one direction."""
    suffix = f"l{layer}" + ("_reverse" if direction == 1 else "")
    if isinstance(module, CELLS):
        if (layer, direction) != (0, 0):
            raise UnsupportedModuleError("a cell has one layer and one direction")
        biases = (module.bias_ih, module.bias_hh) if module.bias else (None, None)
        return LayerWeights(module.weight_ih, module.weight_hh, biases[0], biases[1], None)

    def get(name: str) -> torch.Tensor | None:
        value = getattr(module, f"{name}_{suffix}", None)
        return value if isinstance(value, torch.Tensor) else None

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    if w_ih is None or w_hh is None:
        raise UnsupportedModuleError(f"the module has no weights for layer {layer}, {suffix}")
    return LayerWeights(w_ih, w_hh, get("bias_ih"), get("bias_hh"), get("weight_hr"))


def find_recurrent_module(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """The recurrent module inside ``model``: by ``name``, or the only one there is.

    Returns:
        ``(name, module)``; the name is ``""`` when ``model`` itself is the module.

    Raises:
        UnsupportedModuleError: no such name, none found, or several found
            without a name to choose.
    """
    recurrent = _recurrent_types()
    if name is not None:
        found = dict(model.named_modules()).get(name)
        if found is None:
            raise UnsupportedModuleError(f"the model has no submodule named {name!r}")
        describe_module(found)
        return name, found
    if isinstance(model, recurrent):
        return "", model
    matches = [(n, m) for n, m in model.named_modules() if isinstance(m, recurrent)]
    if not matches:
        raise UnsupportedModuleError(
            f"{type(model).__name__} contains no nn.RNN, nn.LSTM or nn.GRU, nor one of their cells"
        )
    if len(matches) > 1:
        names = ", ".join(n for n, _ in matches)
        raise UnsupportedModuleError(
            f"{type(model).__name__} contains several recurrent modules ({names}); name one "
            "(module=NAME, or --module NAME on the command line)"
        )
    return matches[0]


def find_recurrent_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every recurrent module inside ``model`` (fused modules and cells), with its name,
    in registration order; ``[("", model)]`` when ``model`` is one itself."""
    recurrent = _recurrent_types()
    if isinstance(model, recurrent):
        return [("", model)]
    return [(n, m) for n, m in model.named_modules() if isinstance(m, recurrent)]


FUSED_KERNELS: dict[str, Callable[..., Any]] = {
    "rnn_tanh": torch.rnn_tanh,
    "rnn_relu": torch.rnn_relu,
    "lstm": torch.lstm,
    "gru": torch.gru,
}


def kernel_weights(module: nn.Module, layout: RecurrentLayout, layer: int) -> list[torch.Tensor]:
    """One layer's parameters, both directions, in the order the fused kernels take."""
    weights: list[torch.Tensor] = []
    for direction in range(layout.num_directions):
        w = layer_weights(module, layer, direction)
        weights += [w.w_ih, w.w_hh]
        if w.b_ih is not None and w.b_hh is not None:
            weights += [w.b_ih, w.b_hh]
        if w.w_hr is not None:
            weights.append(w.w_hr)
    return weights
