r"""Long-memory benchmark tasks, generated on the fly from a seed.

Each task states its memoryless baseline loss and its "solved" rule.

- **adding** (Hochreiter & Schmidhuber 1997; Le et al. 2015): inputs ``(T, 2)``,
  a value ``U(0, 1)`` and a marker; exactly two steps are marked, one in each
  half, and the target is the sum of their values. Mean squared error; always
  predicting 1 scores ``Var(U1 + U2) = 1/6``. Solved at MSE <= 0.01.
- **copy** (Arjovsky et al. 2016): 10 symbols drawn from 8, then ``T - 1``
  blanks, a delimiter and 10 blanks (length ``T + 20``); the target is blank
  for ``T + 10`` steps, then the 10 symbols. Cross-entropy per step; the
  memoryless strategy (blanks, then uniform guesses) scores
  ``10 ln 8 / (T + 20)``. Solved at 10% of that.
- **selective_copy** (Gu & Dao 2023, the task that motivated selective state space
  layers): the copy problem's layout and targets, but the 10 symbols sit at random
  distinct steps among the first ``T + 9``, in their order, blanks elsewhere; a model
  must choose what to keep, not count. The same loss, baseline and solved rule.
- **order** (the temporal order problem, Hochreiter & Schmidhuber 1997, task
  6a; Pascanu et al. 2013): a sequence of distractors ``a-d`` between a start
  and an end symbol, with ``X`` or ``Y`` at one step in ``[0.1T, 0.2T)`` and
  at one in ``[0.5T, 0.6T)``; the class (XX, XY, YX, YY) is read at the last
  step. Cross-entropy; chance scores ``ln 4``. Solved at 99% accuracy.
- **delayed_copy**, **delayed_xor** (the delayed tasks of gradient flossing, Engelken
  2023): a random bit ``b_1 = +-1`` at step 1 on the first input, recalled at step
  ``d + 1`` (``T = d``, the delay, gives sequences of ``d + 1`` steps); for the XOR a
  second bit ``b_2`` arrives on the same input at step ``d + 1`` and the class is
  ``b_1 XOR b_2``. The second input is N(0, 1) noise at every step, which drives the
  dynamics as the random input streams of the paper drive its networks (without it
  there would be two sequences, or four). Cross-entropy at the last step; chance
  scores ``ln 2``. Solved at 99% accuracy.
- **mnist1d**, **mnist1d_shuffled**, **digits**, **digits_permuted**: real data
  sets read one number per step (:mod:`rnngrad.lab.datasets`); their length comes
  from the data. Training draws minibatches uniformly, with replacement, from the
  training split; the held-out batch is the whole test split. Cross-entropy at
  the last step; chance scores ``ln 10``. Solved at the accuracy given as
  ``target_accuracy``, and never without one (the run uses its budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from rnngrad.errors import InvalidInputError

__all__ = ["TASKS", "Batch", "Task", "make_task"]

TaskName = Literal["adding", "copy", "selective_copy", "order", "delayed_copy", "delayed_xor"]
TASKS: tuple[str, ...] = (
    "adding", "copy", "selective_copy", "order", "delayed_copy", "delayed_xor", "mnist1d",
    "mnist1d_shuffled", "digits", "digits_permuted",
)  # fmt: skip
GENERATED = ("adding", "copy", "selective_copy", "order", "delayed_copy", "delayed_xor")
#: The delayed tasks of gradient flossing: a bit at step 1, read at step d + 1.
_DELAYED = ("delayed_copy", "delayed_xor")
#: The tasks read at every step, with the copy problem's recall at the end.
_COPYING = ("copy", "selective_copy")


@dataclass(frozen=True)
class Batch:
    """Inputs ``(T', B, D)`` time-major and targets (shape depends on the task)."""

    inputs: torch.Tensor
    targets: torch.Tensor


@dataclass(frozen=True)
class Task:
    """A task of a given sequence length.

    Attributes:
        name: ``"adding"``, ``"copy"``, ``"selective_copy"`` or ``"order"``.
        seq_len: the length parameter ``T``.
        input_size, output_size: feature sizes of the inputs and of the model's output.
        per_step: the model is read at every step (copy) or only at the last.
        baseline_loss: the memoryless baseline.
        solved_rule: the rule, in words.
    """

    name: str
    seq_len: int
    input_size: int
    output_size: int
    per_step: bool
    baseline_loss: float
    solved_rule: str
    data: Any = field(default=None, repr=False)  # a DatasetSplit for the data-set tasks
    target_accuracy: float | None = None

    def held_out(self, batch: int, generator: torch.Generator) -> Batch:
        """The held-out batch: the whole test split of a data set, else a fresh sample."""
        if self.data is not None:
            return Batch(self.data.test_x.transpose(0, 1), self.data.test_y)
        return self.sample(batch, generator)

    def sample(self, batch: int, generator: torch.Generator) -> Batch:
        """A batch drawn from ``generator`` (CPU, float32)."""
        if self.data is not None:
            rows = torch.randint(0, self.data.train_x.shape[0], (batch,), generator=generator)
            return Batch(self.data.train_x[rows].transpose(0, 1), self.data.train_y[rows])
        if self.name == "adding":
            return _adding(self.seq_len, batch, generator)
        if self.name == "copy":
            return _copy(self.seq_len, batch, generator)
        if self.name == "selective_copy":
            return _selective_copy(self.seq_len, batch, generator)
        if self.name in _DELAYED:
            return _delayed(self.seq_len, batch, generator, xor=self.name == "delayed_xor")
        return _order(self.seq_len, batch, generator)

    def loss(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of the model's output."""
        if self.name == "adding":
            return nn.functional.mse_loss(output.squeeze(-1), targets)
        if self.name in _COPYING:  # output (T', B, 9), targets (T', B)
            return nn.functional.cross_entropy(
                output.reshape(-1, output.shape[-1]), targets.reshape(-1)
            )
        return nn.functional.cross_entropy(output, targets)

    def accuracy(self, output: torch.Tensor, targets: torch.Tensor) -> float | None:
        """Accuracy where the task has one: recalled symbols (copy) or classes (order)."""
        if self.name == "adding":
            return None
        predicted = output.argmax(dim=-1)
        if self.name in _COPYING:
            recall = slice(-10, None)
            return float((predicted[recall] == targets[recall]).float().mean())
        return float((predicted == targets).float().mean())

    def solved(self, loss: float, accuracy: float | None) -> bool:
        """Whether ``loss``/``accuracy`` on held-out data meet the solved rule."""
        if self.name == "adding":
            return loss <= 0.01
        if self.name in _COPYING:
            return loss <= 0.1 * self.baseline_loss
        if self.data is not None:
            target = self.target_accuracy
            return target is not None and accuracy is not None and accuracy >= target
        return accuracy is not None and accuracy >= 0.99


def make_task(name: str, seq_len: int, *, target_accuracy: float | None = None) -> Task:
    """The task ``name`` with length parameter ``seq_len`` (0: a data set's own length).

    Raises:
        InvalidInputError: an unknown task, a length too short for it or (for a
            data set) not its own, a missing data package.
    """
    if name not in TASKS:
        raise InvalidInputError(f"unknown task {name!r}; expected one of: {', '.join(TASKS)}")
    if name not in GENERATED:
        from rnngrad.lab.datasets import load_dataset

        data = load_dataset(name)
        if seq_len not in (0, data.steps):
            raise InvalidInputError(
                f"the {name} task has sequences of {data.steps} steps; leave out --seq-len "
                f"or give {data.steps}, got {seq_len}"
            )
        rule = (
            f"test accuracy >= {target_accuracy:g}"
            if target_accuracy is not None
            else "none: no target accuracy given, the run uses its budget"
        )
        return Task(name, data.steps, 1, 10, False, math.log(10.0), rule, data, target_accuracy)
    if target_accuracy is not None:
        raise InvalidInputError("--target-accuracy applies to the data-set tasks")
    if seq_len == 0:
        raise InvalidInputError(f"the {name} task needs a sequence length: --seq-len T")
    minimum = {"adding": 2, "copy": 1, "selective_copy": 1, "order": 10, "delayed_copy": 1,
               "delayed_xor": 1}[name]  # fmt: skip
    if seq_len < minimum:
        raise InvalidInputError(
            f"the {name} task needs a sequence length >= {minimum}, got {seq_len}"
        )
    if name == "adding":
        return Task(name, seq_len, 2, 1, False, 1.0 / 6.0, "MSE <= 0.01 (baseline 1/6)")
    if name in _COPYING:
        baseline = 10.0 * math.log(8.0) / (seq_len + 20)
        return Task(
            name, seq_len, 10, 9, True, baseline, "cross-entropy <= 10% of 10 ln 8 / (T + 20)"
        )
    if name in _DELAYED:
        return Task(name, seq_len, 2, 2, False, math.log(2.0), "accuracy >= 99% (chance: ln 2)")
    return Task(name, seq_len, 8, 4, False, math.log(4.0), "accuracy >= 99% (chance: ln 4)")


def _delayed(delay: int, batch: int, generator: torch.Generator, *, xor: bool) -> Batch:
    """``(d + 1, B, 2)``: the bit ``b_1`` at step 1 (and ``b_2`` at step ``d + 1`` for the
    XOR) on the first input, N(0, 1) noise on the second; the class of ``b_1`` (or of
    ``b_1 XOR b_2``), 0 for ``-1`` and 1 for ``+1``."""
    bits = torch.randint(0, 2, (2, batch), generator=generator)
    inputs = torch.zeros(delay + 1, batch, 2)
    inputs[:, :, 1] = torch.randn(delay + 1, batch, generator=generator)
    inputs[0, :, 0] = 2.0 * bits[0] - 1.0
    if xor:
        inputs[delay, :, 0] += 2.0 * bits[1] - 1.0
        return Batch(inputs, bits[0] ^ bits[1])
    return Batch(inputs, bits[0])


def _adding(steps: int, batch: int, generator: torch.Generator) -> Batch:
    values = torch.rand(steps, batch, generator=generator)
    half = steps // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, steps, (batch,), generator=generator)
    markers = torch.zeros(steps, batch)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = values[first, columns] + values[second, columns]
    return Batch(torch.stack([values, markers], dim=-1), targets)


def _copy(steps: int, batch: int, generator: torch.Generator) -> Batch:
    length = steps + 20
    symbols = torch.randint(1, 9, (10, batch), generator=generator)
    sequence = torch.zeros(length, batch, dtype=torch.long)
    sequence[:10] = symbols
    sequence[steps + 9] = 9  # the delimiter: recall starts at the next step
    targets = torch.zeros(length, batch, dtype=torch.long)
    targets[-10:] = symbols
    inputs = nn.functional.one_hot(sequence, 10).float()
    return Batch(inputs, targets)


def _selective_copy(steps: int, batch: int, generator: torch.Generator) -> Batch:
    """The copy problem's layout, but the 10 symbols sit at random distinct steps (in
    their order) among the first ``T + 9``, blanks elsewhere (Gu & Dao 2023)."""
    length = steps + 20
    symbols = torch.randint(1, 9, (10, batch), generator=generator)
    scores = torch.rand(steps + 9, batch, generator=generator)
    positions = scores.topk(10, dim=0).indices.sort(dim=0).values  # (10, B), ascending
    sequence = torch.zeros(length, batch, dtype=torch.long)
    sequence.scatter_(0, positions, symbols)
    sequence[steps + 9] = 9  # the delimiter
    targets = torch.zeros(length, batch, dtype=torch.long)
    targets[-10:] = symbols
    return Batch(nn.functional.one_hot(sequence, 10).float(), targets)


def _order(steps: int, batch: int, generator: torch.Generator) -> Batch:
    # symbols: 0-3 distractors a-d, 4 X, 5 Y, 6 start B, 7 end E
    sequence = torch.randint(0, 4, (steps, batch), generator=generator)
    sequence[0] = 6
    sequence[-1] = 7
    low1, high1 = max(1, int(0.1 * steps)), max(2, int(0.2 * steps))
    low2, high2 = max(high1, int(0.5 * steps)), max(high1 + 1, int(0.6 * steps))
    first = torch.randint(low1, high1, (batch,), generator=generator)
    second = torch.randint(low2, min(high2, steps - 1), (batch,), generator=generator)
    which = torch.randint(0, 2, (2, batch), generator=generator)
    columns = torch.arange(batch)
    sequence[first, columns] = 4 + which[0]
    sequence[second, columns] = 4 + which[1]
    targets = 2 * which[0] + which[1]
    return Batch(nn.functional.one_hot(sequence, 8).float(), targets)
