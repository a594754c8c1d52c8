"""Nothing lost, nothing half-written, nothing calm about a blow-up: the output folder of
the report, atomic files and locks, unreadable checkpoints, orphaned workers, the step
budget, overflowing initialisations and non-finite profiles."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rnngrad.atomic import (
    DiskFullError,
    FolderLock,
    FolderLockedError,
    atomic_write_bytes,
)
from rnngrad.errors import InvalidInputError
from rnngrad.report.folder import prepare_folder
from tests.cli.test_cli import EXECUTABLE, run, strict_json

TINY_TRAIN = ["--task", "order", "--seq-len", "10", "--cell", "gru", "--hidden", "4",
              "--steps", "20", "--batch", "8"]  # fmt: skip


def run_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXECUTABLE), *args], capture_output=True, text=True, timeout=120, check=False,
        cwd=folder,
    )  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("out", [".", "..", "sub/.."])
def test_report_never_replaces_the_working_directory(tmp_path: Path, out: str) -> None:
    """Regression: `cd DIR; rnngrad report --force --out .` emptied DIR."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "precious.txt").write_text("keep me")
    done = run_in(work, "report", "--quick", "--force", "--out", out)
    one_line(done, "working directory")
    assert (work / "precious.txt").read_text() == "keep me"


def test_report_refuses_a_symlink_and_a_folder_that_is_not_a_report(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(target)
    one_line(run("report", "--quick", "--force", "--out", str(tmp_path / "link")), "symbolic link")
    one_line(run("report", "--quick", "--force", "--out", str(target)), "not an rnngrad report")
    assert (target / "notes.txt").read_text() == "mine"


def test_force_never_deletes_files_rnngrad_did_not_write(tmp_path: Path) -> None:
    """Regression: a folder that merely looked like a report (index.html, results.json)
    was replaced by --force with the user's thesis.tex in it. Only a folder whose every
    file is on a report's manifest is replaced; anything else is refused in one line."""
    from rnngrad.report.page import write_report
    from rnngrad.report.section import Section

    lookalike = tmp_path / "d"
    lookalike.mkdir()
    (lookalike / "index.html").write_text("<html>")
    (lookalike / "results.json").write_text("{}")
    (lookalike / "thesis.tex").write_text("x")
    one_line(run("report", "--quick", "--out", str(lookalike), "--force"), "not an rnngrad report")
    assert (lookalike / "thesis.tex").read_text() == "x"
    sections = [Section("scalar", "1. t", "s", None, [], {"explorer_inputs": [1.0]})]
    report = tmp_path / "report"
    write_report(sections, report, "first")
    prepare_folder(report, force=True)  # wholly a report: may be replaced
    (report / "figures" / "mine.png").write_bytes(b"user's")
    (report / "notes").mkdir()
    with pytest.raises(InvalidInputError, match=r"did not write \(figures/mine.png, notes\)"):
        prepare_folder(report, force=True)
    (report / "notes").rmdir()
    (report / "figures" / "mine.png").unlink()
    write_report(sections, report, "second")
    assert "second" in (report / "index.html").read_text()


def test_stale_staging_folders_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".rnngrad-report-{dead.pid}-abc"
    stale.mkdir()
    (stale / "index.html").write_text("half")
    mine = tmp_path / f".rnngrad-report-{os.getpid()}-def"  # a live owner: left alone
    mine.mkdir()
    prepare_folder(tmp_path / "report", force=False)
    assert not stale.exists() and mine.exists()


def test_a_full_disk_leaves_the_earlier_report_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnngrad.report.page import write_report
    from rnngrad.report.section import Section

    sections = [Section("scalar", "1. t", "s", None, [], {"explorer_inputs": [1.0]})]
    out = tmp_path / "report"
    write_report(sections, out, "first")
    before = (out / "results.json").read_text()

    def full(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DiskFullError, match="no space left"):
        write_report(sections, out, "second")
    monkeypatch.undo()
    assert (out / "results.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rnngrad")]


def test_atomic_writes_from_many_writers_are_always_whole(tmp_path: Path) -> None:
    """Regression: one fixed temporary name let two writers corrupt checkpoints."""
    path = tmp_path / "checkpoint.pt"
    payloads = [bytes([k]) * 200_000 for k in range(4)]
    atomic_write_bytes(path, payloads[0])
    seen: list[bytes] = []
    stop = threading.Event()

    def write(k: int) -> None:
        for _ in range(40):
            atomic_write_bytes(path, payloads[k], durable=False)

    def read() -> None:
        while not stop.is_set():
            seen.append(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert seen and all(value in payloads for value in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"], "no temporary left"


def test_atomic_write_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(b"old")
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle: object) -> None:
            self.handle = handle

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()  # type: ignore[attr-defined]

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(DiskFullError, match=r"results.csv: no space left .*MB needed"):
        atomic_write_bytes(path, b"x" * 2_000_000)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_a_folder_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from rnngrad.atomic import FolderLock\n"
         f"with FolderLock({str(tmp_path)!r}, 'x'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=f"process {holder.pid}"):
            with FolderLock(tmp_path, "the run"):
                pass
        one_line(run("train", *TINY_TRAIN, "--out", str(tmp_path)), f"process {holder.pid}")
    finally:
        holder.kill()  # kill -9: the kernel releases the lock
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    with FolderLock(tmp_path, "the run"):
        pass


def test_two_sweeps_on_one_folder(tmp_path: Path) -> None:
    """Regression: two sweeps on one --out both crashed and left 3 of 8 rows. Now the second
    is refused in one line and the first finishes every cell."""
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\ntask = ["adding"]\nseq_len = [4]\ncell = ["rnn", "gru"]\n'
                    "seed = [0, 1]\n[train]\nhidden = 4\nsteps = 40\nbatch = 8\n"
                    "eval_batch = 16\n")  # fmt: skip
    out = tmp_path / "sweep"
    first = subprocess.Popen(
        [str(EXECUTABLE), "sweep", str(grid), "--out", str(out), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while not (out / ".rnngrad.lock").exists() and time.time() < deadline:
        time.sleep(0.1)
    second = run("sweep", str(grid), "--out", str(out), "--workers", "1")
    _, errors = first.communicate(timeout=300)
    assert first.returncode == 0, errors
    one_line(second, "is in use by process")
    import pyarrow.parquet as pq

    assert pq.read_table(out / "results.parquet").num_rows == 4


def test_workers_die_with_a_killed_sweep(tmp_path: Path) -> None:
    """Regression: after kill -9 of the sweep, its workers trained on for minutes."""
    import psutil

    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\ntask = ["adding"]\nseq_len = [50]\ncell = ["lstm", "gru"]\n'
                    "[train]\nhidden = 32\nsteps = 100000\nbatch = 32\n")  # fmt: skip
    sweep = subprocess.Popen(
        [str(EXECUTABLE), "sweep", str(grid), "--out", str(tmp_path / "s"), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    parent = psutil.Process(sweep.pid)
    deadline = time.time() + 90
    workers: list[psutil.Process] = []
    while time.time() < deadline:
        workers = [p for p in parent.children(recursive=True) if "resource_tracker" not in
                   " ".join(p.cmdline())]  # fmt: skip
        if len(workers) >= 2 and all((tmp_path / "s" / "runs").glob("*/.rnngrad.lock")):
            break
        time.sleep(0.2)
    assert len(workers) >= 2, "the workers never started"
    everyone = parent.children(recursive=True)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    _, alive = psutil.wait_procs(everyone, timeout=10)
    assert not alive, f"still running after the sweep was killed: {alive}"


def test_an_unreadable_checkpoint_is_set_aside_and_the_run_restarts(tmp_path: Path) -> None:
    """Regression: a damaged checkpoint blocked every rerun until deleted by hand. A file
    holding Python objects is set aside too, and nobody is told to drop weights_only."""
    first = run("train", *TINY_TRAIN, "--out", str(tmp_path / "a"), "--json")
    assert first.returncode == 0, first.stderr
    expected = strict_json(first.stdout)
    for name, content in (
        ("damaged", b"PK\x03\x04 cut short"),
        ("pickle", None),
        ("tensor", "tensor"),
        ("keys", "keys"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        if content is None:
            torch.save({"config": threading.Lock}, folder / "checkpoint.pt")  # not weights
        elif content == "tensor":
            torch.save(torch.zeros(3), folder / "checkpoint.pt")  # a foreign file
        elif content == "keys":
            torch.save({"model": {}}, folder / "checkpoint.pt")  # keys missing
        else:
            (folder / "checkpoint.pt").write_bytes(content)
        done = run("train", *TINY_TRAIN, "--out", str(folder), "--json")
        assert done.returncode == 0, done.stderr
        assert "set aside" in done.stderr and "weights_only" not in done.stderr
        summary = strict_json(done.stdout)
        assert summary["checkpoint_set_aside"] is not None
        assert Path(summary["checkpoint_set_aside"]).exists()
        assert summary["final_loss"] == expected["final_loss"], "a fresh run from the same seed"


def test_steps_are_the_steps_taken_and_the_budget_has_its_own_name(tmp_path: Path) -> None:
    """Regression: a run solved at step 160 of 2000 reported steps = 2000."""
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.train import train

    config = TrainConfig(task="adding", seq_len=3, cell="gru", hidden=16, steps=2000, batch=50,
                         lr=1e-2, eval_every=20, eval_batch=200)  # fmt: skip
    summary = train(config, tmp_path).summary()
    assert summary["solved"] and summary["solved_at"] == summary["steps"] < 2000
    assert summary["step_budget"] == 2000
    history = json.loads((tmp_path / "summary.json").read_text())
    assert history["steps"] == summary["steps"]


def test_an_overflowing_initialisation_is_refused_with_stdout_clean(tmp_path: Path) -> None:
    """Regression: --init radius:1e308 printed a LAPACK error on stdout before the JSON."""
    done = run("train", *TINY_TRAIN, "--init", "radius:1e308", "--clip", "none", "--json",
               "--out", str(tmp_path))  # fmt: skip
    one_line(done, "not finite")
    assert done.stdout == ""


def test_non_finite_gradients_are_exploding_not_calm(tmp_path: Path) -> None:
    """Regression: a relu RNN whose gradients overflow at every step was called 'neither'."""
    weights = {
        "weight_ih_l0": torch.ones(8, 3),
        "weight_hh_l0": 1e4 * torch.eye(8),
        "bias_ih_l0": torch.zeros(8),
        "bias_hh_l0": torch.zeros(8),
    }
    torch.save(weights, tmp_path / "W.pt")
    args = ["profile", "--model", "rnn:input=3,hidden=8,nonlinearity=relu", "--state-dict",
            str(tmp_path / "W.pt"), "--random-input", "2,30"]  # fmt: skip
    done = run(*args, "--json")
    assert done.returncode == 0, done.stderr
    layer = strict_json(done.stdout)["layers"][0]
    assert layer["verdict"]["label"] == "exploding"
    assert layer["first_nonfinite_step"] is not None
    text = run(*args)
    assert "No layer" not in text.stdout and "exploding" in text.stdout


def test_a_lock_is_refused_for_an_api_train_in_a_busy_folder(tmp_path: Path) -> None:
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.train import train

    config = TrainConfig(task="order", seq_len=10, cell="rnn", hidden=4, steps=5, batch=4,
                         eval_batch=8)  # fmt: skip
    with FolderLock(tmp_path, "a test"), pytest.raises(FolderLockedError):
        train(config, tmp_path)
    assert isinstance(FolderLockedError("x"), OSError)
    assert not issubclass(FolderLockedError, InvalidInputError)
    np.testing.assert_equal(train(config, tmp_path).steps, 5)
