"""A training-loop monitor: the gradient profile every N steps, with warnings.

One line in a training loop::

    monitor = rnngrad.GradientMonitor(model, writer=summary_writer)   # once
    for step, (x, y) in enumerate(loader):
        ...
        monitor.step(x)          # the added line: profiles on schedule

``step`` profiles the model on the given batch with
:func:`rnngrad.gradient_profile`, which builds its own autograd graph from
leaves of its own: the model's ``.grad`` fields, the optimizer and the global
RNG are left exactly as they were. By default the schedule adapts so that
profiling takes at most ``overhead`` (5%) of the wall time, the first profile
included: it waits until the training time so far pays for it.

It keeps a history of summary records and, once per event, issues one
:class:`GradientWarning` located at the user's line (the first frame outside
rnngrad, Lightning and torch): a layer turns vanishing or exploding (its verdict
on the gradient carried back, :mod:`rnngrad.profile.carried`, the same in two
consecutive profiles, so that a verdict on the edge does not flip-flop), or its
gradient becomes non-finite (at once). It passes a
:class:`MonitorEvent` to ``on_warning`` when given, and logs it on the
``rnngrad.monitor`` logger (shown only where the program configures logging).
Given a writer it records scalars per layer and a layer-by-time heat map of
``log10 ||dL/dh_t||`` on one colour scale for the whole run: a TensorBoard
``SummaryWriter`` (``pip install 'rnngrad[tensorboard]'``) or a Weights & Biases
run (``pip install 'rnngrad[wandb]'``).

The monitor never stops training: a failure inside ``step`` (the model or the loss
raising on the batch, a writer that fails) issues one :class:`MonitorDisabledWarning`
naming it in one line and switches the monitor off (``disabled`` says why).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from rnngrad.errors import InvalidInputError
from rnngrad.monitor.alerts import caller_stacklevel, switched_off
from rnngrad.monitor.records import (
    GradientWarning,
    MonitorDisabledWarning,
    MonitorEvent,
    MonitorRecord,
    ParameterRecord,
    ScalarWriter,
)
from rnngrad.monitor.writers import default_color_range, heat_map, writer_for
from rnngrad.profile.calls import profile_call
from rnngrad.profile.front import GradientProfile, LayerProfile, LossSpec, gradient_profile
from rnngrad.profile.sensitivity import MemorySensitivity
from rnngrad.verdict import RATE_TOLERANCE

__all__ = [
    "GradientMonitor",
    "GradientWarning",
    "MonitorDisabledWarning",
    "MonitorEvent",
    "MonitorRecord",
    "ParameterRecord",
    "ScalarWriter",
    "caller_stacklevel",
    "switched_off",
]

logger = logging.getLogger("rnngrad.monitor")

# The adaptive schedule spends at most this share of its budget on what its own clock
# sees, leaving the rest as a margin for a profile dearer than the last three and for
# what a profile costs the training around it, which no clock of the monitor's sees
# (benchmarks/monitor_overhead.py measured the run's wall overhead up to 1.6 points
# above the monitor's own share with a TensorBoard writer).
_AIM = 0.75
# Before the first profile its cost is estimated as this many training steps (a profile
# runs the model forward once and two backward recursions); the first profile waits
# until the training so far pays for that within the budget.
_FIRST_PROFILE_STEPS = 4.0


class GradientMonitor:
    """Profiles a recurrent model during training and warns when its gradients turn.

    Args:
        model: the model, or its recurrent module (see :func:`rnngrad.gradient_profile`).
        every: profile every ``every`` calls of :meth:`step`; ``None`` adapts the
            interval so that the monitor adds at most ``overhead`` to the run's wall time.
        overhead: when ``every`` is None, the most the monitor may add to the wall time
            of training, as a share of the time training itself takes (0.05: a run
            that takes 100 s unmonitored takes at most 105 s). The account is kept for
            the whole run, the first profile included, and a profile is taken only when
            the run's total stays within ``0.75 * overhead`` after it, assuming it costs
            as much as the dearest of the last three: the margin absorbs a profile that
            costs more than those before it.
        loss: the profile's loss: ``"last"``, ``"sum"``, or a callable, called as
            ``loss(output)``, or as ``loss(output, y)`` when :meth:`step` is given ``y``.
        module: the recurrent submodule's name, when the model has several and
            :meth:`step` is used (:meth:`step_call` profiles every module it calls).
        writer: a TensorBoard ``SummaryWriter`` (anything with ``add_scalar`` and
            ``add_image``) or a Weights & Biases run (anything with ``log``).
        on_warning: called with a :class:`MonitorEvent` for each event warned about.
        color_range: the heat map's ``(low, high)`` in ``log10 ||dL/dh_t||``; ``None``
            fixes it at the first profile (its finite range widened to whole decades,
            two more on each side) and keeps it for the run, so that steps compare.
        tolerance: per-step tolerance of the growth rule.
        sensitivity: also measure, at each profile, the curse of memory
            (:func:`rnngrad.memory_sensitivity`): per parameter of the recurrence,
            ``||dL/dtheta||`` and ``||dh_T/dtheta||`` (exact for per-mode parameters,
            else Hutchinson's estimate from ``directions`` derivatives), in
            :attr:`MonitorRecord.parameters` and the writer's scalars. A fused
            ``nn.RNN``/``nn.LSTM``/``nn.GRU``, a diagonal or a selective recurrence. The
            adaptive schedule adds it to a profile only when the budget holds it too
            (before the first, its cost is guessed as one profile per forward-mode
            derivative, then measured): it can cost many profiles (Hutchinson's
            directions for every weight of a deep LSTM), and then it comes more rarely
            than the profile, with ``parameters`` empty in the records between.
        directions: Hutchinson's directions per parameter that is not per-mode.
        clock: the wall clock in seconds (``time.perf_counter``; replaceable in tests).

    Attributes:
        history: one :class:`MonitorRecord` per profile taken.
        events: every :class:`MonitorEvent` warned about, in order.
        disabled: ``None`` while the monitor works; the one line that says why it
            switched itself off after a failure.
        profile_seconds: the wall time the monitor's calls have taken in all.
        training_seconds: the wall time between the monitor's calls (training).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int | None = None,
        overhead: float = 0.05,
        loss: LossSpec | Callable[[Any, Any], torch.Tensor] = "last",
        module: str | None = None,
        writer: Any = None,
        on_warning: Callable[[MonitorEvent], Any] | None = None,
        color_range: tuple[float, float] | None = None,
        tolerance: float = RATE_TOLERANCE,
        sensitivity: bool = False,
        directions: int = 4,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidInputError(
                f"GradientMonitor needs the model (an nn.Module), got {type(model).__name__}"
            )
        from rnngrad.cells import find_recurrent_module, find_recurrent_modules
        from rnngrad.profile.library import has_library_recurrence

        if not has_library_recurrence(model, module) and (
            module is not None or len(find_recurrent_modules(model)) < 2
        ):
            find_recurrent_module(model, module)  # there, and named when there are several
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)):
            raise InvalidInputError(f"every must be a whole number, got {every!r}")
        if every is not None and every < 1:
            raise InvalidInputError(f"every must be >= 1, got {every}")
        if not 0.0 < overhead < 1.0:
            raise InvalidInputError(f"overhead must be in (0, 1), got {overhead}")
        if not isinstance(sensitivity, bool):
            raise InvalidInputError(f"sensitivity must be True or False, got {sensitivity!r}")
        self._derivatives = 0
        if sensitivity:
            from rnngrad.profile.sensitivity import check_directions, recurrence_to_measure

            check_directions(directions)
            _, measured, _ = recurrence_to_measure(model, module)  # or a typed error
            # forward-mode derivatives a measurement takes at most (its cost's first guess)
            self._derivatives = directions * sum(1 for _ in measured.parameters())
        if on_warning is not None and not callable(on_warning):
            raise InvalidInputError(f"on_warning must be callable, got {type(on_warning).__name__}")
        self.model = model
        self.every = every
        self.overhead = overhead
        self.loss = loss
        self.module = module
        self.writer = writer
        self._sink = None if writer is None else writer_for(writer)
        self.on_warning = on_warning
        self.color_range = None if color_range is None else _check_range(color_range)
        self.tolerance = tolerance
        self.sensitivity = sensitivity
        self.directions = directions
        self._sensitivity_cost: float | None = None
        self.clock = clock
        self.history: list[MonitorRecord] = []
        self.events: list[MonitorEvent] = []
        self.calls = 0
        self.profile_seconds = 0.0
        self.training_seconds = 0.0
        self._last_call: float | None = None
        self._recent_costs: list[float] = []
        self._confirmed: dict[str, str] = {}  # the verdict warned about, per layer
        self._pending: dict[str, str] = {}  # a new verdict seen once, per layer
        self.disabled: str | None = None

    def __repr__(self) -> str:
        schedule = f"every {self.every} steps" if self.every else f"within {self.overhead:.0%}"
        last = ""
        if self.history:
            record = self.history[-1]
            last = ", ".join(f"{n}: {v}" for n, v in zip(record.names, record.labels, strict=True))
        return (
            f"GradientMonitor({schedule}, {len(self.history)} profiles in {self.calls} steps"
            + (f"; last: {last}" if last else "")
            + ")"
        )

    def _due(self) -> bool:
        if self.every is not None:
            return (self.calls - 1) % self.every == 0
        if self.history:
            expected = max(self._recent_costs)
        elif self.calls > 1:  # the first profile, estimated from the training steps so far
            expected = _FIRST_PROFILE_STEPS * self.training_seconds / (self.calls - 1)
        else:
            return False
        return self.profile_seconds + expected <= _AIM * self.overhead * self.training_seconds

    def step(
        self, inputs: Any, y: Any = None, *, step: int | None = None
    ) -> GradientProfile | None:
        """Count one training step; profile ``inputs`` when the schedule says so.

        Args:
            inputs: the batch the model takes (a tensor, a tuple of its arguments, a
                dict or a dataclass it takes as one argument, or a packed sequence).
            y: the targets, passed to the ``loss`` callable as ``loss(output, y)``.
            step: the training step to record (the monitor's own count when omitted).

        Returns:
            The profile when one was taken, else ``None``.
        """
        if y is not None and not callable(self.loss):
            raise InvalidInputError(
                f"targets y were given but the loss is {self.loss!r}; "
                "pass a callable loss(output, y)"
            )
        loss = self._loss_on(y)

        def profile() -> dict[str, GradientProfile]:
            found = gradient_profile(
                self.model, inputs, loss=loss, module=self.module, tolerance=self.tolerance
            )
            return {found.module_name: found}

        def sensitivity() -> MemorySensitivity:
            from rnngrad.profile.sensitivity import memory_sensitivity

            return memory_sensitivity(self.model, inputs, loss=loss, module=self.module,
                                      directions=self.directions)  # fmt: skip

        taken = self._scheduled(profile, step, sensitivity)
        return None if taken is None else next(iter(taken.values()))

    def _loss_on(self, y: Any) -> LossSpec:
        """The profile's loss on the batch: the monitor's, given the targets ``y``."""
        if y is None or not callable(self.loss):
            return self.loss  # type: ignore[return-value]
        user_loss, targets = self.loss, y

        def loss(output: Any) -> torch.Tensor:
            return user_loss(output, targets)  # type: ignore[call-arg]

        return loss

    def step_call(
        self, fn: Callable[[], torch.Tensor], *, step: int | None = None
    ) -> dict[str, GradientProfile] | None:
        """Count one training step; when the schedule says so, profile every recurrent
        module that ``fn()`` calls (:func:`rnngrad.profile_call`: ``fn`` runs the model's
        forward and loss on the batch and returns the scalar loss).

        Returns:
            ``{module name: profile}`` when profiles were taken, else ``None``.
        """

        def sensitivity() -> MemorySensitivity:
            from rnngrad.profile.sensitivity import sensitivity_call

            return sensitivity_call(fn, model=self.model, module=self.module,
                                    directions=self.directions)  # fmt: skip

        return self._scheduled(
            lambda: profile_call(fn, model=self.model, tolerance=self.tolerance),
            step,
            sensitivity,
        )

    def _scheduled(
        self,
        profile: Callable[[], dict[str, GradientProfile]],
        step: int | None,
        sensitivity: Callable[[], MemorySensitivity],
    ) -> dict[str, GradientProfile] | None:
        now = self.clock()
        if self._last_call is not None:
            self.training_seconds += now - self._last_call
        self.calls += 1
        if self.disabled is not None or not self._due():
            self._last_call = self.clock()
            return None
        taken: dict[str, GradientProfile] | None
        try:
            taken = profile()
            layers = [
                (f"{module} {lp.name}" if len(taken) > 1 else lp.name, lp)
                for module, found in taken.items()
                for lp in found.layers
            ]
            record = self._record(layers, self.calls if step is None else step)
            if self.sensitivity and self._sensitivity_due(self.clock() - now):
                started = self.clock()
                record = replace(record, parameters=parameter_records(sensitivity()))
                self._sensitivity_cost = self.clock() - started
            self._warn(record, layers)
            if self._sink is not None:
                self._write(record)
        except Exception as error:  # never stop training: say it once and stand aside
            self._disable(error)
            taken = None
        # The cost counts everything the call did: the profile, the warnings, the writer.
        cost = self.clock() - now
        if taken is not None:
            self.history.append(replace(record, seconds=cost))
        self._recent_costs = [*self._recent_costs[-2:], cost]
        self.profile_seconds += cost
        self._last_call = self.clock()
        return taken

    def _sensitivity_due(self, profile_cost: float) -> bool:
        """Whether the curse of memory fits the budget beside this profile: its last cost,
        or before the first, one profile's cost per forward-mode derivative (a fixed
        ``every`` measures at every profile)."""
        if self.every is not None:
            return True
        expected = self._sensitivity_cost
        if expected is None:
            expected = profile_cost * self._derivatives
        spent = self.profile_seconds + profile_cost + expected
        return spent <= _AIM * self.overhead * self.training_seconds

    def _disable(self, error: Exception) -> None:
        self.disabled = switched_off(error, "gradient monitor", "after a failure on a batch")

    def _record(self, layers: list[tuple[str, LayerProfile]], step: int) -> MonitorRecord:
        return MonitorRecord(
            step=step,
            names=tuple(name for name, _ in layers),
            labels=tuple(lp.verdict.label for _, lp in layers),
            log10_ratio=tuple(lp.log10_ratio for _, lp in layers),
            decay_rate=tuple(lp.decay_rate for _, lp in layers),
            horizon=tuple(lp.horizon for _, lp in layers),
            saturation=tuple(lp.saturation for _, lp in layers),
            log10_grad_norm=_rows([lp.log10_grad_norm for _, lp in layers]),
            seconds=0.0,
            nonfinite_step=tuple(lp.first_nonfinite_step for _, lp in layers),
        )

    def _warn(self, record: MonitorRecord, layers: list[tuple[str, LayerProfile]]) -> None:
        """One warning per event: a layer whose verdict turns vanishing or exploding and
        stays so in the next profile (a verdict on the edge does not flip-flop), or whose
        gradient becomes non-finite (at once; not again while it stays so)."""
        for name, lp in layers:
            if lp.first_nonfinite_step is not None:
                if self._confirmed.get(name) != "non-finite":
                    self._emit(MonitorEvent(
                        record.step, name, "non-finite", lp.first_nonfinite_step,
                        f"training step {record.step}: non-finite gradient dL/dh_t in "
                        f"{name}, first at time step t = {lp.first_nonfinite_step}",
                    ))  # fmt: skip
                self._confirmed[name] = "non-finite"
                self._pending.pop(name, None)
                continue
            label = lp.verdict.label
            if self._confirmed.get(name) == label:
                self._pending.pop(name, None)
                continue
            if self._pending.get(name) != label:
                self._pending[name] = label  # seen once: wait for the next profile
                continue
            self._confirmed[name] = label
            del self._pending[name]
            if label in ("vanishing", "exploding"):
                carrier = " (carried by the cell state c)" if lp.carried_by == "c" else ""
                self._emit(MonitorEvent(
                    record.step, name, label, None,
                    f"training step {record.step}: {name} turned {label} in two "
                    f"profiles running{carrier}. {lp.verdict.sentence}",
                ))  # fmt: skip

    def _emit(self, event: MonitorEvent) -> None:
        self.events.append(event)
        logger.warning(event.message)
        warnings.warn(event.message, GradientWarning, stacklevel=caller_stacklevel())
        if self.on_warning is not None:
            self.on_warning(event)

    def _write(self, record: MonitorRecord) -> None:
        assert self._sink is not None
        scalars: dict[str, float] = {}
        for index, name in enumerate(record.names):
            tag = "rnngrad/" + name.replace(" ", "_")
            values = {
                "log10_ratio": record.log10_ratio[index],
                "decay_rate": record.decay_rate[index],
                "horizon": record.horizon[index],
                "saturation": record.saturation[index],
            }
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    scalars[f"{tag}/{key}"] = float(value)
        for entry in record.parameters:
            tag = f"rnngrad/{entry.module}/{entry.name}".replace(" ", "_")
            for key, value in (("grad_norm", entry.grad_norm),
                               ("state_sensitivity", entry.state_sensitivity)):  # fmt: skip
                if math.isfinite(value):
                    scalars[f"{tag}/{key}"] = float(value)
        if self.color_range is None:
            self.color_range = default_color_range(record.log10_grad_norm)
        image = heat_map(record.log10_grad_norm, record.names, self.color_range, record.step)
        self._sink(scalars, image, record.step)


def parameter_records(result: MemorySensitivity) -> tuple[ParameterRecord, ...]:
    """The monitor's record of one :func:`rnngrad.memory_sensitivity`: per parameter,
    ``||dL/dtheta||`` and ``||dh_T/dtheta||`` at the last token (mean over the batch)."""
    return tuple(
        ParameterRecord(
            result.module_name,
            entry.name,
            entry.grad_norm,
            float(entry.mean_state_norm[-1]),
            entry.exact,
        )
        for entry in result.parameters
    )


def _rows(series: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Per-layer series as the rows of one array, a shorter one (a decoder's) padded with
    NaN: no value there (grey in the heat map)."""
    width = max(row.size for row in series)
    rows = np.full((len(series), width), np.nan)
    for index, row in enumerate(series):
        rows[index, : row.size] = row
    return rows


def _check_range(color_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in color_range)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"color_range must be two numbers (low, high), got {color_range!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidInputError(f"color_range needs finite low < high, got {color_range!r}")
    return low, high
