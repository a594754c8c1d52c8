"""The installed ``rnngrad`` command: output, the JSON contract, and every bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from rnngrad import example_matrix, recurrent_spectrum, scalar_chain_rule, scalar_inputs

EXECUTABLE = Path(sys.executable).with_name("rnngrad")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert EXECUTABLE.exists(), "the rnngrad entry point is not installed"
    return subprocess.run(
        [str(EXECUTABLE), *args], capture_output=True, text=True, timeout=120, check=False
    )


def strict_json(text: str) -> Any:
    """Parse JSON, failing on NaN and Infinity (which json.loads accepts by default)."""

    def reject(constant: str) -> None:
        raise AssertionError(f"non-number {constant} in JSON output")

    return json.loads(text, parse_constant=reject)


def test_default_scalar_runs_the_textbook_example() -> None:
    done = run("scalar")
    assert done.returncode == 0, done.stderr
    assert "VANISHING" in done.stdout
    expected = scalar_chain_rule()
    assert f"{expected.dy_dh[0]:.3e}" in done.stdout
    assert "dy/dh(k)" in done.stdout


def test_scalar_json_contract() -> None:
    done = run("scalar", "--a", "0.9", "--x", "1,0.5,-0.3", "--d", "2", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    for key in ("h", "y", "factors", "dy_dh", "log10_abs_dy_dh", "bound", "log10_bound", "verdict"):
        assert key in payload
    expected = scalar_chain_rule([1.0, 0.5, -0.3], a=0.9, d=2.0)
    np.testing.assert_allclose(payload["h"], expected.h, rtol=1e-15)
    np.testing.assert_allclose(payload["dy_dh"], expected.dy_dh, rtol=1e-15)
    np.testing.assert_allclose(payload["factors"], expected.factors, rtol=1e-15)
    np.testing.assert_allclose(payload["bound"], [2 * 0.81, 2 * 0.9, 2.0], rtol=1e-15)
    assert payload["verdict"]["label"] == expected.verdict.label
    assert "1.01" in payload["verdict"]["rule"]
    assert len(payload["factors"]) == 2  # entry k-1 is dh_{k+1}/dh_k


def test_scalar_json_long_sequence_uses_log_fields() -> None:
    done = run("scalar", "--steps", "100000", "--input-seed", "0", "--a", "1.5", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    logs = payload["log10_abs_dy_dh"]
    assert len(logs) == 100_000
    assert all(isinstance(v, float) and math.isfinite(v) for v in logs)
    assert payload["dy_dh"][0] is None  # 10^-46536 is no float64: given by its log field
    expected = scalar_chain_rule(scalar_inputs(100_000, 0), a=1.5)
    assert logs[0] == pytest.approx(expected.log10_abs_dy_dh[0], rel=1e-14)


def test_scalar_zero_inputs_with_steps() -> None:
    payload = strict_json(run("scalar", "--steps", "4", "--json").stdout)
    assert payload["x"] == [0.0, 0.0, 0.0, 0.0]


def test_long_table_is_summarised() -> None:
    done = run("scalar", "--steps", "500", "--input-seed", "1")
    assert done.returncode == 0
    assert "…" in done.stdout
    assert "first and last 8 shown" in done.stdout


def test_exact_zero_is_null_in_log_field() -> None:
    payload = strict_json(run("scalar", "--x", "1,-5,1", "--activation", "relu", "--json").stdout)
    assert payload["dy_dh"][0] == 0.0
    assert payload["log10_abs_dy_dh"][0] is None


def test_spectrum_example_json_contract() -> None:
    done = run("spectrum", "--example", "nonnormal", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    expected = recurrent_spectrum(example_matrix("nonnormal", hidden=64, radius=0.9, seed=0))
    assert len(payload["eigenvalues"]) == 64
    assert all(len(pair) == 2 for pair in payload["eigenvalues"])
    assert payload["spectral_radius"] == pytest.approx(expected.spectral_radius, rel=1e-12)
    np.testing.assert_allclose(payload["singular_values"], expected.singular_values, rtol=1e-12)
    assert payload["norm2"] == pytest.approx(expected.norm2, rel=1e-12)
    assert payload["diagonalizable"] == expected.diagonalizable
    assert payload["eigvec_condition"] == pytest.approx(expected.eigvec_condition, rel=1e-6)
    assert payload["max_transient_growth"] == pytest.approx(
        expected.transient.max_growth, rel=1e-12
    )
    assert payload["transient_peak_step"] == expected.transient.peak_step
    assert payload["verdict"]["label"] == "vanishing"
    assert payload["verdict"]["transient_flag"] is True
    assert payload["verdict"]["disagreement"]


def test_spectrum_text_output() -> None:
    done = run("spectrum", "--example", "random", "--hidden", "8", "--radius", "1.2")
    assert done.returncode == 0, done.stderr
    assert "EXPLODING" in done.stdout
    assert "spectral radius" in done.stdout


def test_spectrum_defaults_to_the_nonnormal_example() -> None:
    payload = strict_json(run("spectrum", "--json").stdout)
    assert payload["source"].startswith("example nonnormal")


def test_spectrum_jordan_block_has_null_condition(tmp_path: Path) -> None:
    np.save(tmp_path / "jordan.npy", np.array([[0.5, 1.0, 0.0], [0.0, 0.5, 1.0], [0.0, 0.0, 0.5]]))
    payload = strict_json(
        run("spectrum", "--weights", str(tmp_path / "jordan.npy"), "--json").stdout
    )
    assert payload["diagonalizable"] is False


@pytest.mark.parametrize("fmt", ["npy", "pt", "safetensors"])
def test_spectrum_reads_weight_files(tmp_path: Path, fmt: str) -> None:
    W = example_matrix("random", hidden=6, radius=0.7, seed=5)
    path = tmp_path / f"w.{fmt}"
    args = ["spectrum", "--weights", str(path), "--json"]
    if fmt == "npy":
        np.save(path, W)
    elif fmt == "pt":
        torch.save({"weight_hh_l0": torch.from_numpy(W), "bias": torch.zeros(6)}, path)
        args += ["--key", "weight_hh_l0"]
    else:
        save_file({"weight_hh_l0": W}, str(path))
    done = run(*args)
    assert done.returncode == 0, done.stderr
    assert strict_json(done.stdout)["spectral_radius"] == pytest.approx(0.7, rel=1e-12)


class Payload:
    pass


def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["nonsquare"] = tmp_path / "nonsquare.npy"
    np.save(files["nonsquare"], np.zeros((2, 3)))
    files["strings"] = tmp_path / "strings.npy"
    np.save(files["strings"], np.array([["a", "b"], ["c", "d"]]))
    files["nan"] = tmp_path / "nan.npy"
    np.save(files["nan"], np.array([[1.0, np.nan], [0.0, 1.0]]))
    files["inf"] = tmp_path / "inf.safetensors"
    save_file({"w": np.array([[1.0, np.inf], [0.0, 1.0]])}, str(files["inf"]))
    files["pickled_npy"] = tmp_path / "objects.npy"
    np.save(files["pickled_npy"], np.array([Payload()], dtype=object), allow_pickle=True)
    files["pickled_pt"] = tmp_path / "objects.pt"
    torch.save({"w": Payload()}, files["pickled_pt"])
    files["garbage"] = tmp_path / "truncated.pt"
    torch.save(torch.eye(3), files["garbage"])
    files["garbage"].write_bytes(files["garbage"].read_bytes()[:100])
    files["directory"] = tmp_path / "folder.npy"
    files["directory"].mkdir()
    return files


BAD_SCALAR = [
    ["scalar", "--a", "nan"],
    ["scalar", "--b", "inf"],
    ["scalar", "--x", "1,nan,2"],
    ["scalar", "--x", "1,inf"],
    ["scalar", "--x", ""],
    ["scalar", "--x", "1,,2"],
    ["scalar", "--x", "1,two"],
    ["scalar", "--steps", "0"],
    ["scalar", "--steps", "-3"],
    ["scalar", "--steps", "many"],
    ["scalar", "--activation", "softmax"],
    ["scalar", "--x", "1,2", "--steps", "2"],
    ["scalar", "--input-seed", "1"],
    ["scalar", "--no-such-option"],
    ["spectrum", "--activation", "gelu"],
    ["spectrum", "--hidden", "0"],
    ["spectrum", "--radius", "nan"],
    ["spectrum", "--example", "circulant"],
    ["spectrum", "--key", "w"],
    ["no-such-command"],
]


@pytest.mark.parametrize("args", BAD_SCALAR, ids=[" ".join(a) for a in BAD_SCALAR])
def test_bad_arguments_give_one_line_and_exit_2(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rnngrad: error: ")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nonsquare", "square"),
        ("strings", "numeric"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("pickled_npy", "refusing to unpickle"),
        ("pickled_pt", "refusing to unpickle"),
        ("garbage", "not a readable"),
        ("directory", "not a regular file"),
        ("missing", "no such file"),
    ],
)
def test_bad_weight_files_give_one_line_and_exit_2(tmp_path: Path, name: str, message: str) -> None:
    files = bad_files(tmp_path)
    path = files.get(name, tmp_path / "missing.npy")
    done = run("spectrum", "--weights", str(path), "--json")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert done.stdout == ""


def test_help_and_version() -> None:
    assert run().returncode == 0
    assert "scalar" in run("--help").stdout
    assert run("--version").stdout.startswith("rnngrad ")


def test_the_commands_are_exactly_the_documented_ones() -> None:
    """A helper placed under a command's decorator would become a command and take the
    command's place (it happened to `profile` once): the set of commands is fixed."""
    from rnngrad.cli import app

    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert names == {"scalar", "spectrum", "profile", "lyapunov", "train", "sweep", "report"}


@pytest.mark.parametrize(
    "args",
    [("spectrum", "--json"), ("spectrum",), ("scalar", "--steps", "20000", "--input-seed", "0")],
)
def test_a_reader_that_stops_early_gets_no_noise(args: tuple[str, ...]) -> None:
    """``rnngrad ... | head``: the reader closes the pipe before the command writes;
    the command stops quietly (nothing on stderr, not Python's 'Exception ignored ...
    BrokenPipeError') with exit status 141, as a Unix tool killed by SIGPIPE."""
    process = subprocess.Popen(
        [str(EXECUTABLE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    process.stdout.close()  # long before the command has imported torch
    _, stderr = process.communicate(timeout=120)
    assert stderr == ""
    assert process.returncode == 141


def test_progress_bars_write_nothing_into_a_pipe() -> None:
    """stderr is a pipe here: no bar is drawn, and none leaves an empty line behind."""
    done = run("spectrum", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    strict_json(done.stdout)
