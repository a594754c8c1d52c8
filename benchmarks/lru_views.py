"""The LRU's complex input and read-out as views of real products, against copies.

``LRU._input`` computes ``gamma * (B u)`` as one real product whose rows interleave
``B_re`` and ``B_im``, read as complex numbers in place (``torch.view_as_complex``), and
``LRU.read`` reads the complex states as interleaved real pairs
(``torch.view_as_real``) for one real product with ``[C_re, -C_im]``. Their backward
passes are views too. The form they replaced, kept here as the reference, made two real
products and joined them with ``torch.complex`` (a copy forward, two copies back), and
read ``states.real`` and ``states.imag`` (whose backward each fills and copies a complex
tensor of the states' size). This times one training step (forward, backward and an
Adam step) of the lab's two-block LRU (hidden 64, batch 50, float32) both ways,
interleaved in one run, at T 1000 and 2000, at 1 thread and at torch's default thread
count, and prints the medians and their ratio (after checking that both give the same
prediction).

Run: ``.venv/bin/python benchmarks/lru_views.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

import torch

from _lru_step import compare, setups
from rnngrad.lab.models import LabModel
from rnngrad.modern import LRU


def copied_input(self: LRU, u: torch.Tensor) -> torch.Tensor:
    """``gamma * (B u)`` as two real products joined by ``torch.complex``."""
    gamma = torch.exp(self.gamma_log)
    return torch.complex((u @ self.B_re.T) * gamma, (u @ self.B_im.T) * gamma)


def copied_read(self: LRU, states: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``Re(C x) + D u`` from ``states.real`` and ``states.imag``."""
    return states.real @ self.C_re.T - states.imag @ self.C_im.T + u * self.D


@contextlib.contextmanager
def copies() -> Iterator[None]:
    """The LRU with the reference's input and read-out, for the duration."""
    views = LRU._input, LRU.read
    LRU._input, LRU.read = copied_input, copied_read  # type: ignore[method-assign]
    try:
        yield
    finally:
        LRU._input, LRU.read = views  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for setup in setups(args.repeats):

        def copied(x: torch.Tensor, model: LabModel = setup.model) -> torch.Tensor:
            with copies():  # the graph records the copies; its backward runs them back
                prediction: torch.Tensor = model(x)
            return prediction

        compare(setup, args.repeats, setup.model, copied, ("views", "copies"))


if __name__ == "__main__":
    main()
