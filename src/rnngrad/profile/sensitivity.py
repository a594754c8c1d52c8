r"""The curse of memory: how strongly the states depend on the recurrence's own parameters.

Zucchet & Orvieto (2024): the gradient carried back through the states can be tame while
the sensitivity of the states to the recurrence's parameters explodes as its memory
lengthens. For ``h_t = lambda h_{t-1} + x_t`` with white inputs of variance ``s^2``,

.. math:: \mathbb{E}[h_t^2] = \frac{s^2}{1 - \lambda^2}, \qquad
          \mathbb{E}\Big[\Big(\frac{\partial h_t}{\partial \lambda}\Big)^2\Big]
          = \frac{s^2 (1 + \lambda^2)}{(1 - \lambda^2)^3},

which grows without bound as ``|lambda| -> 1`` (stationary values). The LRU's input
normalisation ``gamma = sqrt(1 - |lambda|^2)`` and its exponential parameterisation of
``|lambda|`` are the cure they propose.

:func:`memory_sensitivity` measures, for every parameter of a model's diagonal or
selective recurrence, ``||dh_t/dtheta||_F`` per token and sequence, and the loss's
``||dL/dtheta||``:

- **per-mode parameters** (each state entry depends on one entry of ``theta``: the LRU's
  ``nu_log``, ``theta_log``, ``gamma_log``, IndRNN's ``u``, Mamba's ``A_log`` and
  ``dt_proj.bias``): one forward-mode derivative in the direction of all ones gives
  every nonzero of the Jacobian at once, so the norm is exact;
- **other parameters** (a fused ``nn.RNN``'s ``W_hh`` among them, whose states are its
  outputs ``h_t``): Hutchinson's estimate, ``||J||_F^2 = E ||J v||^2`` over random
  signs ``v``, from ``directions`` forward-mode derivatives, with a 95% interval.

The forward-mode derivatives run the recurrence step by step (dual numbers through the
layer's own ``step``, or through a sequential scan of a selective block).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as fwad
from torch import nn

from rnngrad._types import FloatArray
from rnngrad.errors import InvalidInputError, UnsupportedModuleError, calling_user_code
from rnngrad.profile.model_call import loss_gradients
from rnngrad.show.display import Displayable, Summary, number

__all__ = ["MemorySensitivity", "ParameterSensitivity", "memory_sensitivity", "sensitivity_call"]

#: Per-mode parameters of mambapy's blocks (rnngrad's own layers list theirs in
#: ``mode_parameters``; a layer of the selective-scan protocol in
#: ``rnngrad_mode_parameters``).
MAMBA_MODE_PARAMETERS = ("A_log", "dt_proj.bias")


@dataclass(frozen=True)
class ParameterSensitivity:
    """One parameter's ``||dh_t/dtheta||`` and ``||dL/dtheta||``.

    Attributes:
        name: the parameter's name in the recurrence (``"nu_log"``).
        size: how many numbers it holds.
        exact: the state norms are exact (a per-mode parameter), not an estimate.
        state_norm: ``(B, T)`` ``||dh_t/dtheta||_F`` per sequence and token.
        ci95: ``(B, T)`` the half-width of Hutchinson's 95% interval (zeros when exact).
        grad_norm: ``||dL/dtheta||`` of the loss.
        directions: the forward-mode derivatives taken.
    """

    name: str
    size: int
    exact: bool
    state_norm: FloatArray
    ci95: FloatArray
    grad_norm: float
    directions: int

    @property
    def mean_state_norm(self) -> FloatArray:
        """``(T,)`` the mean over the sequences."""
        result: FloatArray = self.state_norm.mean(axis=0)
        return result


@dataclass(frozen=True, repr=False)
class MemorySensitivity(Displayable):
    """Every parameter's sensitivity of one recurrence, beside its states' norms.

    Attributes:
        module_name: the recurrence's name in the model.
        state_norm: ``(B, T)`` ``||h_t||`` per sequence and token.
        parameters: one :class:`ParameterSensitivity` per parameter.
    """

    module_name: str
    state_norm: FloatArray
    parameters: tuple[ParameterSensitivity, ...]

    def parameter(self, name: str) -> ParameterSensitivity:
        for entry in self.parameters:
            if entry.name == name:
                return entry
        raise InvalidInputError(f"no parameter {name!r}; there are: {self.names}")

    @property
    def names(self) -> str:
        return ", ".join(entry.name for entry in self.parameters)

    def _summary(self) -> Summary:
        largest = max(self.parameters, key=lambda p: float(p.mean_state_norm[-1]))
        sentence = (
            f"At the last token, ||dh_T/dtheta|| is largest for {largest.name} "
            f"({number(float(largest.mean_state_norm[-1]))}, "
            f"{'exact' if largest.exact else 'estimated'}), against ||h_T|| = "
            f"{number(float(self.state_norm[:, -1].mean()))}."
        )
        rows = tuple(
            (f"||dh_T/d {p.name}||", number(float(p.mean_state_norm[-1]))) for p in self.parameters
        ) + tuple((f"||dL/d {p.name}||", number(p.grad_norm)) for p in self.parameters)
        return Summary(
            f"memory sensitivity of {self.module_name}, T = {self.state_norm.shape[1]}",
            None,
            sentence,
            rows,
        )

    def _columns(self) -> dict[str, Any]:
        steps = self.state_norm.shape[1]
        columns: dict[str, Any] = {"t": np.arange(1, steps + 1)}
        columns["state_norm"] = self.state_norm.mean(axis=0)
        for entry in self.parameters:
            columns[f"d_{entry.name}"] = entry.mean_state_norm
        return columns

    def _figure(self, which: str | None = None) -> Any:
        from rnngrad.show.figure import Figure, Trace

        steps = list(range(1, self.state_norm.shape[1] + 1))
        figure = Figure("memory_sensitivity", "||dh_t/dtheta|| beside ||h_t||", "t", "norm",
                        log_y=True, integer_x=True)  # fmt: skip
        figure.traces.append(Trace("||h_t||", steps, list(self.state_norm.mean(axis=0))))
        for entry in self.parameters:
            trace = Trace(f"||dh_t/d {entry.name}||", steps, list(entry.mean_state_norm))
            trace.dash = not entry.exact  # an estimate: dashed
            figure.traces.append(trace)
        return figure


def _mode_parameters(module: nn.Module) -> tuple[str, ...]:
    from rnngrad.modern.selective import is_mamba_block

    if is_mamba_block(module):
        return MAMBA_MODE_PARAMETERS
    declared: Any = getattr(module, "rnngrad_mode_parameters", None)
    if declared is None:
        declared = getattr(module, "mode_parameters", ())
    return tuple(str(name) for name in declared)


class _StepLoop(nn.Module):
    """A diagonal recurrence run step by step (its definition), for dual numbers."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        step: Any = self.layer.step
        states, h = [], h0
        for x_t in x:
            h = step(x_t, h)
            states.append(h)
        return torch.stack(states)  # (T, B, N)


def _sequential_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` along dim 1, step by step (dual numbers pass)."""
    h, states = torch.zeros_like(b[:, 0]), []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


def memory_sensitivity(
    model: nn.Module,
    inputs: Any,
    *,
    loss: Any = "last",
    module: str | None = None,
    directions: int = 16,
    seed: int = 0,
) -> MemorySensitivity:
    """``||dh_t/dtheta||`` of every parameter of the recurrence in ``model`` (diagonal,
    selective, or a fused ``nn.RNN``/``nn.LSTM``/``nn.GRU``) along ``inputs``, and
    ``||dL/dtheta||`` (see the module's docstring).

    Args:
        model: a model with one diagonal recurrence of :mod:`rnngrad.modern` or selective
            scan (mambapy's block, the protocol's layer; the first unless ``module`` names
            one), or the recurrence itself.
        inputs: the model's input (a tensor, or a tuple of its arguments).
        loss: ``"last"``, ``"sum"`` (half the squared norm of the output at the last step
            or everywhere: the model's, or a fused ``nn.RNN``/``nn.LSTM``/``nn.GRU``'s own
            as in :func:`rnngrad.gradient_profile`) or a callable on the model's output.
        directions: Hutchinson's random directions for a parameter that is not per-mode.
        seed: seeds the directions.

    Raises:
        UnsupportedModuleError: a cell stepped by its model.
        InvalidInputError: ``directions`` below 2, or the model never calls it.
    """
    check_directions(directions)
    name, layer, kind = recurrence_to_measure(model, module)
    arguments = inputs if isinstance(inputs, tuple) else (inputs,)

    def run_model() -> torch.Tensor:
        from rnngrad.profile.model_call import output_loss

        time_dim = 1 if kind == "selective" else 0
        kept: list[torch.Tensor] = []
        handle = None
        if kind == "dense" and isinstance(loss, str):  # on the module's own output h_t
            from rnngrad.cells import describe_module

            time_dim = 1 if describe_module(layer).batch_first else 0
            handle = layer.register_forward_hook(lambda _m, _a, out: kept.append(out[0]))
        try:
            with calling_user_code(type(model).__name__):
                output = model(*arguments)
        finally:
            if handle is not None:
                handle.remove()
        outputs = kept[0] if kept else output[0] if isinstance(output, tuple) else output
        if not isinstance(outputs, torch.Tensor):
            raise InvalidInputError(
                "the memory sensitivity takes padded inputs and a tensor output, got "
                f"{type(outputs).__name__}"
            )
        if outputs.dim() == 2 and kept:  # an unbatched module's (T, H)
            time_dim = 0
        return output_loss(outputs, loss, time_dim=time_dim)

    return _measure(name, layer, kind, run_model, directions, seed)


def sensitivity_call(
    fn: Callable[[], torch.Tensor],
    *,
    model: nn.Module,
    module: str | None = None,
    directions: int = 16,
    seed: int = 0,
) -> MemorySensitivity:
    """:func:`memory_sensitivity` of the recurrence in ``model`` along the batch that
    ``fn()`` runs: ``fn`` runs the model's forward and its loss and returns the scalar
    loss (a training step without its backward and optimiser step), as for
    :func:`rnngrad.profile_call`.

    Raises:
        InvalidInputError: ``fn`` returns no scalar tensor or never calls the recurrence;
            ``directions`` below 2.
        ModelError: ``fn`` raised (quoted in one line).
    """
    from rnngrad.profile.model_call import scalar_loss

    if not callable(fn):
        raise InvalidInputError(f"sensitivity_call needs a function fn(), got {type(fn).__name__}")
    check_directions(directions)
    name, layer, kind = recurrence_to_measure(model, module)

    def run_fn() -> torch.Tensor:
        with calling_user_code("the function given to sensitivity_call"):
            value = fn()
        scalar_loss(value)
        return value

    return _measure(name, layer, kind, run_fn, directions, seed)


def check_directions(directions: Any) -> None:
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 2:
        raise InvalidInputError(f"directions must be a whole number >= 2, got {directions!r}")


def _measure(
    name: str,
    layer: nn.Module,
    kind: str,
    run_loss: Callable[[], torch.Tensor],
    directions: int,
    seed: int,
) -> MemorySensitivity:
    """Run ``run_loss()`` once, keeping the recurrence's first call's arguments and the
    loss's ``||dL/dtheta||``, then the states' derivatives along those arguments."""
    selective = kind == "selective"
    captured: list[tuple[Any, ...]] = []
    handle = layer.register_forward_pre_hook(
        lambda _m, args: captured.append(args) if not captured else None
    )
    try:
        value = run_loss()
    finally:
        handle.remove()
    if not captured:
        raise InvalidInputError(f"the model never called its recurrence {name!r}")
    named = dict(layer.named_parameters())
    grads = loss_gradients(value, list(named.values()), allow_unused=True)
    grad_norms = {
        key: 0.0 if g is None else float(g.norm()) for key, g in zip(named, grads, strict=True)
    }
    args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in captured[0])
    run = _runner(layer, args, kind)
    with torch.no_grad():
        states = run({})
    state_norm = _norms(states, selective)
    per_mode = set(_mode_parameters(layer))
    _load_forward_rules()
    generator = torch.Generator().manual_seed(seed)
    entries = []
    for key, parameter in named.items():
        exact = key in per_mode
        if exact:
            tangents = [torch.ones_like(parameter)]
        else:
            signs = torch.randint(0, 2, (directions, *parameter.shape), generator=generator)
            tangents = [(2 * s - 1).to(parameter.dtype).to(parameter.device) for s in signs]
        squares = []
        for tangent in tangents:
            # oneDNN's RNN kernel (PyTorch's CPU route for a float32 fused module) has no
            # forward-mode rule; the native kernel, the same recurrence, has one
            with fwad.dual_level(), torch.no_grad(), _native_rnn_kernel():
                dual = {key: fwad.make_dual(parameter.detach(), tangent)}  # type: ignore[no-untyped-call]
                derivative = fwad.unpack_dual(run(dual)).tangent  # type: ignore[no-untyped-call]
            if derivative is None:  # the states do not depend on this parameter
                derivative = torch.zeros_like(states)
            squares.append(_norms(derivative, selective) ** 2)
        stacked = np.stack(squares)  # (K, B, T)
        estimate = np.sqrt(stacked.mean(axis=0))
        if exact:
            ci95 = np.zeros_like(estimate)
        else:  # the interval of the mean square, carried to its root
            spread = 1.96 * stacked.std(axis=0, ddof=1) / math.sqrt(len(tangents))
            with np.errstate(divide="ignore", invalid="ignore"):
                ci95 = np.where(estimate > 0, spread / (2.0 * estimate), 0.0)
        entries.append(ParameterSensitivity(
            key, parameter.numel(), exact, estimate, ci95, grad_norms[key], len(tangents),
        ))  # fmt: skip
    return MemorySensitivity(name or type(layer).__name__, state_norm, tuple(entries))


@contextmanager
def _native_rnn_kernel() -> Iterator[None]:
    """oneDNN switched off for the block (torch's own note on TF32 for Intel GPUs, which
    switching it gives, held back: nothing here for the user to act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TF32 acceleration", category=UserWarning)
        flags = torch.backends.mkldnn.flags(enabled=False)
        flags.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TF32", category=UserWarning)
            flags.__exit__(None, None, None)


def _load_forward_rules() -> None:
    """Load torch's forward-mode decompositions once, without the deprecation warning
    about ``torch.jit.script`` that torch's own module gives on import (not the user's to
    act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=DeprecationWarning)
        import torch._decomp.decompositions_for_jvp  # noqa: F401


def recurrence_to_measure(model: nn.Module, module: str | None) -> tuple[str, nn.Module, str]:
    """The recurrence to measure and its kind: ``"selective"``, ``"diagonal"`` or
    ``"dense"`` (PyTorch's fused ``nn.RNN``/``nn.LSTM``/``nn.GRU``)."""
    from rnngrad.cells import find_recurrent_module, is_cell
    from rnngrad.modern.base import DiagonalRecurrence
    from rnngrad.modern.selective import is_selective_scan, selective_blocks

    if module is not None:
        found = dict(model.named_modules()).get(module)
        if found is not None and is_selective_scan(found):
            return module, found, "selective"
    else:
        blocks = selective_blocks(model)
        if blocks:
            return blocks[0][0], blocks[0][1], "selective"
    name, layer = find_recurrent_module(model, module)
    if isinstance(layer, DiagonalRecurrence):
        return name, layer, "diagonal"
    if is_cell(layer):
        raise UnsupportedModuleError(
            f"{name or type(layer).__name__} is a cell stepped by its model: the memory "
            "sensitivity reads a fused nn.RNN, nn.LSTM or nn.GRU, or a diagonal or "
            "selective recurrence"
        )
    return name, layer, "dense"


def _runner(layer: nn.Module, args: tuple[Any, ...], kind: str) -> Any:
    """``run(params)``: the recurrence's states with some parameters replaced, computed
    step by step (``(B, L, *state)`` for a selective block, ``(T, B, N)`` otherwise; a
    fused module's outputs ``h_t``, through its own kernel, which carries dual numbers)."""
    from rnngrad.modern.selective import scans_through

    if kind == "dense":
        from torch.nn.utils.rnn import PackedSequence

        from rnngrad.cells import describe_module

        batch_first = describe_module(layer).batch_first
        if isinstance(args[0], PackedSequence):
            raise InvalidInputError("the memory sensitivity takes padded inputs, not packed ones")

        def run_dense(params: dict[str, torch.Tensor]) -> torch.Tensor:
            outputs: torch.Tensor = torch.func.functional_call(layer, params, args, strict=False)[0]
            if outputs.dim() == 2:  # unbatched
                return outputs.unsqueeze(1)
            return outputs.transpose(0, 1) if batch_first else outputs

        return run_dense
    if kind == "selective":

        def run_selective(params: dict[str, torch.Tensor]) -> torch.Tensor:
            kept: list[torch.Tensor] = []

            def scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                states = _sequential_scan(a, b)
                kept.append(states)
                return states

            with scans_through(layer, scan):
                torch.func.functional_call(layer, params, args, strict=False)
            return kept[0]

        return run_selective
    loop = _StepLoop(layer)
    x = args[0]
    start = getattr(layer, "initial_state")  # noqa: B009 - a DiagonalRecurrence's method
    h0 = args[1] if len(args) > 1 and args[1] is not None else start(x.shape[1], x)

    def run_diagonal(params: dict[str, torch.Tensor]) -> torch.Tensor:
        renamed = {f"layer.{key}": value for key, value in params.items()}
        with nullcontext():
            result: torch.Tensor = torch.func.functional_call(loop, renamed, (x, h0), strict=False)
        return result

    return run_diagonal


def _norms(states: torch.Tensor, selective: bool) -> FloatArray:
    """``(B, T)`` float64 norms of the states (complex ones by their real and imaginary
    parts together)."""
    real = torch.view_as_real(states) if states.is_complex() else states
    if selective:  # (B, L, ...)
        flat = real.reshape(real.shape[0], real.shape[1], -1)
    else:  # (T, B, ...)
        flat = real.reshape(real.shape[0], real.shape[1], -1).transpose(0, 1)
    result: FloatArray = torch.linalg.vector_norm(flat.double(), dim=2).cpu().numpy()
    return result
