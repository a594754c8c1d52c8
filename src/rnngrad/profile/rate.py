r"""The gradient profile of rate networks (:class:`rnngrad.rate.RateRNN`) inside a model.

The model runs as it is; each rate network's forward records its currents
``x_0..x_T`` and hands out its rates ``phi(x_t)`` and last currents ``x_T`` with zero
probes added, so one ``torch.autograd.grad`` of the loss gives the direct gradients
``G_t = phi'(x_t) * dL/dr_t`` (plus ``dL/dx_T`` at the last step). The total gradient at
the currents then follows the exact backward recursion

.. math:: g_t = G_t + J_{t+1}^\top g_{t+1}, \qquad
          J_{t+1}^\top v = (1 - \delta)\, v + \delta\, \phi'(x_t) \odot (W^\top v),

and the carried gradient (:mod:`rnngrad.profile.carried`) the same recursion from each
sequence's last loss-bearing step alone. One layer per rate network, in registration
order; its saturation is the share of ``phi'(x_t)``, ``t = 1..T``, below 10% of its
maximum 1.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from rnngrad.errors import InvalidInputError, calling_user_code
from rnngrad.profile.carried import CarriedNorms, carried_norms, carried_seed
from rnngrad.profile.gates import SaturationCount
from rnngrad.profile.model_call import forked_rng, loss_gradients, output_loss
from rnngrad.profile.result import GradientProfile, LossSpec, cells_profile
from rnngrad.profile.summary import gradient_norms, summarise
from rnngrad.rate.network import RateRNN

__all__ = ["rate_modules", "rate_profile"]


def rate_modules(model: nn.Module) -> list[tuple[str, RateRNN]]:
    """The rate networks inside ``model`` (itself included), in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, RateRNN)]


@contextmanager
def _recording(cells: list[tuple[str, RateRNN]], saved: dict[str, Any]) -> Iterator[None]:
    originals: dict[str, type[nn.Module]] = {name: type(cell) for name, cell in cells}

    def recording(name: str) -> Any:
        def forward(self: RateRNN, u: torch.Tensor, x0: torch.Tensor | None = None) -> Any:
            if name in saved:
                raise InvalidInputError(f"{name} ran more than once in one forward pass")
            sequence = u.transpose(0, 1) if self.batch_first else u
            x = (
                torch.zeros(sequence.shape[1], self.hidden_size, dtype=u.dtype, device=u.device)
                if x0 is None
                else x0
            )
            states = [x]
            for u_t in sequence:
                x = self.step(x, u_t)
                states.append(x)
            stacked = torch.stack(states)  # (T + 1, B, N)
            rates = self.phi(stacked[1:])
            probe_rates = torch.zeros_like(rates, requires_grad=True)
            probe_last = torch.zeros_like(x, requires_grad=True)
            saved[name] = {"states": stacked.detach(), "probes": (probe_rates, probe_last)}
            out = rates + probe_rates
            return (out.transpose(0, 1) if self.batch_first else out), x + probe_last

        return forward

    try:
        for name, cell in cells:
            cell.__class__ = _with_forward(originals[name], recording(name))  # type: ignore[assignment]
        yield
    finally:
        for name, cell in cells:
            cell.__class__ = originals[name]  # type: ignore[assignment]


def _with_forward(original: type[nn.Module], forward: Any) -> type[nn.Module]:
    """A subclass of the network's class whose ``forward`` records."""

    def body(namespace: dict[str, Any]) -> None:
        namespace["forward"] = forward

    return types.new_class(original.__name__, (original,), exec_body=body)


def _layer(
    cell: RateRNN, slopes: torch.Tensor, direct: torch.Tensor
) -> tuple[torch.Tensor, CarriedNorms]:
    """The total gradients ``(T, B, N)`` at the currents ``x_1..x_T`` from the direct
    ones, and the carried gradient's norms; ``slopes`` is ``phi'(x_t)``, ``t = 0..T``."""
    weight = cell.weight_hh.detach()
    delta = cell.delta
    steps = direct.shape[0]
    seed = carried_seed(direct)

    def backwards(entries: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(entries)
        g = torch.zeros_like(entries[0])
        for t in range(steps, 0, -1):  # x_t, t = T..1
            g = g + entries[t - 1]
            out[t - 1] = g
            g = (1.0 - delta) * g + delta * slopes[t - 1] * (g @ weight)
        return out

    total = backwards(direct)
    carried = total if seed.alone else backwards(seed.h)
    return total, carried_norms(seed, carried)


def rate_profile(
    model: nn.Module,
    arguments: tuple[Any, ...],
    cells: list[tuple[str, RateRNN]],
    *,
    loss: LossSpec,
    keep_gradients: bool,
    tolerance: float,
) -> GradientProfile:
    """The profile of every rate network in ``cells`` as ``model(*arguments)`` runs them
    (see the module docstring)."""
    saved: dict[str, Any] = {}
    with forked_rng(arguments):
        with _recording(cells, saved), calling_user_code(type(model).__name__):
            output = model(*arguments)
        missing = [name for name, _ in cells if name not in saved]
        if missing:
            raise InvalidInputError(f"the model never ran the rate network {missing[0]!r}")
        batch_first = cells[0][1].batch_first
        if isinstance(loss, str) and isinstance(output, tuple):
            output = output[0]  # a named loss reads the rates, as a fused module's reads h_t
        value = output_loss(output, loss, time_dim=1 if batch_first else 0)
        probes = [probe for name, _ in cells for probe in saved[name]["probes"]]
        directs = loss_gradients(value, probes, allow_unused=True)
    layers = []
    for index, (name, cell) in enumerate(cells):
        states = saved[name]["states"]
        rates_grad, last_grad = directs[2 * index], directs[2 * index + 1]
        slopes = 1.0 - torch.tanh(states) ** 2  # phi'(x_t), t = 0..T
        # the probes were added time-major: (T, B, N) whatever the layout
        direct = torch.zeros_like(states[1:]) if rates_grad is None else slopes[1:] * rates_grad
        if last_grad is not None:
            direct[-1] = direct[-1] + last_grad
        total, carried = _layer(cell, slopes, direct.detach())
        saturation = SaturationCount()
        saturation.add(slopes[1:].detach(), 1.0)  # phi'(x_t), t = 1..T; max phi' = 1
        layers.append(
            summarise(
                index, 0, gradient_norms(total), saturation.share, carried=carried,
                tolerance=tolerance,
                grad=total.transpose(0, 1).clone() if keep_gradients else None,
            )
        )  # fmt: skip
    return cells_profile(
        layers, names=[name for name, _ in cells], model=model, loss=loss, value=value,
        dtype=cells[0][1].weight_hh.dtype, input_size=cells[0][1].input_size,
        hidden_size=max(cell.hidden_size for _, cell in cells), batch_first=batch_first,
    )  # fmt: skip
