"""The public boundary: every function of ``rnngrad.NAME`` checks the kinds of its
arguments before it runs, from its own annotations.

A value of the wrong kind is one typed error naming the function, the argument, what
was expected and what was received (:class:`~rnngrad.errors.InvalidInputError`),
never a builtin exception from deep inside and never a silent result:

- a number (``float``, ``int``) is a real number, not a bool, a string or a complex
  number; a whole number (``int``) has no fraction;
- an array (``ArrayLike``) holds real numbers (no strings, bools, complex numbers or
  Python objects); a torch tensor given as an array is read as numbers, detached from
  its autograd graph (the documented conversion);
- a tensor anywhere in the arguments (a model's input, a tuple of them) is dense, on
  a device with values (not ``meta``), and real; a model (``nn.Module``) is a module
  whose parameters have values;
- names (``str``), switches (``bool``), callables, generators and the documented
  literal choices are what they say.

The checks read each function's signature once and cost microseconds per call;
:func:`public` wraps a function with them (``rnngrad.__getattr__`` applies it to every
public function as it is first loaded). Range checks (a seed's, a budget's) stay with
:mod:`rnngrad.limits` and the functions themselves.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import re
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from rnngrad.errors import InvalidInputError, NonFiniteInputError, quoted

__all__ = ["public"]

F = TypeVar("F", bound=Callable[..., Any])

# The documented choices of the public aliases, by annotation name.
_LITERALS = {
    "ExampleKind": ("random", "orthogonal", "nonnormal"),
    "ProfileRoute": ("auto", "recursion", "fused"),
    "QRMethod": ("householder", "cholesky2"),
}


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a numpy array of {value.dtype}"
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return f"a torch tensor of {str(value.dtype).removeprefix('torch.')}"
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    text = quoted(repr(value)) if isinstance(value, str) else type(value).__name__
    return text


def _fail(where: str, expected: str, value: Any) -> InvalidInputError:
    return InvalidInputError(f"{where} must be {expected}, got {_kind(value)}")


def _real_number(where: str, value: Any, whole: bool) -> None:
    if isinstance(value, bool) or isinstance(value, np.bool_):
        raise _fail(where, "a whole number" if whole else "a real number", value)
    if whole:
        if isinstance(value, numbers.Integral):
            return
        raise _fail(where, "a whole number", value)
    if not isinstance(value, numbers.Real):
        raise _fail(where, "a real number", value)
    if value != value:  # NaN: no number at all (infinities stay the function's to judge)
        raise NonFiniteInputError(f"{where} is NaN")


def _tensor(where: str, value: Any, *, real: bool = True) -> None:
    """A tensor rnngrad can compute with: dense, with values, real."""
    if value.is_meta:
        raise InvalidInputError(f"{where} is a meta tensor (a shape without values)")
    import torch

    if value.layout != torch.strided:
        layout = str(value.layout).removeprefix("torch.")
        raise InvalidInputError(f"{where} is a {layout} tensor; give it dense (.to_dense())")
    if real and value.is_complex():
        raise _fail(where, "real", value)


def _tensors_within(where: str, value: Any, depth: int = 0) -> None:
    """Every tensor in ``value`` (a tensor, or tuples, lists and dicts of them)."""
    import torch

    if isinstance(value, torch.Tensor):
        _tensor(where, value)
    elif isinstance(value, (tuple, list)) and depth < 4:
        for index, item in enumerate(value):
            _tensors_within(f"{where}[{index}]", item, depth + 1)
    elif isinstance(value, dict) and depth < 4:
        for key, item in value.items():
            _tensors_within(f"{where}[{key!r}]", item, depth + 1)


def _array(where: str, value: Any) -> Any:
    """A real numeric array; a tensor is read as its numbers (detached)."""
    import torch

    if isinstance(value, torch.Tensor):
        _tensor(where, value)
        if value.dtype == torch.bool:
            raise _fail(where, "an array of real numbers", value)
        array = value.detach().cpu().numpy()
        if array.dtype.kind == "f" and np.isnan(array).any():
            raise NonFiniteInputError(f"{where} holds NaN")
        return array
    if isinstance(value, (str, bytes)) or isinstance(value, (bool, np.bool_)):
        raise _fail(where, "an array of real numbers", value)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{where} must be an array of real numbers ({quoted(str(error))})"
        ) from None
    if array.dtype == object:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise _fail(where, "an array of real numbers", array) from None
    if array.dtype.kind not in "iuf":
        raise _fail(where, "an array of real numbers", array)
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise NonFiniteInputError(f"{where} holds NaN")
    return value


def _module(where: str, value: Any) -> None:
    from torch import nn

    if not isinstance(value, nn.Module):
        raise _fail(where, "a torch.nn.Module", value)
    for name, parameter in value.named_parameters():
        if parameter.is_meta:
            raise InvalidInputError(
                f"{where} has meta parameters ({name}: a shape without values); "
                "load its weights first"
            )


def _progress(where: str, value: Any) -> None:
    """A progress callback ``callback(done, total)``: a function, not a model."""
    from torch import nn

    if not callable(value) or isinstance(value, nn.Module):
        raise _fail(where, "a function callback(done, total)", value)


def _literal_choices(annotation: str) -> tuple[str, ...] | None:
    if annotation in _LITERALS:
        return _LITERALS[annotation]
    match = re.fullmatch(r"Literal\[(.*)\]", annotation)
    if match is None:
        return None
    return tuple(part.strip().strip("'\"") for part in match.group(1).split(","))


def _check(where: str, annotation: str, value: Any) -> Any:
    """Check ``value`` against one parameter's annotation; return it (or its documented
    conversion)."""
    import torch

    if value is None:
        if re.search(r"\bNone\b", annotation) or annotation in ("Any", "ProgressSpec"):
            return None
        raise _fail(where, "given (not None)", value)
    annotation = re.sub(r"\s*\|\s*None\b", "", annotation)
    if isinstance(value, torch.Tensor) and annotation not in ("ArrayLike",):
        _tensor(where, value)
    if annotation == "float":
        _real_number(where, value, whole=False)
    elif annotation == "int":
        _real_number(where, value, whole=True)
    elif annotation == "int | Literal['auto']":
        if not (isinstance(value, str) and value == "auto"):
            _real_number(where, value, whole=True)
    elif annotation == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise _fail(where, "True or False", value)
    elif annotation == "ArrayLike":
        return _array(where, value)
    elif annotation == "NDArray[np.float64]":
        return _array(where, value)
    elif annotation in ("str", "str | Path"):
        import os

        if not isinstance(value, (str, os.PathLike) if "Path" in annotation else str):
            raise _fail(where, "a string", value)
    elif annotation in ("nn.Module", "Dynamics | nn.Module"):
        if annotation == "nn.Module" or not hasattr(value, "step_and_jacobian"):
            from rnngrad.lyapunov.dynamics import Dynamics

            if not isinstance(value, Dynamics):
                _module(where, value)
    elif annotation == "torch.Tensor":
        if not isinstance(value, torch.Tensor):
            raise _fail(where, "a torch tensor", value)
    elif annotation == "torch.Generator":
        if not isinstance(value, torch.Generator):
            raise _fail(where, "a torch.Generator", value)
    elif annotation == "torch.dtype":
        if not isinstance(value, torch.dtype):
            raise _fail(where, "a torch.dtype", value)
    elif annotation in ("str | Activation", "Activation"):
        from rnngrad.theory.activations import Activation

        allowed = (str, Activation) if annotation.startswith("str") else (Activation,)
        if not isinstance(value, allowed):
            raise _fail(where, "an activation's name or an Activation", value)
    elif annotation == "Callable[[int, int], None]":
        _progress(where, value)
    elif annotation.startswith("Callable"):
        if not callable(value):
            raise _fail(where, "callable", value)
    elif annotation in ("LossSpec", "Literal['last', 'sum']"):
        named = isinstance(value, str) and value in ("last", "sum")
        if not named and not (callable(value) and annotation == "LossSpec"):
            raise _fail(where, "'last', 'sum'" + (" or a callable" * (annotation == "LossSpec")),
                        value)  # fmt: skip
    elif annotation == "ProgressSpec":
        if not isinstance(value, (bool, np.bool_)):
            _progress(where, value)
    elif annotation == "InputSpec":
        named = isinstance(value, str) and value in ("zeros", "random")
        if not isinstance(value, torch.Tensor) and not named:
            raise _fail(where, "'zeros', 'random' or a torch tensor", value)
    elif annotation == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(where, "a list of names", value)
    elif (choices := _literal_choices(annotation)) is not None:
        if not isinstance(value, str) or value not in choices:
            raise _fail(where, "one of " + ", ".join(repr(c) for c in choices), value)
    else:  # Any, unions of tensors and tuples, progress specs: the tensors within
        _tensors_within(where, value)
    return value


def public(function: F) -> F:
    """``function`` with its arguments checked against its annotations first."""
    signature = inspect.signature(function)
    name = function.__name__

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise InvalidInputError(f"{name}(): {error}") from None
        for parameter, value in list(bound.arguments.items()):
            annotation = signature.parameters[parameter].annotation
            if annotation is inspect.Parameter.empty:
                continue
            where = f"{name}(): {parameter}"
            bound.arguments[parameter] = _check(where, str(annotation), value)
        return function(*bound.args, **bound.kwargs)

    checked.__rnngrad_public__ = True  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]
