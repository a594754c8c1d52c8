r"""A recurrent network as a dynamical system, and its Jacobians applied to a basis.

A unidirectional ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` with ``L`` layers is the map

.. math:: s_t = F(s_{t-1}, x_t), \qquad s = (h^{(1)}, [c^{(1)}], \dots, h^{(L)}, [c^{(L)}]),

with the state of every layer stacked (``h`` and ``c`` for LSTM, so ``2n`` per
LSTM layer). One step's Jacobian ``J_t = dF/ds_{t-1}`` is applied to a basis
``Q`` of ``k`` tangent vectors as a Jacobian-vector product, never formed as an
``n x n`` matrix per step:

- analytic, for the built-in cells (the formulas in :func:`_rnn_tangent`,
  :func:`_lstm_tangent`, :func:`_gru_tangent`); a layer above receives the
  tangent of the layer below's new ``h`` as its input tangent, which makes the
  stacked Jacobian block lower-triangular without ever building it;
- generic, for any cell with a flat state, through ``torch.func.jvp`` with
  ``torch.func.vmap`` over the basis columns (:class:`CellDynamics`).

Both work on a batch of trajectories at once: states ``(B, n)``, bases
``(B, n, k)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rnngrad.cells import LayerWeights, RecurrentLayout, describe_module, layer_weights
from rnngrad.devices import drawn
from rnngrad.errors import InvalidInputError, ShapeError

__all__ = ["CellDynamics", "Dynamics", "ModuleDynamics"]


def _affine(v: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    out = v @ weight.T
    return out if bias is None else out + bias


def _mat(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``weight @ basis`` for a batch of bases ``(B, n, k)``.

    A basis stored as ``(n, B, k)`` (how :func:`rnngrad.lyapunov.spectrum.lyapunov_spectrum`
    keeps it) is one wide product ``(m, n) @ (n, B k)`` whose result has the same
    storage, so the elementwise work that follows stays contiguous; a batched
    product is 1.6x slower per flop at one thread. Any other layout takes
    ``torch.matmul``.
    """
    if basis.shape[0] > 1 and basis.transpose(0, 1).is_contiguous():
        rows, batch, columns = basis.shape[1], basis.shape[0], basis.shape[2]
        wide = weight @ basis.transpose(0, 1).reshape(rows, batch * columns)
        return wide.view(weight.shape[0], batch, columns).transpose(0, 1)
    return torch.matmul(weight, basis)


class Dynamics:
    """What the Lyapunov machinery needs of a recurrent map (see the module docstring)."""

    state_size: int
    input_size: int
    dtype: torch.dtype
    device: torch.device

    @property
    def tangent_slice(self) -> slice:
        """The part of the state whose tangent space is analysed (all of it by default)."""
        return slice(0, self.state_size)

    @property
    def tangent_size(self) -> int:
        """Dimension of the analysed tangent space."""
        part = self.tangent_slice
        return int(part.stop - part.start)

    def initial_state(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Random states ``(B, n)``: ``h`` uniform in (-1, 1), ``c`` standard normal.

        ``generator`` is a CPU generator: draw on it and move the numbers to the
        device (:func:`rnngrad.devices.drawn`), so that a seed gives the same states
        on every device."""
        raise NotImplementedError

    def step(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """``(s_t, cache)`` from ``s_{t-1}`` ``(B, n)`` and ``x_t`` ``(B, D)``."""
        raise NotImplementedError

    def apply_jacobian(self, cache: Any, basis: torch.Tensor) -> torch.Tensor:
        """``J_t @ basis`` for ``basis`` ``(B, n, k)``, at the point ``step`` cached."""
        raise NotImplementedError

    def jacobian_product(self, cache: Any, basis: torch.Tensor) -> torch.Tensor:
        """``J_t @ basis`` that autograd can differentiate (the same by default)."""
        return self.apply_jacobian(cache, basis)


@dataclass
class _Layer:
    kind: str
    weights: LayerWeights
    state_slice: slice  # h (and c) of this layer inside the stacked state
    hidden: int
    size: int  # size of h (proj_size or hidden)


class ModuleDynamics(Dynamics):
    """An ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (or one of their cells) as ``s_t = F(s_{t-1}, x_t)``.

    The parameters are the module's own tensors. ``layers`` picks a subset of
    consecutive layers starting at ``first`` (default: all from 0, the stacked
    state). With ``only_top=True`` the tangent space is the top layer's state
    alone: the layers below still run (they drive it) but are not perturbed,
    which gives the spectrum of that one layer's recurrence along its real,
    driven trajectory. (The stacked Jacobian is block lower-triangular, so the
    stacked spectrum is the union of these per-layer spectra.)

    A bidirectional module is a causal system one layer and one direction at a
    time: ``layers=1`` and ``direction`` 0 or 1, the reverse direction driven by
    the input in reverse time (the caller reverses it), a layer above the first
    by the outputs of the layers below over the whole sequence (the caller
    computes them, :func:`rnngrad.lyapunov.spectrum.lyapunov_spectrum` does).

    Raises:
        InvalidInputError: a bidirectional module with more than one layer at
            once (the stacked states run in opposite time directions).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        layers: int | None = None,
        only_top: bool = False,
        first: int = 0,
        direction: int = 0,
    ) -> None:
        layout: RecurrentLayout = describe_module(module)
        if not 0 <= first < layout.num_layers:
            raise InvalidInputError(f"first must be in 0..{layout.num_layers - 1}, got {first}")
        count = layout.num_layers - first if layers is None else layers
        if not 1 <= count <= layout.num_layers - first:
            raise InvalidInputError(
                f"layers must be in 1..{layout.num_layers - first}, got {count}"
            )
        if direction not in (0, 1) or (direction == 1 and not layout.bidirectional):
            raise InvalidInputError(
                f"direction must be 0{' or 1' if layout.bidirectional else ''}, got {direction}"
            )
        if layout.bidirectional and count > 1:
            raise InvalidInputError(
                "Lyapunov spectra need a causal recurrence: the layers of a bidirectional "
                "module run in both time directions; analyse one layer and one direction "
                "at a time (layer=L, direction=0 or 1)"
            )
        self.layout = layout
        self.kind = layout.kind
        self.layers: list[_Layer] = []
        offset = 0
        for index in range(first, first + count):
            width = layout.state_size + (layout.hidden_size if layout.kind == "lstm" else 0)
            self.layers.append(
                _Layer(
                    kind=layout.kind,
                    weights=layer_weights(module, index, direction),
                    state_slice=slice(offset, offset + width),
                    hidden=layout.hidden_size,
                    size=layout.state_size,
                )
            )
            offset += width
        self.state_size = offset
        self.only_top = only_top
        self.input_size = layout.layer_input_size(first)
        parameter = next(module.parameters())
        self.dtype = parameter.dtype
        self.device = parameter.device

    def initial_state(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        state = torch.empty(batch, self.state_size, dtype=self.dtype, device=self.device)
        for layer in self.layers:
            part = state[:, layer.state_slice]
            h = drawn(
                batch, layer.size, generator=generator, dtype=self.dtype, device=self.device,
                uniform=True,
            )  # fmt: skip
            part[:, : layer.size] = 2 * h - 1
            if layer.kind == "lstm":
                part[:, layer.size :] = drawn(
                    batch, layer.hidden, generator=generator, dtype=self.dtype, device=self.device
                )
        return state

    def step(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:
        new = torch.empty_like(state)
        caches = []
        layer_input = x
        for layer in self.layers:
            old = state[:, layer.state_slice]
            if layer.kind in ("rnn_tanh", "rnn_relu"):
                out, cache = _rnn_step(layer, old, layer_input)
            elif layer.kind == "lstm":
                out, cache = _lstm_step(layer, old, layer_input)
            else:
                out, cache = _gru_step(layer, old, layer_input)
            new[:, layer.state_slice] = out
            caches.append(cache)
            layer_input = out[:, : layer.size]
        return new, caches

    @property
    def tangent_slice(self) -> slice:
        return self.layers[-1].state_slice if self.only_top else slice(0, self.state_size)

    @torch.no_grad()
    def apply_jacobian(self, cache: list[Any], basis: torch.Tensor) -> torch.Tensor:
        result = torch.empty_like(basis)
        self._tangents(cache, basis, result)
        return result

    def jacobian_product(self, cache: list[Any], basis: torch.Tensor) -> torch.Tensor:
        """``J_t @ basis``, as :meth:`apply_jacobian`, but differentiable: autograd follows
        it back to the module's parameters, the states and the basis (the same formulas,
        each layer's tangent a new tensor instead of a slice written in place)."""
        return torch.cat(self._tangents(cache, basis, None), dim=1)

    def _tangents(
        self, cache: list[Any], basis: torch.Tensor, result: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Each analysed layer's part of ``J_t @ basis``, written into ``result`` when given."""
        parts = []
        input_tangent: torch.Tensor | None = None
        start = self.tangent_slice.start
        for layer, layer_cache in zip(self.layers, cache, strict=True):
            if self.only_top and layer is not self.layers[-1]:
                continue
            part = slice(layer.state_slice.start - start, layer.state_slice.stop - start)
            tangent = basis[:, part]
            out = None if result is None else result[:, part]
            if layer.kind in ("rnn_tanh", "rnn_relu"):
                out = _rnn_tangent(layer, layer_cache, tangent, input_tangent, out)
            elif layer.kind == "lstm":
                out = _lstm_tangent(layer, layer_cache, tangent, input_tangent, out)
            else:
                out = _gru_tangent(layer, layer_cache, tangent, input_tangent, out)
            parts.append(out)
            input_tangent = out[:, : layer.size]
        return parts


# --- nn.RNN: h' = phi(W_ih x + b_ih + W_hh h + b_hh); J = diag(phi'(z)) W_hh.


def _rnn_step(layer: _Layer, h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    w = layer.weights
    z = _affine(x, w.w_ih, w.b_ih) + _affine(h, w.w_hh, w.b_hh)
    if layer.kind == "rnn_tanh":
        out = torch.tanh(z)
        derivative = 1 - out * out
    else:
        out = torch.relu(z)
        derivative = (z > 0).to(z.dtype)
    return out, derivative


def _rnn_tangent(
    layer: _Layer,
    derivative: torch.Tensor,
    dh: torch.Tensor,
    dx: torch.Tensor | None,
    out: torch.Tensor | None,
) -> torch.Tensor:
    """``J dh`` (plus the input's tangent ``dx``), written into ``out`` when given."""
    w = layer.weights
    dz = _mat(w.w_hh, dh)
    if dx is not None:
        dz = dz + _mat(w.w_ih, dx)
    return torch.mul(derivative.unsqueeze(-1), dz, out=out)


# --- nn.LSTM: gates (i, f, g, o); c' = f c + i g; h' = o tanh(c') (then W_hr with a projection).


def _lstm_step(layer: _Layer, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    w = layer.weights
    h, c = state[:, : layer.size], state[:, layer.size :]
    gates = _affine(x, w.w_ih, w.b_ih) + _affine(h, w.w_hh, w.b_hh)
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
    c_new = f * c + i * g
    tanh_c = torch.tanh(c_new)
    m = o * tanh_c
    h_new = m if w.w_hr is None else m @ w.w_hr.T
    # Per-unit coefficients of the tangent map (see _lstm_tangent), shape (B, H, 1).
    coefficients = torch.stack(
        [
            f,  # dc' from dc
            c * f * (1 - f),  # dc' from the forget-gate pre-activation
            g * i * (1 - i),  # ... from the input gate
            i * (1 - g * g),  # ... from the candidate
            tanh_c * o * (1 - o),  # dm from the output gate
            o * (1 - tanh_c * tanh_c),  # dm from dc'
        ]
    ).unsqueeze(-1)
    return torch.cat([h_new, c_new], dim=-1), coefficients


def _lstm_tangent(
    layer: _Layer,
    coefficients: torch.Tensor,
    tangent: torch.Tensor,
    dx: torch.Tensor | None,
    out: torch.Tensor | None,
) -> torch.Tensor:
    """dc' = f dc + c f(1-f) dz_f + g i(1-i) dz_i + i (1-g^2) dz_g;
    dm = tanh(c') o(1-o) dz_o + o (1 - tanh^2 c') dc'; dh' = dm (or W_hr dm); written
    into ``out`` when given, else new tensors (differentiable)."""
    w = layer.weights
    from_c, from_f, from_i, from_g, from_o, m_from_c = coefficients.unbind(0)
    dh, dc = tangent[:, : layer.size], tangent[:, layer.size :]
    dz = _mat(w.w_hh, dh)
    if dx is not None:
        dz = dz + _mat(w.w_ih, dx)
    dz_i, dz_f, dz_g, dz_o = dz.chunk(4, dim=-2)
    dc_new = torch.mul(from_c, dc, out=None if out is None else out[:, layer.size :])
    dc_new.addcmul_(from_f, dz_f).addcmul_(from_i, dz_i).addcmul_(from_g, dz_g)
    into = None if out is None or w.w_hr is not None else out[:, : layer.size]
    dm = torch.mul(from_o, dz_o, out=into).addcmul_(m_from_c, dc_new)
    dh_new = dm if w.w_hr is None else _mat(w.w_hr, dm)
    if out is None:
        return torch.cat([dh_new, dc_new], dim=1)
    if w.w_hr is not None:
        out[:, : layer.size] = dh_new
    return out


# --- nn.GRU: r, z gates; n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 - z) n + z h.


def _gru_step(layer: _Layer, h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    w = layer.weights
    from_input = _affine(x, w.w_ih, w.b_ih)
    from_hidden = _affine(h, w.w_hh, w.b_hh)
    i_r, i_z, i_n = from_input.chunk(3, dim=-1)
    h_r, h_z, h_n = from_hidden.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h, (r, z, n, h_n, h)


def _gru_tangent(
    layer: _Layer,
    cache: Any,
    dh: torch.Tensor,
    dx: torch.Tensor | None,
    out: torch.Tensor | None,
) -> torch.Tensor:
    """``J dh`` of the GRU (plus the input's tangent), written into ``out`` when given."""
    w = layer.weights
    r, z, n, h_n, h = (v.unsqueeze(-1) for v in cache)
    from_hidden = _mat(w.w_hh, dh)
    d_hr, d_hz, d_hn = from_hidden.chunk(3, dim=-2)
    dn_input = dr_input = dz_input = None
    if dx is not None:
        dr_input, dz_input, dn_input = _mat(w.w_ih, dx).chunk(3, dim=-2)
    dr = r * (1 - r) * (d_hr if dr_input is None else d_hr + dr_input)
    dz = z * (1 - z) * (d_hz if dz_input is None else d_hz + dz_input)
    inside = dr * h_n + r * d_hn
    dn = (1 - n * n) * (inside if dn_input is None else inside + dn_input)
    return torch.mul(h - n, dz, out=out).addcmul_(1 - z, dn).addcmul_(z, dh)


class CellDynamics(Dynamics):
    """Any cell ``h_t = cell(x_t, h_{t-1})`` with a flat state, through ``torch.func``.

    ``J_t @ Q`` is ``torch.func.jvp`` of one step, vectorised with
    ``torch.func.vmap`` over the basis columns and the batch. The same class
    serves as the generic route for the built-in modules (pass
    ``ModuleDynamics(m).step`` wrapped as a cell) to cross-check the analytic
    Jacobians.

    Args:
        cell: ``(x (B, D), h (B, n)) -> h' (B, n)``; it must be a pure function
            of its arguments (no in-place state). An ``nn.Module`` whose
            parameters are in another dtype (a float32 or half-precision cell)
            is used through a copy converted to ``dtype``; ``converted_from``
            then names its own dtype.
        state_size: ``n``; ``input_size``: ``D``.
        dtype, device: of the states.
    """

    def __init__(
        self,
        cell: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        state_size: int,
        input_size: int,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        self.converted_from: str | None = None
        if isinstance(cell, nn.Module):
            own = {p.dtype for p in cell.parameters() if torch.is_floating_point(p)}
            if own and own != {dtype}:
                import copy

                self.converted_from = ", ".join(sorted(str(d).removeprefix("torch.") for d in own))
                cell = copy.deepcopy(cell).to(dtype)
        self.cell = cell
        self.state_size = state_size
        self.input_size = input_size
        self.dtype = dtype
        self.device = torch.device(device)

    def initial_state(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        uniform = drawn(
            batch, self.state_size, generator=generator, dtype=self.dtype, device=self.device,
            uniform=True,
        )  # fmt: skip
        return 2 * uniform - 1

    def step(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        new = self.cell(x, state)
        if not isinstance(new, torch.Tensor) or new.shape != state.shape:
            got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
            raise ShapeError(
                f"the cell must return a flat state of shape {tuple(state.shape)}, got {got}"
            )
        return new, (state, x)

    def apply_jacobian(self, cache: Any, basis: torch.Tensor) -> torch.Tensor:
        from torch.func import jvp, vmap

        state, x = cache

        def one(s: torch.Tensor, x_t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            def f(u: torch.Tensor) -> torch.Tensor:
                return self.cell(x_t.unsqueeze(0), u.unsqueeze(0)).squeeze(0)

            tangent: torch.Tensor = jvp(f, (s,), (v,))[1]
            return tangent

        over_columns = vmap(one, in_dims=(None, None, 1), out_dims=1)
        result: torch.Tensor = vmap(over_columns)(state, x, basis)
        return result
