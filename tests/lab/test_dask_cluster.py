"""A sweep against a real Dask scheduler whose workers run elsewhere: the output folder
they write into, workers that cannot see it, and a scheduler that dies mid-sweep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnngrad.errors import InvalidInputError
from tests.cli.test_cli import EXECUTABLE

pytest.importorskip("dask.distributed")

DASK = Path(sys.executable).parent / "dask"
GRID = """
[grid]
task = ["adding"]
seq_len = [6, 8, 10]
cell = ["rnn", "gru"]
[train]
hidden = 4
steps = {steps}
batch = 8
eval_every = 10
eval_batch = 16
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A scheduler and one worker, each a process of its own started in ``home``."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        quiet = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "error"}
        self.scheduler = subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"],
            cwd=home, env=quiet, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.worker = subprocess.Popen(
            [str(DASK), "worker", self.address, "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard"],
            cwd=home, env=quiet, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_for_the_worker()

    def _wait_for_the_worker(self) -> None:
        from dask.distributed import Client

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with Client(self.address, timeout=5) as client:
                    if client.scheduler_info()["workers"]:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the test's Dask worker did not start")

    def close(self) -> None:
        for process in (self.worker, self.scheduler):
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    home = tmp_path / "workers_home"
    home.mkdir()
    started = Cluster(home)
    try:
        yield started
    finally:
        started.close()


def _sweep(cwd: Path, grid: Path, out: str, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(EXECUTABLE), "sweep", str(grid), "--out", out, "--scheduler", address],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_relative_out_lands_in_the_clients_folder(tmp_path: Path, cluster: Cluster) -> None:
    """Regression: with a relative --out, the runs landed in each worker's own working
    directory and the client's folder had none of the summaries. Now --out is made
    absolute before dispatch: every summary is in the client's folder, none elsewhere."""
    client_home = tmp_path / "client_home"
    client_home.mkdir()
    grid = client_home / "grid.toml"
    grid.write_text(GRID.format(steps=20))
    done = _sweep(client_home, grid, "swrel", cluster.address)
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    assert len(list((client_home / "swrel" / "runs").glob("*/summary.json"))) == 6
    assert not (tmp_path / "workers_home" / "swrel").exists()


def test_workers_that_do_not_see_the_folder_are_named(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that cannot read the client's probe file in the output folder (a folder
    not shared with it) is named in one line before any run starts."""
    from dask.distributed import Client

    from rnngrad.lab import cluster as sweep_module

    with Client(cluster.address) as client:
        sweep_module._check_workers_share(client, tmp_path)  # the same machine: seen
        monkeypatch.setattr(sweep_module, "_sees_probe", lambda path, token: False)
        with pytest.raises(InvalidInputError, match=r"worker\(s\) tcp://.* do not see"):
            sweep_module._check_workers_share(client, tmp_path)
    assert not list(tmp_path.glob(".rnngrad-probe-*"))  # the probe is removed


def test_a_lost_scheduler_is_one_line_and_the_same_command_resumes(
    tmp_path: Path, cluster: Cluster
) -> None:
    """Regression: kill -9 of the scheduler mid-sweep ended in FutureCancelledError. Now
    one line says the scheduler was lost and that the same command resumes; against a
    new scheduler it does, and the results equal a serial run's."""
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.format(steps=400))
    out = tmp_path / "out"
    running = _sweep(tmp_path, grid, str(out), cluster.address)
    deadline = time.monotonic() + 240
    while not list(out.glob("runs/*/summary.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    cluster.scheduler.send_signal(signal.SIGKILL)
    _, stderr = running.communicate(timeout=120)
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert running.returncode == 2, stderr
    assert len(lines) == 1 and "scheduler was lost" in lines[0], stderr
    assert "Traceback" not in stderr
    cluster.close()
    again = Cluster(tmp_path / "workers_home")
    try:
        resumed = _sweep(tmp_path, grid, str(out), again.address)
        _, stderr = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, stderr
    finally:
        again.close()
    serial = subprocess.run(
        [str(EXECUTABLE), "sweep", str(grid), "--out", str(tmp_path / "serial"), "--workers", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert serial.returncode == 0, serial.stderr
    for summary in (tmp_path / "serial" / "runs").glob("*/summary.json"):
        mine = json.loads(summary.read_text())
        theirs = json.loads((out / "runs" / summary.parent.name / "summary.json").read_text())
        assert theirs["final_loss"] == mine["final_loss"], summary.parent.name
