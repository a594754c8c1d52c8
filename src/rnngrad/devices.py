"""Choosing the device a computation runs on: ``cpu``, ``cuda`` (``cuda:N``) or ``auto``.

``auto`` takes the first CUDA device when torch sees one, else the CPU. A CUDA
device that torch does not see is refused in one line. Randomness stays on the
CPU (data, dropout masks and initial states are drawn there and moved), so that
a CPU run is bit-for-bit reproducible and a CUDA run draws the same numbers.
"""

from __future__ import annotations

import torch

from rnngrad.errors import InvalidInputError

__all__ = ["drawn", "resolve_device"]


def drawn(
    *shape: int,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str,
    uniform: bool = False,
) -> torch.Tensor:
    """Standard normal (or, ``uniform``, U[0, 1)) numbers drawn where ``generator`` lives
    and moved to ``device`` (``None``: torch's global generator of ``device``). With a CPU
    generator, the same numbers for the same seed on every device, which a CUDA generator
    would not give."""
    source = device if generator is None else generator.device
    draw = torch.rand if uniform else torch.randn
    return draw(shape, generator=generator, dtype=dtype, device=source).to(device)


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The :class:`torch.device` for ``name`` (``None`` and ``"cpu"``: the CPU).

    Raises:
        InvalidInputError: an unknown name, or a CUDA device that is absent.
    """
    if name is None:
        return torch.device("cpu")
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise InvalidInputError(
            f"unknown device {name!r}; expected cpu, cuda, cuda:N or auto"
        ) from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise InvalidInputError(f"device {name!r} is not supported; expected cpu, cuda or auto")
    if not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {name!r} was asked for, but torch sees no CUDA device here "
            "(use --device cpu or auto)"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidInputError(
            f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s)"
        )
    return device
