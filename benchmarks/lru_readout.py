"""The lab's stacked LRU read at its last step: the top block at that step alone against
the top block over every step.

A model whose head reads only the last step (the adding problem, the classification
tasks) needs the top block's output at that step only. ``LabModel`` computes its LRU's
last state as one weighted sum by powers of lambda (``LRU.final_state``, no scan) and its
read-out, GELU and GLU at that step. This times one training step (forward, backward
and an Adam step; 2 residual blocks, hidden 64, batch 50, float32) both ways,
interleaved in one run, at T 1000 and 2000, at 1 thread and at torch's default thread
count, and prints the medians and their ratio (after checking that both give the same
prediction).

Run: ``.venv/bin/python benchmarks/lru_readout.py [--repeats N]``
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from _lru_step import compare, setups
from rnngrad.lab.models import LabModel


def every_step(model: LabModel, x: torch.Tensor) -> torch.Tensor:
    """The prediction with every block computed over all steps (the definition)."""
    assert model.encoder is not None
    u = model.encoder(x)
    for layer, norm, mixer in zip(model.lru_layers(), model.norms, model.mixers, strict=True):
        z = norm(u)
        u = u + nn.functional.glu(mixer(nn.functional.gelu(layer.read(layer(z), z))), dim=-1)
    prediction: torch.Tensor = model.head(u[-1])
    return prediction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for setup in setups(args.repeats):

        def full(x: torch.Tensor, model: LabModel = setup.model) -> torch.Tensor:
            return every_step(model, x)

        compare(setup, args.repeats, setup.model, full, ("last step", "every step"))


if __name__ == "__main__":
    main()
