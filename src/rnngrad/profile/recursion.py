r"""Backpropagation through time for one fused layer and direction, over a saved trajectory.

Given the layer's input ``x_t``, its outputs ``h_t`` (from the module's own fused
forward) and the *direct* loss gradient ``G_t = dL/dh_t|direct`` (from the
loss or from the layer above), the *total* gradient obeys

.. math::

    g_t = G_t + \Big(\frac{\partial h_{t+1}}{\partial h_t}\Big)^{\!\top} g_{t+1}
        = G_t + W_{hh}^\top \delta_{t+1} \;(+\, z_{t+1} \odot g_{t+1} \text{ for GRU}),

where ``delta_t`` is the gradient at the recurrent pre-activations of step t.
Everything that does not depend on ``g`` (the gates, ``c_t``, the derivative
factors) is computed for all steps at once with two large matrix products; the
loop over time then does one ``(B, G*H) @ (G*H, P)`` product and a few
elementwise operations per step, the same work as the recurrent part of the
fused backward, without the weight gradients. The gradient handed to the layer
below, ``dL/dx_t = delta_t W_ih`` (for GRU the input side of the ``n`` gate is
not scaled by ``r``), is one large product after the loop.

The equations (PyTorch's gate order):

- RNN: ``h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, ``delta_t = phi'(.) g_t``.
- LSTM: ``i, f, g, o``; ``c_t = f c_{t-1} + i g``, ``m_t = o tanh(c_t)``,
  ``h_t = m_t`` or ``W_hr m_t`` with a projection. With ``gc_t`` the total
  gradient at ``c_t``: ``gc_t = f_{t+1} gc_{t+1} + (dL/dm_t) o (1 - tanh^2 c_t)``.
- GRU: ``r, z, n``; ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``,
  ``h_t = (1 - z) n + z h_{t-1}``.

All tensors are time-major in processing order (a reverse direction is flipped
by the caller). In a batch of sequences of different lengths each sequence
starts at step 0 and its padding comes last; the caller gives zero direct
gradients at padding steps and the final state's gradient at each sequence's
own last step, so that the recursion carries exact zeros through the padding
(the padded activations are finite), and ``valid`` keeps padding out of the
saturation count.
"""

from __future__ import annotations

from typing import Literal

import torch

from rnngrad.cells import CellKind, LayerWeights
from rnngrad.profile.forward_loops import GruSaved, LstmSaved
from rnngrad.profile.fused_backward import backward_direction_fused
from rnngrad.profile.gates import (
    BLOCK,
    DirectionGradients,
    SaturationCount,
    gru_gates,
    lstm_gates,
    rnn_derivative,
)

__all__ = ["Route", "backward_direction"]

Route = Literal["recursion", "fused"]


def _input_gradient(delta: torch.Tensor, w_ih: torch.Tensor, needed: bool) -> torch.Tensor | None:
    """``dL/dx_t = delta_t W_ih`` for all steps in one product (skipped for the first layer)."""
    if not needed:
        return None
    steps, batch = delta.shape[:2]
    return (delta.reshape(steps * batch, -1) @ w_ih).view(steps, batch, -1)


def _delta_buffer(shape: tuple[int, ...], like: torch.Tensor, keep: bool) -> torch.Tensor:
    """Per-step gate gradients: all steps when the layer below needs them, else one
    step's worth, reused (``buffer[t % len]``), which keeps the loop in cache."""
    steps = shape[0] if keep else 1
    return torch.empty((steps, *shape[1:]), dtype=like.dtype, device=like.device)


def _rnn(
    kind: CellKind,
    w: LayerWeights,
    h: torch.Tensor,
    direct: torch.Tensor,
    need_input: bool,
    valid: torch.Tensor | None,
) -> DirectionGradients:
    steps = h.shape[0]
    grad_h = direct  # accumulated in place: g_t starts as G_t (see backward_direction)
    delta = _delta_buffer(tuple(h.shape), h, need_input)
    keep = delta.shape[0]
    w_hh = w.w_hh
    saturation = SaturationCount(valid)
    # phi'(z) a block of steps at a time (from h: tanh' = 1 - h^2, relu' = [h > 0]), so
    # that no array of the trajectory's size is kept for it.
    for end in range(steps, 0, -BLOCK):
        start = max(0, end - BLOCK)
        derivative = rnn_derivative(kind, h[start:end])
        saturation.add(derivative, 1.0, start)
        # Two kernels a step: delta_t = phi' g_t, then g_{t-1} = G_{t-1} + delta_t W_hh.
        for t in range(end - 1, start - 1, -1):
            step = delta[t % keep]
            torch.mul(grad_h[t], derivative[t - start], out=step)
            if t > 0:
                grad_h[t - 1].addmm_(step, w_hh)
    grad_input = _input_gradient(delta, w.w_ih, need_input)
    return DirectionGradients(grad_h, None, grad_input, saturation.share)


def _lstm(
    w: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    direct: torch.Tensor,
    direct_c_last: torch.Tensor,
    direct_c_steps: torch.Tensor | None,
    need_input: bool,
    valid: torch.Tensor | None,
    saved: LstmSaved | None = None,
) -> DirectionGradients:
    steps, batch, _ = h.shape
    hidden = w.w_hh.shape[0] // 4
    if saved is not None:
        gates, c, tanh_c = saved.gates, saved.c, saved.tanh_c
        i, f, g, o = gates.unbind(2)
    else:
        gates = lstm_gates(x, h, h0, w)
        i, f, g, o = gates.unbind(2)
        # The cell state, c_t = f_t c_{t-1} + i_t g_t (the fused forward keeps only c_T).
        c = torch.mul(i, g)
        previous = c0
        for t in range(steps):
            previous = c[t].addcmul_(f[t], previous)
        tanh_c = torch.tanh(c)
    # Factors that multiply the backward signals, built in place to spare memory traffic:
    # to_c = o (1 - tanh^2 c) times dL/dm_t gives dL/dc_t; the gate gradients are
    # (g i(1-i), c_{t-1} f(1-f), i (1-g^2)) times dL/dc_t and tanh(c) o(1-o) times dL/dm_t.
    # Each derivative is counted for saturation before it is multiplied on.
    saturation = SaturationCount(valid)
    to_c = torch.mul(tanh_c, tanh_c).neg_().add_(1.0)
    saturation.add(to_c, 1.0)
    to_c.mul_(o)
    # The gate factors replace the gates in their own buffer (one scratch array keeps
    # the gate being replaced; tanh(c)'s buffer, free after o's factor, keeps f for the
    # recursion): o's slot takes tanh(c) o(1-o), i's g i(1-i), g's i (1-g^2), f's
    # c_{t-1} f(1-f). Only to_c and the scratch array are new.
    scratch = torch.empty_like(c)
    scratch.copy_(o)
    o.neg_().add_(1.0).mul_(scratch)
    saturation.add(o, 0.25)
    o.mul_(tanh_c)
    scratch.copy_(i)
    i.neg_().add_(1.0).mul_(scratch)
    saturation.add(i, 0.25)
    i.mul_(g)
    g.mul_(g).neg_().add_(1.0)
    saturation.add(g, 1.0)
    g.mul_(scratch)
    del scratch
    forget = tanh_c.copy_(f)
    f.neg_().add_(1.0).mul_(forget)
    saturation.add(f, 0.25)
    f[1:].mul_(c[:-1])
    f[0].mul_(c0)
    factors = gates  # (i, f, g, o) parts as above

    grad_h = direct  # accumulated in place: g_t starts as G_t
    grad_c = c  # c is no longer needed: its buffer takes dL/dc_t
    delta = _delta_buffer((steps, batch, 4, hidden), h, need_input)
    keep = delta.shape[0]
    carry_c = direct_c_last.clone()
    w_hh, w_hr = w.w_hh, w.w_hr
    for t in range(steps - 1, -1, -1):
        if direct_c_steps is not None:  # sequences of different lengths end at different t
            carry_c.add_(direct_c_steps[t])
        gh = grad_h[t]
        gm = gh if w_hr is None else gh @ w_hr
        gc = torch.addcmul(carry_c, gm, to_c[t], out=grad_c[t])
        step = delta[t % keep]
        torch.mul(gc.unsqueeze(1), factors[t, :, 0:3], out=step[:, :3])
        torch.mul(gm, factors[t, :, 3], out=step[:, 3])
        if t > 0:  # g_{t-1} = G_{t-1} + delta_t W_hh, in one kernel
            grad_h[t - 1].addmm_(step.view(batch, 4 * hidden), w_hh)
        torch.mul(gc, forget[t], out=carry_c)
    grad_input = _input_gradient(delta.view(keep, batch, 4 * hidden), w.w_ih, need_input)
    return DirectionGradients(grad_h, grad_c, grad_input, saturation.share)


def _gru(
    w: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    direct: torch.Tensor,
    need_input: bool,
    valid: torch.Tensor | None,
    saved: GruSaved | None = None,
) -> DirectionGradients:
    steps, batch, hidden = h.shape
    if saved is not None:
        gates, hidden_n = saved.gates, saved.hidden_n
    else:
        gates, hidden_n = gru_gates(w, x, h, h0)
    r, z, n = gates.unbind(2)
    # Input-side gate gradients are g_t times (a_r, a_z, a_n) with
    # a_n = (1-z)(1-n^2), a_z = (h_{t-1} - n) z(1-z), a_r = a_n (W_hn h + b_hn) r(1-r);
    # the hidden side scales the n gate by r. Built in place, counting saturation first.
    saturation = SaturationCount(valid)
    factors = torch.empty_like(gates)
    a_r, a_z, a_n = factors.unbind(2)
    torch.mul(n, n, out=a_n).neg_().add_(1.0)
    saturation.add(a_n, 1.0)
    a_n.addcmul_(a_n, z, value=-1.0)
    torch.sub(1.0, z, out=a_z).mul_(z)
    saturation.add(a_z, 0.25)
    # times (h_{t-1} - n_t), a block of steps at a time (no trajectory-sized temporary)
    a_z[0].mul_(h0 - n[0])
    for start in range(1, steps, BLOCK):
        end = min(steps, start + BLOCK)
        a_z[start:end].mul_(h[start - 1 : end - 1] - n[start:end])
    torch.sub(1.0, r, out=a_r).mul_(r)
    saturation.add(a_r, 0.25)
    a_r.mul_(hidden_n).mul_(a_n)
    # The hidden side scales the n gate by r; without a layer below, the input side is
    # not needed and the factors are scaled in place instead of copied.
    hidden_side = factors.clone() if need_input else factors
    hidden_side[:, :, 2].mul_(r)
    del hidden_n

    grad_h = direct  # accumulated in place: g_t starts as G_t
    delta = _delta_buffer(tuple(factors.shape), h, need_input)
    keep = delta.shape[0]
    through = torch.empty(batch, 3, hidden, dtype=h.dtype, device=h.device)
    w_hh = w.w_hh
    for t in range(steps - 1, -1, -1):
        gh = grad_h[t].unsqueeze(1)
        if need_input:
            torch.mul(gh, factors[t], out=delta[t % keep])
        torch.mul(gh, hidden_side[t], out=through)
        if t > 0:  # g_{t-1} = G_{t-1} + z_t g_t + (gate gradients) W_hh
            grad_h[t - 1].addcmul_(grad_h[t], z[t]).addmm_(through.view(batch, 3 * hidden), w_hh)
    grad_input = _input_gradient(delta.view(keep, batch, 3 * hidden), w.w_ih, need_input)
    return DirectionGradients(grad_h, None, grad_input, saturation.share)


def backward_direction(
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
    overwrite_direct: bool = False,
    route: Route = "recursion",
    saved: GruSaved | LstmSaved | None = None,
) -> DirectionGradients:
    """Total ``dL/dh_t`` (and ``dL/dc_t``) of one layer and direction.

    Args:
        kind: the cell kind.
        weights: the layer's own parameters for this direction.
        x: ``(T, B, D)`` the layer's input, processing order.
        h: ``(T, B, P)`` the direction's outputs ``h_1..h_T``.
        h0: ``(B, P)``; ``c0``: ``(B, H)`` for LSTM.
        direct: ``(T, B, P)`` direct gradients, the final state's included.
        direct_c_last: ``(B, H)`` direct gradient at the final cell state (LSTM).
        need_input: compute ``dL/dx_t`` (not needed for the first layer).
        direct_c_steps: ``(T, B, H)`` direct gradients at the cell state per step
            (LSTM, sequences of different lengths: each one's final-state gradient
            at its own last step); added to ``direct_c_last``.
        valid: ``(T, B)`` bool, the steps each sequence has (``None``: all).
        overwrite_direct: ``direct`` (contiguous, the caller's own) becomes the
            returned ``grad_h``, the total gradient accumulated into it in place: one
            trajectory-sized array less. Otherwise it is copied first.
        route: ``"recursion"``, the loop over time here; ``"fused"``, the module's
            own fused backward kernel with the recursion's terms read from an
            extra input slot (:mod:`rnngrad.profile.fused_backward`: no per-step launches,
            for GPUs). Equal to rounding.
        saved: the gates a GRU or LSTM layer's own forward loop kept
            (:mod:`rnngrad.profile.forward_loops`; then ``h`` is that loop's output),
            instead of recomputing them (recursion route); consumed: its arrays
            are overwritten.
    """
    if route == "fused":
        return backward_direction_fused(
            kind, weights, x, h, h0, c0, direct, direct_c_last, need_input=need_input,
            direct_c_steps=direct_c_steps, valid=valid,
        )  # fmt: skip
    with torch.no_grad():
        if not overwrite_direct or not direct.is_contiguous():
            direct = direct.clone(memory_format=torch.contiguous_format)
        if kind in ("rnn_tanh", "rnn_relu"):
            return _rnn(kind, weights, h, direct, need_input, valid)
        if kind == "lstm":
            assert c0 is not None and direct_c_last is not None
            assert saved is None or isinstance(saved, LstmSaved)
            return _lstm(
                weights, x, h, h0, c0, direct, direct_c_last, direct_c_steps, need_input, valid,
                saved,
            )  # fmt: skip
        assert saved is None or isinstance(saved, GruSaved)
        return _gru(weights, x, h, h0, direct, need_input, valid, saved)
