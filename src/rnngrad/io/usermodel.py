"""A user's whole model on the command line: imported, built, and loaded strictly.

``--model`` names either a fused module by spec (:mod:`rnngrad.io.spec`) or a model
of the user's own::

    path/to/file.py:NAME          a file, imported by path
    package.module:NAME           an importable module

``NAME`` is an ``nn.Module`` subclass or a factory function, called with the
keyword arguments of ``--model-args`` (a JSON object), or a module instance
defined at the file's top level. Importing a file runs its code: it is the
user's own model, as with ``torch.load`` of a whole pickled model, and nothing
else is ever unpickled (weights come from ``weights_only`` or safetensors
files). The state_dict is loaded strictly: every missing, unexpected or
mis-shaped key is named, and a near-miss (keys that differ from the model's by
a prefix, such as a file saved from ``model.lstm`` or through ``DataParallel``)
is named with its fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnngrad.errors import InvalidInputError, ShapeError, WeightFileError, described, quoted
from rnngrad.io.files import load_tensor_file

__all__ = [
    "ModelLoadError",
    "build_user_model",
    "is_user_model",
    "load_model_state",
    "parse_model_args",
]


class ModelLoadError(InvalidInputError):
    """A user's model could not be imported, found or built."""


def is_user_model(text: str) -> bool:
    """``True`` for ``file.py:NAME`` or ``package.module:NAME``; ``False`` for a spec
    (``kind:key=value,...``, whose part after the colon is no Python name)."""
    head, sep, name = text.rpartition(":")
    if not sep or not name.strip().isidentifier():
        return False
    return head.strip().lower() not in ("rnn", "lstm", "gru")


def parse_model_args(text: str | None) -> dict[str, Any]:
    """The keyword arguments of ``--model-args``: a JSON object (``{}`` when absent)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelLoadError(
            f"--model-args is not valid JSON ({error.msg} at character {error.pos}): {quoted(text)}"
        ) from None
    except RecursionError:
        raise ModelLoadError("--model-args is nested too deeply to read") from None
    except ValueError as error:  # an integer of thousands of digits, and the like
        raise ModelLoadError(f"--model-args cannot be read: {quoted(str(error))}") from None
    if not isinstance(value, dict):
        raise ModelLoadError(
            f"--model-args must be a JSON object of keyword arguments, got {type(value).__name__}"
        )
    return value


def _import_file(path: Path) -> Any:
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file")
    if not path.is_file():
        raise ModelLoadError(f"{path}: not a regular file (a folder, a pipe or a device)")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    name = f"rnngrad_user_model_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    sys.path.insert(0, folder)  # so that the file can import its neighbours
    sys.modules[name] = module  # dataclasses and the like look their module up
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as error:  # the user's code can raise anything (exit too); quote it
        sys.modules.pop(name, None)
        raise ModelLoadError(f"{path}: importing it failed: {described(error)}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"cannot import {name!r}: {error} (for a file, write path/to/file.py:NAME)"
        ) from None
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        raise ModelLoadError(f"importing {name!r} failed: {described(error)}") from None


def _candidates(namespace: Any) -> list[str]:
    return sorted(
        key
        for key, value in vars(namespace).items()
        if not key.startswith("_")
        and (
            (
                isinstance(value, type)
                and issubclass(value, nn.Module)
                and value.__module__ == namespace.__name__
            )
            or isinstance(value, nn.Module)
        )
    )


def build_user_model(
    text: str, arguments: dict[str, Any], *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> nn.Module:
    """Import ``file.py:NAME`` or ``package.module:NAME`` and build the model in eval mode.

    The model is built with the global RNG seeded by ``seed`` (and restored
    afterwards), so that an initialisation without a state_dict is reproducible.

    Raises:
        ModelLoadError: the import fails (the exception's message is quoted),
            ``NAME`` is missing or not a module, or building it fails.
    """
    from rnngrad.limits import check_seed

    check_seed(seed)
    location, _, name = text.rpartition(":")
    name = name.strip()
    if not location or not name.isidentifier():
        raise ModelLoadError(
            f"--model {text!r}: expected path/to/file.py:NAME or package.module:NAME"
        )
    namespace = (
        _import_file(Path(location)) if location.endswith(".py") else _import_module(location)
    )
    if not hasattr(namespace, name):
        found = ", ".join(_candidates(namespace)) or "none"
        raise ModelLoadError(f"{location} has no {name!r}; modules defined there: {found}")
    target = getattr(namespace, name)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        if isinstance(target, nn.Module):
            if arguments:
                raise ModelLoadError(
                    f"{name} is a module instance already; --model-args applies to a class "
                    "or a factory"
                )
            model = target
        elif callable(target):
            try:
                model = target(**arguments)
            except (ModelLoadError, KeyboardInterrupt):
                raise
            except BaseException as error:
                raise ModelLoadError(
                    f"building {name}(**{quoted(json.dumps(arguments))}) failed: {described(error)}"
                ) from None
        else:
            raise ModelLoadError(
                f"{name} in {location} is a {type(target).__name__}, not an nn.Module "
                "subclass or a factory"
            )
    finally:
        torch.random.set_rng_state(state)
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{name}(...) returned a {type(model).__name__}, not an nn.Module")
    built: nn.Module = model.to(dtype).eval()
    return built


def _prefix_hint(expected: set[str], found: set[str]) -> str | None:
    """The fix for keys that differ from the model's by a prefix, if that is what they do."""

    def prefixes(keys: set[str]) -> set[str]:
        out: set[str] = set()
        for key in keys:
            parts = key.split(".")
            out.update(".".join(parts[:i]) + "." for i in range(1, len(parts)))
        return out

    for prefix in sorted(prefixes(expected), key=len):
        inside = {k.removeprefix(prefix) for k in expected if k.startswith(prefix)}
        if found and found <= inside:
            complete = found == inside
            return (
                f"the file's keys are the model's without the prefix {prefix!r}: it holds the "
                f"state_dict of the submodule model.{prefix[:-1]}"
                + ("" if complete else " (and not all of it)")
                + f"; save model.state_dict() of the whole model, or add {prefix!r} to every key"
            )
    for prefix in sorted(prefixes(found), key=len):
        inside = {k.removeprefix(prefix) for k in found if k.startswith(prefix)}
        if inside == expected:
            return (
                f"the file's keys carry the prefix {prefix!r} (as a wrapper such as "
                f"DataParallel or a training framework saves them); remove {prefix!r} from "
                "every key"
            )
    return None


def load_model_state(model: nn.Module, path: str | Path, *, what: str = "the model") -> None:
    """Load a state_dict file into ``model`` strictly, naming every key that does not fit.

    Floating-point tensors take the model's dtype; other tensors (integer
    buffers) must match the model's own dtype kind.

    Raises:
        WeightFileError, UnsafeFileError: the file cannot be read safely.
        ShapeError: missing, unexpected or mis-shaped keys (all named, with the
            fix of a prefix near-miss).
        InvalidInputError, NonFiniteInputError: a tensor of the wrong kind, or NaN/inf.
    """
    tensors = load_tensor_file(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshaped = sorted(
        f"{key} {tuple(tensors[key].shape)} (expected {tuple(expected[key].shape)})"
        for key in set(expected) & set(tensors)
        if tuple(tensors[key].shape) != tuple(expected[key].shape)
    )
    problems = []
    if missing or unexpected:
        hint = _prefix_hint(set(expected), set(tensors))
        if hint is not None:
            raise ShapeError(f"{path}: the state_dict does not fit {what}: {hint}")
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if misshaped:
        problems.append("mis-shaped keys: " + ", ".join(misshaped))
    if problems:
        raise ShapeError(f"{path}: the state_dict does not fit {what}: " + "; ".join(problems))
    converted = {}
    for key, tensor in tensors.items():
        own = expected[key]
        if torch.is_floating_point(own) != torch.is_floating_point(tensor):
            kind = "floating point" if torch.is_floating_point(own) else str(own.dtype)
            raise InvalidInputError(f"{path}: {key} must be {kind}, got {tensor.dtype}")
        if torch.is_floating_point(tensor):
            from rnngrad.io.files import finite_as

            converted[key] = finite_as(tensor, own.dtype, f"{path}: {key}")
        else:
            converted[key] = tensor.to(own.dtype)
    try:
        model.load_state_dict(converted)
    except RuntimeError as error:  # a model with its own checks in load_state_dict
        raise WeightFileError(f"{path}: the model refused the state_dict: {error}") from None
