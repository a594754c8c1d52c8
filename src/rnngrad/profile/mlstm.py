r"""Exact per-step gradients of xLSTM's mLSTM (the ``xlstm`` package) at its matrix memory.

The mLSTM (Beck et al. 2024) keeps, per head, a matrix memory ``C``, a normaliser ``n``
and the stabiliser ``m`` of its exponential gates:

.. math:: m_t = \max(\log\sigma(\tilde f_t) + m_{t-1}, \tilde i_t), \quad
          C_t = f'_t C_{t-1} + i'_t\, v_t k_t^\top / \sqrt{d}, \quad
          n_t = f'_t n_{t-1} + i'_t\, k_t / \sqrt{d}, \quad
          h_t = \frac{C_t q_t}{\max(|n_t^\top q_t|, e^{-m_t}) + \epsilon},

with ``f'_t = exp(log sigma(f~_t) + m_{t-1} - m_t)``, ``i'_t = exp(i~_t - m_t)``: the
memory's own Jacobian ``dC_t/dC_{t-1} = f'_t I`` is a scalar per head. The package
computes the layer in its parallel form, which never forms ``C_t``; during a profile
rnngrad runs the cell in its recurrent form instead, through the package's own
recurrent step (equal to the parallel form but for the stabiliser's floor and
``eps``, about ``1e-6`` relative), with a probe on every output ``h_t``. The direct
gradient at ``(C_t, n_t, m_t)`` is the read-out's vector-Jacobian product, and the
adjoint ``g_t = G_t + J_{t+1}^T g_{t+1}`` runs through the package's step by
vector-Jacobian products; the same recursion from the last loss-bearing step alone
is the carried gradient. The norms are over the whole memory ``(C, n, m)`` of every
head, each a coordinate of its own: ``dL/dm_t`` holds ``C_t`` and ``n_t`` fixed (the
stabiliser's gauge leaves ``h`` unchanged only when all three move together).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from rnngrad.errors import InvalidInputError, calling_user_code
from rnngrad.profile.carried import CarriedNorms
from rnngrad.profile.model_call import forked_rng, loss_gradients, output_loss
from rnngrad.profile.result import GradientProfile, LossSpec, cells_profile
from rnngrad.profile.summary import gradient_norms, summarise

__all__ = ["is_mlstm_cell", "mlstm_cells", "mlstm_read", "profile_xlstm_cells"]


def is_mlstm_cell(module: nn.Module) -> bool:
    """The ``xlstm`` package's mLSTM cell (recognised without importing ``xlstm``)."""
    return type(module).__name__ == "mLSTMCell" and type(module).__module__.startswith("xlstm")


def mlstm_cells(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The mLSTM cells inside ``model`` (itself included), in registration order."""
    return [(name, module) for name, module in model.named_modules() if is_mlstm_cell(module)]


def mlstm_read(
    c: torch.Tensor, n: torch.Tensor, m: torch.Tensor, q: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """The read-out ``h_t`` ``(B, NH, 1, DH)`` of the memory ``C`` ``(B, NH, DH, DH)``,
    ``n`` ``(B, NH, DH, 1)``, ``m`` ``(B, NH, 1, 1)`` with the query ``q``
    ``(B, NH, DH, 1)``, as the package's recurrent step computes it."""
    numerator = q.transpose(-1, -2) @ c
    dot = q.transpose(-1, -2) @ n
    denominator = torch.maximum(dot.abs(), torch.exp(-m)) + eps
    return numerator / denominator


def _flat(c: torch.Tensor, n: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``(B, NH * (DH^2 + DH + 1))``: the memory of every head, side by side."""
    batch = c.shape[0]
    return torch.cat([c.reshape(batch, -1), n.reshape(batch, -1), m.reshape(batch, -1)], dim=1)


def _filled(like: Any, grads: Any) -> list[torch.Tensor]:
    """The gradients, zeros where a state had none."""
    return [torch.zeros_like(s) if g is None else g for s, g in zip(like, grads, strict=True)]


@contextmanager
def _recurrent(cells: list[tuple[str, nn.Module]], saved: dict[str, Any]) -> Iterator[None]:
    """Every cell runs its recurrent form for the block, with a probe on its outputs."""
    originals: dict[str, Any] = {name: cell.__dict__.get("backend_fn") for name, cell in cells}

    def backend(name: str, cell: Any) -> Any:
        def run(queries: Any, keys: Any, values: Any, igate_preact: Any, fgate_preact: Any,
                **_: Any) -> torch.Tensor:  # fmt: skip
            if name in saved:
                raise InvalidInputError(f"{name} ran more than once in one forward pass")
            batch, heads, steps, size = queries.shape
            like = queries
            c = like.new_zeros(batch, heads, size, size)
            n = like.new_zeros(batch, heads, size, 1)
            m = like.new_zeros(batch, heads, 1, 1)
            outputs, memory, inputs = [], [(c, n, m)], []
            for t in range(steps):
                step_inputs = tuple(
                    x[:, :, t : t + 1] for x in (queries, keys, values, igate_preact, fgate_preact)
                )
                h, (c, n, m) = cell.backend_fn_step(c, n, m, *(x.clone() for x in step_inputs))
                outputs.append(h)
                memory.append((c, n, m))
                inputs.append(tuple(x.detach() for x in step_inputs))
            stacked = torch.cat(outputs, dim=2)  # (B, NH, S, DH)
            probe = torch.zeros_like(stacked, requires_grad=True)
            kept = [tuple(s.detach() for s in state) for state in memory]
            saved[name] = {"cell": cell, "probe": probe, "inputs": inputs, "memory": kept}
            return stacked + probe

        return run

    try:
        for name, cell in cells:
            cell.backend_fn = backend(name, cell)
        yield
    finally:
        for name, cell in cells:
            if originals[name] is None:
                del cell.backend_fn
            else:
                cell.backend_fn = originals[name]


def mlstm_layer(
    record: dict[str, Any], direct_h: torch.Tensor
) -> tuple[torch.Tensor, CarriedNorms]:
    """The total and the carried gradients ``(T, B, P)`` at the memory of one cell, from
    the direct gradients at its outputs ``(B, NH, S, DH)``."""
    from rnngrad.profile.carried import carried_norms, carried_seed

    cell, inputs, memory = record["cell"], record["inputs"], record["memory"]
    steps = len(inputs)

    def read_vjp(t: int) -> torch.Tensor:  # the direct gradient at the memory after step t
        c, n, m = (s.detach().requires_grad_(True) for s in memory[t + 1])
        q = inputs[t][0].squeeze(2).unsqueeze(-1)
        with torch.enable_grad():
            h = mlstm_read(c, n, m, q)
        cotangent = direct_h[:, :, t : t + 1]
        grads = torch.autograd.grad(h, (c, n, m), cotangent, allow_unused=True)
        return _flat(
            *(
                torch.zeros_like(s) if g is None else g
                for s, g in zip((c, n, m), grads, strict=True)
            )
        )

    direct = torch.stack([read_vjp(t) for t in range(steps)])  # (T, B, P)
    seed = carried_seed(direct)

    def backwards(start: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(start)
        g = torch.zeros_like(start[0])
        for t in range(steps - 1, -1, -1):
            g = g + start[t]
            out[t] = g
            if t > 0:  # through step t (from the memory after step t - 1)
                before = [s.detach().requires_grad_(True) for s in memory[t]]
                with torch.enable_grad(), calling_user_code("the mLSTM step"):
                    _, after = cell.backend_fn_step(*before, *(x.clone() for x in inputs[t]))
                    flat_after = _flat(*after)
                grads = torch.autograd.grad(flat_after, before, g, allow_unused=True)
                g = _flat(
                    *(
                        torch.zeros_like(s) if d is None else d
                        for s, d in zip(before, grads, strict=True)
                    )
                )
        return out

    return backwards(direct), carried_norms(seed, backwards(seed.h))


def profile_xlstm_cells(
    model: nn.Module,
    arguments: tuple[Any, ...],
    *,
    loss: LossSpec,
    keep_gradients: bool,
    tolerance: float,
    module: str | None = None,
) -> GradientProfile:
    """The profile of every mLSTM and sLSTM cell of an xLSTM model (inside its submodule
    ``module`` when one is named), one layer each, in
    registration order: the mLSTM at its matrix memory, the sLSTM at its ``(h, c, n, m)``
    (:mod:`rnngrad.profile.slstm`)."""
    from rnngrad.profile.slstm import recording_slstm, slstm_cells, slstm_layer

    scope = model if module is None else model.get_submodule(module)
    prefix = "" if module is None else f"{module}."
    matrices = [(prefix + name, cell) for name, cell in mlstm_cells(scope)]
    scalars = [(prefix + name, cell) for name, cell in slstm_cells(scope)]
    order = {prefix + name: index for index, (name, _) in enumerate(scope.named_modules())}
    cells = sorted([*matrices, *scalars], key=lambda item: order[item[0]])
    saved: dict[str, Any] = {}
    with forked_rng(arguments):
        with _recurrent(matrices, saved), recording_slstm(scalars, saved):
            with calling_user_code(type(model).__name__):
                output = model(*arguments)
        missing = [name for name, _ in cells if name not in saved]
        if missing:
            raise InvalidInputError(f"the model never ran the xLSTM cell {missing[0]!r}")
        value = output_loss(output, loss, time_dim=1)  # batch first, as the libraries' blocks
        probes = [saved[name]["probe"] for name, _ in cells]
        directs = loss_gradients(value, probes, allow_unused=True)
    layers, widths = [], []
    for index, ((name, cell), direct) in enumerate(zip(cells, directs, strict=True)):
        record = saved[name]
        given = torch.zeros_like(record["probe"]) if direct is None else direct.detach()
        if is_mlstm_cell(cell):
            total, carried = mlstm_layer(record, given)
        else:
            total, carried = slstm_layer(cell, record, given[:, 1:])
        widths.append(int(total.shape[2]))
        layers.append(
            summarise(
                index,
                0,
                gradient_norms(total),
                float("nan"),
                carried=carried,
                tolerance=tolerance,
                grad=total.transpose(0, 1).clone() if keep_gradients else None,
            )
        )
    dtype = directs[0].dtype if directs[0] is not None else torch.float32
    return cells_profile(
        layers, names=[name for name, _ in cells], model=model, loss=loss, value=value,
        dtype=dtype, input_size=0, hidden_size=max(widths), batch_first=True,
    )  # fmt: skip
