r"""Profiles of recurrent modules called step by step: cells in a loop, decoders, and
several recurrent modules of one model at once.

A decoder loops over time with ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``, or
calls a fused ``nn.RNN``/``nn.LSTM``/``nn.GRU`` once per step, and feeds each
call's state into the next. The total gradient at the state of call ``t``
includes every path through the later calls and the head, which autograd
already follows through the model's own graph; what is missing is a handle on
each state. So every call's new state gets a zero *probe* added,

.. math:: \tilde h_t = h_t + p_t, \quad p_t = 0, \qquad
          \frac{\partial L}{\partial p_t} = \frac{dL}{dh_t},

and the rest of the model computes with ``\tilde h_t``; one
``torch.autograd.grad`` of the loss with respect to all probes gives, at every
step, the gradient through everything but the module's own recurrence inside
the call (the retain_grad idea without touching ``.grad`` fields). A fused
module's call runs its own kernel one layer at a time (with autograd), with a
probe on every layer's output sequence and the final states read from the
probed outputs, so that the layers above, the head and the later calls all
reach the probes; an LSTM's cell state gets a probe at the end of each call.
The exact recursion of :mod:`rnngrad.profile.recursion` over each call's saved activations
then adds the recurrence within the call (and ``c_t -> h_t``), which gives the
total ``dL/dh_t`` and ``dL/dc_t`` at every step.

The time axis of the profile is the calls' steps in call order. Summaries follow
that order (a bidirectional module called step by step has none and is refused).
Saturation is counted by the same code as for a whole sequence
(:func:`rnngrad.profile.recursion.backward_direction` on each call's saved activations).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnngrad.cells import (
    FUSED_KERNELS,
    RecurrentLayout,
    describe_module,
    is_cell,
    kernel_weights,
    layer_weights,
)
from rnngrad.devices import drawn
from rnngrad.errors import InvalidInputError, ShapeError
from rnngrad.profile.carried import CarriedSeed, carried_seed
from rnngrad.profile.fused_forward import Packing, initial_state
from rnngrad.profile.model_call import (
    check_input,
    from_time_major,
    loss_gradients,
    recorded_calls,
    recurrent_base,
)
from rnngrad.profile.recursion import backward_direction

__all__ = ["StepRecorder", "probe_gradients", "recording"]


@dataclass
class _Activations:
    """One call of one layer, detached, for the saturation count (time-major)."""

    x: torch.Tensor  # (T_c, B, D)
    h: torch.Tensor  # (T_c, B, P)
    h0: torch.Tensor  # (B, P)
    c0: torch.Tensor | None  # (B, H)
    # A packed call: padded and in its length-sorted order, as the recursion takes it.
    packing: Packing | None = None


@dataclass
class _Call:
    # The probes are the leaves themselves (a view of a leaf is not in the graph): per
    # layer (T_c, B, P), or (B, P)/(P,) for a cell; the cell state's at the call's end.
    probes_h: list[torch.Tensor]
    probes_c: list[torch.Tensor]
    activations: list[_Activations]
    output: torch.Tensor  # the top layer's probed output, time-major (T_c, B, P)
    steps: int
    batch: int
    # Per layer, the probed states themselves: (T_c, B, P), and the cell state's at the
    # call's end (B, H); what the carried gradient starts from (the user's batch order).
    states_h: list[torch.Tensor] = field(default_factory=list)
    states_c: list[torch.Tensor] = field(default_factory=list)
    # (B,) each sequence's steps in this call (a packed call's lengths), user's order.
    lengths: torch.Tensor | None = None
    packing: Packing | None = None

    def steps_of(self) -> torch.Tensor:
        """``(B,)`` each sequence's steps in this call."""
        if self.lengths is not None:
            return self.lengths
        return torch.full((self.batch,), self.steps, dtype=torch.int64)

    def direct_h(self, grads: dict[int, torch.Tensor], layer: int) -> torch.Tensor:
        """``(T_c, B, P)`` the probe's gradient, padded, user's order."""
        grad = grads[id(self.probes_h[layer])]
        if self.packing is None:
            return grad.reshape(self.steps, self.batch, -1)
        return self.packing.to_user(self.packing.pad(grad), 1)


@dataclass
class StepRecorder:
    """Instruments one recurrent module: every call gets probes; see the module docstring."""

    name: str
    module: nn.Module
    layout: RecurrentLayout
    generator: torch.Generator | None
    calls: list[_Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.layout.bidirectional:
            raise InvalidInputError(
                f"{self.name or 'the module'} is bidirectional and is called more than once: a "
                "reverse direction called step by step has no time order to profile; call it "
                "once on the whole sequence"
            )

    # The replacement forward -------------------------------------------------------

    def forward(self, input: Any, state: Any = None) -> Any:
        if is_cell(self.module):
            return self._cell_forward(input, state)
        return self._fused_forward(input, state)

    def _cell_forward(self, x: Any, state: Any) -> Any:
        layout = self.layout
        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(f"{self.name}: a cell's input must be (B, D) or (D,), got {got}")
        out = recurrent_base(type(self.module)).forward(self.module, x, state)
        unbatched = x.dim() == 1
        batch = 1 if unbatched else int(x.shape[0])
        h_new, c_new = (out[0], out[1]) if layout.kind == "lstm" else (out, None)
        if state is None:
            h_prev = torch.zeros_like(h_new)
            c_prev = torch.zeros_like(c_new) if c_new is not None else None
        else:
            h_prev, c_prev = (state[0], state[1]) if layout.kind == "lstm" else (state, None)
        probe_h = torch.zeros_like(h_new, requires_grad=True)
        h_new = h_new + probe_h
        probes_c = []
        if c_new is not None:
            probe_c = torch.zeros_like(c_new, requires_grad=True)
            c_new = c_new + probe_c
            probes_c.append(probe_c)
        activations = _Activations(
            x=x.detach().reshape(1, batch, -1),
            h=h_new.detach().reshape(1, batch, -1),
            h0=h_prev.detach().reshape(batch, -1),
            c0=None if c_prev is None else c_prev.detach().reshape(batch, -1),
        )
        self.calls.append(
            _Call(
                probes_h=[probe_h],
                probes_c=probes_c,
                activations=[activations],
                output=h_new.view(1, batch, -1),
                steps=1,
                batch=batch,
                states_h=[h_new.view(1, batch, -1)],
                states_c=[] if c_new is None else [c_new.view(batch, -1)],
            )
        )
        return (h_new, c_new) if c_new is not None else h_new

    def _fused_forward(self, input: Any, state: Any = None) -> Any:
        layout, module = self.layout, self.module
        if isinstance(input, PackedSequence):
            return self._packed_forward(input, state)
        x = check_input(layout, module, input)
        assert isinstance(x, torch.Tensor)
        h0, c0 = initial_state(layout, x, state, detach=False)
        unbatched = x.dim() == 2
        seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if layout.batch_first else x)
        steps, batch = int(seq.shape[0]), int(seq.shape[1])
        kernel = FUSED_KERNELS[layout.kind]
        probes_h: list[torch.Tensor] = []
        probes_c: list[torch.Tensor] = []
        activations, finals_h, finals_c = [], [], []
        states_h: list[torch.Tensor] = []
        states_c: list[torch.Tensor] = []
        for layer in range(layout.num_layers):
            weights = kernel_weights(module, layout, layer)
            layer_hx = _layer_state(h0, c0, layer)
            result = kernel(seq, layer_hx, weights, layout.bias, 1, 0.0, False, False, False)
            out, final_c = _probed(result, probes_h, probes_c)
            states_h.append(out)
            finals_h.append(out[-1:])
            if final_c is not None:
                states_c.append(final_c)
                finals_c.append(final_c.unsqueeze(0))
            activations.append(
                _Activations(
                    seq.detach(),
                    out.detach(),
                    h0[layer].detach(),
                    None if c0 is None else c0[layer].detach(),
                )
            )
            seq = self._to_next_layer(out, layer)
        self.calls.append(
            _Call(probes_h, probes_c, activations, seq, steps, batch, states_h, states_c)
        )
        output = from_time_major(seq, layout, unbatched)
        h_n = torch.cat(finals_h, dim=0)
        h_n = h_n.squeeze(1) if unbatched else h_n
        if c0 is None:
            return output, h_n
        c_n = torch.cat(finals_c, dim=0)
        return output, (h_n, c_n.squeeze(1) if unbatched else c_n)

    def _to_next_layer(self, out: torch.Tensor, layer: int) -> torch.Tensor:
        """A layer's probed outputs as the next layer's input: in train mode with the
        module's dropout, its mask drawn from the recorder's generator."""
        layout = self.layout
        if not (self.module.training and layout.dropout > 0 and layer < layout.num_layers - 1):
            return out
        keep = 1.0 - layout.dropout
        draw = drawn(
            *out.shape, generator=self.generator, dtype=out.dtype, device=out.device, uniform=True
        )
        return out * ((draw < keep).to(out.dtype) / keep)

    def _packed_forward(self, input: PackedSequence, state: Any) -> Any:
        """A packed call: the kernel's packed variant layer by layer (with autograd), a
        probe on each layer's packed outputs, each sequence's final state read from its
        own last probed step."""
        layout, module = self.layout, self.module
        x = check_input(layout, module, input)
        assert isinstance(x, PackedSequence)
        packing = Packing.of(x)
        h0, c0 = initial_state(layout, x, state, detach=False)  # the packed order
        steps, batch = (int(n) for n in packing.valid.shape)
        ends = (packing.lengths - 1).to(x.data.device)
        rows = torch.arange(batch, device=x.data.device)
        kernel = FUSED_KERNELS[layout.kind]
        data = x.data
        probes_h: list[torch.Tensor] = []
        probes_c: list[torch.Tensor] = []
        activations, finals_h, finals_c = [], [], []
        states_h: list[torch.Tensor] = []
        states_c: list[torch.Tensor] = []
        for layer in range(layout.num_layers):
            weights = kernel_weights(module, layout, layer)
            layer_hx = _layer_state(h0, c0, layer)
            result = kernel(data, x.batch_sizes, layer_hx, weights, layout.bias, 1, 0.0,
                            False, False)  # fmt: skip
            out, final_c = _probed(result, probes_h, probes_c)  # out: (N, P)
            padded = packing.pad(out)  # (T_c, B, P), the packed order
            states_h.append(packing.to_user(padded, 1))
            finals_h.append(padded[ends, rows].unsqueeze(0))
            if final_c is not None:
                states_c.append(packing.to_user(final_c, 0))
                finals_c.append(final_c.unsqueeze(0))
            activations.append(
                _Activations(
                    packing.pad(data).detach(), padded.detach(), h0[layer].detach(),
                    None if c0 is None else c0[layer].detach(), packing,
                )
            )  # fmt: skip
            data = self._to_next_layer(out, layer)
        top = packing.to_user(packing.pad(data), 1)
        self.calls.append(
            _Call(
                probes_h, probes_c, activations, top, steps, batch, states_h, states_c,
                lengths=packing.to_user(packing.lengths, 0), packing=packing,
            )
        )  # fmt: skip
        output = PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        h_n = packing.to_user(torch.cat(finals_h, dim=0), 1)
        if c0 is None:
            return output, h_n
        return output, (h_n, packing.to_user(torch.cat(finals_c, dim=0), 1))

    # After the forward pass -----------------------------------------------------------

    def check(self) -> None:
        """At least one call, and one batch size across calls."""
        if not self.calls:
            raise InvalidInputError(f"the model never called its recurrent module {self.name!r}")
        sizes = sorted({call.batch for call in self.calls})
        if len(sizes) > 1:
            raise ShapeError(
                f"{self.name}: the batch size changes between calls ({sizes}); a profile "
                "needs one batch over all steps"
            )

    def loss(self, kind: str) -> torch.Tensor:
        """``"last"``: ``0.5 ||output of the last step||^2``; ``"sum"``: over every step."""
        if kind == "last":
            final = self.calls[-1]
            ends = (final.steps_of() - 1).to(final.output.device)
            return 0.5 * (final.output[ends, torch.arange(final.batch)] ** 2).sum()
        return 0.5 * sum((call.output**2).sum() for call in self.calls)  # type: ignore[return-value]

    def probes(self) -> list[torch.Tensor]:
        return [p for call in self.calls for p in (*call.probes_h, *call.probes_c)]

    def gradients(
        self, grads: dict[int, torch.Tensor], layers: list[int] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None], list[float]]:
        """Per layer: total ``dL/dh_t`` ``(T, B, P)``, ``dL/dc_t`` ``(T, B, H)`` (LSTM) or
        ``None``, and the saturated share, from the probes' gradients (by ``id(probe)``).

        A probe's gradient is the *direct* gradient at its step: every path except the
        module's own recurrence inside the same call (autograd has already been through
        the layers above, the head and the later calls). The recursion of
        :func:`rnngrad.profile.recursion.backward_direction` over the call's saved activations adds
        that recurrence (and, for LSTM, the path ``c_t -> h_t``), as for a whole sequence.
        """
        grad_h, grad_c, saturation = [], [], []
        for layer in range(self.layout.num_layers) if layers is None else layers:
            weights = layer_weights(self.module, layer, 0)
            parts_h, parts_c, shares = [], [], []
            for call in self.calls:
                saved = call.activations[layer]
                packing = saved.packing
                direct_c = None
                if saved.c0 is not None:
                    direct_c = grads[id(call.probes_c[layer])].reshape(call.batch, -1)
                if packing is None:
                    direct = grads[id(call.probes_h[layer])].reshape(call.steps, call.batch, -1)
                    result = backward_direction(
                        self.layout.kind, weights, saved.x, saved.h, saved.h0, saved.c0,
                        direct, direct_c, need_input=False,
                    )  # fmt: skip
                    parts_h.append(result.grad_h)
                    parts_c.append(result.grad_c)
                else:  # the packed order, each sequence's final state at its own last step
                    direct = packing.pad(grads[id(call.probes_h[layer])])
                    steps_c = None
                    if direct_c is not None:
                        steps_c = torch.zeros(
                            (call.steps, call.batch, direct_c.shape[-1]),
                            dtype=direct.dtype, device=direct.device,
                        )  # fmt: skip
                        ends = (packing.lengths - 1).to(direct.device)
                        steps_c[ends, torch.arange(call.batch)] = direct_c
                        direct_c = torch.zeros_like(direct_c)
                    result = backward_direction(
                        self.layout.kind, weights, saved.x, saved.h, saved.h0, saved.c0,
                        direct, direct_c, need_input=False, direct_c_steps=steps_c,
                        valid=packing.valid,
                    )  # fmt: skip
                    parts_h.append(packing.to_user(result.grad_h, 1))
                    parts_c.append(
                        None if result.grad_c is None else packing.to_user(result.grad_c, 1)
                    )
                shares.append(result.saturated)
            lengths = [call.steps_of() for call in self.calls]
            grad_h.append(in_call_order(parts_h, lengths))
            cells = [part for part in parts_c if part is not None]
            grad_c.append(in_call_order(cells, lengths) if cells else None)
            steps = [int(call.steps_of().sum()) for call in self.calls]
            saturation.append(float(np.average(shares, weights=steps)))
        return grad_h, grad_c, saturation

    def direct(
        self, grads: dict[int, torch.Tensor], layer: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One layer's direct gradients over all calls: ``(T, B, P)`` at ``h`` and, for an
        LSTM, ``(T, B, H)`` at ``c`` (nonzero at each call's last step only)."""
        parts_h, parts_c = [], []
        for call in self.calls:
            parts_h.append(call.direct_h(grads, layer))
            if call.probes_c:
                at_end = grads[id(call.probes_c[layer])].reshape(call.batch, -1)
                if call.packing is not None:
                    at_end = call.packing.to_user(at_end, 0)
                steps_c = at_end.new_zeros((call.steps, *at_end.shape))
                ends = (call.steps_of() - 1).to(at_end.device)
                steps_c[ends, torch.arange(call.batch)] = at_end
                parts_c.append(steps_c)
        lengths = [call.steps_of() for call in self.calls]
        return in_call_order(parts_h, lengths), in_call_order(parts_c, lengths) if parts_c else None

    def carried(
        self, grads: dict[int, torch.Tensor], layer: int
    ) -> tuple[CarriedSeed, torch.Tensor | None, torch.Tensor | None]:
        """The gradient carried back from each sequence's last loss-bearing step alone
        (:mod:`rnngrad.profile.carried`): ``<G, h~_s*>`` (and ``<G_c, c~_s*>``) through the
        model's own graph to every probe, then the recursion within each call, as for the
        total (``None``: it is the total, the loss entering each sequence at one step).
        Needs the forward graph kept."""
        direct_h, direct_c = self.direct(grads, layer)
        seed = carried_seed(direct_h, None, direct_c)
        if seed.alone:  # the loss enters each sequence at one step: the total is carried
            return seed, None, None
        lengths = torch.stack([call.steps_of() for call in self.calls])  # (calls, B)
        entry = torch.zeros((), dtype=direct_h.dtype, device=direct_h.device)
        for b, step in enumerate(seed.last.tolist()):
            if step < 0:
                continue
            index, local = _call_and_step(lengths[:, b], step)
            call = self.calls[index]
            entry = entry + torch.dot(seed.h[step, b], call.states_h[layer][local, b])
            if seed.c_steps is not None and local == int(lengths[index, b]) - 1:
                entry = entry + torch.dot(
                    seed.c_steps[step, b], call.states_c[layer].reshape(call.batch, -1)[b]
                )
        if not entry.requires_grad:  # the loss reaches no step of this layer
            zeros_c = None if direct_c is None else torch.zeros_like(direct_c)
            return seed, torch.zeros_like(direct_h), zeros_c
        carried_grads = probe_gradients(entry, [self])
        grad_h, grad_c, _ = self.gradients(carried_grads, [layer])
        return seed, grad_h[0], grad_c[0]


@contextmanager
def recording(
    modules: list[tuple[str, nn.Module]], generator: torch.Generator | None
) -> Iterator[list[StepRecorder]]:
    """Replace each module's forward by a :class:`StepRecorder`'s for the ``with`` block."""
    recorders = [StepRecorder(name, m, describe_module(m), generator) for name, m in modules]
    with ExitStack() as stack:
        for recorder in recorders:
            stack.enter_context(recorded_calls(recorder.module, recorder.forward))
        yield recorders


def probe_gradients(loss: torch.Tensor, recorders: list[StepRecorder]) -> dict[int, torch.Tensor]:
    """``dL/dp`` for every probe of every recorder (zeros where the loss does not reach); the
    graph is kept for the carried gradient's pass."""
    probes = [p for recorder in recorders for p in recorder.probes()]
    grads = loss_gradients(loss, probes, allow_unused=True, retain_graph=True)
    return {
        id(p): (torch.zeros_like(p) if g is None else g).detach()
        for p, g in zip(probes, grads, strict=True)
    }


def in_call_order(parts: list[torch.Tensor], lengths: list[torch.Tensor]) -> torch.Tensor:
    """Calls' ``(T_c, B, F)`` arrays (user's batch order, padding after each sequence's
    ``lengths[c][b]`` steps) one after another per sequence: sequence ``b``'s steps of
    every call in call order, then its padding. Calls of equal lengths are concatenated."""
    equal = zip(parts, lengths, strict=True)
    if all(bool((length == part.shape[0]).all()) for part, length in equal):
        return torch.cat(parts)
    batch = parts[0].shape[1]
    totals = torch.stack(lengths).sum(dim=0)
    out = parts[0].new_zeros((int(totals.max()), batch, parts[0].shape[2]))
    offset = torch.zeros(batch, dtype=torch.int64)
    for part, length in zip(parts, lengths, strict=True):
        local = torch.arange(part.shape[0]).unsqueeze(1)  # (T_c, 1)
        keep = local < length.unsqueeze(0)  # (T_c, B)
        steps, rows = torch.nonzero(keep, as_tuple=True)
        out[(offset[rows] + steps).to(out.device), rows.to(out.device)] = part[
            steps.to(part.device), rows.to(part.device)
        ]
        offset += length
    return out


def _call_and_step(lengths: torch.Tensor, step: int) -> tuple[int, int]:
    """The call and its local step of a sequence's ``step`` in call order."""
    start = 0
    for index, length in enumerate(lengths.tolist()):
        if step < start + length:
            return index, step - start
        start += length
    raise IndexError(step)


def _layer_state(h0: torch.Tensor, c0: torch.Tensor | None, layer: int) -> Any:
    """One layer's initial state as a fused kernel takes it."""
    h = h0[layer : layer + 1]
    return h if c0 is None else (h, c0[layer : layer + 1])


def _probed(
    result: Any, probes_h: list[torch.Tensor], probes_c: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A kernel call's outputs and an LSTM's final cell state, each with a zero probe
    added (the probes appended to ``probes_h`` and ``probes_c``)."""
    probe = torch.zeros_like(result[0], requires_grad=True)
    probes_h.append(probe)
    if len(result) < 3:
        return result[0] + probe, None
    probe_c = torch.zeros_like(result[2][0], requires_grad=True)
    probes_c.append(probe_c)
    return result[0] + probe, result[2][0] + probe_c
