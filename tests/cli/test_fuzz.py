"""Every command against generated hostile argument lists, in process: exit 0 or 2, at
most one line on stderr after a failure, never a traceback, never an unpickled payload,
within a time bound. Hostile files are made on the fly, pickles among them that would
write a marker file if anything ever unpickled them."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnngrad.cli import main

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"rnngrad-fuzz-marker-{os.getpid()}"


class Payload:
    """Writes the marker when unpickled: proof that something unpickled it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(MARKER), "w"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hostile")
    made: dict[str, Path] = {
        "pickle_pt": folder / "pickle.pt",
        "pickle_npy": folder / "pickle.npy",
        "empty_pt": folder / "empty.pt",
        "text_pt": folder / "text.pt",
        "npz": folder / "npz.npy",
        "folder": folder / "a_folder",
        "missing": folder / "missing.npy",
        "huge_npy": folder / "huge.npy",
        "nan_npy": folder / "nan.npy",
        "good_npy": folder / "good.npy",
        "toml": folder / "grid.toml",
        "bad_toml": folder / "bad.toml",
        "out": folder / "out",
        "fifo": folder / "fifo.npy",
        "float8_pt": folder / "float8.pt",
        "meta_pt": folder / "meta.pt",
        "sparse_pt": folder / "sparse.pt",
        "big_f64_npy": folder / "big_f64.npy",
    }
    with open(made["pickle_pt"], "wb") as handle:
        pickle.dump({"weight_hh_l0": Payload()}, handle)
    np.save(made["pickle_npy"], np.array([Payload()], dtype=object), allow_pickle=True)
    made["empty_pt"].write_bytes(b"")
    made["text_pt"].write_text("not a tensor")
    with open(made["npz"], "wb") as handle:
        np.savez(handle, x=np.ones(2))
    made["folder"].mkdir()
    with open(made["huge_npy"], "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
        )
    np.save(made["nan_npy"], np.full((3, 3), np.nan))
    np.save(made["good_npy"], np.eye(3, dtype=np.float32))
    made["toml"].write_text(
        '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\n'
        "[train]\nsteps = 2\nhidden = 2\nbatch = 2\neval_batch = 2\n"
    )
    made["bad_toml"].write_text("[grid\ntask = ")
    os.mkfifo(made["fifo"])  # a reader that opens it would block: every path refuses it
    torch.save({"weight_hh_l0": torch.eye(3).to(torch.float8_e4m3fn)}, made["float8_pt"])
    torch.save({"weight_hh_l0": torch.empty(3, 3, device="meta")}, made["meta_pt"])
    torch.save({"weight_hh_l0": torch.eye(3).to_sparse()}, made["sparse_pt"])
    np.save(made["big_f64_npy"], np.full((4, 2, 3), 1e300))
    if MARKER.exists():
        MARKER.unlink()
    return {key: str(path) for key, path in made.items()}


NUMBERS = ["-1", "0", "1", "2", "3", str(2**63), str(2**64), "1e3", "abc", "", "nan", "inf",
           "-inf", "1e308", "1e-320", "-0.5", "0.5", "1.5", "10000000000"]  # fmt: skip
FILES = ["pickle_pt", "pickle_npy", "empty_pt", "text_pt", "npz", "folder", "missing",
         "huge_npy", "nan_npy", "good_npy", "fifo", "float8_pt", "meta_pt", "sparse_pt",
         "big_f64_npy"]  # fmt: skip
SPECS = ["gru:input=3,hidden=2", "lstm:input=0,hidden=2", "rnn:input=3",
         "gru:input=3,hidden=-1", "lstm:input=3,hidden=2,hidden=3", "x:input=1,hidden=1", "gru:",
         ":", "gru:input=3,hidden=2,layers=99999", "lstm:input=3,hidden=2,proj_size=5",
         "/no/file.py:Net", "os:system"]  # fmt: skip

OPTIONS: dict[str, dict[str, list[str]]] = {
    "scalar": {"--a": NUMBERS, "--b": NUMBERS, "--d": NUMBERS, "--h0": NUMBERS,
               "--x": ["1,2", ",", "1,,2", "nan,1", "1e400", ""], "--steps": NUMBERS,
               "--input-seed": NUMBERS, "--activation": ["tanh", "relu", "softplus", ""]},
    "spectrum": {"--weights": FILES, "--key": ["weight_hh_l0", "x"], "--hidden": NUMBERS,
                 "--radius": NUMBERS, "--seed": NUMBERS, "--max-steps": NUMBERS,
                 "--example": ["random", "orthogonal", "nonnormal", "other"],
                 "--activation": ["tanh", "x"]},
    "profile": {"--model": SPECS, "--state-dict": FILES, "--input": FILES,
                "--random-input": ["2,3", "0,3", "2,0", "-1,2", "a,b", "2", "99999999,99999"],
                "--lengths": FILES, "--loss": ["last", "sum", "mean", "mse"],
                "--seed": NUMBERS, "--dtype": ["float32", "float16"],
                "--model-args": ["{", "[]", "[" * 5000 + "]" * 5000, '{"n": 1' + "0" * 5000 + "}"]},
    "lyapunov": {"--model": SPECS, "--random": NUMBERS, "--gain": NUMBERS,
                 "--steps": NUMBERS, "--warmup": NUMBERS, "--k": NUMBERS, "--batch": NUMBERS,
                 "--reorth": NUMBERS, "--layer": NUMBERS, "--direction": NUMBERS,
                 "--input": ["zeros", "random", *FILES], "--seed": NUMBERS},
    "train": {"--task": ["adding", "copy", "order", "x"], "--seq-len": NUMBERS,
              "--cell": ["rnn", "gru", "x"], "--hidden": NUMBERS, "--steps": NUMBERS,
              "--batch": NUMBERS, "--lr": NUMBERS, "--seed": NUMBERS,
              "--init": ["default", "radius:nan", "radius:1e308", "radius:-1", "x"],
              "--clip": ["none", "norm:-1", "value:nan", "norm:x", "x"],
              "--forget-bias": NUMBERS, "--out": ["out", "folder", "missing"]},
    "sweep": {"--out": ["out", "folder", ""], "--workers": NUMBERS,
              "--threads-per-worker": NUMBERS, "--summary": FILES},
    "report": {"--model": SPECS, "--state-dict": FILES, "--input": FILES, "--seed": NUMBERS,
               "--out": ["folder", "out", "pickle_pt"], "--dtype": ["float32", "x"]},
}  # fmt: skip
# Options whose valid values would start long work: a fuzz run must stay short, so these
# commands always carry one option that makes them fail fast as well.
FAIL_FAST = {
    "train": ["--out", "pickle_pt"],  # a file: refused after every other check
    "report": ["--lab", "missing"],
    "lyapunov": ["--steps", "0"],
    "sweep": ["bad_toml"],
}


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    table = OPTIONS[command]
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=0, max_size=4, unique=True))
    arguments = [command]
    if command == "train":  # the required options, drawn too, so that later checks run
        for required in ("--task", "--seq-len", "--cell"):
            arguments += [required, draw(st.sampled_from(table[required]))]
        names = [n for n in names if n not in ("--task", "--seq-len", "--cell", "--out")]
    for name in names:
        arguments += [name, draw(st.sampled_from(table[name]))]
    if command in FAIL_FAST:
        arguments += FAIL_FAST[command]
    if draw(st.booleans()):
        arguments.insert(0, "--max-memory")
        arguments.insert(1, draw(st.sampled_from(["200M", "1k", "x", "0", "1" + "0" * 400 + "T"])))
    if draw(st.booleans()):  # (a valid limit would take over the test's own alarm)
        arguments[:0] = ["--time-limit", draw(st.sampled_from(["x", "0", "-1", "nan", "inf"]))]
    return arguments


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _with_files(arguments: list[str], made: dict[str, str]) -> Iterator[str]:
    for argument in arguments:
        yield made.get(argument, argument)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arguments=argument_lists())
def test_hostile_argument_lists(
    arguments: list[str], hostile: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = list(_with_files(arguments, hostile))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        with pytest.raises(SystemExit) as exited:
            main(argv)
    except _Timeout:
        pytest.fail(f"rnngrad {' '.join(argv)} ran for more than 60 s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        torch.set_num_threads(max(1, torch.get_num_threads()))
        from rnngrad.limits import set_memory_budget

        set_memory_budget(None)
    captured = capsys.readouterr()
    code = exited.value.code
    assert code in (0, 2), (argv, code, captured.err[-2000:])
    assert "Traceback" not in captured.err, (argv, captured.err[-2000:])
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnngrad: error: "), (argv, captured.err)
    assert not MARKER.exists(), f"rnngrad {' '.join(argv)} unpickled a payload"
