"""Every layer and direction of a fused module, top layer first: the recursion's driver.

From the gradients that reach a fused module's outputs and final states (the
leaves of :mod:`rnngrad.profile.front`), :func:`backward_layers` runs the exact
per-direction recursion of :mod:`rnngrad.profile.recursion` from the top layer down. Each
direction's gradient with respect to its layer's input, summed over the
directions and masked by the dropout between layers, is the next layer down's
direct gradient. A reverse direction runs in its own processing order (within
each sequence's length when packed), and the norms are returned by input
position and in the user's batch order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from rnngrad.cells import RecurrentLayout, layer_weights
from rnngrad.profile.carried import CarriedNorms, carried_seed, source_positions
from rnngrad.profile.fused_forward import Trajectory, reverse_within
from rnngrad.profile.model_call import to_time_major
from rnngrad.profile.recursion import Route, backward_direction
from rnngrad.profile.result import LayerProfile
from rnngrad.profile.summary import gradient_norms, summarise

__all__ = ["backward_layers"]


def backward_layers(
    rnn: nn.Module,
    layout: RecurrentLayout,
    trajectory: Trajectory,
    grads: tuple[torch.Tensor, ...],
    keep_gradients: bool,
    tolerance: float,
    route: Route = "recursion",
) -> tuple[LayerProfile, ...]:
    """The exact recursion of :mod:`rnngrad.profile.recursion`, top layer first, from the
    leaves' gradients."""
    unbatched = trajectory.unbatched
    packing = trajectory.packing
    if packing is None:
        direct = to_time_major(grads[0], layout, unbatched)
        grad_h_n = grads[1].unsqueeze(1) if unbatched else grads[1]
        grad_c_n = None
        if layout.kind == "lstm":
            grad_c_n = grads[2].unsqueeze(1) if unbatched else grads[2]
        lengths = None
        user_lengths = None
        valid = None
    else:
        direct = packing.pad(grads[0])
        grad_h_n = packing.to_sorted(grads[1], 1)
        grad_c_n = packing.to_sorted(grads[2], 1) if layout.kind == "lstm" else None
        lengths = packing.lengths
        user_lengths = packing.to_user(lengths, 0).numpy().astype(np.int64)
        valid = packing.valid
    steps, batch = direct.shape[:2]
    batch_index = torch.arange(batch, device=direct.device)

    def to_user(per_sequence: NDArray[Any]) -> NDArray[Any]:
        """Per-sequence rows from the packed batch's sorted order to the user's."""
        if packing is None or packing.unsorted_indices is None:
            return per_sequence
        reordered: NDArray[Any] = per_sequence[packing.unsorted_indices.cpu().numpy()]
        return reordered

    def kept(value: torch.Tensor | None) -> torch.Tensor | None:
        if not keep_gradients or value is None:
            return None
        batch_major = value.transpose(0, 1)
        return packing.to_user(batch_major, 0).clone() if packing else batch_major.clone()

    dirs, size = layout.num_directions, layout.state_size
    profiles: dict[tuple[int, int], LayerProfile] = {}
    for layer in range(layout.num_layers - 1, -1, -1):
        layer_input = trajectory.inputs[layer]
        layer_output = trajectory.outputs[layer]
        layer_saved = None
        if trajectory.saved_gates is not None:  # released as soon as the layer is done
            layer_saved, trajectory.saved_gates[layer] = trajectory.saved_gates[layer], None
        grad_input = torch.zeros_like(layer_input)
        for direction in range(dirs):
            row = layer * dirs + direction
            part = slice(direction * size, (direction + 1) * size)

            def order(t: torch.Tensor, reverse: bool = direction == 1) -> torch.Tensor:
                return reverse_within(t, lengths) if reverse else t

            # The recursion accumulates into its own copy of the direct gradient; a
            # reversed one is a fresh copy already, and a whole-width forward one is this
            # function's own (the leaves' gradients, padded, or the layer above's sum).
            if direction == 1:
                given = order(direct[..., part]).contiguous()
            elif dirs == 1 and direct.is_contiguous():
                given = direct
            else:
                given = direct[..., part].clone(memory_format=torch.contiguous_format)
            direct_c_last = None if grad_c_n is None else grad_c_n[row]
            direct_c_steps = None
            if lengths is None:
                given[-1] += grad_h_n[row]
            else:  # each sequence's final state is its own last step
                last = (lengths - 1).to(given.device)
                given[last, batch_index] += grad_h_n[row]
                if grad_c_n is not None:
                    direct_c_steps = torch.zeros(
                        (steps, batch, layout.hidden_size), dtype=given.dtype, device=given.device
                    )
                    direct_c_steps[last, batch_index] = grad_c_n[row]
                    direct_c_last = torch.zeros_like(grad_c_n[row])
            weights = layer_weights(rnn, layer, direction)
            x, h = order(layer_input), order(layer_output[..., part])
            h0 = trajectory.h0[row]
            c0 = None if trajectory.c0 is None else trajectory.c0[row]
            seed = carried_seed(given, direct_c_last, direct_c_steps)
            result = backward_direction(
                layout.kind, weights, x, h, h0, c0, given, direct_c_last,
                need_input=layer > 0, direct_c_steps=direct_c_steps, valid=valid,
                overwrite_direct=True,  # given is this loop's own copy
                route=route, saved=None if layer_saved is None else layer_saved[direction],
            )  # fmt: skip
            # The gradient carried back from the last loss-bearing step alone: the same
            # recursion again, with that step's direct gradient as the only entry (the
            # total itself when the loss enters each sequence at that step only).
            carried = result
            if not seed.alone:
                carried = backward_direction(
                    layout.kind, weights, x, h, h0, c0, seed.h,
                    None if c0 is None else torch.zeros_like(c0),
                    need_input=False, direct_c_steps=seed.c_steps, valid=valid,
                    overwrite_direct=True, route=route,
                )  # fmt: skip
            carried_norms = CarriedNorms(
                to_user(gradient_norms(order(carried.grad_h))),
                None if carried.grad_c is None else to_user(gradient_norms(order(carried.grad_c))),
                to_user(order(seed.mask().unsqueeze(-1))[..., 0].T.cpu().numpy()),
                to_user(source_positions(seed.last, lengths, steps, direction == 1)),
            )
            del carried
            grad_h = order(result.grad_h)
            grad_c = None if result.grad_c is None else order(result.grad_c)
            if result.grad_input is not None:
                grad_input += order(result.grad_input)
            profiles[(layer, direction)] = summarise(
                layer,
                direction,
                to_user(gradient_norms(grad_h)),
                result.saturated,
                cell_grad_norm=None if grad_c is None else to_user(gradient_norms(grad_c)),
                carried=carried_norms,
                lengths=user_lengths,
                tolerance=tolerance,
                grad=kept(grad_h),
                grad_c=kept(grad_c),
            )
        if layer > 0:
            mask = trajectory.masks[layer - 1]
            direct = grad_input if mask is None else grad_input * mask
    return tuple(
        profiles[(layer, direction)]
        for layer in range(layout.num_layers)
        for direction in range(dirs)
    )
