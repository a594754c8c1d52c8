"""A run's model, as it was initialised and as it was trained.

:func:`initial_model` draws a configuration's initialisation under its seed (the
caller's global random state untouched), the one construction that :func:`train
<rnngrad.lab.train.train>` starts from; :func:`trained_model` rebuilds the same
model and loads the weights of a run's last checkpoint (read with
``weights_only=True``), so a finished run can be profiled, its spectrum read or
its verdict put beside its learning curve.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from rnngrad.errors import InvalidInputError
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.models import LabModel
from rnngrad.lab.tasks import Task

__all__ = ["TrainedModel", "initial_model", "trained_model"]


def initial_model(config: TrainConfig, task: Task, device: torch.device | str = "cpu") -> LabModel:
    """The model of ``config`` for ``task`` as initialised under ``config.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return LabModel(
            config.cell,
            task.input_size,
            config.hidden,
            task.output_size,
            per_step=task.per_step,
            init=config.init,
            orthogonal_constraint=config.orthogonal_constraint,
            forget_bias=config.forget_bias,
            max_length=task.seq_len,
            layers=config.layers or 1,
            r_min=config.r_min,
            r_max=config.r_max,
            readout=config.readout,
            delta=config.delta,
        ).to(device)


@dataclass(frozen=True)
class TrainedModel:
    """A finished run's configuration, task and model (its last checkpoint's weights)."""

    config: TrainConfig
    task: Task
    model: LabModel
    step: int


def trained_model(run: str | Path, device: torch.device | str = "cpu") -> TrainedModel:
    """The model of the run in folder ``run``, with the weights of its last checkpoint.

    Raises:
        InvalidInputError: the folder holds no readable checkpoint of a run.
    """
    path = Path(run) / "checkpoint.pt"
    try:
        state: Any = torch.load(path, weights_only=True, map_location="cpu")
        names = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in state["config"].items() if k in names})
        task = config.validate()
        model = initial_model(config, task)
        model.load_state_dict(state["model"])
        step = int(state["step"])
    except InvalidInputError:
        raise
    except Exception as error:  # missing, cut short, foreign, or holding Python objects
        raise InvalidInputError(f"{path}: not a readable checkpoint of a run ({error})") from None
    return TrainedModel(config, task, model.to(device), step)
