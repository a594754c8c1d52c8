"""`rnngrad profile` through the installed entry point: JSON contract, files, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rnngrad import gradient_profile
from rnngrad.io.spec import build_module, parse_spec
from tests.cli.test_cli import run, strict_json

SPEC = "lstm:input=3,hidden=6,layers=2,bidirectional=true,batch_first=true"


def test_json_contract_matches_the_python_api() -> None:
    done = run("profile", "--model", SPEC, "--random-input", "2,15", "--dtype", "float64", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["steps"] == 15 and payload["batch"] == 2
    assert len(payload["layers"]) == 4
    module = build_module(parse_spec(SPEC), seed=0, dtype=torch.float64)
    x = torch.randn((2, 15, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = gradient_profile(module, x, loss="last")
    for entry, lp in zip(payload["layers"], expected.layers, strict=True):
        assert (entry["layer"], entry["direction"]) == (lp.layer, lp.direction)
        for key in (
            "grad_norm",
            "log10_grad_norm",
            "decay_rate",
            "horizon",
            "saturation",
            "verdict",
        ):
            assert key in entry
        np.testing.assert_allclose(entry["grad_norm"], lp.mean_grad_norm, rtol=1e-12)
        assert entry["verdict"]["label"] == lp.verdict.label
        assert len(entry["cell_grad_norm"]) == 15


def test_route_option_gives_the_same_profile() -> None:
    """--route fused (the fused kernel's backward) and --route recursion print the same
    numbers to rounding; an unknown route is a usage error."""
    payloads = {}
    for route in ("recursion", "fused"):
        done = run(
            "profile", "--model", SPEC, "--random-input", "2,15", "--dtype", "float64",
            "--route", route, "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        payloads[route] = strict_json(done.stdout)
    for a, b in zip(payloads["recursion"]["layers"], payloads["fused"]["layers"], strict=True):
        np.testing.assert_allclose(b["grad_norm"], a["grad_norm"], rtol=1e-12)
        np.testing.assert_allclose(b["cell_grad_norm"], a["cell_grad_norm"], rtol=1e-12)
        assert b["saturation"] == a["saturation"]
    done = run("profile", "--model", SPEC, "--random-input", "2,15", "--route", "loop")
    assert done.returncode == 2 and "--route" in done.stderr


def test_state_dict_and_input_files(tmp_path: Path) -> None:
    torch.manual_seed(3)
    module = torch.nn.GRU(3, 4, num_layers=2)
    x = torch.randn(10, 2, 3)
    torch.save(module.state_dict(), tmp_path / "gru.pt")
    save_file(module.state_dict(), str(tmp_path / "gru.safetensors"))
    np.save(tmp_path / "x.npy", x.numpy())
    torch.save(x, tmp_path / "x.pt")
    expected = gradient_profile(module.eval(), x, loss="sum")
    for weights in ("gru.pt", "gru.safetensors"):
        for inputs in ("x.npy", "x.pt"):
            done = run(
                "profile", "--model", "gru:input=3,hidden=4,layers=2",
                "--state-dict", str(tmp_path / weights), "--input", str(tmp_path / inputs),
                "--loss", "sum", "--json",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            layers = strict_json(done.stdout)["layers"]
            np.testing.assert_allclose(
                layers[1]["grad_norm"], expected.layers[1].mean_grad_norm, rtol=1e-5
            )


def test_text_output() -> None:
    done = run(
        "profile", "--model", "rnn:input=2,hidden=8,nonlinearity=relu", "--random-input", "3,30"
    )
    assert done.returncode == 0, done.stderr
    assert "verdict" in done.stdout and "horizon" in done.stdout


def bad_files(tmp_path: Path) -> dict[str, Path]:
    module = torch.nn.GRU(3, 4)
    state = module.state_dict()
    files = {}
    missing = dict(state)
    missing.pop("bias_hh_l0")
    missing["extra.weight"] = torch.zeros(2)
    files["missing"] = tmp_path / "missing.pt"
    torch.save(missing, files["missing"])
    shaped = dict(state)
    shaped["weight_hh_l0"] = torch.zeros(12, 5)
    files["shaped"] = tmp_path / "shaped.pt"
    torch.save(shaped, files["shaped"])
    nan = dict(state)
    nan["weight_ih_l0"] = torch.full((12, 3), float("nan"))
    files["nan_weights"] = tmp_path / "nan.safetensors"
    save_file(nan, str(files["nan_weights"]))
    files["nan_input"] = tmp_path / "nan_input.npy"
    np.save(files["nan_input"], np.full((5, 2, 3), np.nan, dtype=np.float32))
    files["int_input"] = tmp_path / "int_input.npy"
    np.save(files["int_input"], np.ones((5, 2, 3), dtype=np.int64))
    files["wrong_shape"] = tmp_path / "wrong_shape.pt"
    torch.save(torch.zeros(5, 2, 7), files["wrong_shape"])
    files["empty"] = tmp_path / "empty.npy"
    np.save(files["empty"], np.zeros((0, 2, 3), dtype=np.float32))
    return files


GRU = "gru:input=3,hidden=4"
BAD = [
    (["--model", "transformer:input=3,hidden=4", "--random-input", "2,5"], "unknown module"),
    (["--model", "gru:input=3,hidden=4,heads=2", "--random-input", "2,5"], "unknown key 'heads'"),
    (["--model", "gru:input=3", "--random-input", "2,5"], "hidden=N is required"),
    (["--model", "lstm:input=3,hidden=4,proj_size=9", "--random-input", "2,5"], "proj_size"),
    (["--model", GRU, "--random-input", "2,0"], "T >= 1"),
    (["--model", GRU, "--random-input", "two,5"], "B,T"),
    (["--model", GRU], "exactly one of"),
    (
        ["--model", GRU, "--state-dict", "{missing}", "--random-input", "2,5"],
        "missing keys: bias_hh_l0",
    ),
    (
        ["--model", GRU, "--state-dict", "{missing}", "--random-input", "2,5"],
        "unexpected keys: extra.weight",
    ),
    (["--model", GRU, "--state-dict", "{shaped}", "--random-input", "2,5"], "weight_hh_l0 (12, 5)"),
    (
        ["--model", GRU, "--state-dict", "{nan_weights}", "--random-input", "2,5"],
        "weight_ih_l0 holds NaN",
    ),
    (["--model", GRU, "--input", "{nan_input}"], "NaN"),
    (["--model", GRU, "--input", "{int_input}"], "floating point"),
    (["--model", GRU, "--input", "{wrong_shape}"], "D = 3"),
    (["--model", GRU, "--input", "{empty}"], "T = 0"),
    (["--model", GRU, "--input", "/no/such/file.pt"], "no such file"),
    (["--model", GRU, "--random-input", "2,5", "--loss", "mean"], "mean"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_gives_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    files = bad_files(tmp_path)
    resolved = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    done = run("profile", *resolved)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert done.stdout == ""


def test_sensitivity_adds_the_curse_of_memory(tmp_path: Path) -> None:
    """--sensitivity --json: memory_sensitivity's numbers for the same module, weights and
    input (Hutchinson's estimates from the same seed), under "memory_sensitivity"; the
    text output has the table; with --lengths (packed) it is a usage error."""
    from rnngrad.profile.sensitivity import memory_sensitivity

    spec = "gru:input=3,hidden=4"
    args = ["profile", "--model", spec, "--random-input", "2,12", "--dtype", "float64"]
    done = run(*args, "--sensitivity", "--json")
    assert done.returncode == 0, done.stderr
    shown = strict_json(done.stdout)["memory_sensitivity"]
    module = build_module(parse_spec(spec), seed=0, dtype=torch.float64)
    x = torch.randn((12, 2, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = memory_sensitivity(module, x, loss="last", seed=0)
    assert [p["name"] for p in shown["parameters"]] == [p.name for p in expected.parameters]
    for entry, reference in zip(shown["parameters"], expected.parameters, strict=True):
        np.testing.assert_allclose(entry["state_sensitivity"], reference.mean_state_norm,
                                   rtol=1e-12)  # fmt: skip
        assert entry["grad_norm"] == pytest.approx(reference.grad_norm, rel=1e-12)
        assert entry["exact"] is False and len(entry["ci95"]) == 12
    text = run(*args, "--sensitivity")
    assert text.returncode == 0 and "curse of memory" in text.stdout
    assert "weight_hh_l0" in text.stdout
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "lengths.npy", np.array([12, 5], dtype=np.int64))
    packed = run("profile", "--model", spec, "--input", str(tmp_path / "x.npy"),
                 "--lengths", str(tmp_path / "lengths.npy"), "--sensitivity")  # fmt: skip
    assert packed.returncode == 2 and "--sensitivity takes padded inputs" in packed.stderr
