"""Exact per-token gradients of the selective scans in a model (mambapy's Mamba, a layer
of the selective-scan protocol of :mod:`rnngrad.modern.selective`).

One forward pass runs every block's recursion through rnngrad's own scan with a zero
probe added to the states (batch first, ``(B, L, *state)``); ``dL/dprobe`` is each
block's direct gradient ``G_t`` and the total is the adjoint scan
``g_t = G_t + a_{t+1} g_{t+1}`` with the block's own coefficients ``a_t`` (Mamba's
``exp(Delta_t A)``); the same scan from the last loss-bearing step's ``G`` alone is the
carried gradient the verdict reads. Each block is one layer of the profile, its state
flattened (``ED * N`` per token for Mamba).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.cells import RecurrentLayout
from rnngrad.errors import InvalidInputError, calling_user_code
from rnngrad.modern.scan import diagonal_adjoint, linear_scan
from rnngrad.modern.selective import all_scans_through
from rnngrad.profile.carried import carried_norms, carried_seed
from rnngrad.profile.model_call import forked_rng, loss_gradients, output_loss
from rnngrad.profile.result import GradientProfile, LossSpec
from rnngrad.profile.summary import gradient_norms, summarise

__all__ = ["channel_group_norms", "selective_profile"]


def selective_profile(
    model: nn.Module,
    arguments: tuple[Any, ...],
    blocks: list[tuple[str, nn.Module]],
    *,
    loss: LossSpec,
    keep_gradients: bool,
    tolerance: float,
) -> GradientProfile:
    """The profile of every selective scan in ``blocks`` (inside ``model``), one layer each.

    ``loss``: a callable on the model's output, or ``"last"``/``"sum"``: half the squared
    norm of the output at the last token (batch first, ``output[:, -1]``) or everywhere.
    """
    saved: dict[str, dict[str, torch.Tensor]] = {}

    def scan_of(name: str) -> Any:
        def scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            if name in saved:
                raise InvalidInputError(
                    f"{name or 'the block'} ran its scan more than once in one forward pass; "
                    "a selective scan is profiled over one call"
                )
            states = linear_scan(a.transpose(0, 1), b.transpose(0, 1)).transpose(0, 1)
            probe = torch.zeros_like(states, requires_grad=True)
            saved[name] = {"a": a.detach(), "probe": probe, "states": states.detach()}
            return states + probe

        return scan

    with forked_rng(arguments):
        with all_scans_through(blocks, scan_of), calling_user_code(type(model).__name__):
            output = model(*arguments)
        missing = [name for name, _ in blocks if name not in saved]
        if missing:
            raise InvalidInputError(f"the model never ran the selective scan {missing[0]!r}")
        value = output_loss(output, loss, time_dim=1)  # batch first, as the libraries' blocks
        probes = [saved[name]["probe"] for name, _ in blocks]
        directs = loss_gradients(value, probes, allow_unused=True)
    layers = []
    for index, ((name, _), direct) in enumerate(zip(blocks, directs, strict=True)):
        states = saved[name]["states"]
        steps, batch = int(states.shape[1]), int(states.shape[0])
        flat = (steps, batch, -1)  # time-major, the state flattened
        coefficients = saved[name]["a"].transpose(0, 1).reshape(flat)
        given = torch.zeros_like(states) if direct is None else direct.detach()
        direct_flat = given.transpose(0, 1).reshape(flat)
        with torch.no_grad():
            total = diagonal_adjoint(direct_flat, coefficients)
            seed = carried_seed(direct_flat)
            carried = carried_norms(seed, diagonal_adjoint(seed.h, coefficients))
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
    first = saved[blocks[0][0]]["states"]
    layout = RecurrentLayout(
        kind="custom", input_size=int(first.shape[2]), hidden_size=int(first[0, 0].numel()),
        proj_size=0, num_layers=len(blocks), bidirectional=False, batch_first=True, bias=True,
        dropout=0.0,
    )  # fmt: skip
    steps, batch = int(first.shape[1]), int(first.shape[0])
    return GradientProfile(
        layout=layout,
        module_name=blocks[0][0] if len(blocks) == 1 else type(model).__name__,
        steps=steps,
        batch=batch,
        loss=loss if isinstance(loss, str) else "custom",
        loss_value=float(value.detach()),
        dtype=str(first.dtype).removeprefix("torch."),
        layers=tuple(layers),
        lengths=np.full(batch, steps, dtype=np.int64),
    )


def channel_group_norms(grad: torch.Tensor, channels: int, groups: int) -> np.ndarray:
    """``(G, B, T)`` norms of a selective block's per-token gradients by channel group.

    Args:
        grad: ``(B, T, ED * N)`` the block's gradients, as a profile with
            ``keep_gradients=True`` keeps them (``profile.layers[i].grad``).
        channels: ``ED``, the block's channels (its state is ``(ED, N)`` per token).
        groups: how many groups of consecutive channels (``ED`` divisible by it).

    Raises:
        InvalidInputError: ``groups`` does not divide ``channels``, or the gradients'
            width is not a multiple of ``channels``.
    """
    batch, steps, width = grad.shape
    if groups < 1 or channels % groups or width % channels:
        raise InvalidInputError(
            f"{groups} groups of the {channels} channels of a state {width} wide: the groups "
            "must divide the channels and the channels the state"
        )
    per_group = grad.reshape(batch, steps, groups, -1)  # channels first in (ED, N)
    norms = torch.linalg.vector_norm(per_group.double(), dim=3)  # (B, T, G)
    result: np.ndarray = norms.permute(2, 0, 1).cpu().numpy()
    return result
