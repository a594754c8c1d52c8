"""Model specs and weight files for the command line.

A spec names a fused PyTorch module and its shape in one string::

    lstm:input=8,hidden=64,layers=2,bidirectional=true,batch_first=true
    rnn:input=3,hidden=32,nonlinearity=relu
    gru:input=5,hidden=16,bias=false
    lstm:input=8,hidden=64,proj_size=16

    rate:input=2,hidden=64,delta=0.5
    rate:input=1,hidden=400,delta=0.2,gain=2

Keys: ``input`` and ``hidden`` (required), ``layers`` (1), ``bidirectional``,
``batch_first`` and ``bias`` (``true``/``false``), ``dropout`` (0), and
``nonlinearity`` (``tanh``/``relu``, rnn only) or ``proj_size`` (lstm only). A rate
network (:class:`rnngrad.rate.RateRNN`, one layer, one direction) takes ``input``,
``hidden``, ``delta`` (``dt / tau`` in ``(0, 1]``, 0.5), ``activation`` (``tanh``),
``batch_first``, ``bias`` and ``gain`` (``W_ij ~ N(0, g^2/N)``, the classic random
network; PyTorch's uniform initialisation without it).
Weights come as a state_dict with the module's own key names, from a ``.pt``
file read with ``weights_only=True`` or a ``.safetensors`` file; every
missing, unexpected or mis-shaped key is named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnngrad.errors import InvalidInputError, WeightFileError
from rnngrad.io.files import finite_as, load_npy, load_tensor_file, regular_file

__all__ = [
    "ModelSpec",
    "build_module",
    "load_input",
    "load_state_dict",
    "parameter_count",
    "parse_spec",
]

_KINDS: dict[str, Any] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU, "rate": None}
MAX_LAYERS = 256  # building a module of many more layers takes minutes, whatever their size
_COMMON = {"input", "hidden", "layers", "bidirectional", "batch_first", "bias", "dropout"}
_EXTRA = {"rnn": {"nonlinearity"}, "lstm": {"proj_size"}, "gru": set()}
_RATE_KEYS = {"input", "hidden", "delta", "activation", "batch_first", "bias", "gain"}


def _allowed(kind: str) -> set[str]:
    return _RATE_KEYS if kind == "rate" else _COMMON | _EXTRA[kind]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: the module kind and its constructor arguments."""

    kind: str
    arguments: dict[str, Any]
    text: str


def _boolean(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidInputError(f"spec: {key} must be true or false, got {value!r}")


def _integer(key: str, value: str, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInputError(f"spec: {key} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise InvalidInputError(f"spec: {key} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise InvalidInputError(f"spec: {key} must be <= {maximum}, got {number}")
    return number


def parse_spec(text: str) -> ModelSpec:
    """Parse ``kind:key=value,...``.

    Raises:
        InvalidInputError: unknown kind or key, a bad value, or a missing
            ``input``/``hidden``.
    """
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise InvalidInputError(
            f"spec {text!r}: unknown module {kind!r}; expected rnn, lstm, gru or rate "
            "(as in lstm:input=8,hidden=64)"
        )
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))) if sep else []:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or not value.strip():
            raise InvalidInputError(f"spec {text!r}: {item!r} is not key=value")
        if key not in _allowed(kind):
            allowed = ", ".join(sorted(_allowed(kind)))
            raise InvalidInputError(
                f"spec {text!r}: unknown key {key!r} for {kind}; allowed: {allowed}"
            )
        if key in pairs:
            raise InvalidInputError(f"spec {text!r}: {key} is given twice")
        pairs[key] = value.strip()
    for required in ("input", "hidden"):
        if required not in pairs:
            raise InvalidInputError(f"spec {text!r}: {required}=N is required")
    if kind == "rate":
        return ModelSpec(kind, _rate_arguments(pairs), text)
    arguments: dict[str, Any] = {
        "input_size": _integer("input", pairs["input"], 1),
        "hidden_size": _integer("hidden", pairs["hidden"], 1),
        "num_layers": _integer("layers", pairs.get("layers", "1"), 1, MAX_LAYERS),
        "bidirectional": _boolean("bidirectional", pairs.get("bidirectional", "false")),
        "batch_first": _boolean("batch_first", pairs.get("batch_first", "false")),
        "bias": _boolean("bias", pairs.get("bias", "true")),
    }
    if "dropout" in pairs:
        try:
            dropout = float(pairs["dropout"])
        except ValueError:
            raise InvalidInputError(
                f"spec: dropout must be a number, got {pairs['dropout']!r}"
            ) from None
        if not 0.0 <= dropout < 1.0:
            raise InvalidInputError(f"spec: dropout must be in [0, 1), got {dropout}")
        arguments["dropout"] = dropout
    if "nonlinearity" in pairs:
        if pairs["nonlinearity"] not in ("tanh", "relu"):
            raise InvalidInputError(
                f"spec: nonlinearity must be tanh or relu, got {pairs['nonlinearity']!r}"
            )
        arguments["nonlinearity"] = pairs["nonlinearity"]
    if "proj_size" in pairs:
        proj = _integer("proj_size", pairs["proj_size"], 0)
        if proj >= arguments["hidden_size"]:
            hidden = arguments["hidden_size"]
            raise InvalidInputError(f"spec: proj_size must be below hidden ({hidden}), got {proj}")
        arguments["proj_size"] = proj
    return ModelSpec(kind, arguments, text)


def _rate_arguments(pairs: dict[str, str]) -> dict[str, Any]:
    """A rate network's constructor arguments from its spec's pairs."""
    from rnngrad._checks import check_delta

    try:
        delta = float(pairs.get("delta", "0.5"))
    except ValueError:
        raise InvalidInputError(f"spec: delta must be a number, got {pairs['delta']!r}") from None
    activation = pairs.get("activation", "tanh")
    if activation != "tanh":
        raise InvalidInputError(f"spec: activation must be tanh, got {activation!r}")
    gain = None
    if "gain" in pairs:
        try:
            gain = float(pairs["gain"])
        except ValueError:
            gain = math.nan
        if not (math.isfinite(gain) and gain > 0.0):
            raise InvalidInputError(f"spec: gain must be a positive number, got {pairs['gain']!r}")
    return {
        "gain": gain,
        "input_size": _integer("input", pairs["input"], 1),
        "hidden": _integer("hidden", pairs["hidden"], 1),
        "delta": check_delta(delta),
        "activation": activation,
        "batch_first": _boolean("batch_first", pairs.get("batch_first", "false")),
        "bias": _boolean("bias", pairs.get("bias", "true")),
    }


def parameter_count(spec: ModelSpec) -> int:
    """How many numbers the module of ``spec`` holds (computed before building it)."""
    arguments = spec.arguments
    if spec.kind == "rate":
        hidden = arguments["hidden"]
        return int(hidden * (hidden + arguments["input_size"] + int(arguments["bias"])))
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[spec.kind]
    hidden = arguments["hidden_size"]
    state = arguments.get("proj_size", 0) or hidden
    directions = 2 if arguments["bidirectional"] else 1
    total = 0
    for layer in range(arguments["num_layers"]):
        width = arguments["input_size"] if layer == 0 else state * directions
        per_direction = gates * hidden * (width + state + (2 if arguments["bias"] else 0))
        if state != hidden:
            per_direction += state * hidden
        total += directions * per_direction
    return total


def build_module(
    spec: ModelSpec, *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> nn.Module:
    """The module of ``spec`` with PyTorch's own initialisation drawn from ``seed``.

    Raises:
        InvalidInputError: a seed outside ``0..2**63-1``.
        ResourceError: its parameters would exceed the memory budget.
    """
    from rnngrad.limits import check_memory, check_seed

    check_seed(seed)
    check_memory(
        parameter_count(spec) * torch.tensor([], dtype=dtype).element_size() * 2,
        f"the parameters of {spec.text}",
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        if spec.kind == "rate":
            from rnngrad.rate.network import RateRNN

            module: nn.Module = RateRNN(**spec.arguments)
        else:
            module = _KINDS[spec.kind](**spec.arguments)
    finally:
        torch.random.set_rng_state(generator_state)
    built: nn.Module = module.to(dtype).eval()
    return built


def load_state_dict(module: nn.Module, path: str | Path) -> None:
    """Load a state_dict file into ``module``, naming every key that does not fit.

    The same strict loader as for a user's whole model
    (:func:`rnngrad.io.usermodel.load_model_state`).

    Raises:
        WeightFileError, UnsafeFileError: the file cannot be read safely.
        ShapeError: missing, unexpected or mis-shaped keys (all named).
        NonFiniteInputError: NaN or inf in a weight.
    """
    from rnngrad.io.usermodel import load_model_state

    load_model_state(module, path, what="the spec")


def load_input(
    path: str | Path, dtype: torch.dtype, *, allow_integer: bool = False, what: str = "the input"
) -> torch.Tensor:
    """An input tensor from a ``.pt`` file (one tensor) or a ``.npy`` array, as ``dtype``.

    With ``allow_integer``, whole numbers (token ids, class labels) come back as
    int64 instead of being refused.

    Raises:
        WeightFileError, UnsafeFileError: unreadable or unsafe file.
        InvalidInputError: not floating point (nor integer, where allowed).
    """
    file = Path(path)
    if file.suffix.lower() == ".npy":
        array = load_npy(regular_file(file))
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    else:
        tensors = load_tensor_file(file, allow_single=True)
        if len(tensors) != 1:
            raise WeightFileError(f"{file}: expected one input tensor, found {len(tensors)}")
        tensor = next(iter(tensors.values()))
    integer = not torch.is_floating_point(tensor) and not tensor.is_complex()
    integer = integer and tensor.dtype != torch.bool
    if allow_integer and integer:
        return tensor.to(torch.int64)
    if not torch.is_floating_point(tensor):
        dtype_name = str(tensor.dtype).removeprefix("torch.")
        kinds = "floating point or whole numbers" if allow_integer else "floating point"
        raise InvalidInputError(f"{file}: {what} must be {kinds}, got {dtype_name}")
    cast: torch.Tensor = finite_as(tensor, dtype, f"{file}: {what}")
    return cast
