"""The models a report reads: the reader's own, or two the lab trains briefly.

:class:`ReportModel` is one model with the input and the loss its profile uses;
:func:`default_models` trains the built-in pair (a tanh RNN and an LSTM on the
adding problem); :func:`recurrent_blocks` reads the square recurrent matrices
whose spectra the report shows (one per gate for LSTM and GRU, the real form of
the LRU's ``lambda``, IndRNN's ``diag(u)``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.lyapunov.dynamics import ModuleDynamics

__all__ = [
    "ReportModel",
    "default_models",
    "float64_copy",
    "on_device",
    "recurrent_blocks",
    "recurrent_module_of",
    "state_size",
]


@dataclass
class ReportModel:
    """One model on the page: its name, the module, and the input and loss of its profile."""

    name: str
    module: nn.Module
    inputs: Any  # a tensor, or a tuple of the model's arguments
    loss: Any
    recurrent: str | None = None  # the recurrent submodule's name, when there are several


def on_device(model: ReportModel, device: torch.device) -> ReportModel:
    """``model`` with its module (a copy) and its input tensors on ``device``."""
    if device.type == "cpu":
        return model
    import copy

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device)
        if isinstance(value, tuple | list):
            return type(value)(move(v) for v in value)
        return value

    module = copy.deepcopy(model.module).to(device)
    return replace(model, module=module, inputs=move(model.inputs))


def recurrent_module_of(module: nn.Module, name: str | None = None) -> nn.Module:
    from rnngrad.cells import find_recurrent_module

    return find_recurrent_module(module, name)[1]


def float64_copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).double()


def state_size(module: nn.Module, one_layer: bool) -> int:
    """The dimension of the state whose exponents the section measures."""
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(module, DiagonalRecurrence):
        return module.state_size * (2 if module.complex_state else 1)
    return ModuleDynamics(module, layers=1 if one_layer else None).state_size


def _diagonal_blocks(module: nn.Module) -> dict[str, np.ndarray]:
    """A diagonal recurrence's fixed recurrence matrix, where it has one: the LRU's
    ``lambda`` as 2 x 2 blocks ``[[Re, -Im], [Im, Re]]`` acting on ``(Re h, Im h)`` (its
    eigenvalues are ``lambda`` and its conjugate, exactly), IndRNN's ``diag(u)``. minGRU
    and minLSTM have none: their coefficient ``1 - z_t`` depends on the input."""
    with torch.no_grad():
        from rnngrad.modern import LRU

        if isinstance(module, LRU):
            lam = module.eigenvalues().detach().to(torch.complex128).cpu().numpy()
            size = lam.size
            matrix = np.zeros((2 * size, 2 * size))
            matrix[:size, :size] = np.diag(lam.real)
            matrix[:size, size:] = -np.diag(lam.imag)
            matrix[size:, :size] = np.diag(lam.imag)
            matrix[size:, size:] = np.diag(lam.real)
            return {"lambda (real form)": matrix}
        weights = getattr(module, "u", None)
        if isinstance(weights, torch.Tensor):
            return {"diag(u)": np.diag(weights.detach().double().cpu().numpy())}
    return {}


def recurrent_blocks(module: nn.Module) -> dict[str, np.ndarray]:
    """The square recurrent blocks of every layer (one per gate for LSTM and GRU)."""
    from rnngrad.cells import describe_module, layer_weights
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(module, DiagonalRecurrence):
        return _diagonal_blocks(module)

    layout = describe_module(module)
    gates = {"lstm": "ifgo", "gru": "rzn"}.get(layout.kind, "")
    blocks = {}
    for layer in range(layout.num_layers):
        for direction in range(layout.num_directions):
            weight = layer_weights(module, layer, direction).w_hh.detach().double().cpu().numpy()
            size = weight.shape[1]
            suffix = " reverse" if direction else ""
            if not gates:
                blocks[f"layer {layer}{suffix}"] = weight
                continue
            for index, gate in enumerate(gates):
                part = (
                    weight[index * size : (index + 1) * size]
                    if weight.shape[0] // size == len(gates)
                    else None
                )
                if part is not None and part.shape[0] == part.shape[1]:
                    blocks[f"layer {layer}{suffix}, gate {gate}"] = part
    return blocks


def default_models(
    quick: bool, seed: int, progress: Callable[[str], None], device: torch.device
) -> list[ReportModel]:
    """A tanh RNN and an LSTM trained briefly by the lab on the adding problem (T = 50),
    on ``device`` (returned there, with their batch)."""
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.tasks import make_task
    from rnngrad.lab.train import train

    task = make_task("adding", 50)
    batch = task.sample(16, torch.Generator().manual_seed(seed + 7))
    models = []
    for cell, label in (("rnn", "tanh RNN"), ("lstm", "LSTM")):
        progress(f"training a {label} briefly on the adding problem")
        config = TrainConfig(
            task="adding",
            seq_len=50,
            cell=cell,
            hidden=32,
            steps=60 if quick else 300,
            batch=32,
            lr=3e-3,
            seed=seed,
            eval_every=100,
            eval_batch=200,
            checkpoint_every=1000,
            profile_every=1000,
        )
        with tempfile.TemporaryDirectory() as folder:
            from rnngrad.lab.models import LabModel

            train(config, folder, device=device, progress=False)
            checkpoint = Path(folder) / "checkpoint.pt"
            state = torch.load(checkpoint, weights_only=True, map_location="cpu")["model"]
        model = LabModel(cell, task.input_size, 32, task.output_size, per_step=False)
        model.load_state_dict(state)
        model.to(device)
        targets = batch.targets.to(device)

        def loss(output: torch.Tensor, targets: torch.Tensor = targets) -> torch.Tensor:
            return task.loss(output, targets)

        name = f"{label} (adding, {config.steps} steps)"
        models.append(ReportModel(name, model, batch.inputs.to(device), loss))
    return models
