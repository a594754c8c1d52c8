"""A cell-by-cell reference for nn.RNN/LSTM/GRU: the loop with retain_grad.

A second implementation on purpose: it rebuilds each layer and direction from
the module's parameters, step by step, applies the given dropout masks between
layers, and lets autograd produce dL/dh_t (and dL/dc_t) at every step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Key = tuple[int, int]


def cell_reference(
    module: nn.Module,
    x: torch.Tensor,
    loss: str | Callable[[torch.Tensor], torch.Tensor] = "last",
    masks: list[torch.Tensor | None] | None = None,
    hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict[Key, torch.Tensor], dict[Key, torch.Tensor], torch.Tensor]:
    """dL/dh_t and dL/dc_t per (layer, direction), shape (B, T, P), and the module output."""
    grads_h, grads_c, output, _ = _cell_loop(module, x, loss, masks, hx)
    return grads_h, grads_c, output


def carried_reference(
    module: nn.Module,
    x: torch.Tensor,
    loss: str | Callable[[torch.Tensor], torch.Tensor] = "last",
) -> tuple[dict[Key, torch.Tensor], dict[Key, torch.Tensor | None]]:
    """The gradient carried back from each sequence's last loss-bearing step, per (layer,
    direction): ``(B, T, P)`` at h and ``(B, T, H)`` at c (LSTM), NaN after that step.

    Independent of the recursion: the loop's own graph is kept, the last processed step
    s* whose total gradient is not zero gives G = dL/dh_{s*}, which is the direct
    gradient there since no later step bears any (at an LSTM's c the total less the
    path c_s* -> h_s*, found by autograd), and autograd differentiates
    <G, h_{s*}> + <G_c, c_{s*}> with respect to every earlier state of the same layer
    and direction: the only paths are through its own recurrence.
    """
    grads_h, grads_c, _, (states, cells) = _cell_loop(module, x, loss, None, None, keep=True)
    carried_h: dict[Key, torch.Tensor] = {}
    carried_c: dict[Key, torch.Tensor | None] = {}
    for key, hs in states.items():
        steps = len(hs)
        processing = list(range(steps)) if key[1] == 0 else list(range(steps - 1, -1, -1))
        total_h = grads_h[key]  # (B, T, P)
        total_c = grads_c.get(key)
        bearing = (total_h != 0).any(dim=2)
        if total_c is not None:
            bearing |= (total_c != 0).any(dim=2)
        batch = total_h.shape[0]
        last = []
        for b in range(batch):
            found = [s for s, t in enumerate(processing) if bool(bearing[b, t])]
            last.append(found[-1] if found else -1)
        value = torch.zeros((), dtype=x.dtype)
        for b, s in enumerate(last):
            if s >= 0:
                value = value + (total_h[b, processing[s]].detach() * hs[processing[s]][b]).sum()
        if total_c is not None:
            # The total at c_s* holds the path c_s* -> h_s* already: keep only the rest,
            # the direct gradient at the cell state.
            ends = sorted({processing[s] for s in last if s >= 0})
            through_h = dict(zip(ends, torch.autograd.grad(
                value, [cells[key][t] for t in ends], retain_graph=True, allow_unused=True
            ), strict=True))  # fmt: skip
            for b, s in enumerate(last):
                if s >= 0:
                    t = processing[s]
                    path = through_h[t]
                    direct_c = total_c[b, t] - (0.0 if path is None else path[b])
                    value = value + (direct_c.detach() * cells[key][t][b]).sum()
        wanted = list(hs) + (list(cells[key]) if total_c is not None else [])
        found_grads = torch.autograd.grad(value, wanted, retain_graph=True, allow_unused=True)
        found_grads = [
            torch.zeros_like(w) if g is None else g
            for g, w in zip(found_grads, wanted, strict=True)
        ]
        out_h = torch.stack(found_grads[:steps]).transpose(0, 1).clone()
        out_c = None
        if total_c is not None:
            out_c = torch.stack(found_grads[steps:]).transpose(0, 1).clone()
        for b, s in enumerate(last):
            for later in range(s + 1, steps):
                out_h[b, processing[later]] = float("nan")
                if out_c is not None:
                    out_c[b, processing[later]] = float("nan")
        carried_h[key], carried_c[key] = out_h, out_c
    return carried_h, carried_c


def _cell_loop(
    module: nn.Module,
    x: torch.Tensor,
    loss: str | Callable[[torch.Tensor], torch.Tensor],
    masks: list[torch.Tensor | None] | None,
    hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None,
    keep: bool = False,
) -> tuple[
    dict[Key, torch.Tensor],
    dict[Key, torch.Tensor],
    torch.Tensor,
    tuple[dict[Key, list[torch.Tensor]], dict[Key, list[torch.Tensor]]],
]:
    unbatched = x.dim() == 2
    seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if module.batch_first else x)
    steps, batch, _ = seq.shape
    directions = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    size = getattr(module, "proj_size", 0) or hidden
    is_lstm = isinstance(module, nn.LSTM)
    is_gru = isinstance(module, nn.GRU)
    relu = isinstance(module, nn.RNN) and module.nonlinearity == "relu"
    if hx is None:
        h0 = torch.zeros(module.num_layers * directions, batch, size, dtype=x.dtype)
        c0 = torch.zeros(module.num_layers * directions, batch, hidden, dtype=x.dtype)
    else:
        h0, c0 = hx if is_lstm else (hx, None)  # type: ignore[misc]
        if unbatched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
    states: dict[tuple[int, int], list[torch.Tensor]] = {}
    cells: dict[tuple[int, int], list[torch.Tensor]] = {}
    layer_input = seq
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            w_ih = getattr(module, f"weight_ih_{suffix}")
            w_hh = getattr(module, f"weight_hh_{suffix}")
            b_ih = getattr(module, f"bias_ih_{suffix}", None)
            b_hh = getattr(module, f"bias_hh_{suffix}", None)
            w_hr = getattr(module, f"weight_hr_{suffix}", None)
            row = layer * directions + direction
            h = h0[row]
            c = c0[row] if c0 is not None else None
            hs: list[torch.Tensor] = [torch.empty(0)] * steps
            cs: list[torch.Tensor] = [torch.empty(0)] * steps
            order = range(steps) if direction == 0 else range(steps - 1, -1, -1)
            for t in order:
                gi = layer_input[t] @ w_ih.T + (b_ih if b_ih is not None else 0.0)
                gh = h @ w_hh.T + (b_hh if b_hh is not None else 0.0)
                if is_lstm:
                    i, f, g, o = (gi + gh).chunk(4, dim=-1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    if w_hr is not None:
                        h = h @ w_hr.T
                    c.retain_grad()
                    cs[t] = c
                elif is_gru:
                    ir, iz, inn = gi.chunk(3, dim=-1)
                    hr, hz, hn = gh.chunk(3, dim=-1)
                    r = torch.sigmoid(ir + hr)
                    z = torch.sigmoid(iz + hz)
                    n = torch.tanh(inn + r * hn)
                    h = (1 - z) * n + z * h
                else:
                    h = torch.relu(gi + gh) if relu else torch.tanh(gi + gh)
                h.retain_grad()
                hs[t] = h
            states[(layer, direction)] = hs
            cells[(layer, direction)] = cs
            outputs.append(torch.stack(hs))
        layer_input = torch.cat(outputs, dim=-1)
        if masks is not None and layer < len(masks) and masks[layer] is not None:
            layer_input = layer_input * masks[layer]
    output = layer_input
    if callable(loss):
        value = loss(output)
    elif loss == "last":
        value = 0.5 * (output[-1] ** 2).sum()
    else:
        value = 0.5 * (output**2).sum()
    value.backward(retain_graph=keep)

    def gather(values: list[torch.Tensor]) -> torch.Tensor:
        grads = [v.grad if v.grad is not None else torch.zeros_like(v) for v in values]
        return torch.stack(grads).transpose(0, 1)  # (B, T, F)

    grads_h = {key: gather(values) for key, values in states.items()}
    grads_c = {key: gather(values) for key, values in cells.items() if is_lstm}
    return grads_h, grads_c, output, (states, cells)
