"""The module's own fused kernel, run one layer at a time, and what it saves.

``nn.RNN``/``nn.LSTM``/``nn.GRU`` call one fused kernel for all layers, which
returns only the top layer's outputs and the final states. Calling the same
kernel (``torch.rnn_tanh``, ``torch.rnn_relu``, ``torch.lstm``, ``torch.gru``)
with one layer's slice of the module's own parameters yields every layer's
outputs, which the exact backward recursion of :mod:`rnngrad.profile.recursion` needs. In
train mode the dropout between layers is applied here with masks drawn from a
given generator, so that they are known to the recursion.

Packed sequences (``torch.nn.utils.rnn.PackedSequence``) run through the
kernel's packed variant, so every sequence covers exactly its own steps. What
is saved is padded and time-major, in the packed batch's length-sorted order
(:class:`Packing` converts both ways); padding steps hold zeros.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnngrad.cells import FUSED_KERNELS, RecurrentLayout, kernel_weights, layer_weights
from rnngrad.devices import drawn
from rnngrad.errors import InvalidInputError, ShapeError
from rnngrad.profile.forward_loops import GruSaved, LstmSaved, gru_layer_forward, lstm_layer_forward

__all__ = [
    "Packing",
    "Trajectory",
    "initial_state",
    "kernel_notes_silenced",
    "layer_forward",
    "profile_memory_estimate",
    "reverse_within",
]


@dataclass(frozen=True)
class Packing:
    """A packed batch: its lengths and the maps between packed data and padded steps.

    Attributes:
        lengths: ``(B,)`` int64 on the CPU, in the packed (length-sorted,
            descending) order.
        batch_sizes: the ``PackedSequence``'s own, sequences alive per step.
        sorted_indices, unsorted_indices: the ``PackedSequence``'s own
            permutations (``None`` when the batch was packed already sorted).
        valid: ``(T, B)`` bool, ``True`` at the steps a sequence has (sorted order).
    """

    lengths: torch.Tensor
    batch_sizes: torch.Tensor
    sorted_indices: torch.Tensor | None
    unsorted_indices: torch.Tensor | None
    valid: torch.Tensor

    @classmethod
    def of(cls, packed: PackedSequence) -> Packing:
        batch_sizes = packed.batch_sizes.to("cpu", torch.int64)
        steps, batch = batch_sizes.numel(), int(batch_sizes[0])
        alive = torch.arange(batch).unsqueeze(0) < batch_sizes.unsqueeze(1)  # (T, B)
        lengths = alive.sum(dim=0)
        return cls(
            lengths=lengths,
            batch_sizes=packed.batch_sizes,
            sorted_indices=packed.sorted_indices,
            unsorted_indices=packed.unsorted_indices,
            valid=alive.to(packed.data.device).reshape(steps, batch),
        )

    def pad(self, data: torch.Tensor) -> torch.Tensor:
        """Packed ``(N, F)`` to padded ``(T, B, F)`` with zeros (differentiable)."""
        steps, batch = self.valid.shape
        padded = data.new_zeros(steps, batch, data.shape[-1])
        return padded.index_put((self.valid,), data)

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """Padded ``(T, B, F)`` to packed ``(N, F)``: row-major boolean selection is packing."""
        return padded[self.valid]

    def to_sorted(self, batch_last: torch.Tensor, dim: int) -> torch.Tensor:
        """A tensor in the user's batch order to the packed order, along ``dim``."""
        if self.sorted_indices is None:
            return batch_last
        return batch_last.index_select(dim, self.sorted_indices.to(batch_last.device))

    def to_user(self, value: torch.Tensor, dim: int) -> torch.Tensor:
        """A tensor in the packed order back to the user's batch order, along ``dim``."""
        if self.unsorted_indices is None:
            return value
        return value.index_select(dim, self.unsorted_indices.to(value.device))


def reverse_within(value: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence's first ``len_b`` steps of a time-major ``(T, B, ...)`` tensor.

    Padding stays where it is, at the end. An involution; with no lengths (or all
    equal to ``T``) it is ``flip(0)``. This is the processing order of a reverse
    direction with the padding last, as for a forward direction.
    """
    steps = value.shape[0]
    if lengths is None or bool((lengths == steps).all()):
        return value.flip(0)
    position = torch.arange(steps).unsqueeze(1)  # (T, 1)
    length = lengths.unsqueeze(0)  # (1, B)
    index = torch.where(position < length, length - 1 - position, position).to(value.device)
    index = index.reshape(*index.shape, *([1] * (value.dim() - 2))).expand_as(value)
    return value.gather(0, index)


@dataclass
class Trajectory:
    """What the layer-by-layer forward saves (time-major, input order).

    For a packed batch everything is padded (zeros at padding steps) and in the
    packed, length-sorted batch order; ``packing`` says how to map back.
    """

    inputs: list[torch.Tensor]  # per layer, after dropout: (T, B, D_l)
    outputs: list[torch.Tensor]  # per layer: (T, B, dirs * P)
    masks: list[torch.Tensor | None]  # dropout mask (scaled) applied to layer l's output
    h0: torch.Tensor  # (L * dirs, B, P)
    c0: torch.Tensor | None  # (L * dirs, B, H)
    unbatched: bool
    packing: Packing | None = None
    # per layer and direction, a GRU's or LSTM's gates from its own forward loop
    saved_gates: list[list[GruSaved | LstmSaved] | None] | None = None


# Trajectory-sized arrays one layer and direction's recursion (rnngrad.profile.recursion) adds at
# its peak, in units of hidden_size per step and sequence (measured: tests).
_RECURSION_WIDTH = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 10, "gru": 8}


def profile_memory_estimate(layout: RecurrentLayout, steps_times_batch: int, item: int) -> float:
    """Bytes a profile holds at its peak beyond the model and its input, with a margin.

    Per step and sequence: one copy of the input and every layer's output (the
    saved trajectory), the loss's gradient at the outputs and the recursion's
    copies of it (three outputs' width), one layer and direction's recursion, and
    with layers below it the gate gradients of all steps and the gradient handed
    down (three more). Measured peaks lie between 0.4 and 0.75 of it (tests).
    """
    width = layout.num_directions * layout.state_size
    hidden = layout.hidden_size
    per_step = layout.input_size + (layout.num_layers + 3) * width
    per_step += _RECURSION_WIDTH[layout.kind] * hidden
    if layout.num_layers > 1:
        per_step += layout.gates * hidden + 3 * width
    return 1.5 * steps_times_batch * per_step * item


def _check_profile_memory(layout: RecurrentLayout, x: torch.Tensor | PackedSequence) -> None:
    """Refuse a profile whose saved trajectory and recursion would exceed the budget."""
    from rnngrad.limits import check_memory

    data = x.data if isinstance(x, PackedSequence) else x
    steps_times_batch = data.numel() // max(layout.input_size, 1)
    if isinstance(x, PackedSequence):
        steps_times_batch = int(x.batch_sizes.numel()) * int(x.batch_sizes[0])
    check_memory(
        profile_memory_estimate(layout, steps_times_batch, data.element_size()),
        f"the profile of {steps_times_batch:,} steps x sequences",
    )


def layer_forward(
    module: nn.Module,
    layout: RecurrentLayout,
    x: torch.Tensor | PackedSequence,
    hx: tuple[torch.Tensor, torch.Tensor | None],
    generator: torch.Generator,
    *,
    own_loop: bool = False,
) -> tuple[Trajectory, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run the fused kernel one layer at a time; return the trajectory and (out, h_n, c_n).

    For a packed ``x``, ``hx`` and the returned ``out`` (packed data), ``h_n`` and
    ``c_n`` are in the packed (sorted) batch order. With ``own_loop`` a GRU's or an
    LSTM's top layer runs the loops of :mod:`rnngrad.profile.forward_loops` instead of the
    kernel (the same function, to rounding) and keeps its gates for the recursion.
    """
    _check_profile_memory(layout, x)
    packing = Packing.of(x) if isinstance(x, PackedSequence) else None
    unbatched = not isinstance(x, PackedSequence) and x.dim() == 2
    if isinstance(x, PackedSequence):
        seq = x.data
    else:
        seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if layout.batch_first else x)
    dirs = layout.num_directions
    h0, c0 = hx
    fused = FUSED_KERNELS[layout.kind]
    inputs, outputs, masks = [], [], []
    finals_h, finals_c = [], []
    own_loop = own_loop and layout.kind in ("gru", "lstm")
    saved_gates: list[list[GruSaved | LstmSaved] | None] = []
    with torch.no_grad(), kernel_notes_silenced():
        for layer in range(layout.num_layers):
            weights = kernel_weights(module, layout, layer)
            state = slice(layer * dirs, (layer + 1) * dirs)
            layer_hx: Any = (h0[state], c0[state]) if c0 is not None else h0[state]
            # Only the top layer keeps its gates: a lower layer's would be held until
            # the recursion reaches it, more memory than recomputing them then.
            looped = own_loop and layer == layout.num_layers - 1
            saved_gates.append(None)
            if looped:
                padded = seq if packing is None else packing.pad(seq)
                padded_out, final_h, final_c, kept = _own_loop_layer(
                    module, layout, layer, padded, h0[state],
                    None if c0 is None else c0[state], packing,
                )  # fmt: skip
                saved_gates[-1] = kept
                packed_out = padded_out if packing is None else packing.pack(padded_out)
                result: Any = (packed_out, final_h, final_c)
            elif packing is None:
                result = fused(
                    seq, layer_hx, weights, layout.bias, 1, 0.0, False, layout.bidirectional, False
                )
            else:
                result = fused(
                    seq,
                    packing.batch_sizes,
                    layer_hx,
                    weights,
                    layout.bias,
                    1,
                    0.0,
                    False,
                    layout.bidirectional,
                )
            out = result[0]
            if looped:
                inputs.append(padded)
                outputs.append(padded_out)
            else:
                inputs.append(seq if packing is None else packing.pad(seq))
                outputs.append(out if packing is None else packing.pad(out))
            finals_h.append(result[1])
            if c0 is not None:
                finals_c.append(result[2])
            mask = None
            last = layer == layout.num_layers - 1
            if module.training and layout.dropout > 0 and not last:
                keep = 1.0 - layout.dropout
                shape = outputs[-1].shape
                # drawn where the generator lives (the CPU by default), used where out is
                draw = drawn(
                    *shape, generator=generator, dtype=out.dtype, device=out.device, uniform=True
                )
                mask = (draw < keep).to(out.dtype) / keep
                seq = out * (mask if packing is None else packing.pack(mask))
            else:
                seq = out
            masks.append(mask)
    trajectory = Trajectory(
        inputs, outputs, masks, h0, c0, unbatched, packing, saved_gates if own_loop else None
    )
    h_n = torch.cat(finals_h, dim=0)
    c_n = torch.cat(finals_c, dim=0) if c0 is not None else None
    return trajectory, (seq if packing is not None else outputs[-1]), h_n, c_n


def _own_loop_layer(
    module: nn.Module,
    layout: RecurrentLayout,
    layer: int,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    packing: Packing | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[GruSaved | LstmSaved]]:
    """One GRU or LSTM layer, every direction, by its own forward loop: the padded
    outputs ``(T, B, dirs * P)``, the final states ``(dirs, B, P)`` (and ``(dirs, B, H)``
    cell states) and each direction's gates."""
    lengths = None if packing is None else packing.lengths
    batch_sizes = None if packing is None else packing.batch_sizes
    last = None if lengths is None else lengths.to(x.device) - 1
    rows = torch.arange(x.shape[1], device=x.device)

    def final(values: torch.Tensor) -> torch.Tensor:  # each sequence's own last step
        return values[-1] if last is None else values[last, rows]

    outputs, finals_h, finals_c, kept = [], [], [], []
    for direction in range(layout.num_directions):
        reverse = direction == 1
        order = reverse_within(x, lengths) if reverse else x
        weights = layer_weights(module, layer, direction)
        saved: GruSaved | LstmSaved
        if c0 is None:
            out, saved = gru_layer_forward(weights, order, h0[direction], batch_sizes)
        else:
            out, saved = lstm_layer_forward(
                weights, order, h0[direction], c0[direction], batch_sizes
            )
            finals_c.append(final(saved.c))
        finals_h.append(final(out))
        outputs.append(reverse_within(out, lengths) if reverse else out)
        kept.append(saved)
    final_c = torch.stack(finals_c) if finals_c else None
    return torch.cat(outputs, dim=2), torch.stack(finals_h), final_c, kept


def initial_state(
    layout: RecurrentLayout, x: torch.Tensor | PackedSequence, hx: Any, *, detach: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(h0, c0)`` as the kernels take them: zeros, or ``hx`` checked (and, for a
    packed batch, put into its sorted order); detached unless ``detach=False``."""
    if isinstance(x, PackedSequence):
        batch, data = int(x.batch_sizes[0]), x.data
    else:
        batch = 1 if x.dim() == 2 else (x.shape[0] if layout.batch_first else x.shape[1])
        data = x
    rows = layout.num_layers * layout.num_directions
    shape_h = (rows, batch, layout.state_size)
    shape_c = (rows, batch, layout.hidden_size)
    if hx is None:
        h0 = torch.zeros(shape_h, dtype=data.dtype, device=data.device)
        c0 = None
        if layout.kind == "lstm":
            c0 = torch.zeros(shape_c, dtype=data.dtype, device=data.device)
        return h0, c0
    if layout.kind == "lstm":
        if not (isinstance(hx, tuple | list) and len(hx) == 2):
            raise InvalidInputError("an LSTM's initial state must be a pair (h0, c0)")
        h0, c0 = hx[0], hx[1]
    else:
        h0, c0 = hx, None
    for name, value in (("h0", h0), ("c0", c0)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise InvalidInputError(f"{name} must be a tensor, got {type(value).__name__}")
    if not isinstance(x, PackedSequence) and x.dim() == 2:
        h0 = h0.unsqueeze(1)
        c0 = c0.unsqueeze(1) if c0 is not None else None
    if tuple(h0.shape) != shape_h:
        raise ShapeError(f"h0 must have shape {shape_h}, got {tuple(h0.shape)}")
    if c0 is not None and tuple(c0.shape) != shape_c:
        raise ShapeError(f"c0 must have shape {shape_c}, got {tuple(c0.shape)}")
    if h0.dtype != data.dtype or (c0 is not None and c0.dtype != data.dtype):
        raise InvalidInputError(f"the initial state must be {data.dtype} like the input")
    if detach:
        h0, c0 = h0.detach(), (c0.detach() if c0 is not None else None)
    if isinstance(x, PackedSequence) and x.sorted_indices is not None:
        order = x.sorted_indices.to(h0.device)
        h0 = h0.index_select(1, order)
        c0 = c0.index_select(1, order) if c0 is not None else None
    return h0, c0


@contextmanager
def kernel_notes_silenced() -> Iterator[None]:
    """Silences the kernels' notes about their own implementation choices: rnngrad calls
    them, the user did not, and the numbers are the same.

    - CPU float32 LSTMs with a projection, which oneDNN does not support;
    - cuDNN's "weights are not part of single contiguous chunk of memory": rnngrad
      hands the kernel one layer's weights at a time (and, in the fused backward, input
      weights widened by extra columns), never the module's flat buffer, so cuDNN copies
      them into one buffer per call: one layer's weights, small beside the ``T`` steps
      the call runs. The user's module and its flat buffer are untouched.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        warnings.filterwarnings(
            "ignore", message="RNN module weights are not part of single contiguous chunk"
        )
        yield
