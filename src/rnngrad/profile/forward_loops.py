r"""Forward loops of one GRU or LSTM layer and direction that keep their gates.

The profile's backward recursion (:mod:`rnngrad.profile.recursion`) needs every step's gates.
The module's fused kernel computes them and discards them, so after it the
recursion recomputes them from the saved outputs with two trajectory-sized
matrix products. On a CPU it is cheaper to run the layer here, step by step,
and keep what the recursion needs: the input side for all steps in one product,
then one ``(B, P) @ (P, G H)`` product and a few elementwise operations a step
(the fused kernel does the same products; its per-step loop is in C++, ours in
Python, which costs about as much as the kernel's own overheads at these sizes).
The outputs equal the kernel's to rounding; the profile's gradients are those
of this forward, checked against autograd in the test suite.

Sequences of different lengths run in the packed layout's order (longest first,
padding last): at step ``t`` the first ``batch_sizes[t]`` rows are alive, so the
loop works on a prefix of the batch and never touches padding, whose outputs stay
zero. The equations are PyTorch's (gate orders ``r, z, n`` and ``i, f, g, o``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnngrad.cells import LayerWeights

__all__ = [
    "GruSaved",
    "LstmSaved",
    "gru_input_side",
    "gru_layer_forward",
    "lstm_layer_forward",
]


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` over all leading axes in one matrix product."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ weight.T if bias is None else torch.addmm(bias, flat, weight.T)
    return out.reshape(*x.shape[:-1], weight.shape[0])


@dataclass(frozen=True)
class GruSaved:
    """What a GRU layer's own forward loop keeps for the recursion, processing order.

    Attributes:
        gates: ``(T, B, 3, H)``: ``r_t``, ``z_t``, ``n_t`` after their
            nonlinearities (at padding steps: finite values the recursion
            multiplies by zero).
        hidden_n: ``(T, B, H)``: ``W_hn h_{t-1} + b_hn`` (zero at padding steps).
    """

    gates: torch.Tensor
    hidden_n: torch.Tensor


def gru_input_side(w: LayerWeights, x: torch.Tensor, hidden: int) -> torch.Tensor:
    """``(T, B, 3, H)``: ``W_i x_t + b_i`` with both biases of ``r`` and ``z`` folded in."""
    steps, batch, _ = x.shape
    bias = None
    if w.b_ih is not None:
        bias = w.b_ih.clone()
        if w.b_hh is not None:
            bias[: 2 * hidden] += w.b_hh[: 2 * hidden]
    gates = _linear(x, w.w_ih, bias).view(steps, batch, 3, hidden)
    if w.b_hh is not None and w.b_ih is None:
        gates[:, :, 0:2] += w.b_hh[: 2 * hidden].view(2, hidden)
    return gates


def gru_layer_forward(
    w: LayerWeights, x: torch.Tensor, h0: torch.Tensor, batch_sizes: torch.Tensor | None = None
) -> tuple[torch.Tensor, GruSaved]:
    """One GRU layer and direction run step by step, keeping its gates.

    ``r, z = sigmoid(W_i{r,z} x_t + W_h{r,z} h_{t-1} + b)``,
    ``n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn))``, ``h_t = n + z (h_{t-1} - n)``:
    the input side for all steps in one product, then one ``(B, H) @ (H, 3H)``
    product and five elementwise operations a step. The fused kernel computes the
    same and discards the gates, which the recursion would otherwise recompute
    with two trajectory-sized products; on a CPU this loop plus the recursion
    costs less than the kernel plus the recomputation.

    Args:
        w: the layer's parameters for this direction.
        x: ``(T, B, D)`` input in processing order (padding last, zeros).
        h0: ``(B, H)``.
        batch_sizes: sequences alive at each step (length-sorted, as packed), or
            ``None`` when all run ``T`` steps.

    Returns:
        ``h_1..h_T`` ``(T, B, H)`` (zeros at padding) and the saved gates.
    """
    steps, batch, _ = x.shape
    hidden = h0.shape[1]
    with torch.no_grad():
        gates = gru_input_side(w, x, hidden)
        hidden_bias = None
        if w.b_hh is not None:
            hidden_bias = torch.cat([torch.zeros_like(w.b_hh[: 2 * hidden]), w.b_hh[2 * hidden :]])
        hidden_n = torch.zeros(steps, batch, hidden, dtype=x.dtype, device=x.device)
        out = torch.zeros(steps, batch, hidden, dtype=x.dtype, device=x.device)
        from_hidden = torch.empty(batch, 3 * hidden, dtype=x.dtype, device=x.device)
        w_hh_t = w.w_hh.T
        sizes = None if batch_sizes is None else batch_sizes.tolist()
        previous = h0
        for t in range(steps):
            rows = batch if sizes is None else sizes[t]
            part = from_hidden[:rows]
            if hidden_bias is None:
                torch.mm(previous[:rows], w_hh_t, out=part)
            else:
                torch.addmm(hidden_bias, previous[:rows], w_hh_t, out=part)
            split = part.view(rows, 3, hidden)
            gate = gates[t, :rows]
            gate[:, 0:2].add_(split[:, 0:2]).sigmoid_()
            hidden_n[t, :rows] = split[:, 2]
            n = gate[:, 2].addcmul_(gate[:, 0], split[:, 2]).tanh_()
            torch.lerp(n, previous[:rows], gate[:, 1], out=out[t, :rows])
            previous = out[t]
    return out, GruSaved(gates, hidden_n)


@dataclass(frozen=True)
class LstmSaved:
    """What an LSTM layer's own forward loop keeps for the recursion, processing order.

    Attributes:
        gates: ``(T, B, 4, H)``: ``i, f, g, o`` after their nonlinearities (at
            padding steps: the input side alone, finite, multiplied by zero).
        c: ``(T, B, H)``: the cell states ``c_1..c_T`` (zero at padding steps).
        tanh_c: ``(T, B, H)``: ``tanh(c_t)``.
    """

    gates: torch.Tensor
    c: torch.Tensor
    tanh_c: torch.Tensor


def lstm_layer_forward(
    w: LayerWeights,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    batch_sizes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, LstmSaved]:
    """One LSTM layer and direction run step by step, keeping its gates and cell states.

    ``(i, f, g, o) = (sigmoid, sigmoid, tanh, sigmoid)(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``,
    ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)`` (times ``W_hr`` with a projection).

    Args:
        w: the layer's parameters for this direction.
        x: ``(T, B, D)`` input in processing order (padding last, zeros).
        h0: ``(B, P)``; c0: ``(B, H)``.
        batch_sizes: sequences alive at each step (length-sorted), or ``None``.

    Returns:
        ``h_1..h_T`` ``(T, B, P)`` (zeros at padding) and the saved gates and states.
    """
    steps, batch, _ = x.shape
    hidden = c0.shape[1]
    with torch.no_grad():
        bias = None
        if w.b_ih is not None and w.b_hh is not None:
            bias = w.b_ih + w.b_hh
        gates = _linear(x, w.w_ih, bias).view(steps, batch, 4, hidden)
        c = torch.zeros(steps, batch, hidden, dtype=x.dtype, device=x.device)
        tanh_c = torch.zeros_like(c)
        out = torch.zeros(steps, batch, h0.shape[1], dtype=x.dtype, device=x.device)
        kept = (
            torch.empty(batch, hidden, dtype=x.dtype, device=x.device)
            if w.w_hr is not None
            else None
        )
        w_hh_t = w.w_hh.T
        w_hr_t = None if w.w_hr is None else w.w_hr.T
        sizes = None if batch_sizes is None else batch_sizes.tolist()
        previous_h, previous_c = h0, c0
        for t in range(steps):
            rows = batch if sizes is None else sizes[t]
            gate = gates[t, :rows]
            gate.view(rows, 4 * hidden).addmm_(previous_h[:rows], w_hh_t)
            gate[:, 0:2].sigmoid_()
            gate[:, 3].sigmoid_()
            gate[:, 2].tanh_()
            state = torch.mul(gate[:, 0], gate[:, 2], out=c[t, :rows])
            state.addcmul_(gate[:, 1], previous_c[:rows])
            squashed = torch.tanh(state, out=tanh_c[t, :rows])
            if w_hr_t is None:
                torch.mul(gate[:, 3], squashed, out=out[t, :rows])
            else:
                assert kept is not None
                m = torch.mul(gate[:, 3], squashed, out=kept[:rows])
                torch.mm(m, w_hr_t, out=out[t, :rows])
            previous_h, previous_c = out[t], c[t]
    return out, LstmSaved(gates, c, tanh_c)
