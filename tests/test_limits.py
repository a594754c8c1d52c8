"""Hostile input gets one line and exit status 2 (the API: a typed RnngradError), before any
large allocation or endless search: seeds, sizes, values, files, services, the error line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rnngrad.errors import InvalidInputError, RnngradError
from rnngrad.limits import ResourceError, check_seed, parse_size
from tests.cli.test_cli import EXECUTABLE, run, strict_json

GRU = "gru:input=3,hidden=4"
TRAIN = ["train", "--task", "order", "--seq-len", "10", "--cell", "gru", "--hidden", "4",
         "--steps", "5", "--batch", "4"]  # fmt: skip


def files(tmp_path: Path) -> dict[str, str]:
    """Hostile files made on the fly."""
    made: dict[str, Path] = {}
    made["big_endian"] = tmp_path / "big_endian.npy"
    np.save(made["big_endian"], np.ones((5, 2, 3), dtype=">f8"))
    made["structured"] = tmp_path / "structured.npy"
    np.save(made["structured"], np.zeros(4, dtype=[("a", "f4"), ("b", "i4")]))
    made["strings"] = tmp_path / "strings.npy"
    np.save(made["strings"], np.array(["a", "b"]))
    made["dates"] = tmp_path / "dates.npy"
    np.save(made["dates"], np.array(["2020-01-01"], dtype="datetime64[D]"))
    made["npz"] = tmp_path / "archive.npy"
    with open(made["npz"], "wb") as handle:
        np.savez(handle, x=np.ones(3))
    made["huge"] = tmp_path / "huge.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**10,)}
    with open(made["huge"], "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 64)
    made["batch0"] = tmp_path / "batch0.npy"
    np.save(made["batch0"], np.zeros((5, 0, 3), dtype=np.float32))
    made["latin1"] = tmp_path / "latin1.toml"
    made["latin1"].write_bytes('[grid]\ntask = ["addi\xe9"]\n'.encode("latin-1"))
    made["huge_grid"] = tmp_path / "huge_grid.toml"
    made["huge_grid"].write_text(
        "[grid]\n" + "".join(f"k{i} = [{', '.join(map(str, range(40)))}]\n" for i in range(0))
        + 'task = ["adding"]\ncell = ["rnn"]\n'
        + f"seq_len = [{', '.join(str(n) for n in range(10, 2010))}]\n"
        + f"seed = [{', '.join(str(n) for n in range(2000))}]\n"
    )  # fmt: skip
    made["nan_bias"] = tmp_path / "nan_bias.toml"
    made["nan_bias"].write_text(
        '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["lstm"]\n[train]\nforget_bias = nan\n'
    )
    made["rnn_bias"] = tmp_path / "rnn_bias.toml"
    made["rnn_bias"].write_text(
        '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\n[train]\nforget_bias = 1.0\n'
    )
    made["big_seed"] = tmp_path / "big_seed.toml"
    made["big_seed"].write_text(
        f'[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\nseed = [{2**64}]\n'
    )
    made["foreign"] = tmp_path / "foreign"
    made["foreign"].mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1]}), made["foreign"] / "results.parquet")
    made["damaged"] = tmp_path / "damaged"
    made["damaged"].mkdir()
    (made["damaged"] / "results.parquet").write_bytes(b"not parquet at all")
    made["out"] = tmp_path / "out"
    made["fifo"] = tmp_path / "grid_fifo.toml"
    os.mkfifo(made["fifo"])
    made["lock_dir"] = tmp_path / "locked_out"
    (made["lock_dir"] / ".rnngrad.lock").mkdir(parents=True)
    made["model"] = tmp_path / "model.py"
    made["model"].write_text(
        "from torch import nn\n\ndef build(**kwargs):\n    return nn.GRU(3, 4)\n"
    )
    return {key: str(path) for key, path in made.items()}


BIG = str(2**64)
CASES = [
    # seeds
    (["scalar", "--steps", "5", "--input-seed", "-1"], "0..2**63-1"),
    (["spectrum", "--example", "random", "--seed", "-1"], "0..2**63-1"),
    (["report", "--quick", "--seed", "-1", "--out", "{out}"], "0..2**63-1"),
    (["report", "--quick", "--seed", BIG, "--out", "{out}"], "0..2**63-1"),
    (["profile", "--model", GRU, "--random-input", "2,5", "--seed", BIG], "0..2**63-1"),
    (["lyapunov", "--model", GRU, "--steps", "20", "--warmup", "2", "--seed", BIG], "0..2**63-1"),
    ([*TRAIN, "--seed", BIG, "--out", "{out}"], "0..2**63-1"),
    (["sweep", "{big_seed}", "--out", "{out}"], "0..2**63-1"),
    (["lyapunov", "--random", "8", "--gain", "3", "--seed", BIG, "--steps", "200", "--warmup",
      "10", "--json"], "0..2**63-1"),
    # the user's arguments and odd values
    (["profile", "--model", "{model}:build", "--model-args", "[" * 30000 + "]" * 30000,
      "--random-input", "2,5"], "nested too deeply"),
    (["profile", "--model", "{model}:build", "--model-args", '{"n": 1' + "0" * 5000 + "}",
      "--random-input", "2,5"], "cannot be read"),
    (["profile", "--model", "{model}:build", "--model-args", '{"n": "' + "x" * 100000 + '"',
      "--random-input", "2,5"], "not valid JSON"),
    (["--max-memory", "1" + "0" * 400 + "T", "scalar"], "at most 2**63 bytes"),
    # files that are not regular files, and lock files that are not files
    (["sweep", "{fifo}", "--out", "{out}"], "not a regular file"),
    ([*TRAIN, "--out", "{lock_dir}"], "should be rnngrad's lock file"),
    # sizes
    (["scalar", "--steps", "10000000000"], "memory"),
    (["scalar", "--steps", str(2**70)], "memory"),
    (["--max-memory", "100M", "scalar", "--steps", "10000000", "--json"], "memory"),
    (["profile", "--model", "lstm:input=3,hidden=100000", "--random-input", "1,2"], "memory"),
    (["profile", "--model", GRU, "--random-input", "100000,1000000"], "memory"),
    (["--max-memory", "1G", "profile", "--model", GRU, "--random-input", "100000,1000"],
     "memory"),
    ([*TRAIN[:3], "--seq-len", "100000000", *TRAIN[5:], "--out", "{out}"], "memory"),
    ([*TRAIN, "--hidden", "1000000", "--out", "{out}"], "memory"),
    (["lyapunov", "--model", GRU, "--batch", "10000000000", "--steps", "20", "--warmup", "2"],
     "memory"),
    (["--max-memory", "1G", "lyapunov", "--model", GRU, "--batch", "10000000", "--steps", "20",
      "--warmup", "2"], "memory"),
    (["profile", "--model", "gru:input=3,hidden=2,hidden=3", "--random-input", "2,3"],
     "given twice"),
    (["lyapunov", "--model", GRU, "--steps", "1000000000"], "10_000_000"),
    (["profile", "--model", GRU, "--input", "{huge}"], "cut short"),
    (["sweep", "{huge_grid}", "--out", "{out}"], "4,000,000 cells"),
    # endless work
    (["spectrum", "--example", "orthogonal", "--radius", "1", "--max-steps", "1000000000"],
     "max_steps"),
    # values
    ([*TRAIN, "--lr", "1e39", "--out", "{out}"], "float32"),
    ([*TRAIN, "--lr", "1e300", "--out", "{out}"], "float32"),
    (["sweep", "{nan_bias}", "--out", "{out}"], "line 6"),
    (["sweep", "{rnn_bias}", "--out", "{out}"], "line 6"),
    # files
    (["profile", "--model", GRU, "--input", "{structured}"], "real numbers"),
    (["profile", "--model", GRU, "--input", "{strings}"], "real numbers"),
    (["profile", "--model", GRU, "--input", "{dates}"], "real numbers"),
    (["profile", "--model", GRU, "--input", "{npz}"], ".npz archive"),
    (["profile", "--model", GRU, "--input", "{batch0}"], "B = 0"),
    (["sweep", "{latin1}", "--out", "{out}"], "not UTF-8"),
    ([*TRAIN, "--out", ""], "--out is empty"),
    (["sweep", "{rnn_bias}", "--out", " "], "--out is empty"),
    (["sweep", "--summary", "{foreign}"], "not a table of rnngrad runs"),
    (["report", "--quick", "--lab", "{damaged}", "--out", "{out}"], "not a readable Parquet"),
    # services
    (["sweep", "{rnn_bias}", "--out", "{out}", "--scheduler", "tcp://127.0.0.1:1",
      "--connect-timeout", "1"], "line 6"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fragment"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)]
)
def test_hostile_input_gets_one_line_and_exit_2(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    made = files(tmp_path)
    resolved = []
    for argument in args:
        for key, value in made.items():
            argument = argument.replace("{" + key + "}", value)
        resolved.append(argument)
    started = time.perf_counter()
    done = run(*resolved)
    assert time.perf_counter() - started < 60
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rnngrad: error: ") and fragment in lines[0], lines[0]
    assert len(lines[0]) < 1200, "a long argument is quoted, not echoed whole"
    assert done.stdout == ""


def test_a_big_endian_input_is_read_in_native_order(tmp_path: Path) -> None:
    made = files(tmp_path)
    done = run("profile", "--model", GRU, "--input", made["big_endian"], "--json")
    assert done.returncode == 0, done.stderr
    assert strict_json(done.stdout)["steps"] == 5


def test_an_unreachable_scheduler_is_named_in_one_line(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\n'
                    "[train]\nhidden = 4\nsteps = 5\nbatch = 4\neval_batch = 8\n")  # fmt: skip
    done = run("sweep", str(grid), "--out", str(tmp_path / "s"), "--scheduler",
               "tcp://127.0.0.1:1", "--connect-timeout", "1")  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "tcp://127.0.0.1:1 did not answer within 1 s" in lines[0]


def test_huge_values_never_reach_json_as_non_numbers() -> None:
    done = run("spectrum", "--example", "random", "--radius", "1e308", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["spectral_radius"] is None or payload["spectral_radius"] > 1e307


def _interruptible() -> None:
    """Ctrl-C as a terminal delivers it: a shell starts a background job (a test suite
    run with ``&``) with SIGINT ignored, and its children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_that_finished_work_is_kept(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(EXECUTABLE), "train", "--task", "adding", "--seq-len", "50", "--cell", "lstm",
         "--steps", "100000", "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible,
    )  # fmt: skip
    deadline = time.time() + 60
    while not (tmp_path / "run" / ".rnngrad.lock").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    assert "interrupted; finished work is kept" in errors
    assert "Traceback" not in errors


def test_warnings_of_a_failed_command_are_held_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: RuntimeWarning lines came before the error line."""
    import warnings

    import rnngrad.theory.scalar
    from rnngrad.cli import main

    def noisy(*args: object, **kwargs: object) -> None:
        warnings.warn("overflow encountered in exp", RuntimeWarning, stacklevel=1)
        raise InvalidInputError("the real problem")

    monkeypatch.setattr(rnngrad.theory.scalar, "scalar_chain_rule", noisy)
    with pytest.raises(SystemExit) as exited:
        main(["scalar"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == "rnngrad: error: the real problem\n"


def test_long_messages_stay_on_one_line() -> None:
    spec = "gru:input=3,hidden=4," + ",".join(f"k{i}=1" for i in range(60))
    done = run("profile", "--model", spec, "--random-input", "2,5")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_the_api_raises_typed_errors() -> None:
    from rnngrad import GradientMonitor, lyapunov_spectrum
    from rnngrad.lab.config import TrainConfig
    from rnngrad.theory.scalar import scalar_inputs
    from rnngrad.theory.spectrum import default_transient_steps, example_matrix, transient_growth

    with pytest.raises(ResourceError):
        scalar_inputs(10**10)
    with pytest.raises(InvalidInputError, match=r"0\.\.2"):
        example_matrix("random", seed=-1)
    with pytest.raises(InvalidInputError, match=r"0\.\.2"):
        lyapunov_spectrum(torch.nn.GRU(2, 3).double(), seed=2**64, steps=20, warmup=2)
    with pytest.raises(InvalidInputError, match="float32"):
        TrainConfig(task="adding", seq_len=5, cell="rnn", lr=1e39).validate()
    with pytest.raises(InvalidInputError, match=r"nn\.Module"):
        GradientMonitor(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="max_steps"):
        transient_growth(np.eye(3), max_steps=10**9)
    assert default_transient_steps(64) == 2000 and default_transient_steps(4096) == 10
    with pytest.raises(RnngradError):
        check_seed(True)
    assert parse_size("8G") == 8 * 2**30 and parse_size("500M") == 500 * 2**20
    with pytest.raises(InvalidInputError):
        parse_size("lots")
    assert json.dumps(None) == "null"


def test_devices_resolve_or_are_refused_in_one_line(tmp_path: Path) -> None:
    """--device cpu|auto work everywhere; an absent CUDA device is one line, exit 2; the
    training summary records the device."""
    from rnngrad.devices import resolve_device

    assert resolve_device("cpu").type == "cpu" and resolve_device(None).type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InvalidInputError, match="unknown device"):
        resolve_device("tpu:x")
    done = run(*TRAIN, "--device", "auto", "--json", "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    assert strict_json(done.stdout)["device"] in ("cpu", "cuda")
    if not torch.cuda.is_available():
        for command in (
            [*TRAIN, "--device", "cuda", "--out", str(tmp_path / "b")],
            ["profile", "--model", GRU, "--random-input", "2,3", "--device", "cuda"],
            ["lyapunov", "--model", GRU, "--steps", "20", "--warmup", "2", "--device", "cuda:1"],
            ["report", "--quick", "--device", "cuda", "--out", str(tmp_path / "page")],
        ):
            done = run(*command)
            assert done.returncode == 2
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "no CUDA device" in lines[0], done.stderr
        assert not (tmp_path / "page").exists(), "refused before any work"


def test_the_array_producing_functions_check_the_budget_first() -> None:
    """The scalar chain rule of a given x, an Elman trajectory and its Jacobian products,
    and the phase diagram are refused against the memory budget before they allocate."""
    import rnngrad
    from rnngrad.limits import ResourceError, set_memory_budget

    set_memory_budget(1_000_000)
    try:
        with pytest.raises(ResourceError, match="scalar chain rule over T = 10000"):
            rnngrad.scalar_chain_rule(np.zeros(10_000))
        for function in (rnngrad.elman_forward, rnngrad.elman_jacobian_products):
            with pytest.raises(ResourceError, match="Elman trajectory of T = 1000 steps"):
                function(np.eye(300) * 0.5, np.ones((1000, 300)))
        with pytest.raises(ResourceError, match="phase diagram of 1000 x 1000"):
            rnngrad.scalar_phase_diagram(np.linspace(-2, 2, 1000), np.arange(1, 1001))
    finally:
        set_memory_budget(None)
