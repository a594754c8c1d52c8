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
by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnngrad.cells import CellKind, LayerWeights

__all__ = ["DirectionGradients", "backward_direction"]

# Derivatives below this share of their maximum count as saturated.
SATURATION_THRESHOLD = 0.1


@dataclass(frozen=True)
class DirectionGradients:
    """Result of one layer and direction, time-major in processing order.

    Attributes:
        grad_h: ``(T, B, P)``, total ``dL/dh_t``.
        grad_c: ``(T, B, H)``, total ``dL/dc_t`` (LSTM) or ``None``.
        grad_input: ``(T, B, D)``, ``dL/dx_t`` handed to the layer below.
        saturated: share of the cell's nonlinearity derivatives below 10% of
            their maximum, pooled over steps, sequences, units and gates.
    """

    grad_h: torch.Tensor
    grad_c: torch.Tensor | None
    grad_input: torch.Tensor
    saturated: float


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` over all leading axes in one matrix product."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ weight.T if bias is None else torch.addmm(bias, flat, weight.T)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def _share_below(derivatives: list[torch.Tensor], maxima: list[float]) -> float:
    count = sum((d < SATURATION_THRESHOLD * m).sum().item() for d, m in zip(derivatives, maxima))
    total = sum(d.numel() for d in derivatives)
    return float(count) / float(total)


def _rnn(
    kind: CellKind, w: LayerWeights, x: torch.Tensor, h: torch.Tensor, direct: torch.Tensor
) -> DirectionGradients:
    steps, batch, _ = h.shape
    if kind == "rnn_tanh":
        derivative = 1.0 - h * h
    else:  # relu: h > 0 exactly where the pre-activation is > 0
        derivative = (h > 0).to(h.dtype)
    grad_h = torch.empty_like(h)
    delta = torch.empty_like(h)
    carry = torch.zeros(batch, h.shape[2], dtype=h.dtype, device=h.device)
    w_hh = w.w_hh
    for t in range(steps - 1, -1, -1):
        torch.add(direct[t], carry, out=grad_h[t])
        torch.mul(grad_h[t], derivative[t], out=delta[t])
        carry = delta[t] @ w_hh
    grad_input = _linear(delta, w.w_ih.T, None)
    return DirectionGradients(grad_h, None, grad_input, _share_below([derivative], [1.0]))


def _lstm(
    w: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    direct: torch.Tensor,
    direct_c_last: torch.Tensor,
) -> DirectionGradients:
    steps, batch, _ = h.shape
    hidden = w.w_hh.shape[0] // 4
    h_prev = torch.cat([h0.unsqueeze(0), h[:-1]], dim=0)
    gates = _linear(x, w.w_ih, w.b_ih) + _linear(h_prev, w.w_hh, w.b_hh)
    i, f, g, o = gates.view(steps, batch, 4, hidden).unbind(2)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    g = torch.tanh(g)
    input_part = i * g
    c = torch.empty_like(input_part)
    previous = c0
    for t in range(steps):  # c_t = f_t c_{t-1} + i_t g_t
        previous = torch.addcmul(input_part[t], f[t], previous, out=c[t])
    c_prev = torch.cat([c0.unsqueeze(0), c[:-1]], dim=0)
    tanh_c = torch.tanh(c)
    d_i, d_f, d_o = i * (1 - i), f * (1 - f), o * (1 - o)
    d_g, d_tanh_c = 1 - g * g, 1 - tanh_c * tanh_c
    to_c = o * d_tanh_c  # dc contribution from dL/dm_t
    ifg = torch.stack([g * d_i, c_prev * d_f, i * d_g], dim=2)  # (T, B, 3, H), times gc_t
    o_part = tanh_c * d_o  # times dL/dm_t

    grad_h = torch.empty_like(h)
    grad_c = torch.empty_like(c)
    delta = torch.empty(steps, batch, 4, hidden, dtype=h.dtype, device=h.device)
    carry_h = torch.zeros(batch, h.shape[2], dtype=h.dtype, device=h.device)
    carry_c = direct_c_last.clone()
    w_hh, w_hr = w.w_hh, w.w_hr
    for t in range(steps - 1, -1, -1):
        gh = torch.add(direct[t], carry_h, out=grad_h[t])
        gm = gh if w_hr is None else gh @ w_hr
        gc = torch.addcmul(carry_c, gm, to_c[t], out=grad_c[t])
        torch.mul(gc.unsqueeze(1), ifg[t], out=delta[t, :, :3])
        torch.mul(gm, o_part[t], out=delta[t, :, 3])
        carry_h = delta[t].view(batch, 4 * hidden) @ w_hh
        carry_c = gc * f[t]
    grad_input = _linear(delta.view(steps, batch, 4 * hidden), w.w_ih.T, None)
    saturated = _share_below([d_i, d_f, d_o, d_g, d_tanh_c], [0.25, 0.25, 0.25, 1.0, 1.0])
    return DirectionGradients(grad_h, grad_c, grad_input, saturated)


def _gru(
    w: LayerWeights, x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, direct: torch.Tensor
) -> DirectionGradients:
    steps, batch, hidden = h.shape
    h_prev = torch.cat([h0.unsqueeze(0), h[:-1]], dim=0)
    from_input = _linear(x, w.w_ih, w.b_ih).view(steps, batch, 3, hidden)
    from_hidden = _linear(h_prev, w.w_hh, w.b_hh).view(steps, batch, 3, hidden)
    r = torch.sigmoid(from_input[:, :, 0] + from_hidden[:, :, 0])
    z = torch.sigmoid(from_input[:, :, 1] + from_hidden[:, :, 1])
    hidden_n = from_hidden[:, :, 2]
    n = torch.tanh(from_input[:, :, 2] + r * hidden_n)
    d_r, d_z, d_n = r * (1 - r), z * (1 - z), 1 - n * n
    a_n = (1 - z) * d_n
    a_z = (h_prev - n) * d_z
    a_r = a_n * hidden_n * d_r
    input_side = torch.stack([a_r, a_z, a_n], dim=2)  # times g_t: input-side gate gradients
    hidden_side = torch.stack([a_r, a_z, a_n * r], dim=2)  # hidden side: n gate scaled by r

    grad_h = torch.empty_like(h)
    delta = torch.empty(steps, batch, 3, hidden, dtype=h.dtype, device=h.device)
    carry = torch.zeros(batch, hidden, dtype=h.dtype, device=h.device)
    w_hh = w.w_hh
    for t in range(steps - 1, -1, -1):
        gh = torch.add(direct[t], carry, out=grad_h[t])
        torch.mul(gh.unsqueeze(1), input_side[t], out=delta[t])
        through_gates = (gh.unsqueeze(1) * hidden_side[t]).view(batch, 3 * hidden)
        carry = torch.addmm(gh * z[t], through_gates, w_hh)
    grad_input = _linear(delta.view(steps, batch, 3 * hidden), w.w_ih.T, None)
    saturated = _share_below([d_r, d_z, d_n], [0.25, 0.25, 1.0])
    return DirectionGradients(grad_h, None, grad_input, saturated)


def backward_direction(
    kind: CellKind,
    weights: LayerWeights,
    x: torch.Tensor,
    h: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    direct: torch.Tensor,
    direct_c_last: torch.Tensor | None,
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
    """
    with torch.no_grad():
        if kind in ("rnn_tanh", "rnn_relu"):
            return _rnn(kind, weights, x, h, direct)
        if kind == "lstm":
            assert c0 is not None and direct_c_last is not None
            return _lstm(weights, x, h, h0, c0, direct, direct_c_last)
        return _gru(weights, x, h, h0, direct)
