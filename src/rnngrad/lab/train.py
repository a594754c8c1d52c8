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

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnngrad.atomic import FolderLock, atomic_write_with
from rnngrad.display import Displayable, Summary, number
from rnngrad.errors import InvalidInputError
from rnngrad.jsonout import finite_or_none
from rnngrad.lab.models import (
    CELLS,
    MODERN,
    LabModel,
    check_lru_options,
    check_modern_options,
    parse_init,
)
from rnngrad.lab.tasks import TASKS, Batch, Task, make_task

if TYPE_CHECKING:
    from rnngrad.report.figures import Figure

__all__ = ["TrainConfig", "TrainResult", "parse_clip", "train"]

Progress = Callable[[int, int, float], None]


def parse_clip(text: str) -> tuple[str, float | None]:
    """``"none"``, ``"norm:V"`` or ``"value:V"`` with ``V > 0``.

    Raises:
        InvalidInputError: anything else.
    """
    if text == "none":
        return "none", None
    kind, _, value = text.partition(":")
    if kind in ("norm", "value"):
        try:
            threshold = float(value)
        except ValueError:
            threshold = math.nan
        if math.isfinite(threshold) and threshold > 0:
            return kind, threshold
    raise InvalidInputError(f"clip must be none, norm:V or value:V with V > 0, got {text!r}")


_LATER_FIELDS = ("target_accuracy", "layers", "r_min", "r_max")


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration without the later fields that are unset (how older runs saved it)."""
    return {k: v for k, v in config.items() if not (k in _LATER_FIELDS and v is None)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run (and its checkpoint's identity)."""

    task: str
    seq_len: int
    cell: str
    hidden: int = 64
    init: str = "default"
    orthogonal_constraint: bool = False
    forget_bias: float | None = None
    clip: str = "norm:1.0"
    steps: int = 3000
    batch: int = 50
    lr: float = 1e-3
    seed: int = 0
    eval_every: int = 100
    eval_batch: int = 500
    checkpoint_every: int = 500
    profile_every: int = 500
    regularizer: float = 0.0
    target_accuracy: float | None = None
    layers: int | None = None
    r_min: float | None = None
    r_max: float | None = None

    def validate(self) -> Task:
        """Check every field; return the task.

        Raises:
            InvalidInputError: naming the field and the value.
        """
        if self.task not in TASKS:
            raise InvalidInputError(
                f"unknown task {self.task!r}; expected one of: {', '.join(TASKS)}"
            )
        if self.cell not in CELLS:
            raise InvalidInputError(
                f"unknown cell {self.cell!r}; expected one of: {', '.join(CELLS)}"
            )
        kind, _ = parse_init(self.init)
        if self.cell in MODERN:
            check_modern_options(self.cell, kind, self.orthogonal_constraint, self.forget_bias)
        if kind == "chrono" and self.cell != "lstm":
            raise InvalidInputError("init chrono:T applies to the lstm cell only")
        if self.orthogonal_constraint and self.cell not in ("rnn", "relu"):
            raise InvalidInputError(
                "the orthogonal constraint needs a square W_hh: use the rnn or relu cell"
            )
        parse_clip(self.clip)
        from rnngrad.limits import (
            MAX_TRAIN_STEPS,
            check_memory,
            check_representable,
            check_seed,
            check_whole,
        )

        for name in ("hidden", "steps", "batch", "eval_every", "eval_batch", "checkpoint_every",
                     "profile_every"):  # fmt: skip
            check_whole(getattr(self, name), name, 1, MAX_TRAIN_STEPS)
        check_seed(self.seed)
        # Adam works in float32: a learning rate beyond its range overflows inside it.
        if not (isinstance(self.lr, float | int) and math.isfinite(self.lr) and self.lr > 0):
            raise InvalidInputError(f"lr must be a positive number, got {self.lr!r}")
        check_representable(self.lr, "lr", torch.float32)
        if not (math.isfinite(self.regularizer) and self.regularizer >= 0):
            raise InvalidInputError(f"regularizer must be >= 0, got {self.regularizer!r}")
        check_representable(self.regularizer, "regularizer", torch.float32)
        if self.regularizer > 0 and self.cell not in ("rnn", "relu"):
            raise InvalidInputError(
                "the regularizer (Pascanu et al. 2013) applies to the rnn and relu cells"
            )
        check_lru_options(self.cell, self.layers, self.r_min, self.r_max)
        if self.forget_bias is not None:
            check_representable(self.forget_bias, "forget_bias", torch.float32)
            if self.cell != "lstm":
                raise InvalidInputError("forget_bias applies to the lstm cell only")
        check_whole(self.seq_len, "seq_len", 0)
        if self.target_accuracy is not None and not (
            isinstance(self.target_accuracy, float | int) and 0 < self.target_accuracy <= 1
        ):
            raise InvalidInputError(
                f"target_accuracy must be in (0, 1], got {self.target_accuracy!r}"
            )
        task = make_task(self.task, self.seq_len, target_accuracy=self.target_accuracy)
        check_memory(
            training_memory(self, task.seq_len),
            f"training {self.cell} with hidden {self.hidden} on T = {task.seq_len}",
        )
        return task

    def key(self) -> str:
        """A short hash of the configuration (names run folders and checkpoints). Fields
        added after the first release count only when set, so older runs keep their keys."""
        text = json.dumps(_identity(asdict(self)), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


# Bytes per float32 activation number ``batch * T * hidden`` that a training step holds
# at its peak (forward activations kept for the backward pass, their gradients, the
# gradient profile's probes and adjoint), measured with the peak resident memory of
# runs at T = 1000 and 2000 (benchmarks/training_memory.py) and rounded up.
_BYTES_PER_ACTIVATION = {"rnn": 80, "relu": 80, "lstm": 80, "gru": 100, "indrnn": 90,
                         "mingru": 140, "minlstm": 140, "lru": 210}  # fmt: skip
_FIXED_BYTES = 200e6  # the allocator's slack, the data and the records
# Sequences per evaluation chunk beyond the batch size (no autograd graph is kept).
_EVAL_CHUNK = 100


def eval_chunk(config: TrainConfig) -> int:
    """How many held-out sequences are run through the model at once."""
    return max(config.batch, _EVAL_CHUNK)


def training_memory(config: TrainConfig, seq_len: int) -> float:
    """An upper estimate, in bytes, of what a run of ``config`` on ``seq_len`` steps
    needs beyond the interpreter: one training step at its peak, one evaluation chunk
    (without an autograd graph: a quarter of a step's per-sequence cost), and the
    parameters with their gradients and Adam's two moments."""
    per_number = _BYTES_PER_ACTIVATION[config.cell] * (config.layers or 1)
    numbers = seq_len * config.hidden
    step = per_number * numbers * (config.batch + eval_chunk(config) / 4)
    gates = {"lstm": 4, "gru": 3, "lru": 6, "mingru": 3, "minlstm": 4}.get(config.cell, 1)
    parameters = 4.0 * gates * config.hidden * config.hidden * (config.layers or 1)
    return _FIXED_BYTES + step + 4 * parameters


@dataclass(frozen=True, repr=False)
class TrainResult(Displayable):
    """The outcome of a run (the JSON summary).

    Attributes:
        config: the configuration.
        final_loss: held-out loss at the end.
        final_accuracy: held-out accuracy at the end, where the task has one.
        baseline_loss: the task's memoryless baseline.
        solved: the task's solved rule was met.
        solved_at: the step at which it was, or ``None``.
        steps: steps taken (the budget is ``config.steps``, ``step_budget`` in
            the summary).
        skipped_steps: steps skipped for a non-finite gradient norm.
        clipped_steps: steps at which clipping acted.
        wall_s: wall time of this process's part of the run.
        resumed_from: the checkpoint's step when resumed, else ``None``.
        device: where it ran; threads: torch's intra-op threads on a CPU.
    """

    config: TrainConfig
    final_loss: float
    final_accuracy: float | None
    baseline_loss: float
    solved: bool
    solved_at: int | None
    steps: int
    skipped_steps: int
    clipped_steps: int
    wall_s: float
    resumed_from: int | None = None
    checkpoint_set_aside: str | None = None
    task_seq_len: int | None = None
    device: str = "cpu"
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    threads: int = 1

    def summary(self) -> dict[str, Any]:
        """The JSON summary: the contract's fields, then the rest of the configuration."""
        config = asdict(self.config)
        budget = config.pop("steps")
        configured_length = config.pop("seq_len")
        return {
            "task": config.pop("task"),
            "seq_len": self.task_seq_len or configured_length,
            "cell": config.pop("cell"),
            "init": config.pop("init"),
            "clip": config.pop("clip"),
            "final_loss": finite_or_none(self.final_loss),
            "baseline_loss": self.baseline_loss,
            "solved": self.solved,
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
            "wall_s": round(self.wall_s, 3),
            "final_accuracy": self.final_accuracy,
            "solved_at": self.solved_at,
            "clipped_steps": self.clipped_steps,
            "resumed_from": self.resumed_from,
            "step_budget": budget,
            "checkpoint_set_aside": self.checkpoint_set_aside,
            "device": self.device,
            "threads": self.threads,
            **config,
        }

    def _summary(self) -> Summary:
        c = self.config
        outcome = (f"solved at step {self.solved_at}" if self.solved
                   else f"not solved in {self.steps} steps")  # fmt: skip
        numbers = [
            ("held-out loss", number(self.final_loss)),
            ("memoryless baseline", number(self.baseline_loss)),
            ("steps (budget)", f"{self.steps} ({c.steps})"),
            ("clipped / skipped steps", f"{self.clipped_steps} / {self.skipped_steps}"),
            ("wall time", f"{self.wall_s:.1f} s on {self.device}"),
        ]
        if self.final_accuracy is not None:
            numbers.insert(1, ("held-out accuracy", f"{self.final_accuracy:.2%}"))
        return Summary(
            what=f"{c.task} T={self.task_seq_len or c.seq_len}, {c.cell}, init {c.init}, "
            f"clip {c.clip}",
            verdict="solved" if self.solved else "not solved",
            sentence=f"{outcome}; held-out loss {number(self.final_loss)} against the "
            f"memoryless baseline {number(self.baseline_loss)}.",
            numbers=tuple(numbers),
        )

    def _columns(self) -> dict[str, Any]:
        """One row per evaluation: step, held-out loss and accuracy, spectral radius."""
        rows = self.records.get("evaluations", [])
        keys = ("step", "loss", "accuracy", "spectral_radius")
        return {key: [row.get(key) for row in rows] for key in keys}

    def _figure(self, which: str | None = None) -> Figure:
        from rnngrad.report.result_figures import training_figure

        return training_figure(self)


_CHECKPOINT_KEYS = frozenset(
    {"config", "model", "optimiser", "generator", "records", "step", "skipped", "clipped",
     "solved_at"}
)  # fmt: skip


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
    folder = Path(out)
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
    from rnngrad.profile import gradient_profile

    started = time.perf_counter()
    checkpoint_path = folder / "checkpoint.pt"

    def fresh_model() -> LabModel:
        """The initialisation drawn under ``seed``, the caller's global RNG untouched."""
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
            ).to(device)

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
        if readable and _identity(state["config"]) != _identity(asdict(config)):
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

    def evaluate(step: int) -> tuple[float, float | None]:
        with torch.no_grad():
            output = predict(held_out.inputs)
            loss = float(task.loss(output, held_out.targets))
            accuracy = task.accuracy(output, held_out.targets)
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
