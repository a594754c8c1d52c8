"""The public boundary: every function of ``rnngrad.__all__``, each argument in turn
given a string, a complex array, a bool, NaN, a tensor that requires grad, a meta tensor
and a sparse tensor, answers with a typed error or a documented conversion: never a
builtin exception, never a silent result."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import rnngrad
from rnngrad.errors import RnngradError


def _tanh_like() -> rnngrad.Activation:
    return rnngrad.Activation(
        name="boundary_softsign",
        function=lambda z: z / (1 + np.abs(z)),
        derivative=lambda z: 1 / (1 + np.abs(z)) ** 2,
        log_derivative=lambda z: -2 * np.log1p(np.abs(z)),
        gamma=1.0,
        sup_at="z = 0",
    )


def _gru() -> nn.GRU:
    torch.manual_seed(0)
    return nn.GRU(2, 3).double()


def _x() -> torch.Tensor:
    return torch.randn(6, 2, 2, dtype=torch.float64)


def _cell_step(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.tanh(h @ torch.eye(3, dtype=x.dtype) * 0.5 + x.sum(-1, keepdim=True))


def _lru_model() -> nn.Module:
    from rnngrad.modern import LRU

    torch.manual_seed(0)
    return LRU(2, 3).double()


def _calling(model: nn.Module, loss: Callable[[nn.Module], torch.Tensor]) -> dict[str, Any]:
    return {"fn": lambda: loss(model), "model": model}


#: One valid call of every public function: keyword arguments by parameter name.
VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "activation_names": dict,
    "cell_gradient_profile": lambda: {
        "cell": _cell_step,
        "inputs": _x(),
        "h0": torch.zeros(2, 3, dtype=torch.float64),
    },
    "decay_beside_lyapunov": lambda: {"module": nn.RNN(2, 3).double(), "inputs": _x()},
    "describe_module": lambda: {"module": _gru()},
    "elman_forward": lambda: {"W_hh": np.eye(3) * 0.5, "x": np.ones((4, 3))},
    "elman_jacobian_products": lambda: {"W_hh": np.eye(3) * 0.5, "x": np.ones((4, 3))},
    "example_matrix": lambda: {"kind": "random", "hidden": 4, "radius": 0.9, "seed": 0},
    "find_recurrent_module": lambda: {"model": _gru()},
    "find_recurrent_modules": lambda: {"model": _gru()},
    "finite_time_spectrum": lambda: {"system": _gru(), "steps": 10, "warmup": 2, "seed": 0},
    "format_signed_log10": lambda: {"sign": 1.0, "log10_abs": 2.0, "digits": 3},
    "get_activation": lambda: {"activation": "tanh"},
    "gradient_horizon": lambda: {"log10_norms": np.array([0.0, -1.0, -4.0]), "decades": 3.0},
    "gradient_profile": lambda: {"model": _gru(), "inputs": _x(), "tolerance": 0.01},
    "gradient_profiles": lambda: {"model": _gru(), "inputs": _x(), "loss": "last"},
    "growth_labels": lambda: {"log10_change": np.array([1.0]), "steps": np.array([3])},
    "growth_verdict": lambda: {"log10_change": -2.0, "steps": 5, "tolerance": 0.01},
    "load_array": lambda: {"path": "/no/such/file.npy"},
    "lyapunov_spectrum": lambda: {"system": _gru(), "steps": 10, "warmup": 2, "seed": 0},
    "mean_field_lambda1": lambda: {"gain": 2.0, "nodes": 21},
    "leaky_mean_field_lambda1": lambda: {"gain": 1.5, "delta": 0.5, "span": 20},
    "random_rate_network": lambda: {
        "size": 6,
        "gain": 1.5,
        "delta": 0.5,
        "seed": 0,
        "dtype": torch.float64,
    },
    "memory_sensitivity": lambda: {"model": _lru_model(), "inputs": _x(), "directions": 2},
    "profile_call": lambda: _calling(_gru(), lambda m: m(_x())[0].sum()),
    "recurrent_spectrum": lambda: {"W": np.eye(3) * 0.5, "activation": "tanh", "max_steps": 5},
    "register_activation": lambda: {"activation": _tanh_like(), "replace": True},
    "saturation": lambda: {"pre_activations": np.array([[0.0, 3.0]]), "threshold": 0.1},
    "scalar_chain_rule": lambda: {"x": [1.0, 0.5], "a": 0.5, "b": 1.0},
    "scalar_inputs": lambda: {"steps": 3, "input_seed": 0},
    "scalar_phase_diagram": lambda: {"a": np.array([0.5, 1.5]), "steps": np.array([2, 3])},
    "selective_spectrum": lambda: {"model": _lru_model(), "inputs": _x()},
    "sensitivity_call": lambda: {
        **_calling(_lru_model(), lambda m: m(_x()).abs().sum()),
        "directions": 2,
    },
    "spectrum_verdict": lambda: {
        "spectral_radius": 0.9,
        "norm2": 1.2,
        "gamma": 1.0,
        "transient_growth": 2.0,
    },
    "to_float": lambda: {"sign": np.array([1.0]), "log10_abs": np.array([2.0])},
    "transient_growth": lambda: {"W": np.eye(3) * 0.5, "max_steps": 5},
}


def _hostile() -> dict[str, Any]:
    grad = torch.ones(3, dtype=torch.float64, requires_grad=True)
    return {
        "a string": "hostile",
        "a complex array": np.array([1 + 1j, 2.0]),
        "a bool": True,
        "NaN": math.nan,
        "a tensor that requires grad": grad,
        "a meta tensor": torch.empty(3, device="meta"),
        "a sparse tensor": torch.eye(3).to_sparse(),
        "a complex tensor": torch.ones(3, dtype=torch.complex128),
        "a bool array": np.eye(2, dtype=bool),
        "a module without values": nn.GRU(2, 3, device="meta"),
    }


def _functions() -> list[str]:
    return sorted(name for name in rnngrad.__all__ if inspect.isfunction(getattr(rnngrad, name)))


def test_every_public_function_has_a_valid_call() -> None:
    assert set(_functions()) == set(VALID), set(_functions()) ^ set(VALID)
    for name in _functions():
        getattr(rnngrad, name)(**VALID[name]()) if name != "load_array" else None


def _documented(annotation: str, label: str) -> bool:
    """The conversions the boundary documents: an array's tensor is read detached; a
    bool is a switch's value; NaN where a function reads it itself (growth rules)."""
    if label == "a tensor that requires grad" and (
        "ArrayLike" in annotation or "NDArray" in annotation
    ):
        return True
    return label == "a bool" and annotation in ("bool", "ProgressSpec", "Any")


CASES = [
    (name, parameter)
    for name in sorted(VALID)
    for parameter in inspect.signature(getattr(rnngrad, name)).parameters
]


@pytest.mark.parametrize(("name", "parameter"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_hostile_arguments_get_a_typed_error(name: str, parameter: str) -> None:
    function = getattr(rnngrad, name)
    annotation = str(inspect.signature(function).parameters[parameter].annotation)
    for label, value in _hostile().items():
        arguments = {**VALID[name](), parameter: value}
        try:
            function(**arguments)
        except RnngradError:
            continue
        except Exception as error:  # a builtin exception: the boundary missed it
            pytest.fail(f"{name}({parameter}={label}) raised {type(error).__name__}: {error}")
        assert _documented(annotation, label), f"{name}({parameter}={label}) returned a result"


def _meta_gru() -> nn.GRU:
    return nn.GRU(2, 3, device="meta")


#: The cases a hostile user found raising builtin exceptions (or returning silently),
#: each now a typed error.
REPORTED: list[tuple[str, Callable[[], Any]]] = [
    ("complex x", lambda: rnngrad.scalar_chain_rule(np.array([1 + 1j, 2]))),
    ("complex inputs", lambda: rnngrad.lyapunov_spectrum(
        _gru(), steps=5, warmup=1, inputs=torch.ones(7, 1, 2, dtype=torch.complex128))),
    ("bool matrix", lambda: rnngrad.recurrent_spectrum(np.eye(3, dtype=bool))),
    ("a=True", lambda: rnngrad.scalar_chain_rule([1.0], a=True)),
    ("x='1,2,3'", lambda: rnngrad.scalar_chain_rule("1,2,3")),
    ("a='0.5'", lambda: rnngrad.scalar_chain_rule(a="0.5")),
    ("meta x", lambda: rnngrad.scalar_chain_rule(torch.ones(3, device="meta"))),
    ("meta input", lambda: rnngrad.gradient_profile(_gru(), torch.ones(4, 1, 2, device="meta"))),
    ("meta model", lambda: rnngrad.gradient_profile(_meta_gru(), _x())),
    ("meta lyapunov", lambda: rnngrad.lyapunov_spectrum(_meta_gru(), steps=5)),
    ("model 'rnn'", lambda: rnngrad.gradient_profile("rnn", _x())),
    ("system 'rnn'", lambda: rnngrad.lyapunov_spectrum("rnn")),
    ("sparse input", lambda: rnngrad.gradient_profile(_gru(), _x()[:, 0].to_sparse())),
    ("lengths='5,5'", lambda: rnngrad.gradient_profile(_gru(), _x(), lengths="5,5")),
    ("tolerance=nan", lambda: rnngrad.gradient_profile(_gru(), _x(), tolerance=math.nan)),
    ("generator=5", lambda: rnngrad.gradient_profile(_gru(), _x(), generator=5)),
    ("steps='100'", lambda: rnngrad.lyapunov_spectrum(_gru(), steps="100")),
    ("numpy inputs", lambda: rnngrad.lyapunov_spectrum(_gru(), steps=5, inputs=np.ones((7, 1, 2)))),
    ("register 'tanh'", lambda: rnngrad.register_activation("tanh")),
    ("saturation 'abc'", lambda: rnngrad.saturation("abc")),
    ("load_array(5)", lambda: rnngrad.load_array(5)),
    ("gain '2'", lambda: rnngrad.mean_field_lambda1("2")),
]  # fmt: skip


@pytest.mark.parametrize(("label", "call"), REPORTED, ids=[label for label, _ in REPORTED])
def test_each_reported_case_is_a_typed_error(label: str, call: Callable[[], Any]) -> None:
    with pytest.raises(RnngradError):
        call()
