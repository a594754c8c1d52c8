"""What ``profile``, ``lyapunov`` and ``report`` share: the model, its inputs and its loss.

``--model`` is a fused module's spec (``lstm:input=8,hidden=64``) or a model of
the user's own (``path/to/file.py:NAME`` or ``package.module:NAME`` with
``--model-args``); see :mod:`rnngrad.io.usermodel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rnngrad.errors import InvalidInputError, ShapeError

if TYPE_CHECKING:
    import torch
    from torch import nn

MODEL_HELP = (
    "A module spec, e.g. lstm:input=8,hidden=64,layers=2,bidirectional=true; or a model of "
    "your own, path/to/file.py:NAME or package.module:NAME (an nn.Module class or factory, "
    "built with --model-args). Importing a file runs its code: name only files you trust."
)
MODEL_ARGS_HELP = "Keyword arguments of a model of your own, as a JSON object."
MODULE_HELP = "The recurrent submodule to analyse, when the model has several."

# The options that profile, lyapunov and report share, declared once.
ModelArgsOption = Annotated[str | None, typer.Option("--model-args", help=MODEL_ARGS_HELP)]
ModuleOption = Annotated[str | None, typer.Option("--module", help=MODULE_HELP)]
StateDictOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dict",
        help="Weights of the whole model: .pt (read with weights_only) or .safetensors state_dict.",
    ),
]
TargetOption = Annotated[
    Path | None,
    typer.Option("--target", help="Targets for --loss cross-entropy or mse (.npy or .pt)."),
]


class ProfileRouteName(str, Enum):
    auto = "auto"
    recursion = "recursion"
    fused = "fused"


class LossName(str, Enum):
    last = "last"
    sum = "sum"
    cross_entropy = "cross-entropy"
    mse = "mse"


@dataclass(frozen=True)
class LoadedModel:
    """The model the command analyses.

    Attributes:
        model: what is called with the inputs (a fused module, or the user's model).
        label: how the output names it.
        spec: the parsed spec for a fused module, ``None`` for a user's model.
    """

    model: nn.Module
    label: str
    spec: Any

    @property
    def is_user_model(self) -> bool:
        return self.spec is None


def load_model(
    text: str,
    model_args: str | None,
    state_dict: Path | None,
    module: str | None,
    *,
    seed: int,
    dtype: torch.dtype,
) -> LoadedModel:
    """Build ``--model`` (and ``--model-args``) and load ``--state-dict`` into it, strictly;
    ``--model-args`` and ``--module`` are refused for a spec (it is one module)."""
    from rnngrad.io.spec import build_module, load_state_dict, parse_spec
    from rnngrad.io.usermodel import (
        build_user_model,
        is_user_model,
        load_model_state,
        parse_model_args,
    )

    if is_user_model(text):
        model = build_user_model(text, parse_model_args(model_args), seed=seed, dtype=dtype)
        if state_dict is not None:
            load_model_state(model, state_dict)
        return LoadedModel(model, text, None)
    if model_args is not None:
        raise InvalidInputError(
            "--model-args applies to a model of your own (file.py:NAME), not to a spec"
        )
    if module is not None:
        raise InvalidInputError("--module applies to a model of your own, not to a spec")
    spec = parse_spec(text)
    fused = build_module(spec, seed=seed, dtype=dtype)
    if state_dict is not None:
        load_state_dict(fused, state_dict)
    return LoadedModel(fused, spec.text, spec)


def load_model_inputs(loaded: LoadedModel, files: list[Path], dtype: torch.dtype) -> list[Any]:
    """The ``--input`` files: floats as ``dtype``; whole numbers (token ids) as int64 for a
    model of one's own, which may also take several arguments."""
    from rnngrad.io.spec import load_input

    if len(files) > 1 and not loaded.is_user_model:
        raise InvalidInputError("a spec's module takes one --input")
    return [load_input(f, dtype, allow_integer=loaded.is_user_model) for f in files]


def load_lengths(path: Path, batch: int) -> torch.Tensor:
    """``--lengths FILE``: int64 ``(B,)``."""
    import torch

    from rnngrad.io.spec import load_input

    lengths = load_input(path, torch.float64, allow_integer=True, what="--lengths")
    if torch.is_floating_point(lengths):
        raise InvalidInputError(f"{path}: --lengths must hold whole numbers (int64), got floats")
    if lengths.dim() != 1 or lengths.numel() != batch:
        raise ShapeError(
            f"{path}: --lengths must have shape ({batch},), one per sequence of the input, "
            f"got {tuple(lengths.shape)}"
        )
    return lengths


def target_loss(kind: LossName, target: torch.Tensor) -> Any:
    """``L(output)`` of ``--loss cross-entropy|mse`` against ``--target``, checked when called.

    Cross-entropy takes logits with the classes on the last axis, ``(B, C)`` or
    ``(B, T, C)``, and class indices ``(B,)`` or ``(B, T)`` (or probabilities
    shaped like the logits); mean squared error takes a target shaped like the
    output.
    """
    import torch
    from torch.nn import functional

    def loss(output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise InvalidInputError(
                f"--loss {kind.value} needs the model to return one tensor, "
                f"it returns a {type(output).__name__}"
            )
        shape, wanted = tuple(output.shape), tuple(target.shape)
        if kind == LossName.mse:
            if not torch.is_floating_point(target) or shape != wanted:
                raise ShapeError(
                    f"--target for mse must be floating point and shaped like the output "
                    f"{shape}, got {wanted} {str(target.dtype).removeprefix('torch.')}"
                )
            return functional.mse_loss(output, target.to(output.device, output.dtype))
        if torch.is_floating_point(target):
            if shape != wanted:
                raise ShapeError(
                    f"--target of class probabilities must be shaped like the logits {shape}, "
                    f"got {wanted}"
                )
            return functional.cross_entropy(
                output.movedim(-1, 1), target.to(output.device, output.dtype).movedim(-1, 1)
            )
        if output.dim() < 2 or shape[:-1] != wanted:
            raise ShapeError(
                f"--target of class indices must have shape {shape[:-1]} for logits {shape} "
                f"(classes on the last axis), got {wanted}"
            )
        classes = shape[-1]
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
            raise InvalidInputError(
                f"--target class indices must be in 0..{classes - 1}, got "
                f"{int(target.min())}..{int(target.max())}"
            )
        return functional.cross_entropy(output.movedim(-1, 1), target.to(output.device))

    return loss


def choose_loss(loss: LossName, target_file: Path | None, dtype: torch.dtype) -> Any:
    """The profile's ``loss=`` from ``--loss`` and ``--target``."""
    from rnngrad.io.spec import load_input

    if loss in (LossName.last, LossName.sum):
        if target_file is not None:
            raise InvalidInputError(
                f"--target is for --loss cross-entropy or mse; --loss {loss.value} reads only "
                "the recurrent module's output"
            )
        return loss.value
    if target_file is None:
        raise InvalidInputError(f"--loss {loss.value} needs --target FILE")
    target = load_input(target_file, dtype, allow_integer=True, what="the target")
    return target_loss(loss, target)
