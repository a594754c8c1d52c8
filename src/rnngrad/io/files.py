"""Reading weights and inputs safely.

Nothing is ever unpickled. ``.npy`` files are read with ``allow_pickle=False``,
``.pt`` files with ``torch.load(weights_only=True)`` (which refuses arbitrary
objects), and ``.safetensors`` files with the safetensors library, a format
that cannot hold code at all.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rnngrad.errors import InvalidInputError, NonFiniteInputError, UnsafeFileError, WeightFileError

__all__ = [
    "SUPPORTED_WEIGHT_SUFFIXES",
    "load_array",
    "load_npy",
    "load_tensor_file",
    "parse_float_list",
]

SUPPORTED_WEIGHT_SUFFIXES = (".npy", ".pt", ".pth", ".safetensors")


def _select(tensors: dict[str, Any], key: str | None, path: Path) -> Any:
    names = sorted(tensors)
    if key is not None:
        if key not in tensors:
            raise WeightFileError(
                f"{path}: no tensor named {key!r}; the file holds: {', '.join(names) or 'nothing'}"
            )
        return tensors[key]
    if len(names) == 1:
        return tensors[names[0]]
    raise WeightFileError(
        f"{path} holds {len(names)} tensors; choose one with --key "
        f"(one of: {', '.join(names) or 'nothing'})"
    )


def regular_file(path: str | Path) -> Path:
    """``path`` when it names a regular file (a FIFO would block its reader forever, a
    device would never end).

    Raises:
        WeightFileError: no such file, or a folder, a pipe, a socket or a device.
    """
    file = Path(path)
    if not file.exists():
        raise WeightFileError(f"{file}: no such file")
    if not file.is_file():
        raise WeightFileError(f"{file}: not a regular file (a folder, a pipe or a device)")
    return file


def _readable(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in suffixes:
        raise WeightFileError(
            f"{file}: unsupported file type {suffix or '(none)'!r}; "
            f"expected one of {', '.join(suffixes)}"
        )
    regular_file(file)
    try:
        with file.open("rb"):
            pass
    except OSError as error:
        raise WeightFileError(f"{file}: cannot be read ({error.strerror})") from None
    return file


def _load_pt(path: Path) -> Any:
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeFileError(
            f"{path}: refusing to unpickle: torch.load(weights_only=True) rejected it "
            "(it holds Python objects other than tensors, or is not a PyTorch file)"
        ) from None
    except Exception as error:  # torch.load raises many types on corrupt input
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightFileError(f"{path}: not a readable PyTorch file ({detail})") from None
    if isinstance(loaded, torch.Tensor):
        return loaded
    if isinstance(loaded, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        return dict(loaded)
    raise WeightFileError(
        f"{path}: expected a tensor or a dict of named tensors, got {type(loaded).__name__}"
    )


def load_tensor_file(path: str | Path, *, allow_single: bool = False) -> dict[str, Any]:
    """The named tensors of a ``.pt``/``.pth`` (``weights_only=True``) or ``.safetensors`` file.

    Args:
        path: the file.
        allow_single: accept a ``.pt`` file that holds one bare tensor; it is
            returned under the name ``""``.

    Returns:
        A dict of name to ``torch.Tensor`` (CPU).

    Raises:
        WeightFileError: missing, unreadable or unsupported file, or a bare
            tensor where names were needed.
        UnsafeFileError: the file would need unpickling.
    """
    file = _readable(path, (".pt", ".pth", ".safetensors"))
    if file.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            loaded_file = dict(load_file(str(file)))
        except (SafetensorError, OSError, ValueError, TypeError) as error:
            raise WeightFileError(f"{file}: not a readable safetensors file ({error})") from None
        return {key: plain_tensor(value, file, key) for key, value in loaded_file.items()}
    loaded = _load_pt(file)
    if isinstance(loaded, dict):
        return {key: plain_tensor(value, file, str(key)) for key, value in loaded.items()}
    if not allow_single:
        raise WeightFileError(f"{file} holds a single tensor, not a state_dict of named tensors")
    return {"": plain_tensor(loaded, file, "the tensor")}


#: 8-bit floats, widened to float32 on loading (exactly: every float8 is a float32).
FLOAT8 = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu")


def plain_tensor(value: Any, file: Path, name: str) -> Any:
    """A loaded tensor as rnngrad computes with it: dense, with values, float8 widened to
    float32 (exact). Values that are not tensors pass through.

    Raises:
        WeightFileError: a meta tensor (a shape without values) or a sparse one.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        return value
    label = name or "the tensor"
    if value.is_meta:
        raise WeightFileError(f"{file}: {label} is a meta tensor (a shape without values)")
    if value.layout != torch.strided:
        layout = str(value.layout).removeprefix("torch.")
        raise WeightFileError(
            f"{file}: {label} is a {layout} tensor; save it dense (tensor.to_dense())"
        )
    if str(value.dtype).removeprefix("torch.") in FLOAT8:
        return value.to(torch.float32)
    return value


def _npy_header(file: Path) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Shape, dtype and data offset from a ``.npy`` header, before any data is read."""
    with file.open("rb") as handle:
        head = handle.read(6)
        if head[:2] == b"PK":
            raise WeightFileError(f"{file}: a .npz archive, not a .npy array; save one array")
        if head != b"\x93NUMPY":
            raise WeightFileError(f"{file}: not a .npy file (no NumPy header)")
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            reader = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if reader is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = reader(handle)
        except ValueError as error:
            raise WeightFileError(f"{file}: not a readable .npy file ({error})") from None
        return tuple(int(n) for n in shape), dtype, handle.tell()


def load_npy(path: str | Path) -> NDArray[Any]:
    """A ``.npy`` array of real numbers, read without pickle, in native byte order.

    The header is checked before the data is read: the dtype (whole or floating
    numbers only: no Python objects, strings, dates, records or complex
    numbers), that the file holds all the data it announces, and that it fits
    the memory budget (:mod:`rnngrad.limits`). Big-endian data is converted.

    Raises:
        UnsafeFileError: the array holds Python objects (it would need unpickling).
        WeightFileError: not a readable ``.npy`` file, a ``.npz`` archive, or cut short.
        InvalidInputError: a dtype that is not real numbers.
        ResourceError: more data than the memory budget.
    """
    from rnngrad.limits import check_memory

    file = Path(path)
    try:
        shape, dtype, offset = _npy_header(file)
        size = file.stat().st_size
    except WeightFileError:
        raise
    except OSError as error:
        raise WeightFileError(f"{file}: not a readable .npy file ({error.strerror})") from None
    if dtype.hasobject:
        raise UnsafeFileError(f"{file}: refusing to unpickle: the array holds Python objects")
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise InvalidInputError(
            f"{file}: expected a numeric array of real numbers, got dtype {dtype} "
            "(strings, dates, records and complex numbers are not read)"
        )
    count = 1
    for n in shape:
        count *= n
    needed = count * dtype.itemsize
    if size - offset < needed:
        raise WeightFileError(
            f"{file}: cut short: the header announces {needed:,} bytes of data, the file "
            f"holds {size - offset:,}"
        )
    check_memory(2.0 * needed, f"{file} ({count:,} numbers)")
    try:
        array: NDArray[Any] = np.load(file, allow_pickle=False)
    except ValueError as error:
        raise WeightFileError(f"{file}: not a readable .npy file ({error})") from None
    except (OSError, EOFError) as error:
        raise WeightFileError(f"{file}: not a readable .npy file ({error})") from None
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def load_array(path: str | Path, key: str | None = None) -> NDArray[np.float64]:
    """Read one numeric array from a ``.npy``, ``.pt``/``.pth`` or ``.safetensors`` file.

    Args:
        path: the file.
        key: the tensor's name in a file that holds several (a state_dict or a
            safetensors file); optional when the file holds exactly one.

    Returns:
        The array as float64.

    Raises:
        WeightFileError: missing, unreadable, unsupported suffix, or no such key.
        UnsafeFileError: the file would need unpickling.
        InvalidInputError: the array is not real-valued numeric.
    """
    file = _readable(path, SUPPORTED_WEIGHT_SUFFIXES)
    raw: Any
    if file.suffix.lower() == ".npy":
        if key is not None:
            raise WeightFileError(f"{file} holds a single array; --key {key!r} does not apply")
        raw = load_npy(file)
    else:
        tensors = load_tensor_file(file, allow_single=True)
        if "" in tensors and key is not None:
            raise WeightFileError(f"{file} holds a single tensor; --key {key!r} does not apply")
        tensor = _select(tensors, key, file).detach().cpu()
        if tensor.is_complex():
            raise InvalidInputError(f"{file}: expected a real tensor, got {tensor.dtype}")
        if not (tensor.is_floating_point() or tensor.dtype in _integer_dtypes()):
            raise InvalidInputError(f"{file}: expected a numeric tensor, got {tensor.dtype}")
        raw = tensor.double().numpy()
    array = np.asarray(raw)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(f"{file}: expected a numeric array, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise InvalidInputError(f"{file}: expected a real array, got dtype {array.dtype}")
    return array.astype(np.float64)


def _integer_dtypes() -> tuple[Any, ...]:
    """torch's integer dtypes (torch is imported only when a tensor file is read)."""
    import torch

    return (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def parse_float_list(text: str, name: str = "x") -> list[float]:
    """Parse ``"1,0.5,-0.3"`` into floats.

    Raises:
        InvalidInputError: an empty list or an entry that is not a number.
    """
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(part == "" for part in parts):
        raise InvalidInputError(
            f"{name} must be a comma-separated list of numbers such as 1,0.5,-0.3, got {text!r}"
        )
    values: list[float] = []
    for part in parts:
        try:
            values.append(float(part))
        except ValueError:
            raise InvalidInputError(f"{name}: {part!r} is not a number") from None
    return values


def finite_as(tensor: Any, dtype: Any, label: str) -> Any:
    """``tensor`` cast to ``dtype``, checked after the cast: a float64 value beyond
    float32's range becomes inf there, and is refused as such.

    Raises:
        NonFiniteInputError: NaN or inf in ``tensor``, or values beyond ``dtype``'s range.
    """
    import torch

    if not torch.isfinite(tensor).all():
        raise NonFiniteInputError(f"{label} holds NaN or inf")
    cast = tensor.to(dtype)
    if not torch.isfinite(cast).all():
        largest = float(tensor.abs().max())
        name = str(dtype).removeprefix("torch.")
        raise NonFiniteInputError(
            f"{label} holds values beyond {name}'s range (largest |value| {largest:.3g}, "
            f"{name} holds up to {torch.finfo(dtype).max:.3g}); rescale it or use --dtype "
            "float64"
        )
    return cast
