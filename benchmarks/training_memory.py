"""Peak memory of one lab run per cell, against ``rnngrad.lab.config.training_memory``.

Each configuration runs in a fresh process (a few steps with an evaluation of the
held-out set and a gradient profile, so that every part of a run is at its peak
once); the peak resident memory minus the process's resident memory just before
training is what the run needed. Prints it beside the estimate that ``rnngrad
train`` checks against the memory budget, and the measured bytes per activation
number ``batch * T * hidden`` that calibrate that estimate (the estimate must stay
above the measurement).

Run: ``.venv/bin/python benchmarks/training_memory.py [--lengths 1000,2000]``
(1 torch thread; hidden 64, batch 50, 1000 held-out sequences).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

MODELS = {"rnn": {}, "relu": {"init": "identity"}, "lstm": {}, "gru": {}, "indrnn": {},
          "mingru": {}, "minlstm": {}, "lru": {}}  # fmt: skip

_CHILD = r"""
import json, resource, sys, tempfile
import torch
torch.set_num_threads(1)
from rnngrad.lab.config import TrainConfig, eval_chunk, training_memory
from rnngrad.lab.train import train
config = TrainConfig(**json.loads(sys.argv[1]))
config.validate()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with tempfile.TemporaryDirectory() as folder:
    train(config, folder, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
numbers = config.seq_len * config.hidden * (config.batch + eval_chunk(config) / 4)
print(json.dumps({"needed": peak - before, "estimate": training_memory(config, config.seq_len),
                  "per_number": (peak - before) / numbers}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1000,2000")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; 1 torch thread; "
          f"hidden {args.hidden}, batch {args.batch}, 1000 held-out sequences")  # fmt: skip
    print(f"{'cell':8} {'T':>5} {'measured':>10} {'estimate':>10} {'bytes/number':>13}")
    for length in (int(v) for v in args.lengths.split(",")):
        for cell, extra in MODELS.items():
            config = {"task": "adding", "seq_len": length, "cell": cell, "hidden": args.hidden,
                      "batch": args.batch, "steps": 2, "eval_every": 2, "eval_batch": 1000,
                      "profile_every": 1, "checkpoint_every": 2, **extra}  # fmt: skip
            done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(config)],
                                  capture_output=True, text=True, env={**os.environ,
                                  "RNNGRAD_MAX_MEMORY": "1000G"})  # fmt: skip
            if done.returncode != 0:
                print(f"{cell:8} {length:>5} failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            needed, estimate = row["needed"] / 1e9, row["estimate"] / 1e9
            print(f"{cell:8} {length:>5} {needed:>8.2f} GB {estimate:>7.2f} GB "
                  f"{row['per_number']:>13.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
