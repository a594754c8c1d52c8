"""The trajectory a spectrum is measured along: which recurrence, what drives it.

Shared by :mod:`rnngrad.lyapunov.spectrum` (the asymptotic spectrum) and
:mod:`rnngrad.lyapunov.finite_time` (the stretching of one trajectory): both measure a
:class:`rnngrad.lyapunov.dynamics.Dynamics`, chosen from a PyTorch model by
:func:`measured_system` (one module, one layer driven by the layers below, one
direction of a bidirectional module driven by the input in reverse time),
driven by :class:`DrivingInputs` (zeros, seeded N(0, 1), or a given sequence)
from random initial states run through a warm-up (:func:`warm_start`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from rnngrad.devices import drawn
from rnngrad.errors import InvalidInputError, NumericalError, ShapeError
from rnngrad.lyapunov.dynamics import Dynamics, ModuleDynamics

__all__ = [
    "DrivingInputs",
    "InputSpec",
    "MeasuredSystem",
    "as_dynamics",
    "check_finite",
    "driving_sequence",
    "exponent_count",
    "measured_system",
    "warm_start",
]

InputSpec = Literal["zeros", "random"] | torch.Tensor


@dataclass(frozen=True)
class MeasuredSystem:
    """The dynamics to measure and what drives them, with where in the model they are.

    Attributes:
        dynamics: the map ``s_t = F(s_{t-1}, x_t)`` and its Jacobian-vector products.
        inputs: the inputs that drive it (for a higher layer or a reverse direction,
            the sequence the layers below produce, in the direction's own time order).
        module_name, layer, direction: the recurrent submodule, the one layer (``None``:
            all of them) and the direction measured.
        converted_from: the model's own dtype when the dynamics run on a converted copy.
    """

    dynamics: Dynamics
    inputs: InputSpec
    module_name: str = ""
    layer: int | None = None
    direction: int = 0
    converted_from: str | None = None
    #: The diagonal recurrence itself, when the system is one (its exponents are exact).
    diagonal: Any = None


def _diagonal_dynamics(layer: Any) -> Dynamics:
    """A diagonal recurrence of :mod:`rnngrad.modern` as a map of a flat real state
    (real and imaginary parts side by side for a complex one), through torch.func."""
    from rnngrad.lyapunov.dynamics import CellDynamics

    size = layer.state_size
    dtype = next(layer.parameters()).dtype

    def cell(x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        if not layer.complex_state:
            new: torch.Tensor = layer.step(x, state)
            return new
        stepped = layer.step(x, torch.complex(state[..., :size], state[..., size:]))
        return torch.cat([stepped.real, stepped.imag], dim=-1)

    width = 2 * size if layer.complex_state else size
    return CellDynamics(cell, state_size=width, input_size=layer.input_size, dtype=dtype)


def as_dynamics(system: Dynamics | nn.Module) -> Dynamics:
    """A model's recurrent module (all layers, its own dtype) as dynamics; a Dynamics as is."""
    if isinstance(system, Dynamics):
        return system
    found = measured_system(
        system, "zeros", module=None, layer=None, direction=0, dtype=None, batch=1, length=1,
        seed=0,
    )  # fmt: skip
    return found.dynamics


def driving_sequence(
    spec: InputSpec, size: int, batch: int, length: int, seed: int, like: torch.Tensor
) -> torch.Tensor:
    """The input sequence ``(length, B, D)`` as a tensor (seeded N(0, 1) for ``"random"``)."""
    from rnngrad.limits import check_memory

    check_memory(
        3.0 * length * batch * max(size, 1) * like.element_size() * 4,
        f"the driving sequence of {length} steps",
    )
    if isinstance(spec, torch.Tensor):
        data = spec.to(device=like.device, dtype=like.dtype)
        if data.dim() == 2:
            data = data.unsqueeze(1).expand(-1, batch, -1)
        if data.dim() != 3 or data.shape[1:] != (batch, size) or data.shape[0] < length:
            raise ShapeError(
                f"inputs must have shape (T, {size}) or (T, {batch}, {size}) with T >= {length}, "
                f"got {tuple(spec.shape)}"
            )
        return data[:length]
    if spec == "zeros":
        return torch.zeros(length, batch, size, dtype=like.dtype, device=like.device)
    if spec == "random":
        generator = torch.Generator().manual_seed(seed + 1)
        return drawn(length, batch, size, generator=generator, dtype=like.dtype, device=like.device)
    raise InvalidInputError(f"inputs must be 'zeros', 'random' or a tensor, got {spec!r}")


def measured_system(
    system: Dynamics | nn.Module,
    inputs: InputSpec,
    *,
    module: str | None,
    layer: int | None,
    direction: int,
    dtype: torch.dtype | None,
    batch: int,
    length: int,
    seed: int,
) -> MeasuredSystem:
    """The dynamics to measure and the inputs that drive them.

    A :class:`Dynamics` is measured as it is. In a PyTorch model the recurrent
    module is found as :func:`rnngrad.gradient_profile` finds it (``module`` names
    one of several) and copied into ``dtype`` when its own differs: a modern
    diagonal recurrence as a map of its flat real state; a unidirectional module
    as the stacked state of all layers, or ``layer`` alone driven by the layers
    below; a bidirectional module one layer and one ``direction`` at a time, the
    reverse direction driven by its input in reverse time (``batch``, ``length``
    and ``seed`` shape the driving sequence that the layers below are run on).

    Raises:
        InvalidInputError: ``module``, ``layer`` or ``direction`` that do not apply
            to the system or are out of range.
    """
    if isinstance(system, Dynamics):
        if module is not None or layer is not None or direction != 0:
            raise InvalidInputError("module=, layer= and direction= apply to a PyTorch model")
        return MeasuredSystem(
            system, inputs, converted_from=getattr(system, "converted_from", None)
        )
    import copy

    from rnngrad.cells import FUSED_KERNELS, describe_module, find_recurrent_module, kernel_weights
    from rnngrad.rate.network import RateRNN

    if isinstance(system, RateRNN):  # a rate network: its own map (rnngrad.rate)
        if module is not None or layer is not None or direction != 0:
            raise InvalidInputError("a RateRNN has one layer and one direction")
        from rnngrad.lyapunov.rate import RateDynamics

        rate, converted = system, None
        own = system.weight_hh.dtype
        if dtype is not None and own != dtype:
            rate, converted = copy.deepcopy(system).to(dtype), str(own).removeprefix("torch.")
        return MeasuredSystem(RateDynamics(rate), inputs, "", None, 0, converted)
    name, rnn = find_recurrent_module(system, module)
    own = next(rnn.parameters()).dtype
    converted = None
    if dtype is not None and own != dtype:
        rnn, converted = copy.deepcopy(rnn).to(dtype), str(own).removeprefix("torch.")
    from rnngrad.modern.base import DiagonalRecurrence

    if isinstance(rnn, DiagonalRecurrence):
        if layer is not None or direction != 0:
            raise InvalidInputError(f"{type(rnn).__name__} has one layer and one direction")
        return MeasuredSystem(_diagonal_dynamics(rnn), inputs, name, None, 0, converted, rnn)
    layout = describe_module(rnn)
    if layer is not None and not 0 <= layer < layout.num_layers:
        raise InvalidInputError(f"layer must be in 0..{layout.num_layers - 1}, got {layer}")
    if not layout.bidirectional:
        if direction != 0:
            raise InvalidInputError(f"{name or 'the module'} is unidirectional: direction is 0")
        dynamics = (
            ModuleDynamics(rnn)
            if layer is None
            else ModuleDynamics(rnn, layers=layer + 1, only_top=True)
        )
        return MeasuredSystem(dynamics, inputs, name, layer, 0, converted)
    if layer is None and layout.num_layers > 1:
        raise InvalidInputError(
            f"{name or 'the module'} is bidirectional with {layout.num_layers} layers: name "
            "one layer (layer=L, --layer L) and one direction; each is a causal recurrence"
        )
    chosen = layer or 0
    dynamics = ModuleDynamics(rnn, first=chosen, layers=1, direction=direction)
    if chosen == 0 and (not isinstance(inputs, torch.Tensor) or direction == 0):
        # zeros and i.i.d. draws look the same in either time direction
        driving: InputSpec = inputs
    else:
        like = next(rnn.parameters())
        sequence = driving_sequence(inputs, layout.input_size, batch, length, seed, like)
        if chosen == 0:
            driving = sequence.flip(0)
        else:
            with torch.no_grad():  # the layers below, over the whole sequence, both directions
                for below in range(chosen):
                    zeros = torch.zeros(
                        2, batch, layout.state_size, dtype=like.dtype, device=like.device
                    )
                    hx: Any = zeros
                    if layout.kind == "lstm":
                        hx = (zeros, zeros.new_zeros(2, batch, layout.hidden_size))
                    sequence = FUSED_KERNELS[layout.kind](
                        sequence, hx, kernel_weights(rnn, layout, below), layout.bias, 1, 0.0,
                        False, True, False,
                    )[0]  # fmt: skip
            driving = sequence.flip(0) if direction == 1 else sequence
    return MeasuredSystem(dynamics, driving, name, chosen, direction, converted)


class DrivingInputs:
    """Yields ``x_t`` of shape ``(B, D)``: zeros, seeded N(0, 1), or a given sequence."""

    def __init__(
        self,
        spec: InputSpec,
        dynamics: Dynamics,
        batch: int,
        length: int,
        generator: torch.Generator,
    ) -> None:
        self.generator = generator
        self.shape = (batch, dynamics.input_size)
        self.dtype, self.device = dynamics.dtype, dynamics.device
        self.kind = spec if isinstance(spec, str) else "given"
        if isinstance(spec, torch.Tensor):
            data = spec.to(device=self.device, dtype=self.dtype)
            if data.dim() == 2:
                data = data.unsqueeze(1).expand(-1, batch, -1)
            if data.dim() != 3 or data.shape[1:] != self.shape:
                raise ShapeError(
                    f"inputs must have shape (T, {dynamics.input_size}) or "
                    f"(T, {batch}, {dynamics.input_size}), got {tuple(spec.shape)}"
                )
            if data.shape[0] < length:
                raise ShapeError(
                    f"the input sequence has {data.shape[0]} steps; "
                    f"warm-up plus steps need {length}"
                )
            if not torch.isfinite(data).all():
                raise InvalidInputError("the input sequence holds NaN or inf")
            self.data: torch.Tensor | None = data
        elif spec in ("zeros", "random"):
            self.data = None
            self.zeros = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        else:
            raise InvalidInputError(f"inputs must be 'zeros', 'random' or a tensor, got {spec!r}")

    def __call__(self, t: int) -> torch.Tensor:
        if self.data is not None:
            return self.data[t]
        if self.kind == "zeros":
            return self.zeros
        return drawn(*self.shape, generator=self.generator, dtype=self.dtype, device=self.device)


def check_finite(state: torch.Tensor, t: int) -> None:
    """Raises :class:`NumericalError` when the trajectory has diverged by step ``t``."""
    if not torch.isfinite(state).all():
        raise NumericalError(
            f"the trajectory diverged by step {t}: the state is no longer finite, "
            "so no exponent can be measured"
        )


def exponent_count(dynamics: Dynamics, k: int | None) -> int:
    """``k``, or the tangent space's size when omitted; an error when out of range."""
    count = dynamics.tangent_size if k is None else k
    if not 1 <= count <= dynamics.tangent_size:
        raise InvalidInputError(
            f"k must be between 1 and the state size {dynamics.tangent_size}, got {count}"
        )
    return count


def warm_start(
    dynamics: Dynamics, batch: int, warmup: int, source: DrivingInputs, generator: torch.Generator
) -> torch.Tensor:
    """Random initial states run through ``warmup`` steps of ``source``'s inputs."""
    state = dynamics.initial_state(batch, generator)
    for t in range(warmup):
        state, _ = dynamics.step(state, source(t))
        check_finite(state, t + 1)
    return state
