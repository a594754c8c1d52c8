r"""Per-time-step gradient profiles ``||dL/dh_t||`` of real PyTorch recurrent models.

For every layer ``l``, direction ``d`` and input position ``t`` the profile holds
the *total* gradient ``dL/dh_t`` (through all later steps and all layers above,
not only the direct output path), its norm per sequence and the batch mean, and
for LSTM also ``dL/dc_t``.

Algorithm. The model runs as it is: the recurrent module's forward is replaced,
for this one call, by the same fused kernel (``torch.lstm``, ``torch.gru``,
``torch.rnn_tanh``, ``torch.rnn_relu``) run one layer at a time on the module's
own parameters, which also yields every layer's outputs. The module's outputs
become leaves of the autograd graph, so one ``torch.autograd.grad`` of the loss
gives the direct gradients at the output and at the final states (through any
head the model has), and touches no parameter's ``.grad``. The backward
recursion of :mod:`rnngrad.profile.recursion` then gives the total gradients, top layer
first (:mod:`rnngrad.profile.stack`). Two routes run it (``route=``): on a CPU a
loop over time, for which a GRU's or LSTM's top layer runs a forward loop of
rnngrad's own that keeps the gates (:mod:`rnngrad.profile.forward_loops`); on a GPU the
module's own fused backward kernel, with the recursion's terms read from an
extra input slot (:mod:`rnngrad.profile.fused_backward`). Both give the same numbers to
rounding. In train mode the dropout masks between layers are drawn from a
``torch.Generator`` of the profile's own, and the global RNG is restored after
the call, so profiling never changes the training run.

Arrays are indexed by input position ``t = 1..T`` for both directions. The
summaries judge each direction in its own backpropagation order, the order in
which the gradient travels back from where the loss enters it: ``t = T..1`` for
a forward direction, ``t = 1..T`` for a reverse one (whose last processed step
is ``t = 1``). With ``s = 1..T`` the direction's processing steps:
``log10_ratio`` is ``log10 ||dL/dh_{s=1}|| / ||dL/dh_{s=T}||`` of the batch-mean
norms; ``decay_rate`` is the slope of a least-squares fit of ``ln ||dL/dh_s||``
over ``s``, in nats per step (positive: the gradient shrinks as it travels
back; for one forward layer with the loss at the end, compare ``-lambda_1``);
``horizon`` counts steps back from ``s = T`` until the norm falls below 1e-3 of
its peak; the verdict applies :func:`rnngrad.growth_verdict` to the fitted
change ``-decay_rate (T - 1) / ln 10``, and a gradient that is not finite is
*exploding*. Exact zeros (no path from the loss) are left out of the fit.

Packed sequences (``PackedSequence``, given to a bare module or made inside
the model by ``pack_padded_sequence``) run through the kernel's packed variant:
sequence ``b`` is profiled over its own steps ``1..len_b`` only (its processing
order, for a reverse direction, is ``len_b..1``), and a batch mean at step
``t`` averages the sequences that have step ``t`` (``sequences_per_step``).

A cell of one's own is profiled by :func:`rnngrad.profile.cell.cell_gradient_profile`
(re-exported here), the modern diagonal recurrences by :mod:`rnngrad.profile.diagonal`,
and models whose recurrences are xLSTM cells, rate networks or selective scans by the
routes :mod:`rnngrad.profile.library` chooses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from rnngrad.cells import (
    describe_module,
    find_recurrent_module,
    find_recurrent_modules,
    is_cell,
)
from rnngrad.errors import (
    ControlFlow,
    InvalidInputError,
    ShapeError,
    calling_user_code,
)
from rnngrad.profile.cell import cell_gradient_profile
from rnngrad.profile.fused_forward import Packing, Trajectory, initial_state, layer_forward
from rnngrad.profile.model_call import (
    check_input,
    forked_rng,
    from_time_major,
    loss_gradients,
    recorded_calls,
    scalar_loss,
)
from rnngrad.profile.result import GradientProfile, LayerProfile, LossSpec
from rnngrad.profile.stack import backward_layers
from rnngrad.profile.summary import summarise
from rnngrad.verdict import RATE_TOLERANCE

ProfileRoute = Literal["auto", "recursion", "fused"]

__all__ = [
    "GradientProfile",
    "LayerProfile",
    "LossSpec",
    "ProfileRoute",
    "cell_gradient_profile",
    "gradient_profile",
    "gradient_profiles",
    "pack_inputs",
    "summarise",
]


def _loss_of(
    loss: LossSpec,
    model_output: Any,
    module_output: torch.Tensor,
    batch_first: bool,
    packing: Packing | None,
) -> torch.Tensor:
    """The scalar loss; ``module_output`` is the output leaf (packed data when packed)."""
    if callable(loss):
        with calling_user_code("the loss"):
            value = loss(model_output)
    elif loss == "last":
        if packing is not None:  # each sequence's own last step
            padded = packing.pad(module_output)
            last = padded[packing.lengths.to(padded.device) - 1, torch.arange(padded.shape[1])]
        elif batch_first and module_output.dim() == 3:
            last = module_output[:, -1]
        else:
            last = module_output[-1]
        value = 0.5 * (last**2).sum()
    elif loss == "sum":
        value = 0.5 * (module_output**2).sum()
    else:
        raise InvalidInputError(f"unknown loss {loss!r}; expected 'last', 'sum' or a callable")
    return scalar_loss(value)


def pack_inputs(inputs: torch.Tensor, lengths: Any, *, batch_first: bool = False) -> PackedSequence:
    """Pack a padded batch by its lengths (any order), checking the lengths first.

    Raises:
        InvalidInputError: lengths that are not whole numbers, not one per
            sequence, or outside ``1..T``.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ShapeError(f"lengths need a batched input (T, B, D) or (B, T, D), got {got}")
    try:
        values = torch.as_tensor(lengths)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidInputError(
            f"lengths must be whole numbers, one per sequence, got {type(lengths).__name__}"
        ) from None
    if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
        raise InvalidInputError(f"lengths must be whole numbers, got {values.dtype}")
    batch, steps = (inputs.shape[0], inputs.shape[1]) if batch_first else inputs.shape[1::-1]
    if values.dim() != 1 or values.numel() != batch:
        raise ShapeError(
            f"lengths must have shape ({batch},), one per sequence, got {tuple(values.shape)}"
        )
    if bool((values < 1).any()) or bool((values > steps).any()):
        raise InvalidInputError(
            f"lengths must be in 1..{steps} (the padded length), got "
            f"{int(values.min())}..{int(values.max())}"
        )
    return pack_padded_sequence(
        inputs, values.to("cpu", torch.int64), batch_first=batch_first, enforce_sorted=False
    )


def _as_arguments(inputs: Any) -> tuple[Any, ...]:
    """What the model is called with: a tuple is unpacked, anything else (a tensor, and a
    ``PackedSequence``, which is a tuple too) is one argument."""
    if isinstance(inputs, tuple) and not isinstance(inputs, PackedSequence):
        return tuple(inputs)
    return (inputs,)


class _CalledAgain(ControlFlow):
    """The module was called a second time in one forward pass (a decoder)."""


def _stepped(
    model: nn.Module,
    arguments: tuple[Any, ...],
    name: str,
    rnn: nn.Module,
    loss: LossSpec,
    generator: torch.Generator,
    keep_gradients: bool,
    tolerance: float,
) -> GradientProfile:
    from rnngrad.profile.calls import stepped_profiles

    profiles = stepped_profiles(
        model,
        arguments,
        [(name, rnn)],
        loss=loss,
        generator=generator,
        keep_gradients=keep_gradients,
        tolerance=tolerance,
    )
    return profiles[name]


def gradient_profiles(
    model: nn.Module,
    inputs: Any,
    *,
    loss: LossSpec,
    modules: list[str] | None = None,
    generator: torch.Generator | None = None,
    keep_gradients: bool = False,
    tolerance: float = RATE_TOLERANCE,
) -> dict[str, GradientProfile]:
    """One profile per recurrent module of ``model`` (all of them, or the named ones),
    from one forward pass: an encoder and its decoder in one call.

    Every module is profiled through the probes of :mod:`rnngrad.profile.stepped`
    (exact ``dL/dh_t`` at every step of every call; ``dL/dc_t`` of an LSTM
    where each call is one step long). ``loss`` is a callable on the model's
    output (``"last"``/``"sum"`` only for a model with one recurrent module).

    Returns:
        ``{name: profile}`` in the order the model registers the modules.
    """
    found = find_recurrent_modules(model)
    if not found:
        find_recurrent_module(model)  # raises the usual error
    if modules is not None:
        chosen = [find_recurrent_module(model, name) for name in modules]
    else:
        chosen = found
    from rnngrad.profile.calls import stepped_profiles

    return stepped_profiles(
        model,
        _as_arguments(inputs),
        chosen,
        loss=loss,
        generator=generator or torch.Generator().manual_seed(0),
        keep_gradients=keep_gradients,
        tolerance=tolerance,
    )


def gradient_profile(
    model: nn.Module,
    inputs: torch.Tensor | PackedSequence | tuple[Any, ...],
    *,
    loss: LossSpec = "last",
    module: str | None = None,
    hx: Any = None,
    lengths: Any = None,
    generator: torch.Generator | None = None,
    keep_gradients: bool = False,
    tolerance: float = RATE_TOLERANCE,
    dtype: torch.dtype | None = None,
    route: ProfileRoute = "auto",
) -> GradientProfile:
    """The total gradient ``dL/dh_t`` of every layer, direction and step of a model.

    Args:
        model: an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` or one of their cells, or any
            module that contains exactly one of them (or name it with
            ``module``). A module called more than once per forward pass (a
            decoder stepping it, a cell in a loop) is profiled per call, steps in
            call order (:mod:`rnngrad.profile.stepped`); a bare cell given a whole
            sequence ``(T, B, D)`` runs over it as the one-layer module with its
            weights.
        inputs: what ``model`` is called with (a tuple is unpacked). For a bare
            module: the input (a tensor or a ``PackedSequence``), or
            ``(input, hx)`` as the module itself takes them.
        loss: ``"last"``: ``L = 0.5 sum(output[last step]**2)`` on the recurrent
            module's output (both directions concatenated; each sequence's own
            last step when packed); ``"sum"``: ``L = 0.5 sum(output**2)`` over all
            steps; or a callable that maps the *model's* output to a scalar tensor.
        module: the recurrent submodule's name, when the model has several.
        hx: initial state, when ``model`` is the recurrent module itself.
        lengths: ``(B,)`` sequence lengths that pack a padded input of a bare
            module (a model packs its own input with ``pack_padded_sequence``).
        generator: draws the dropout masks in train mode (seeded 0 when omitted).
        keep_gradients: also return the gradient tensors, not only their norms
            (zeros at padding steps).
        tolerance: per-step tolerance of the growth rule.
        dtype: compute in this dtype on a converted copy. By default a
            half-precision model, or one called under ``torch.autocast``, is
            profiled in float32 (autocast off) and anything else as it is; the
            result's ``dtype`` is the one used, ``source_dtype`` the model's, and
            ``precision_note`` says where the reduced dtype flushes gradients.
        route: how a fused module's recursion is run: ``"recursion"`` (a loop
            over time, :mod:`rnngrad.profile.recursion`; the fastest on a CPU), ``"fused"``
            (the module's own fused backward kernel, :mod:`rnngrad.profile.fused_backward`;
            no per-step kernel launches), or ``"auto"``: fused on a GPU,
            recursion elsewhere. Both give the same numbers to rounding.

    Raises:
        UnsupportedModuleError: no recurrent module, or several without a name.
        ShapeError, InvalidInputError, NonFiniteInputError: bad input, an
            initial state given twice, or ``hx``/``lengths`` given for a model
            that is not itself the recurrent module.
    """
    from rnngrad.profile.library import library_profile
    from rnngrad.profile.precision import cast_floating, converted_copy, flush_note, precision_plan

    read = library_profile(
        model, _as_arguments(inputs), module=module, hx=hx, lengths=lengths, loss=loss,
        keep_gradients=keep_gradients, tolerance=tolerance,
    )  # fmt: skip
    if read is not None:
        return read
    precision = precision_plan(find_recurrent_module(model, module)[1], dtype)
    if precision.compute is not None:
        model = converted_copy(model, precision.compute)
        inputs, hx = cast_floating(inputs, precision.compute), cast_floating(hx, precision.compute)
    with precision.autocast_off():
        profile = _profile(
            model, inputs, loss=loss, module=module, hx=hx, lengths=lengths,
            generator=generator, keep_gradients=keep_gradients, tolerance=tolerance,
            route=route,
        )  # fmt: skip
    if precision.source is None:
        return profile
    note = flush_note(
        precision, [lp.name for lp in profile.layers], [lp.grad_norm for lp in profile.layers],
        profile.steps,
    )  # fmt: skip
    return replace(profile, source_dtype=precision.source, precision_note=note)


def _profile(
    model: nn.Module,
    inputs: torch.Tensor | PackedSequence | tuple[Any, ...],
    *,
    loss: LossSpec,
    module: str | None,
    hx: Any,
    lengths: Any,
    generator: torch.Generator | None,
    keep_gradients: bool,
    tolerance: float,
    route: ProfileRoute = "auto",
) -> GradientProfile:
    if route not in ("auto", "recursion", "fused"):
        raise InvalidInputError(f"route must be auto, recursion or fused, got {route!r}")
    name, rnn = find_recurrent_module(model, module)
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(rnn, DiagonalRecurrence):
        from rnngrad.profile.diagonal import diagonal_profile

        if hx is not None or lengths is not None:
            raise InvalidInputError("hx= and lengths= apply to nn.RNN, nn.LSTM and nn.GRU")
        return diagonal_profile(
            model, _as_arguments(inputs), name, rnn, loss=loss,
            keep_gradients=keep_gradients, tolerance=tolerance,
        )  # fmt: skip
    layout = describe_module(rnn)
    arguments = _as_arguments(inputs)
    if rnn is model:
        if len(arguments) == 2:
            if hx is not None:
                raise InvalidInputError(
                    "the initial state is given twice: as inputs = (x, hx) and as hx="
                )
            hx = arguments[-1]
            arguments = arguments[:1]
        elif len(arguments) != 1:
            raise InvalidInputError(
                f"a recurrent module is called with (input) or (input, hx), "
                f"got {len(arguments)} arguments"
            )
        if lengths is not None:
            if isinstance(arguments[0], PackedSequence):
                raise InvalidInputError("the input is packed already: lengths= is not needed")
            arguments = (pack_inputs(arguments[0], lengths, batch_first=layout.batch_first),)
    elif hx is not None or lengths is not None:
        given = "hx=" if hx is not None else "lengths="
        raise InvalidInputError(
            f"{given} applies to a bare recurrent module; {type(model).__name__} is called "
            "with inputs as they are (pass the initial state or pack the sequences in its forward)"
        )
    gen = generator or torch.Generator().manual_seed(0)
    if is_cell(rnn) and rnn is not model:
        return _stepped(model, arguments, name, rnn, loss, gen, keep_gradients, tolerance)
    saved: dict[str, Any] = {}

    def forward(input: Any, state: Any = None) -> Any:
        if saved:  # a decoder stepping the module: the probes of rnngrad.profile.stepped take over
            raise _CalledAgain
        x = check_input(layout, rnn, input)
        h0, c0 = initial_state(layout, x, state)
        on_gpu = (x.data if isinstance(x, PackedSequence) else x).is_cuda
        chosen = ("fused" if on_gpu else "recursion") if route == "auto" else route
        trajectory, out, h_n, c_n = layer_forward(
            rnn, layout, x, (h0, c0), gen, own_loop=chosen == "recursion" and not on_gpu
        )
        packing = trajectory.packing
        if packing is not None:
            h_n = packing.to_user(h_n, 1)
            c_n = packing.to_user(c_n, 1) if c_n is not None else None
            leaf_out = out.detach().requires_grad_(True)
            output: Any = PackedSequence(
                leaf_out, packing.batch_sizes, packing.sorted_indices, packing.unsorted_indices
            )
        else:
            leaf_out = from_time_major(out, layout, trajectory.unbatched)
            leaf_out = leaf_out.detach().requires_grad_(True)
            output = leaf_out
        unbatched = trajectory.unbatched
        leaf_h = (h_n.squeeze(1) if unbatched else h_n).detach().requires_grad_(True)
        saved.update(trajectory=trajectory, out=leaf_out, h=leaf_h, c=None, route=chosen)
        if c_n is None:
            return output, leaf_h
        leaf_c = (c_n.squeeze(1) if unbatched else c_n).detach().requires_grad_(True)
        saved["c"] = leaf_c
        return output, (leaf_h, leaf_c)

    with forked_rng(arguments):
        if rnn is model:
            model_output = forward(arguments[0], hx)
        else:
            try:
                with recorded_calls(rnn, forward), calling_user_code(f"{type(model).__name__}"):
                    model_output = model(*arguments)
            except _CalledAgain:
                called_again = True
            else:
                called_again = False
            if called_again:  # outside the except block: no chained traceback
                return _stepped(model, arguments, name, rnn, loss, gen, keep_gradients, tolerance)
        if not saved:
            raise InvalidInputError(f"the model never called its recurrent module {name!r}")
        trajectory: Trajectory = saved["trajectory"]
        loss_value = _loss_of(
            loss, model_output, saved["out"], layout.batch_first, trajectory.packing
        )
        leaves = [saved["out"], saved["h"]] + ([saved["c"]] if saved["c"] is not None else [])
        grads = loss_gradients(loss_value, leaves, allow_unused=True)
    grads = tuple(
        torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)
    )
    layers = backward_layers(
        rnn, layout, trajectory, grads, keep_gradients, tolerance, saved["route"]
    )
    steps, batch = (int(n) for n in trajectory.inputs[0].shape[:2])
    packing = trajectory.packing
    lengths = (
        np.full(batch, steps, dtype=np.int64)
        if packing is None
        else packing.to_user(packing.lengths, 0).numpy().astype(np.int64)
    )
    return GradientProfile(
        layout=layout,
        module_name=name,
        steps=steps,
        batch=batch,
        loss=loss if isinstance(loss, str) else "custom",
        loss_value=float(loss_value.detach()),
        dtype=str(trajectory.inputs[0].dtype).removeprefix("torch."),
        layers=layers,
        lengths=lengths,
    )
