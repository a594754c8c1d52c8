"""How the profile calls the user's model: the recurrent module's input checked, the
global RNG left as it was, the calls the model makes of its recurrent modules
recorded, and the time-major layout the recursions work in."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnngrad.cells import CELLS, FUSED, RecurrentLayout
from rnngrad.errors import (
    InvalidInputError,
    ModelError,
    NonFiniteInputError,
    ShapeError,
    calling_user_code,
)

__all__ = [
    "check_input",
    "forked_rng",
    "from_time_major",
    "output_loss",
    "recorded_calls",
    "recurrent_base",
    "scalar_loss",
    "to_time_major",
]


def check_input(
    layout: RecurrentLayout, module: nn.Module, value: object
) -> torch.Tensor | PackedSequence:
    """The module's input as given, or a typed error that says what is wrong with it."""
    packed = isinstance(value, PackedSequence)
    data = value.data if isinstance(value, PackedSequence) else value
    if not isinstance(data, torch.Tensor):
        raise InvalidInputError(
            "the recurrent module's input must be a tensor or a PackedSequence, "
            f"got {type(value).__name__}"
        )
    dtype = next(module.parameters()).dtype
    if data.dtype != dtype:
        raise InvalidInputError(
            f"input dtype {data.dtype} does not match the module's parameters ({dtype})"
        )
    if packed:
        if data.dim() != 2 or data.shape[-1] != layout.input_size:
            raise ShapeError(
                f"packed input data must have shape (N, {layout.input_size}), "
                f"got {tuple(data.shape)}"
            )
    else:
        expected = "(T, D) or " + ("(B, T, D)" if layout.batch_first else "(T, B, D)")
        if data.dim() not in (2, 3) or data.shape[-1] != layout.input_size:
            raise ShapeError(
                f"input must have shape {expected} with D = {layout.input_size}, "
                f"got {tuple(data.shape)}"
            )
        steps = data.shape[0] if data.dim() == 2 or not layout.batch_first else data.shape[1]
        if steps == 0:
            raise ShapeError("the input sequence is empty (T = 0)")
        if data.dim() == 3 and data.shape[1 if not layout.batch_first else 0] == 0:
            raise ShapeError("the batch is empty (B = 0)")
    if not torch.isfinite(data).all():
        raise NonFiniteInputError("the input holds NaN or inf")
    return value  # type: ignore[return-value]


@contextmanager
def forked_rng(arguments: tuple[Any, ...], cuda_devices: list[int] | None = None) -> Iterator[None]:
    """The global RNGs restored afterwards: the CPU's and those of the CUDA devices the
    arguments (tensors or packed sequences) live on, or ``cuda_devices``; autograd on
    inside."""
    devices = set(cuda_devices or ())
    for argument in arguments:
        data = argument.data if isinstance(argument, PackedSequence) else argument
        if isinstance(data, torch.Tensor) and data.is_cuda:
            devices.add(data.device.index or 0)
    with torch.random.fork_rng(devices=sorted(devices)), torch.enable_grad():
        yield


def scalar_loss(value: Any) -> torch.Tensor:
    """The loss as a 0-d tensor, or a typed error that says what was returned instead."""
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        got = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else type(value).__name__
        )
        raise InvalidInputError(f"the loss must be a scalar tensor, got {got}")
    return value.reshape(())


def loss_gradients(value: torch.Tensor, leaves: Any, **options: Any) -> tuple[Any, ...]:
    """``torch.autograd.grad(value, leaves, **options)`` of a loss, or a typed error when
    the loss does not reach the leaves through autograd at all.

    Raises:
        ModelError: the loss has no autograd graph (the model's forward ran under
            ``torch.no_grad()`` or ``torch.inference_mode()``, or detached its output).
    """
    if not value.requires_grad:
        raise ModelError(
            "the loss does not depend on the recurrent states through autograd: the model's "
            "forward ran without gradients (torch.no_grad() or torch.inference_mode()) or "
            "detached its output; rnngrad needs its forward to record gradients"
        )
    return tuple(torch.autograd.grad(value, leaves, **options))


def output_loss(output: Any, loss: Any, *, time_dim: int) -> torch.Tensor:
    """The scalar loss of a model's ``output`` under ``loss``: a callable on it (its
    failure quoted as the user's code), ``"last"``: half the squared norm of the output at
    the last step along ``time_dim``, or ``"sum"``: half its squared norm everywhere.

    Raises:
        InvalidInputError: another ``loss``, or a callable that returns no scalar.
    """
    if callable(loss):
        with calling_user_code("the loss"):
            value = loss(output)
    elif not isinstance(loss, str):
        raise InvalidInputError(
            f"loss must be 'last', 'sum' or a callable, got {type(loss).__name__}"
        )
    elif loss == "last":
        value = 0.5 * (output.select(time_dim, -1).abs() ** 2).sum()
    elif loss == "sum":
        value = 0.5 * (output.abs() ** 2).sum()
    else:
        raise InvalidInputError(f"unknown loss {loss!r}; expected 'last', 'sum' or a callable")
    return scalar_loss(value)


def recurrent_base(cls: type[nn.Module]) -> type[nn.Module]:
    """The class whose ``forward`` runs the recurrence: PyTorch's ``nn.RNN``/``nn.LSTM``/
    ``nn.GRU`` or cell, or rnngrad's own modern layer, wherever it stands in ``cls``'s
    ancestry (a subclass's ``forward`` calls it through ``super()``); ``cls`` itself
    when neither is there."""
    for ancestor in cls.__mro__:
        if ancestor in FUSED + CELLS or (
            ancestor.__module__.startswith("rnngrad.modern.") and "forward" in vars(ancestor)
        ):
            return ancestor
    return cls


@contextmanager
def recorded_calls(module: nn.Module, forward: Callable[..., Any]) -> Iterator[None]:
    """Every call of ``module``'s recurrence goes to ``forward`` inside the ``with`` block.

    The model runs as it is: its own ``forward`` and a subclass's (one that takes more
    arguments, packs its input and calls ``super().forward``) are left alone; only the
    call that reaches the recurrence itself (:func:`recurrent_base`'s ``forward``) is
    recorded, however often the model makes it. The module's class is swapped, for the
    block, for a subclass whose ancestry puts the recording just above that base
    (``UserLSTM -> Recording -> nn.LSTM``); ``isinstance`` checks still hold, and the
    class is restored whatever happens.
    """
    original = type(module)
    base = recurrent_base(original)

    signature = inspect.signature(base.forward)

    def recording(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        # As the base takes them (``super().forward(x, hx=state)`` names its state).
        bound = signature.bind(self, *args, **kwargs)
        return forward(*bound.args[1:])

    probe = types.new_class(
        f"Recording{base.__name__}", (base,), exec_body=lambda ns: ns.update(forward=recording)
    )
    recorded = probe if original is base else types.new_class(original.__name__, (original, probe))
    module.__class__ = recorded
    try:
        yield
    finally:
        module.__class__ = original


def to_time_major(value: torch.Tensor, layout: RecurrentLayout, unbatched: bool) -> torch.Tensor:
    if unbatched:
        return value.unsqueeze(1)
    return value.transpose(0, 1) if layout.batch_first else value


def from_time_major(value: torch.Tensor, layout: RecurrentLayout, unbatched: bool) -> torch.Tensor:
    if unbatched:
        return value.squeeze(1)
    return value.transpose(0, 1) if layout.batch_first else value
