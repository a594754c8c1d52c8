"""The user's code run by the command line (a model file, its factory, its forward): an
exit or any exception is one typed line and exit 2, prints never reach the JSON, a thread
left behind does not keep the process alive, an endless forward has --time-limit; and a
standard output that fails or is closed is one line too."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_cli import EXECUTABLE, run, strict_json

MODELS = """
import os, sys, threading, time
import torch
from torch import nn

if os.environ.get("EXIT_AT_IMPORT"):
    sys.exit(0)
print("import-time print")
os.write(1, b"raw write at import\\n")


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1])


class Noisy(Base):
    def __init__(self):
        super().__init__()
        print("init print")
        threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon

    def forward(self, x):
        print("forward print")
        os.write(1, b"raw write in forward\\n")
        thread = threading.Thread(target=lambda: print("thread print"))
        thread.start()
        thread.join()
        return super().forward(x)


class ExitsZero(Base):
    def forward(self, x):
        sys.exit(0)


class ExitsThree(Base):
    def forward(self, x):
        sys.exit(3)


class Odd(BaseException):
    pass


class RaisesBase(Base):
    def forward(self, x):
        raise Odd("not an Exception")


class RaisesGeneratorExit(Base):
    def forward(self, x):
        raise GeneratorExit()


def exiting_factory():
    sys.exit(0)


class NoGrad(Base):
    def forward(self, x):
        with torch.no_grad():
            return super().forward(x)


class ClosesStdout(Base):
    def forward(self, x):
        sys.stdout.close()
        return super().forward(x)


class Endless(Base):
    def forward(self, x):
        while True:
            pass
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "models.py").write_text(MODELS)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((5, 2, 3)))
    np.save(tmp_path / "labels.npy", np.array([0, 1]))
    return {
        "model": str(tmp_path / "models.py"),
        "x": str(tmp_path / "x.npy"),
        "labels": str(tmp_path / "labels.npy"),
    }


def one_line(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("rnngrad:")]
    assert len(lines) == 1 and fragment in lines[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("ExitsZero", "raised SystemExit (sys.exit(0))"),
        ("ExitsThree", "raised SystemExit (sys.exit(3))"),
        ("RaisesBase", "raised Odd: not an Exception"),
        ("RaisesGeneratorExit", "raised GeneratorExit"),
        ("exiting_factory", "failed: SystemExit (sys.exit(0))"),
    ],
)
def test_whatever_the_users_code_raises_is_one_line_and_exit_2(
    files: dict[str, str], name: str, fragment: str
) -> None:
    """Regression: sys.exit(0) in forward or a factory exited 0 with nothing on stdout (a
    failed analysis that looked like success), sys.exit(3) passed its code through, and a
    BaseException subclass or GeneratorExit ended in a traceback."""
    one_line(run("profile", "--model", f"{files['model']}:{name}", "--input", files["x"],
                 "--json"), fragment)  # fmt: skip


def test_an_exit_at_import_is_one_line(files: dict[str, str]) -> None:
    done = subprocess.run(
        [str(EXECUTABLE), "profile", "--model", f"{files['model']}:Base", "--input", files["x"]],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "EXIT_AT_IMPORT": "1"},
    )  # fmt: skip
    one_line(done, "importing it failed: SystemExit (sys.exit(0))")


def test_json_is_one_object_whatever_the_model_prints(files: dict[str, str]) -> None:
    """Regression: print in forward, in __init__, at import, from a thread, and
    os.write(1, ...) landed on stdout before the JSON. Now they go to stderr, and stdout
    is exactly one JSON object; a non-daemon thread the model left behind does not keep
    the process alive once the work is done."""
    started = time.monotonic()
    done = run("profile", "--model", f"{files['model']}:Noisy", "--input", files["x"], "--json")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 100  # the thread sleeps 600 s
    payload = strict_json(done.stdout)  # the whole of stdout, one object
    assert payload["module_name"] == "rnn"
    for printed in ("import-time print", "raw write at import", "init print",
                    "forward print", "raw write in forward", "thread print"):  # fmt: skip
        assert printed in done.stderr, printed


def test_a_forward_without_gradients_is_named(files: dict[str, str]) -> None:
    """Regression: a forward under torch.no_grad() with a cross-entropy target ended in
    'RuntimeError: element 0 of tensors does not require grad'."""
    done = run("profile", "--model", f"{files['model']}:NoGrad", "--input", files["x"],
               "--loss", "cross-entropy", "--target", files["labels"])  # fmt: skip
    one_line(done, "ran without gradients (torch.no_grad()")


def test_an_endless_forward_stops_at_the_time_limit(files: dict[str, str]) -> None:
    started = time.monotonic()
    done = run("--time-limit", "2", "profile", "--model", f"{files['model']}:Endless",
               "--input", files["x"])  # fmt: skip
    one_line(done, "time limit of 2 s")
    assert time.monotonic() - started < 60
    one_line(run("--time-limit", "0", "scalar"), "--time-limit must be a positive number")


def test_a_stdout_that_fails_or_is_closed_is_one_line(files: dict[str, str]) -> None:
    """Regression: `> /dev/full` ended in OSError [Errno 28] with exit 1; a closed stdout
    (`>&-`) in AttributeError; the same when the model closed sys.stdout."""
    for args in (["scalar", "--json"], ["spectrum", "--example", "random"]):
        with open(os.devnull if not Path("/dev/full").exists() else "/dev/full", "w") as full:
            done = subprocess.run([str(EXECUTABLE), *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=120, check=False)  # fmt: skip
        one_line(done, "cannot write to standard output: No space left on device")
    closed = subprocess.run(
        f"'{EXECUTABLE}' scalar --json >&-", shell=True, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    one_line(closed, "standard output is closed")
    done = run("profile", "--model", f"{files['model']}:ClosesStdout", "--input", files["x"])
    one_line(done, "standard output was closed")
