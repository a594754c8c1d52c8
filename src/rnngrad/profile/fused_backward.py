r"""The same backward recursion, done by the module's own fused backward kernel.

:mod:`rnngrad.profile.recursion` runs the recursion ``g_t = G_t + (dh_{t+1}/dh_t)^T g_{t+1}``
as a loop over time in Python: on a CPU that is as fast as the fused backward
(one matrix product per step either way), on a GPU it is one kernel launch per
step and bound by the launches. Here the recursion is run by the fused kernel
itself (cuDNN on a GPU, oneDNN or ATen on a CPU), which only ever returns the
gradients at its *inputs*; a zero-valued extra slot in the input carries what
is wanted out of it:

- RNN and LSTM: the input is widened by ``P`` zero features whose input weights
  are ``W_hh`` itself. Their gradient is ``W_hh^T delta_t``: exactly the
  recurrent part of ``g_{t-1}``, so ``g_{t-1} = G_{t-1} + dL/dx^{extra}_t``.
- GRU: the hidden side of the ``n`` gate is scaled by ``r_t``, the input side is
  not, so ``W_hh`` cannot be carried on the input side. The extra slot has
  ``3H`` features with identity weights: their gradient is the gate gradient
  ``delta_t`` itself; then ``g_{t-1} = G_{t-1} + z_t g_t + (delta_t, n scaled by
  r_t) W_hh``, which is one large matrix product for all steps and an
  elementwise linear recurrence in ``g`` (a scan: :mod:`rnngrad.modern.scan`).
- LSTM's cell state: ``gc_t = f_{t+1} gc_{t+1} + (dL/dm_t) o_t (1 - tanh^2 c_t)``,
  the same kind of scan, from the recomputed gates (which the saturation count
  needs anyway); the forward ``c_t = f_t c_{t-1} + i_t g_t`` is a scan too.

The zero features change nothing in the forward pass; the weights do not
require gradients, so the kernel computes none; what remains beside the fused
forward and backward are a few large matrix products and scans of
``O(sqrt(T))`` vectorised steps, which suits a GPU. The result equals
:func:`rnngrad.profile.recursion.backward_direction`'s to rounding (the test suite compares
them in float64 on the CPU).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnngrad.cells import FUSED_KERNELS, CellKind, LayerWeights
from rnngrad.modern.scan import diagonal_adjoint, linear_scan
from rnngrad.profile.fused_forward import kernel_notes_silenced
from rnngrad.profile.gates import (
    DirectionGradients,
    SaturationCount,
    count_rnn_saturation,
    gru_gates,
    lstm_gates,
)

__all__ = ["backward_direction_fused"]


def _fused_input_gradient(
    kind: CellKind,
    w: LayerWeights,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    direct: torch.Tensor,
    direct_c_last: torch.Tensor | None,
    extra: torch.Tensor,
    lengths: torch.Tensor | None,
) -> torch.Tensor:
    """``dL/dx'`` of the fused kernel run on ``x' = [x, 0]`` with input weights
    ``[W_ih, extra]``, the loss's gradients at the outputs being ``direct`` (and
    ``direct_c_last`` at the final cell state): ``(T, B, D + extra columns)``."""
    steps, batch, _ = x.shape
    wide = torch.cat([x, x.new_zeros(steps, batch, extra.shape[1])], dim=2)
    weights = [torch.cat([w.w_ih, extra], dim=1), w.w_hh]
    has_bias = w.b_ih is not None and w.b_hh is not None
    if has_bias:
        assert w.b_ih is not None and w.b_hh is not None
        weights += [w.b_ih, w.b_hh]
    if w.w_hr is not None:
        weights.append(w.w_hr)
    state = h0.unsqueeze(0).contiguous()
    hx = state if c0 is None else (state, c0.unsqueeze(0).contiguous())
    kernel = FUSED_KERNELS[kind]
    outputs_grads: list[torch.Tensor]
    with torch.enable_grad(), kernel_notes_silenced():
        if lengths is None:
            leaf = wide.requires_grad_(True)
            # train=True: cuDNN's backward needs the forward's reserve space
            result = kernel(leaf, hx, weights, has_bias, 1, 0.0, True, False, False)
            outputs_grads = [direct]
        else:  # each sequence exactly its own steps: its final state is its last step's
            packed = pack_padded_sequence(wide, lengths, enforce_sorted=True)
            leaf = packed.data.requires_grad_(True)
            result = kernel(leaf, packed.batch_sizes, hx, weights, has_bias, 1, 0.0, True, False)
            outputs_grads = [pack_padded_sequence(direct, lengths, enforce_sorted=True).data]
        outputs = [result[0]]
        if direct_c_last is not None:
            outputs.append(result[2])
            outputs_grads.append(direct_c_last.unsqueeze(0))
        (grad,) = torch.autograd.grad(outputs, [leaf], outputs_grads)
    if lengths is None:
        return grad
    padded, _ = pad_packed_sequence(
        torch.nn.utils.rnn.PackedSequence(grad, packed.batch_sizes), total_length=steps
    )
    return padded


def backward_direction_fused(
    kind: CellKind,
    weights: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    direct: torch.Tensor,
    direct_c_last: torch.Tensor | None,
    *,
    need_input: bool = True,
    direct_c_steps: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> DirectionGradients:
    """:func:`rnngrad.profile.recursion.backward_direction` (same arguments and result) by the
    fused kernel's own backward; ``direct`` is not modified."""
    lengths = None if valid is None or bool(valid.all()) else valid.sum(0).cpu()
    with torch.no_grad():
        w = LayerWeights(
            weights.w_ih.detach(),
            weights.w_hh.detach(),
            None if weights.b_ih is None else weights.b_ih.detach(),
            None if weights.b_hh is None else weights.b_hh.detach(),
            None if weights.w_hr is None else weights.w_hr.detach(),
        )
        saturation = SaturationCount(valid)
        grad_c = None
        final_c = None
        if kind == "lstm":
            assert c0 is not None and direct_c_last is not None
            # every sequence's final cell state: the last step's, or its own last step's
            final_c = (
                direct_c_last if direct_c_steps is None else direct_c_last + direct_c_steps.sum(0)
            )
        if kind == "gru":
            hidden = h.shape[2]
            carried = torch.eye(3 * hidden, dtype=x.dtype, device=x.device)
        else:
            carried = w.w_hh
        grad = _fused_input_gradient(kind, w, x, h0, c0, direct, final_c, carried, lengths)
        width = x.shape[2]
        grad_input = grad[..., :width] if need_input else None
        from_next = grad[..., width:]
        if kind in ("rnn_tanh", "rnn_relu"):
            count_rnn_saturation(kind, h, saturation)
            grad_h = direct.clone(memory_format=torch.contiguous_format)
            grad_h[:-1] += from_next[1:]
        elif kind == "lstm":
            assert c0 is not None and direct_c_last is not None
            grad_h = direct.clone(memory_format=torch.contiguous_format)
            grad_h[:-1] += from_next[1:]
            grad_c = _lstm_cell_gradient(
                w, x, h, h0, c0, grad_h, direct_c_last, direct_c_steps, saturation
            )
        else:
            grad_h = _gru_state_gradient(w, x, h, h0, direct, from_next, saturation)
    return DirectionGradients(grad_h, grad_c, grad_input, saturation.share)


def _lstm_cell_gradient(
    w: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    grad_h: torch.Tensor,
    direct_c_last: torch.Tensor,
    direct_c_steps: torch.Tensor | None,
    saturation: SaturationCount,
) -> torch.Tensor:
    """``gc_t = f_{t+1} gc_{t+1} + (dL/dm_t) o_t (1 - tanh^2 c_t)`` (plus the direct
    cell-state gradients), counting the gates' saturation as the recursion does."""
    i, f, g, o = lstm_gates(x, h, h0, w).unbind(2)
    c = linear_scan(f, i * g, c0)
    tanh_c = torch.tanh(c)
    to_c = torch.mul(tanh_c, tanh_c).neg_().add_(1.0)
    saturation.add(to_c, 1.0)
    for gate, maximum in ((i, 0.25), (f, 0.25), (o, 0.25)):
        saturation.add(torch.sub(1.0, gate).mul_(gate), maximum)
    saturation.add(torch.mul(g, g).neg_().add_(1.0), 1.0)
    gm = grad_h if w.w_hr is None else grad_h @ w.w_hr
    given = to_c.mul_(o).mul_(gm)
    if direct_c_steps is not None:
        given += direct_c_steps
    given[-1] += direct_c_last
    return diagonal_adjoint(given, f)


def _gru_state_gradient(
    w: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    direct: torch.Tensor,
    delta: torch.Tensor,
    saturation: SaturationCount,
) -> torch.Tensor:
    """``g_{t-1} = G_{t-1} + z_t g_t + (delta_t, its n part scaled by r_t) W_hh`` from
    the gate gradients ``delta`` ``(T, B, 3H)``, counting saturation as the recursion does."""
    steps, batch, hidden = h.shape
    r, z, n = gru_gates(w, x, h, h0)[0].unbind(2)
    saturation.add(torch.mul(n, n).neg_().add_(1.0), 1.0)
    saturation.add(torch.sub(1.0, z).mul_(z), 0.25)
    saturation.add(torch.sub(1.0, r).mul_(r), 0.25)
    hidden_side = delta.reshape(steps, batch, 3, hidden).clone()
    hidden_side[:, :, 2] *= r
    given = direct.clone(memory_format=torch.contiguous_format)
    if steps > 1:
        given[:-1].view((steps - 1) * batch, hidden).addmm_(
            hidden_side[1:].reshape((steps - 1) * batch, 3 * hidden), w.w_hh
        )
    return diagonal_adjoint(given, z)
