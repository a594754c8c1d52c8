"""Reduced precision: profiles and spectra of half-precision models and autocast regions.

A model in ``float16``/``bfloat16``, or one called under ``torch.autocast``, is
analysed on a copy of its weights and activations in ``float32`` (or
``float64`` on request) with autocast switched off for the analysis, so that the
numbers are the exact gradients of the same network rather than rounding noise.
The result records the dtype used and the one the model runs in; where a
gradient norm falls below the smallest magnitude the reduced dtype can hold,
the model's own backward would have flushed that gradient to zero, and the
result says so (:func:`flush_note`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

__all__ = ["Precision", "cast_floating", "flush_note", "precision_plan"]

REDUCED = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Precision:
    """How an analysis runs: in ``compute`` (``None``: the model's own dtype, as it is).

    Attributes:
        compute: the dtype of the copy, or ``None`` for no copy.
        source: what the model itself runs in, when that differs
            (``"float16"``, ``"autocast bfloat16"``), else ``None``.
        reduced: the reduced dtype whose range decides what is flushed, if any.
        device_type: where autocast is switched off (``"cpu"``, ``"cuda"``).
    """

    compute: torch.dtype | None
    source: str | None
    reduced: torch.dtype | None
    device_type: str

    @contextmanager
    def autocast_off(self) -> Iterator[None]:
        """No autocast inside (a no-op where none was on)."""
        if self.source is not None and self.source.startswith("autocast"):
            with torch.autocast(self.device_type, enabled=False):
                yield
        else:
            yield


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def precision_plan(module: nn.Module, requested: torch.dtype | None = None) -> Precision:
    """The precision of an analysis of ``module`` (the recurrent module whose weights count).

    ``requested`` forces a dtype; otherwise a reduced-precision module or an
    active autocast region is analysed in float32 and anything else as it is.
    """
    parameter = next(module.parameters())
    own, device_type = parameter.dtype, parameter.device.type
    autocast = torch.is_autocast_enabled(device_type)
    autocast_dtype = torch.get_autocast_dtype(device_type) if autocast else None
    if requested is not None and requested not in (torch.float32, torch.float64, *REDUCED):
        from rnngrad.errors import InvalidInputError

        raise InvalidInputError(f"dtype must be a floating dtype, got {requested}")
    if autocast:
        source: str | None = f"autocast {_name(autocast_dtype)}"  # type: ignore[arg-type]
        reduced = autocast_dtype
    elif own in REDUCED:
        source, reduced = _name(own), own
    else:
        source, reduced = None, None
    compute = requested or (torch.float32 if reduced is not None else None)
    if compute == own and not autocast:
        compute = None
    if requested is not None and requested != own and source is None:
        source = _name(own)
    return Precision(compute, source, reduced, device_type)


def cast_floating(value: Any, dtype: torch.dtype) -> Any:
    """Floating tensors (in tuples, named tuples, lists, dicts, dataclasses and packed
    sequences) as ``dtype``; everything else as it is."""
    if isinstance(value, PackedSequence):
        return value._replace(data=cast_floating(value.data, dtype))
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if torch.is_floating_point(value) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            field.name: cast_floating(getattr(value, field.name), dtype)
            for field in dataclasses.fields(value)
            if field.init
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(cast_floating(v, dtype) for v in value))
    if isinstance(value, tuple):
        return tuple(cast_floating(v, dtype) for v in value)
    if isinstance(value, list):
        return [cast_floating(v, dtype) for v in value]
    if isinstance(value, dict):
        return {k: cast_floating(v, dtype) for k, v in value.items()}
    return value


def converted_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A deep copy of ``model`` with its floating parameters and buffers in ``dtype``."""
    duplicate: nn.Module = copy.deepcopy(model).to(dtype)
    return duplicate


def flush_note(
    precision: Precision, names: list[str], norms: list[np.ndarray], steps: int
) -> str | None:
    """What the reduced dtype flushes: steps where every sequence's ``||dL/dh_t||`` lies
    below its smallest subnormal, so that every entry rounds to exactly zero."""
    if precision.reduced is None:
        return None
    info = torch.finfo(precision.reduced)
    smallest = float(info.tiny) * float(info.eps)
    parts = []
    for name, grad_norm in zip(names, norms, strict=True):
        below = np.sum(np.all(np.nan_to_num(grad_norm, nan=0.0) < smallest, axis=0))
        if below:
            parts.append(f"{name} at {below} of {steps} steps")
    if not parts:
        return None
    return (
        f"in {_name(precision.reduced)}, dL/dh_t is below the smallest representable "
        f"magnitude ({smallest:.2g}) for {', '.join(parts)}: the model's own backward "
        "flushes those gradients to exactly zero"
    )
