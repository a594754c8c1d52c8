"""kill -9 at random moments: a rerun of the same command finishes with the tables of an
uninterrupted run, for a training run and for a sweep (its workers die with it).

The moments are drawn as fractions of the uninterrupted run's own working time (from the
moment it holds its folder's lock to its exit), so that they fall inside the work on a
fast machine and a slow one alike."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq

from .test_cli import EXECUTABLE

TRAIN = ["train", "--task", "adding", "--seq-len", "20", "--cell", "rnn", "--hidden", "16",
         "--steps", "2000", "--batch", "16"]  # fmt: skip
GRID = ('[grid]\ntask = ["adding"]\nseq_len = [6]\ncell = ["rnn", "gru", "lstm"]\n'
        "[train]\nhidden = 8\nsteps = 300\nbatch = 8\neval_batch = 32\neval_every = 50\n"
        "checkpoint_every = 50\n")  # fmt: skip
VOLATILE = {"wall_s", "resumed_from"}


def table(path: Path) -> list[dict[str, object]]:
    rows = pq.read_table(path).to_pylist()
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def start(args: list[str], lock: Path) -> tuple[subprocess.Popen[bytes], float]:
    """The command started, once it holds its lock; and the time it did."""
    process = subprocess.Popen([str(EXECUTABLE), *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if lock.exists():
            break
        time.sleep(0.02)
    return process, time.perf_counter()


def working_time(args: list[str], lock: Path) -> float:
    process, began = start(args, lock)
    assert process.wait(timeout=600) == 0
    return time.perf_counter() - began


def run_killed(args: list[str], lock: Path, done: Path, work: float, kills: int, seed: int) -> int:
    """SIGKILL the command at random fractions of ``work``, ``kills`` times, then let it
    finish; return how many kills struck before the work was done."""
    chooser = random.Random(seed)
    struck = 0
    for _ in range(kills):
        process, began = start(args, lock)
        time.sleep(max(0.0, began + chooser.uniform(0.15, 0.6) * work - time.perf_counter()))
        process.kill()
        process.wait()
        if done.exists():
            break
        struck += 1
    finished = subprocess.run([str(EXECUTABLE), *args], capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    return struck


def test_a_killed_training_run_resumes_to_the_same_tables(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    work = working_time([*TRAIN, "--out", str(reference)], reference / ".rnngrad.lock")
    killed = tmp_path / "killed"
    struck = run_killed([*TRAIN, "--out", str(killed)], killed / ".rnngrad.lock",
                        killed / "summary.json", work, kills=3, seed=1)  # fmt: skip
    assert struck >= 1, "no kill struck before the run finished: the test proved nothing"
    for name in ("history", "evaluations", "profiles"):
        assert table(killed / f"{name}.parquet") == table(reference / f"{name}.parquet"), name


def test_a_killed_sweep_resumes_to_the_same_results(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    reference = tmp_path / "reference"
    common = ["sweep", str(grid), "--workers", "2", "--out"]
    work = working_time([*common, str(reference)], reference / ".rnngrad.lock")
    killed = tmp_path / "killed"
    struck = run_killed([*common, str(killed)], killed / ".rnngrad.lock",
                        killed / "results.parquet.done", work, kills=2, seed=2)  # fmt: skip
    assert struck == 2
    assert table(killed / "results.parquet") == table(reference / "results.parquet")
