"""kill -9 at random moments: a rerun of the same command finishes with the tables of an
uninterrupted run, for a training run and for a sweep (its workers die with it)."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq

from .test_cli import EXECUTABLE

TRAIN = ["train", "--task", "order", "--seq-len", "10", "--cell", "gru", "--hidden", "8",
         "--steps", "1500", "--batch", "8"]  # fmt: skip
GRID = ('[grid]\ntask = ["adding"]\nseq_len = [6]\ncell = ["rnn", "gru", "lstm"]\n'
        "[train]\nhidden = 8\nsteps = 300\nbatch = 8\neval_batch = 32\neval_every = 50\n"
        "checkpoint_every = 50\n")  # fmt: skip
VOLATILE = {"wall_s", "resumed_from"}


def table(path: Path) -> list[dict[str, object]]:
    rows = pq.read_table(path).to_pylist()
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def run_killed(args: list[str], done: Path, kills: int, seed: int) -> int:
    """Start the command, SIGKILL it after a random wait, ``kills`` times, then let it finish;
    return how many kills struck before the work was done."""
    chooser = random.Random(seed)
    struck = 0
    for _ in range(kills):
        process = subprocess.Popen([str(EXECUTABLE), *args], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(chooser.uniform(2.0, 5.0))
        process.kill()
        process.wait()
        if done.exists():
            break
        struck += 1
    finished = subprocess.run([str(EXECUTABLE), *args], capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    return struck


def test_a_killed_training_run_resumes_to_the_same_tables(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    plain = subprocess.run([str(EXECUTABLE), *TRAIN, "--out", str(reference)],
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    killed = tmp_path / "killed"
    struck = run_killed([*TRAIN, "--out", str(killed)], killed / "summary.json", kills=3, seed=1)
    assert struck >= 1, "no kill struck before the run finished: the test proved nothing"
    for name in ("history", "evaluations", "profiles"):
        assert table(killed / f"{name}.parquet") == table(reference / f"{name}.parquet"), name


def test_a_killed_sweep_resumes_to_the_same_results(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    reference = tmp_path / "reference"
    plain = subprocess.run(
        [str(EXECUTABLE), "sweep", str(grid), "--out", str(reference), "--workers", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    killed = tmp_path / "killed"
    args = ["sweep", str(grid), "--out", str(killed), "--workers", "2"]
    assert run_killed(args, killed / "never", kills=2, seed=2) == 2
    assert table(killed / "results.parquet") == table(reference / "results.parquet")
