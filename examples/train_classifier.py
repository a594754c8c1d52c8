"""Train the classifier of ``examples/classifier.py`` briefly, then save what rnngrad reads.

The task needs memory: each sequence is ``T`` random tokens and its label is the
first token's class (``token % 4``), so the gradient that teaches it must travel
back over the whole sequence, through the forward direction from ``t = T`` to
``t = 1``, or through the reverse direction, which reads ``t = 1`` last.

    python examples/train_classifier.py --out classifier-run
    rnngrad profile --model examples/classifier.py:Classifier --model-args '{"vocab": 100}' \\
        --state-dict classifier-run/classifier.pt --input classifier-run/tokens.npy \\
        --target classifier-run/labels.npy --loss cross-entropy

Writes ``classifier.pt`` (the state_dict), ``tokens.npy`` (int64 ``(B, T)``),
``labels.npy`` (int64 ``(B,)``) and ``lengths.npy`` (int64 ``(B,)``, for the
packed variant: ``--input tokens.npy --input lengths.npy``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classifier import Classifier

VOCAB, CLASSES = 100, 4


def batch(size: int, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Tokens ``(B, T)``, labels ``(B,)`` (the first token's class) and lengths ``(B,)``."""
    tokens = torch.randint(0, VOCAB, (size, steps), generator=generator)
    labels = tokens[:, 0] % CLASSES
    lengths = torch.randint(steps // 2, steps + 1, (size,), generator=generator)
    return tokens, labels, lengths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("classifier-run"))
    parser.add_argument("--steps", type=int, default=200, help="Adam steps")
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model = Classifier(vocab=VOCAB)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(args.steps):
        tokens, labels, _ = batch(32, args.seq_len, generator)
        loss = nn.functional.cross_entropy(model(tokens), labels)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            print(f"step {step + 1}: cross-entropy {loss.item():.3f} (chance {np.log(4):.3f})")
    args.out.mkdir(parents=True, exist_ok=True)
    tokens, labels, lengths = batch(16, args.seq_len, generator)
    torch.save(model.state_dict(), args.out / "classifier.pt")
    np.save(args.out / "tokens.npy", tokens.numpy())
    np.save(args.out / "labels.npy", labels.numpy())
    np.save(args.out / "lengths.npy", lengths.numpy())
    print(f"wrote {args.out}/classifier.pt, tokens.npy, labels.npy, lengths.npy")


if __name__ == "__main__":
    main()
