r"""One training run on a lab task: deterministic, checkpointed, resumable.

The run draws its training batches from ``torch.Generator(seed + 1)`` and keeps
one held-out batch from ``seed + 2``; the model's initialisation is drawn under
``seed`` without touching the caller's global RNG. Every step records the loss,
the gradient norm, whether clipping acted and whether the step was skipped (a
non-finite gradient norm skips the optimiser step and is counted, so it never
reaches the weights). Every ``eval_every`` steps the held-out loss, the
accuracy where the task has one and the spectral radius of ``W_hh`` are
recorded, and the run stops once the task counts as solved. Every
``profile_every`` steps the per-time-step gradient profile
(:func:`rnngrad.gradient_profile`) is recorded.

Every ``checkpoint_every`` steps the model, the optimiser, the generator and
the records so far are written atomically (:mod:`rnngrad.atomic`: a temporary
file of its own, flushed, then ``os.replace``) to ``DIR/checkpoint.pt``; the
same call on the same ``DIR`` resumes from it (the checkpoint is read with
``weights_only=True``). One process at a time works in ``DIR`` (a lock that the
kernel releases when its holder dies). A checkpoint that cannot be read (cut
short by a full disk, damaged, or not a checkpoint at all) is set aside as
``checkpoint.pt.unreadable-<time>`` and the run starts from scratch, which the
result reports (``checkpoint_set_aside``). The
results land in ``DIR``: ``history.parquet``/``.csv`` (one row per step),
``evaluations.parquet``/``.csv``, ``profiles.parquet``/``.csv`` (one row per
profile, layer step and time step), ``summary.json`` and PNG plots.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rnngrad.atomic import FolderLock, atomic_write_with
from rnngrad.errors import InvalidInputError
from rnngrad.lab import flossing as floss
from rnngrad.lab.config import (
    TrainConfig,
    config_identity,
    eval_chunk,
    parse_clip,
)
from rnngrad.lab.models import (
    LabModel,
)
from rnngrad.lab.result import TrainResult
from rnngrad.lab.tasks import Batch, Task
from rnngrad.lab.trained import initial_model
from rnngrad.logspace import finite_or_none

__all__ = ["train"]

Progress = Callable[[int, int, float], None]


_CHECKPOINT_KEYS = frozenset(
    {"config", "model", "optimiser", "generator", "records", "step", "skipped", "clipped",
     "solved_at"}
)  # fmt: skip


def _finite(value: float | None) -> float | None:
    return None if value is None else finite_or_none(value)


def _atomic_save(payload: Any, path: Path) -> None:
    atomic_write_with(path, lambda handle: torch.save(payload, handle))


def _set_aside(path: Path) -> str:
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, aside)
    return str(aside)


def _spectral_radius(model: LabModel) -> float:
    """:meth:`LabModel.spectral_radius` (LAPACK is never handed inf or NaN)."""
    return model.spectral_radius()


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    progress: Progress | bool | None = True,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train one model; write its records, summary and plots into ``out``.

    Args:
        config: the run.
        out: the run's folder; a checkpoint there of the same configuration is
            resumed, one of another configuration is an error.
        progress: ``True``: a progress bar in a terminal or notebook (see
            :mod:`rnngrad.progress`); ``False``: none; a callable: called as
            ``progress(step, steps, loss)`` after each step.
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"``
            (:func:`rnngrad.devices.resolve_device`); the data and the
            initialisation are drawn on the CPU either way, and the summary
            records the device.

    Raises:
        InvalidInputError: a bad configuration, or ``out`` holds another run.
        OSError: ``out`` cannot be written.
    """
    from rnngrad.devices import resolve_device

    task = config.validate()
    where = resolve_device(device)
    from rnngrad.limits import check_folder

    folder = check_folder(out, "out")
    folder.mkdir(parents=True, exist_ok=True)
    if callable(progress):
        with FolderLock(folder, "the run"):
            return _train(config, task, folder, progress, where)
    from rnngrad.progress import progress_callback

    with progress_callback(progress, f"training {config.cell}", config.steps) as bar:
        report: Progress | None = None if bar is None else (lambda s, n, _loss: bar(s, n))
        with FolderLock(folder, "the run"):
            return _train(config, task, folder, report, where)


def _train(
    config: TrainConfig,
    task: Task,
    folder: Path,
    progress: Progress | None,
    device: torch.device,
) -> TrainResult:
    from rnngrad.profile.front import gradient_profile

    started = time.perf_counter()
    checkpoint_path = folder / "checkpoint.pt"

    def fresh_model() -> LabModel:
        return initial_model(config, task, device)

    model = fresh_model()
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise InvalidInputError(
            f"init {config.init!r} gives weights that are not finite (they overflow); "
            "choose a smaller radius"
        )
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed + 1)
    held_out = task.held_out(config.eval_batch, torch.Generator().manual_seed(config.seed + 2))
    held_out = Batch(held_out.inputs.to(device), held_out.targets.to(device))
    clip_kind, clip_value = parse_clip(config.clip)
    records: dict[str, list[dict[str, Any]]] = {"history": [], "evaluations": [], "profiles": []}
    start_step, skipped, clipped, solved_at = 0, 0, 0, None
    resumed_from = None

    set_aside = None
    if checkpoint_path.exists():
        try:
            state = torch.load(checkpoint_path, weights_only=True, map_location="cpu")
            readable = isinstance(state, dict) and _CHECKPOINT_KEYS <= set(state)
        except Exception:  # damaged, cut short, foreign, or holding Python objects
            state, readable = None, False
        if readable and config_identity(state["config"]) != config_identity(asdict(config)):
            raise InvalidInputError(
                f"{folder} holds a run of another configuration; choose another --out"
            )
        if readable:
            try:
                model.load_state_dict(state["model"])
                optimiser.load_state_dict(state["optimiser"])
                generator.set_state(state["generator"])
            except Exception:
                readable = False
        if readable:
            records = state["records"]
            start_step, skipped, clipped = state["step"], state["skipped"], state["clipped"]
            solved_at = state["solved_at"]
            resumed_from = start_step
        else:  # start afresh from the same seeds, the unreadable file kept beside
            set_aside = _set_aside(checkpoint_path)
            model = fresh_model()
            optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
            generator = torch.Generator().manual_seed(config.seed + 1)

    def save(step: int) -> None:
        _atomic_save(
            {
                "config": asdict(config),
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "generator": generator.get_state(),
                "records": records,
                "step": step,
                "skipped": skipped,
                "clipped": clipped,
                "solved_at": solved_at,
            },
            checkpoint_path,
        )

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        """The model's output on the held-out set, in chunks of at most ``eval_chunk``
        sequences (so that evaluation never needs more memory than a training step)."""
        size = eval_chunk(config)
        parts = [model(inputs[:, start : start + size])
                 for start in range(0, inputs.shape[1], size)]  # fmt: skip
        return torch.cat(parts, dim=1 if task.per_step else 0)

    flossing = config.flossing()
    if flossing is not None:
        records.setdefault("exponents", [])
        if start_step == 0 and flossing.before > 0 and flossing.weight > 0:
            drawing = torch.Generator().manual_seed(config.seed + 3)
            records["exponents"] = floss.floss_alone(
                model.rnn,
                lambda: task.sample(config.batch, drawing).inputs.to(device),
                flossing,
                config.lr,
                torch.Generator().manual_seed(config.seed + 4),
            )

    def evaluate(step: int) -> tuple[float, float | None]:
        with torch.no_grad():
            output = predict(held_out.inputs)
            loss = float(task.loss(output, held_out.targets))
            accuracy = task.accuracy(output, held_out.targets)
            if flossing is not None:  # along the same sequences and basis every time
                window = floss.window_of(held_out.inputs[:, : floss.RECORDED_SEQUENCES], flossing)
                basis_seed = torch.Generator().manual_seed(config.seed + 5)
                exponents = floss.flossing_exponents(model.rnn, window, flossing.k, basis_seed)
                records["exponents"] += floss.exponent_rows(step, "train", exponents)
        records["evaluations"].append(
            {
                "step": step,
                "loss": finite_or_none(loss),
                "accuracy": accuracy,
                "spectral_radius": _spectral_radius(model),
            }
        )
        return loss, accuracy

    step = start_step
    parameters = [p for p in model.parameters() if p.requires_grad]
    if solved_at is None:
        while step < config.steps:
            drawn = task.sample(config.batch, generator)  # drawn on the CPU, then moved
            batch = Batch(drawn.inputs.to(device), drawn.targets.to(device))
            output, states = model.forward_with_states(batch.inputs)
            loss = task.loss(output, batch.targets)
            task_loss = float(loss.detach())
            penalty_value: float | None = None
            if config.regularizer > 0:
                from rnngrad.lab.regularizer import gradient_norm_regularizer

                def loss_of_states(
                    s: torch.Tensor, targets: torch.Tensor = batch.targets
                ) -> torch.Tensor:
                    return task.loss(model.read_out(s), targets)

                assert isinstance(model.rnn, torch.nn.RNN)
                penalty = gradient_norm_regularizer(model.rnn, states, batch.inputs, loss_of_states)
                penalty_value = float(penalty.detach())
                loss = loss + config.regularizer * penalty
            floss_value: float | None = None
            if flossing is not None and flossing.every and step % flossing.every == 0:
                exponents = floss.flossing_exponents(
                    model.rnn, floss.window_of(batch.inputs, flossing), flossing.k, generator
                )
                floss_penalty = floss.flossing_penalty(exponents)
                floss_value = float(floss_penalty.detach())
                loss = loss + flossing.weight * floss_penalty
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            loss_value = float(loss.detach())
            grad_norm = float(
                torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
            )
            did_clip, did_skip = False, False
            if not (math.isfinite(grad_norm) and math.isfinite(loss_value)):
                did_skip = True
                skipped += 1
                optimiser.zero_grad(set_to_none=True)
            else:
                if clip_kind == "norm" and clip_value is not None:
                    did_clip = grad_norm > clip_value
                    torch.nn.utils.clip_grad_norm_(parameters, clip_value)
                elif clip_kind == "value" and clip_value is not None:
                    did_clip = any(
                        bool((p.grad.abs() > clip_value).any())
                        for p in parameters
                        if p.grad is not None
                    )
                    torch.nn.utils.clip_grad_value_(parameters, clip_value)
                clipped += int(did_clip)
                optimiser.step()
                model.after_step()
            step += 1
            records["history"].append(
                {
                    "step": step,
                    "loss": finite_or_none(task_loss),
                    "regularizer": None if penalty_value is None else finite_or_none(penalty_value),
                    "grad_norm": finite_or_none(grad_norm),
                    "clipped": did_clip,
                    "skipped": did_skip,
                    **({} if flossing is None else {"floss": _finite(floss_value)}),
                }
            )
            if step % config.profile_every == 0 or step == 1:
                targets = batch.targets

                def profile_loss(
                    out: torch.Tensor, targets: torch.Tensor = targets
                ) -> torch.Tensor:
                    return task.loss(out, targets)

                profile = gradient_profile(model, batch.inputs, loss=profile_loss, module="rnn")
                for t, value in enumerate(profile.layers[0].log10_grad_norm, start=1):
                    records["profiles"].append(
                        {"step": step, "t": t, "log10_grad_norm": finite_or_none(float(value))}
                    )
            if step % config.eval_every == 0 or step == config.steps:
                held_loss, held_accuracy = evaluate(step)
                if task.solved(held_loss, held_accuracy):
                    solved_at = step
            if step % config.checkpoint_every == 0 or solved_at is not None or step == config.steps:
                save(step)
            if progress is not None:
                progress(step, config.steps, loss_value)
            if solved_at is not None:
                break
    if not records["evaluations"] or records["evaluations"][-1]["step"] != step:
        evaluate(step)
    final = records["evaluations"][-1]
    result = TrainResult(
        config=config,
        final_loss=final["loss"] if final["loss"] is not None else math.nan,
        final_accuracy=final["accuracy"],
        baseline_loss=task.baseline_loss,
        solved=solved_at is not None,
        solved_at=solved_at,
        steps=step,
        skipped_steps=skipped,
        clipped_steps=clipped,
        wall_s=time.perf_counter() - started,
        resumed_from=resumed_from,
        checkpoint_set_aside=set_aside,
        task_seq_len=task.seq_len,
        device=str(device),
        records=records,
        threads=torch.get_num_threads(),
    )
    _write_outputs(result, folder, task)
    return result


def _write_outputs(result: TrainResult, folder: Path, task: Task) -> None:
    from rnngrad.lab.records import write_json, write_table

    for name, rows in result.records.items():
        write_table(rows, folder / name)
    write_json(result.summary(), folder / "summary.json")
    from rnngrad.lab.plots import plot_run

    plot_run(result, folder, task)
