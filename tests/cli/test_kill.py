"""kill -9 at random moments: a rerun of the same command finishes with the tables of an
uninterrupted run, for a training run and for a sweep (its workers die with it).

Each kill strikes a random moment shortly after the run has written something new (a
checkpoint, a row of results), so that it always falls inside the work, on a fast machine
and a loaded one alike."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq

from tests.cli.test_cli import EXECUTABLE

# 2000 steps, a checkpoint every 500 (the default): each kill lands after a new checkpoint
# with at least 500 steps still to go.
TRAIN = ["train", "--task", "adding", "--seq-len", "20", "--cell", "rnn", "--hidden", "16",
         "--steps", "2000", "--batch", "16"]  # fmt: skip
GRID = ('[grid]\ntask = ["adding"]\nseq_len = [6]\ncell = ["rnn", "gru", "lstm", "relu"]\n'
        "[train]\nhidden = 8\nsteps = 400\nbatch = 8\neval_batch = 32\neval_every = 50\n"
        "checkpoint_every = 50\n")  # fmt: skip
VOLATILE = {"wall_s", "resumed_from"}


def table(path: Path) -> list[dict[str, object]]:
    rows = pq.read_table(path).to_pylist()
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1.0


def run_killed(args: list[str], watched: Path, done: Path, kills: int, seed: int) -> int:
    """Start the command; each time ``watched`` changes, SIGKILL it after a random moment
    (0 to 0.2 s), ``kills`` times; then let it finish. Return the kills that struck before
    the work was done."""
    chooser = random.Random(seed)
    struck = 0
    for _ in range(kills):
        before = stamp(watched)
        process = subprocess.Popen([str(EXECUTABLE), *args], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + 300
        while stamp(watched) == before and process.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(chooser.uniform(0.0, 0.2))
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
    plain = subprocess.run([str(EXECUTABLE), *TRAIN, "--out", str(reference)],
                           capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    killed = tmp_path / "killed"
    struck = run_killed([*TRAIN, "--out", str(killed)], killed / "checkpoint.pt",
                        killed / "summary.json", kills=3, seed=1)  # fmt: skip
    assert struck >= 1, "no kill struck before the run finished: the test proved nothing"
    for name in ("history", "evaluations", "profiles"):
        assert table(killed / f"{name}.parquet") == table(reference / f"{name}.parquet"), name


def test_a_killed_sweep_resumes_to_the_same_results(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    reference = tmp_path / "reference"
    common = ["sweep", str(grid), "--workers", "2", "--out"]
    plain = subprocess.run([str(EXECUTABLE), *common, str(reference)], capture_output=True,
                           text=True, timeout=600, check=False)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    killed = tmp_path / "killed"
    struck = run_killed([*common, str(killed)], killed / "results.parquet",
                        killed / "never", kills=2, seed=2)  # fmt: skip
    assert struck == 2
    assert pq.read_table(killed / "results.parquet").num_rows == 4
    assert table(killed / "results.parquet") == table(reference / "results.parquet")


def test_ctrl_c_of_a_local_dask_sweep_says_one_line(tmp_path: Path) -> None:
    """Regression: SIGINT of `sweep --workers 2` (a Dask LocalCluster) printed its line
    and then ~48 more (cancelled tasks, closed sockets, nanny tracebacks). Now: the
    interrupt's line only, exit 130, and the cluster's workers gone with it."""
    import signal

    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\ntask = ["adding"]\nseq_len = [300, 400]\ncell = ["rnn"]\n'
                    "[train]\nhidden = 32\nsteps = 200000\nbatch = 8\neval_every = 1000\n"
                    "eval_batch = 16\n")  # fmt: skip
    out = tmp_path / "out"
    process = subprocess.Popen(
        [str(EXECUTABLE), "sweep", str(grid), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not list(out.glob("runs/*/.rnngrad.lock")) and time.time() < deadline:
        time.sleep(0.1)  # the workers have started a run
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip() and "\r" not in line]
    assert process.returncode == 130, stderr
    assert lines == ["rnngrad: interrupted; finished work is kept and a rerun resumes"], stderr
