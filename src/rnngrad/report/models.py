"""The models a report reads: the reader's own, or two the lab trains briefly.

:class:`ReportModel` is one model with the input and the loss its profile uses;
:func:`built_in_sweep` trains the classic cells briefly on the adding problem (the
remedies section's comparison) and :func:`built_in_models` reads the page's pair from
it (a tanh RNN and a chrono-initialised LSTM, as trained and as initialised);
:func:`recurrent_blocks` reads the square recurrent matrices
whose spectra the report shows (one per gate for LSTM and GRU, the real form of
the LRU's ``lambda``, IndRNN's ``diag(u)``, a rate network's step Jacobian at
rest ``(1 - delta) I + delta W``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from rnngrad.lyapunov.dynamics import ModuleDynamics
from rnngrad.rate.network import RateRNN

if TYPE_CHECKING:
    from rnngrad.lab.config import TrainConfig

__all__ = [
    "AT_REST",
    "BUILT_IN_SWEEP",
    "PAGE_MODELS",
    "ReportModel",
    "built_in_configs",
    "built_in_models",
    "built_in_sweep",
    "float64_copy",
    "model_name",
    "on_device",
    "rate_blocks",
    "rate_network_of",
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
    """The recurrence the page reads: the named submodule, or the model's one recurrent
    module (an ``nn.RNN``/``nn.LSTM``/``nn.GRU``, one of rnngrad's diagonal layers, or a
    rate network)."""
    from rnngrad.cells import find_recurrent_module

    rate = rate_network_of(module, name)
    return rate if rate is not None else find_recurrent_module(module, name)[1]


def rate_network_of(module: nn.Module, name: str | None = None) -> RateRNN | None:
    """The rate network the page reads (the named one, or the model's only recurrence),
    or ``None`` when the model's recurrence is something else.

    Raises:
        UnsupportedModuleError: several rate networks and no name.
    """
    from rnngrad.cells import find_recurrent_modules
    from rnngrad.profile.rate import rate_modules

    if name is not None:
        named = dict(module.named_modules()).get(name)
        return named if isinstance(named, RateRNN) else None
    if find_recurrent_modules(module):
        return None
    rates = rate_modules(module)
    if len(rates) > 1:
        from rnngrad.errors import UnsupportedModuleError

        raise UnsupportedModuleError(
            f"{type(module).__name__} has {len(rates)} rate networks "
            f"({', '.join(n or '(the model)' for n, _ in rates)}); name the one the page "
            "reads (--module NAME, recurrent=)"
        )
    return rates[0][1] if rates else None


def float64_copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).double()


def state_size(module: nn.Module, one_layer: bool) -> int:
    """The dimension of the state whose exponents the section measures."""
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(module, DiagonalRecurrence):
        return module.state_size * (2 if module.complex_state else 1)
    if isinstance(module, RateRNN):
        return module.hidden_size
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


#: The name of a rate network's step Jacobian at rest on the page.
AT_REST = "(1 - delta) I + delta W, at rest"


def rate_blocks(network: RateRNN) -> dict[str, np.ndarray]:
    """A rate network's step Jacobian where every unit is at rest (``phi'(0) = 1``):
    ``(1 - delta) I + delta W``, whose eigenvalues are ``1 - delta + delta lambda_i(W)``;
    along a trajectory ``phi' <= 1`` shrinks the ``delta W`` part towards the leak."""
    weight = network.weight_hh.detach().double().cpu().numpy()
    delta = network.delta
    return {AT_REST: (1.0 - delta) * np.eye(weight.shape[0]) + delta * weight}


def recurrent_blocks(module: nn.Module) -> dict[str, np.ndarray]:
    """The square recurrent blocks of every layer (one per gate for LSTM and GRU)."""
    from rnngrad.cells import describe_module, layer_weights
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(module, DiagonalRecurrence):
        return _diagonal_blocks(module)
    if isinstance(module, RateRNN):
        return rate_blocks(module)

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


#: The built-in sweep: the classic cells on the adding problem at T = 50, two seeds each;
#: the tanh RNN and the chrono-initialised LSTM are also the page's two models.
BUILT_IN_SWEEP = (
    ("rnn", "default"), ("lstm", "default"), ("lstm", "chrono:50"), ("gru", "default"),
)  # fmt: skip
#: The page's models: (cell, init) of the sweep, at the page's own seed.
PAGE_MODELS = (("rnn", "default"), ("lstm", "chrono:50"))
#: The built-in task and its training budget (``quick``: the short one, for previews).
BUILT_IN_TASK, BUILT_IN_LENGTH, BUILT_IN_STEPS, QUICK_STEPS = "adding", 50, 400, 60


def built_in_configs(*, quick: bool, seed: int) -> tuple[TrainConfig, ...]:
    """The built-in sweep's runs: each of :data:`BUILT_IN_SWEEP` at seeds ``seed`` and
    ``seed + 1``, hidden 32, batch 32, Adam at 0.01 for 400 steps (60 with ``quick``),
    evaluated every 20 steps and stopped once solved."""
    from rnngrad.lab.config import TrainConfig

    return tuple(
        TrainConfig(
            task=BUILT_IN_TASK,
            seq_len=BUILT_IN_LENGTH,
            cell=cell,
            init=init,
            hidden=32,
            batch=32,
            steps=QUICK_STEPS if quick else BUILT_IN_STEPS,
            lr=1e-2,
            seed=seed + offset,
            eval_every=20,
            eval_batch=200,
            checkpoint_every=10_000,
            profile_every=10_000,
        )
        for cell, init in BUILT_IN_SWEEP
        for offset in (0, 1)
    )


def built_in_sweep(folder: Path, *, quick: bool, seed: int) -> Path:
    """Run the built-in sweep (:func:`built_in_configs`) into ``folder`` on the CPU
    (resumable, like any sweep) and return the folder."""
    from rnngrad.lab.grid import Sweep
    from rnngrad.lab.sweep import run_sweep

    configs = built_in_configs(quick=quick, seed=seed)
    sweep = Sweep(("cell", "init", "seed"), configs, "the report's built-in sweep")
    run_sweep(sweep, folder, workers=min(2, os.cpu_count() or 1), progress=False)
    return folder


def model_name(cell: str, init: str = "default") -> str:
    """A lab model's name on the page: ``tanh RNN``, ``LSTM (chrono:50)``."""
    from rnngrad.lab.models import CELL_NAMES

    name = CELL_NAMES.get(cell, cell)
    return name if init == "default" else f"{name} ({init})"


def built_in_models(
    sweep: Path, *, quick: bool, seed: int, device: torch.device
) -> tuple[list[ReportModel], list[ReportModel]]:
    """The page's models (:data:`PAGE_MODELS`) from the built-in sweep in ``sweep``: as
    trained and as initialised, each with the same batch of the task (16 sequences) and
    the task's loss, on ``device``."""
    from rnngrad.lab.tasks import make_task
    from rnngrad.lab.trained import initial_model, trained_model

    task = make_task(BUILT_IN_TASK, BUILT_IN_LENGTH)
    batch = task.sample(16, torch.Generator().manual_seed(seed + 7))
    inputs, targets = batch.inputs.to(device), batch.targets.to(device)

    def loss(output: torch.Tensor, targets: torch.Tensor = targets) -> torch.Tensor:
        return task.loss(output, targets)

    configs = {(c.cell, c.init, c.seed): c for c in built_in_configs(quick=quick, seed=seed)}
    trained, initial = [], []
    for cell, init in PAGE_MODELS:
        config = configs[(cell, init, seed)]
        name = model_name(cell, init)
        run = trained_model(sweep / "runs" / config.key(), device)
        trained.append(ReportModel(name, run.model, inputs, loss))
        initial.append(ReportModel(name, initial_model(config, task, device), inputs, loss))
    return trained, initial
