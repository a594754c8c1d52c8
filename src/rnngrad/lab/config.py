"""What defines a lab run: its configuration, checked, and the memory it needs.

:class:`TrainConfig` holds every field of a run; :meth:`TrainConfig.validate`
checks them all (the task, the cell and the options that apply to it, the
numbers' ranges, the memory a run needs) before anything is built, and
:meth:`TrainConfig.key` names the run's folder. :func:`training_memory` is the
upper estimate that the check uses, from the peak memory measured per cell
(``benchmarks/training_memory.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from rnngrad.errors import InvalidInputError
from rnngrad.lab.flossing import Flossing, check_flossing
from rnngrad.lab.models import (
    CELLS,
    MODERN,
    check_lru_options,
    check_modern_options,
    check_rate_options,
    check_readout,
    parse_init,
)
from rnngrad.lab.tasks import TASKS, Task, make_task

__all__ = ["TrainConfig", "config_identity", "eval_chunk", "parse_clip", "training_memory"]


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


_LATER_FIELDS = ("target_accuracy", "layers", "r_min", "r_max", "readout", "floss",
                 "floss_before", "floss_every", "floss_window", "floss_weight",
                 "delta")  # fmt: skip


def config_identity(config: dict[str, Any]) -> dict[str, Any]:
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
    readout: str | None = None
    #: Gradient flossing (:mod:`rnngrad.lab.flossing`): ``k`` exponents, and its schedule.
    floss: int | None = None
    floss_before: int | None = None
    floss_every: int | None = None
    floss_window: int | None = None
    floss_weight: float | None = None
    #: The rate cell's ``dt / tau`` (0.5 when unset).
    delta: float | None = None

    def __post_init__(self) -> None:
        if self.readout == "last":  # the default, spelled out: the same run, the same key
            object.__setattr__(self, "readout", None)

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
        check_rate_options(self.cell, kind, self.orthogonal_constraint, self.forget_bias,
                           self.delta)  # fmt: skip
        self._check_flossing()
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
        check_readout(self.readout, task.per_step, self.task)
        check_memory(
            training_memory(self, task.seq_len),
            f"training {self.cell} with hidden {self.hidden} on T = {task.seq_len}",
        )
        return task

    def flossing(self) -> Flossing | None:
        """The run's gradient flossing, or ``None``."""
        if self.floss is None:
            return None
        return Flossing(
            k=self.floss,
            before=500 if self.floss_before is None else self.floss_before,
            every=self.floss_every,
            window=self.floss_window,
            weight=1.0 if self.floss_weight is None else self.floss_weight,
        )

    def _check_flossing(self) -> None:
        from rnngrad.limits import MAX_TRAIN_STEPS, check_representable, check_whole

        options = ("floss_before", "floss_every", "floss_window", "floss_weight")
        if self.floss is None:
            given = [name for name in options if getattr(self, name) is not None]
            if given:
                flag = "--" + given[0].replace("_", "-")
                raise InvalidInputError(f"{flag} needs gradient flossing: --floss K")
            return
        for name in ("floss", "floss_before", "floss_every", "floss_window"):
            if getattr(self, name) is not None:
                least = 0 if name == "floss_before" else 1
                check_whole(getattr(self, name), name, least, MAX_TRAIN_STEPS)
        if self.floss_weight is not None:
            check_representable(self.floss_weight, "floss_weight", torch.float32)
        flossing = self.flossing()
        assert flossing is not None
        check_flossing(self.cell, self.hidden, flossing)

    def key(self) -> str:
        """A short hash of the configuration (names run folders and checkpoints). Fields
        added after the first release count only when set, so older runs keep their keys."""
        text = json.dumps(config_identity(asdict(self)), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


# Bytes per float32 activation number ``batch * T * hidden`` that a training step holds
# at its peak (forward activations kept for the backward pass, their gradients, the
# gradient profile's probes and adjoint), measured with the peak resident memory of
# runs at T = 1000 and 2000 (benchmarks/training_memory.py) and rounded up.
_BYTES_PER_ACTIVATION = {"rnn": 80, "relu": 80, "lstm": 80, "gru": 100, "indrnn": 90,
                         # the rate network's step loop keeps x, tanh(x) and the drive per
                         # step (estimated from its tensors, as Mamba's below)
                         "rate": 160,
                         "mingru": 140, "minlstm": 140, "lru": 210,
                         # Estimated from their activations' shapes, not yet measured: Mamba's
                         # (ED, N) = (2H, 16) state per token, three such tensors and the
                         # profile's; the sLSTM's four states; the mLSTM's recurrent memory
                         # (H x H / heads per token) in the profile, and its parallel form's
                         # S x S matrices per head (counted apart, _PARALLEL_BYTES).
                         "mamba": 1000, "mlstm": 1500, "slstm": 300}  # fmt: skip
# The mLSTM's parallel form: about six S x S float32 matrices per head and sequence.
_PARALLEL_BYTES = 6 * 4 * 4
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
    if config.cell == "mlstm":
        step += _PARALLEL_BYTES * seq_len**2 * (config.batch + eval_chunk(config) / 4)
    gates = {"lstm": 4, "gru": 3, "lru": 6, "mingru": 3, "minlstm": 4}.get(config.cell, 1)
    parameters = 4.0 * gates * config.hidden * config.hidden * (config.layers or 1)
    return _FIXED_BYTES + step + 4 * parameters
