r"""Exact per-step gradients of xLSTM's sLSTM (the ``xlstm`` package, its "vanilla"
PyTorch backend).

The sLSTM (Beck et al. 2024) keeps four states per unit, ``h``, the cell ``c``, the
normaliser ``n`` and the stabiliser ``m`` of its exponential gates, with block-diagonal
recurrent weights (one block per head):

.. math:: m_t = \max(\tilde f_t + m_{t-1}, \tilde i_t), \quad
          c_t = e^{\tilde f_t + m_{t-1} - m_t} c_{t-1} + e^{\tilde i_t - m_t} \tanh z_t, \quad
          n_t = e^{\tilde f_t + m_{t-1} - m_t} n_{t-1} + e^{\tilde i_t - m_t}, \quad
          h_t = o_t\, c_t / n_t,

with ``log f~ = logsigmoid``. Its state Jacobian is neither diagonal nor a fixed matrix,
so rnngrad runs the cell's own recursion: one forward pass with a probe on the states
the cell hands out (``h`` at every step, all four at the last) gives the direct
gradients ``G_t``, and the adjoint ``g_t = G_t + J_{t+1}^T g_{t+1}`` is taken step by step
with vector-Jacobian products through the cell's own one-step function (``_impl_step``),
the stabilised gating's exact Jacobian included; the same recursion from the last
loss-bearing step's ``G`` alone is the carried gradient. The norms are over the whole
state ``(h, c, n, m)`` of every unit.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from rnngrad.errors import InvalidInputError, UnsupportedModuleError, calling_user_code
from rnngrad.profile.carried import CarriedNorms

__all__ = ["is_slstm_cell", "recording_slstm", "slstm_cells", "slstm_layer"]


def is_slstm_cell(module: nn.Module) -> bool:
    """The ``xlstm`` package's sLSTM cell (recognised without importing ``xlstm``)."""
    return any(
        cls.__name__.startswith("sLSTMCell") and cls.__module__.startswith("xlstm")
        for cls in type(module).__mro__
    ) and not type(module).__name__.endswith("Config")


def slstm_cells(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The sLSTM cells inside ``model`` (itself included), in registration order."""
    return [(name, module) for name, module in model.named_modules() if is_slstm_cell(module)]


@contextmanager
def recording_slstm(cells: list[tuple[str, nn.Module]], saved: dict[str, Any]) -> Iterator[None]:
    """For the block, every cell's recursion is recorded into ``saved[name]`` (its input,
    its states ``(4, T + 1, B, H)``) and what it hands out gets a probe."""
    for name, cell in cells:
        if "cuda" in type(cell).__name__.lower() or not hasattr(cell, "_impl_step"):
            raise UnsupportedModuleError(
                f"{name} runs the sLSTM CUDA kernel, whose recursion rnngrad cannot read: "
                "build it with backend='vanilla'"
            )
    originals = {name: type(cell) for name, cell in cells}

    def recording(name: str) -> Any:
        def _impl(self: Any, training: bool, inputs: torch.Tensor, states: torch.Tensor) -> Any:
            if name in saved:
                raise InvalidInputError(f"{name} ran more than once in one forward pass")
            own: Any = originals[name]
            all_states = own._impl(self, training, inputs, states)
            probe = torch.zeros_like(all_states, requires_grad=True)
            saved[name] = {
                "inputs": inputs.detach(),
                "states": all_states.detach(),
                "probe": probe,
                "training": training,
            }
            return all_states + probe

        return _impl

    try:
        for name, cell in cells:
            cell.__class__ = _recording_class(originals[name], recording(name))
        yield
    finally:
        for name, cell in cells:
            cell.__class__ = originals[name]


def slstm_layer(
    cell: Any, record: dict[str, Any], direct: torch.Tensor
) -> tuple[torch.Tensor, CarriedNorms]:
    """The total and the carried gradients ``(T, B, 4H)`` of one cell from the direct
    ones at its states ``(4, T, B, H)``."""
    return _adjoints(cell, record, direct)


def _recording_class(original: type[nn.Module], impl: Any) -> type[nn.Module]:
    """A subclass of the cell's class whose ``_impl`` is ``impl``."""

    def body(namespace: dict[str, Any]) -> None:
        namespace["_impl"] = impl

    return types.new_class(original.__name__, (original,), exec_body=body)


def _adjoints(
    cell: Any, record: dict[str, Any], direct: torch.Tensor
) -> tuple[torch.Tensor, CarriedNorms]:
    """The total and the carried gradients ``(T, B, 4H)`` from the direct ones
    ``(4, T, B, H)``, by vector-Jacobian products through the cell's own step."""
    from rnngrad.profile.carried import carried_norms, carried_seed

    inputs, states, training = record["inputs"], record["states"], record["training"]
    steps = states.shape[1] - 1
    flat_direct = direct.permute(1, 2, 0, 3).reshape(steps, direct.shape[2], -1)  # (T, B, 4H)
    seed = carried_seed(flat_direct)

    def backwards(start: torch.Tensor, add_direct: bool) -> torch.Tensor:
        out = torch.empty_like(start)
        g = torch.zeros_like(states[:, 0])  # (4, B, H): the gradient from step t + 1
        for k in range(steps, 0, -1):  # state k, k = T..1
            if add_direct:
                g = g + direct[:, k - 1]
            else:
                g = g + start[k - 1].reshape(direct.shape[2], 4, -1).permute(1, 0, 2)
            out[k - 1] = g.permute(1, 0, 2).reshape(direct.shape[2], -1)
            if k > 1:  # carry it through step k, from state k - 1
                before = states[:, k - 1].detach().requires_grad_(True)
                with torch.enable_grad(), calling_user_code("the sLSTM step"):
                    after = cell._impl_step(training, inputs[k - 1 : k], before)[:, 0]
                (g,) = torch.autograd.grad(after, before, g)
        return out

    total = backwards(flat_direct, add_direct=True)
    carried_total = backwards(seed.h, add_direct=False)
    return total, carried_norms(seed, carried_total)
