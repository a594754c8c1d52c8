"""Profiles from the calls a run of the model makes: every recurrent module it calls,
however often, through the probes of :mod:`rnngrad.profile.stepped`.

:func:`profile_call` is the most general entry: ``fn()`` runs the user's own forward
and loss (a training step's, without the backward) and returns the scalar loss;
rnngrad profiles every recurrent module it calls. The function runs twice: once to
find the recurrent modules it calls (under ``torch.no_grad``, the global RNG
restored), once with them recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.cells import _recurrent_types
from rnngrad.errors import InvalidInputError, calling_user_code
from rnngrad.modern.base import DiagonalRecurrence
from rnngrad.profile.carried import carried_norms
from rnngrad.profile.model_call import forked_rng, scalar_loss
from rnngrad.profile.result import GradientProfile, LossSpec
from rnngrad.profile.stepped import StepRecorder, probe_gradients, recording
from rnngrad.profile.summary import gradient_norms, summarise
from rnngrad.verdict import RATE_TOLERANCE

__all__ = ["profile_call", "profiles_of_run", "stepped_profiles"]


def profile_call(
    fn: Callable[[], torch.Tensor],
    *,
    model: nn.Module | None = None,
    generator: torch.Generator | None = None,
    keep_gradients: bool = False,
    tolerance: float = RATE_TOLERANCE,
) -> dict[str, GradientProfile]:
    """A gradient profile of every recurrent module that ``fn()`` calls.

    Args:
        fn: runs the model's forward and its loss and returns the scalar loss tensor
            (call nothing's ``backward``); it is called twice.
        model: the model ``fn`` runs, to name its modules (``"encoder"``); without
            it, each module is named after its class.
        generator: draws the dropout masks between a fused module's layers in train
            mode (seeded 0 when omitted).
        keep_gradients, tolerance: as for :func:`rnngrad.gradient_profile`.

    Returns:
        ``{name: profile}`` in the order the modules were first called.

    Raises:
        InvalidInputError: ``fn`` is not callable, returns no scalar tensor, or calls
            no recurrent module; a diagonal recurrence among them (profile it with
            :func:`rnngrad.gradient_profile`).
    """
    if not callable(fn):
        raise InvalidInputError(f"profile_call needs a function fn(), got {type(fn).__name__}")
    called: list[nn.Module] = []

    def spot(module: nn.Module, args: Any) -> None:
        if isinstance(module, _recurrent_types()) and all(m is not module for m in called):
            called.append(module)

    handle = nn.modules.module.register_module_forward_pre_hook(spot)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            with calling_user_code("the function given to profile_call"):
                value = fn()
    finally:
        handle.remove()
    scalar_loss(value)
    if not called:
        raise InvalidInputError("the function given to profile_call calls no recurrent module")
    diagonal = [type(m).__name__ for m in called if isinstance(m, DiagonalRecurrence)]
    if diagonal:
        raise InvalidInputError(
            f"profile_call records nn.RNN/LSTM/GRU and their cells; {diagonal[0]} is a "
            "diagonal recurrence: profile it with rnngrad.gradient_profile"
        )
    modules = _named(called, model)
    return profiles_of_run(
        _user_run(fn),
        modules,
        loss_name="custom",
        generator=generator or torch.Generator().manual_seed(0),
        keep_gradients=keep_gradients,
        tolerance=tolerance,
    )


def _user_run(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with calling_user_code("the function given to profile_call"):
            return fn()

    return run


def _named(modules: list[nn.Module], model: nn.Module | None) -> list[tuple[str, nn.Module]]:
    """Each module's name in ``model``, or its class name (numbered when repeated)."""
    names = {id(m): name for name, m in model.named_modules()} if model is not None else {}
    named: list[tuple[str, nn.Module]] = []
    seen: dict[str, int] = {}
    for module in modules:
        name = names.get(id(module))
        if name is None:
            base = type(module).__name__
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base} #{seen[base]}"
        named.append((name, module))
    return named


def stepped_profiles(
    model: nn.Module,
    arguments: tuple[Any, ...],
    modules: list[tuple[str, nn.Module]],
    *,
    loss: LossSpec,
    generator: torch.Generator,
    keep_gradients: bool,
    tolerance: float,
) -> dict[str, GradientProfile]:
    """One forward pass of ``model`` with every module in ``modules`` probed; a profile each.

    ``loss`` is a callable on the model's output, or ``"last"``/``"sum"`` on the
    one module's outputs (refused for several modules: which one's?).
    """
    if not callable(loss) and len(modules) > 1:
        raise InvalidInputError(
            f"loss={loss!r} reads one recurrent module's output; with several modules "
            "give a callable on the model's output"
        )
    recorders_seen: list[StepRecorder] = []

    def run() -> Any:
        with calling_user_code(type(model).__name__):
            model_output = model(*arguments)
        if callable(loss):
            with calling_user_code("the loss"):
                return loss(model_output)
        for recorder in recorders_seen:
            recorder.check()
        return recorders_seen[0].loss(loss)

    return profiles_of_run(
        run,
        modules,
        loss_name=loss if isinstance(loss, str) else "custom",
        generator=generator,
        keep_gradients=keep_gradients,
        tolerance=tolerance,
        arguments=arguments,
        seen=recorders_seen,
    )


def profiles_of_run(
    run: Callable[[], Any],
    modules: list[tuple[str, nn.Module]],
    *,
    loss_name: str,
    generator: torch.Generator,
    keep_gradients: bool,
    tolerance: float,
    arguments: tuple[Any, ...] = (),
    seen: list[StepRecorder] | None = None,
) -> dict[str, GradientProfile]:
    """A profile of each module in ``modules`` from one call of ``run``, which runs the
    model and returns the scalar loss; every call it makes of a module is probed (a
    module that ``run`` never calls is refused)."""
    devices = {p.device.index or 0 for _, m in modules for p in m.parameters() if p.is_cuda}
    with forked_rng(arguments, cuda_devices=sorted(devices)):
        with recording(modules, generator) as recorders:
            if seen is not None:
                seen.extend(recorders)
            value = run()
        for recorder in recorders:
            recorder.check()
        value = scalar_loss(value)
        if not value.requires_grad:
            raise InvalidInputError(
                "the loss does not depend on the recurrent modules' states (it needs no "
                "gradient); return the loss the model's output gives"
            )
        grads = probe_gradients(value, recorders)
        carried = {
            (id(recorder), layer): recorder.carried(grads, layer)
            for recorder in recorders
            for layer in range(recorder.layout.num_layers)
        }
    profiles = {}
    for recorder in recorders:
        grad_h, grad_c, saturation = recorder.gradients(grads)
        totals = torch.stack([call.steps_of() for call in recorder.calls]).sum(dim=0).numpy()
        lengths = totals.astype(np.int64)
        layers = []
        for layer, (gh, gc, share) in enumerate(zip(grad_h, grad_c, saturation, strict=True)):
            seed, carried_h, carried_c = carried[(id(recorder), layer)]
            if carried_h is None:
                carried_h, carried_c = gh, gc
            layers.append(
                summarise(
                    layer,
                    0,
                    gradient_norms(gh),
                    share,
                    cell_grad_norm=None if gc is None else gradient_norms(gc),
                    carried=carried_norms(seed, carried_h, carried_c),
                    lengths=lengths,
                    tolerance=tolerance,
                    grad=gh.transpose(0, 1).clone() if keep_gradients else None,
                    grad_c=gc.transpose(0, 1).clone()
                    if keep_gradients and gc is not None
                    else None,
                )
            )
        steps, batch = (int(n) for n in grad_h[0].shape[:2])
        profiles[recorder.name] = GradientProfile(
            layout=recorder.layout,
            module_name=recorder.name,
            steps=steps,
            batch=batch,
            loss=loss_name,
            loss_value=float(value.detach()),
            dtype=str(grad_h[0].dtype).removeprefix("torch."),
            layers=tuple(layers),
            lengths=lengths,
            calls=len(recorder.calls),
        )
    return profiles
