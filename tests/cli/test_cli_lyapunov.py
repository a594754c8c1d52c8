"""`rnngrad lyapunov` through the installed entry point, and the decay-vs-lambda_1 link."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rnngrad.io.spec import build_module, parse_spec
from rnngrad.lyapunov.finite_time import decay_beside_lyapunov
from rnngrad.lyapunov.spectrum import lyapunov_spectrum
from rnngrad.theory.meanfield import mean_field_lambda1
from tests.cli.test_cli import run, strict_json


def test_random_network_json_contract() -> None:
    done = run("lyapunov", "--random", "60", "--gain", "0.5", "--steps", "300", "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    for key in ("exponents", "ci95", "sum", "kaplan_yorke_dim", "steps", "warmup", "units",
                "mean_field_lambda1"):  # fmt: skip
        assert key in payload
    assert len(payload["exponents"]) == 60
    assert payload["mean_field_lambda1"] == pytest.approx(math.log(0.5))
    assert payload["units"] == "nats per step"
    assert payload["sum"] == pytest.approx(sum(payload["exponents"]), rel=1e-9)
    assert payload["exponents"] == sorted(payload["exponents"], reverse=True)


def test_model_json_matches_the_python_api(tmp_path: Path) -> None:
    spec = "gru:input=2,hidden=5,layers=2"
    done = run("lyapunov", "--model", spec, "--steps", "200", "--warmup", "20", "--k", "3",
               "--batch", "2", "--seed", "4", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    module = build_module(parse_spec(spec), seed=4, dtype=torch.float64)
    expected = lyapunov_spectrum(module, steps=200, warmup=20, k=3, batch=2, seed=4)
    np.testing.assert_allclose(
        strict_json(done.stdout)["exponents"], expected.exponents, rtol=1e-12
    )


def test_input_file_and_text_output(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((400, 3)))
    done = run("lyapunov", "--model", "lstm:input=3,hidden=4", "--input", str(tmp_path / "x.npy"),
               "--steps", "300")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Kaplan-Yorke" in done.stdout and "lambda_1 =" in done.stdout


BAD = [
    (["--random", "10"], "--gain"),
    (["--random", "10", "--gain", "-1"], "positive"),
    (["--model", "gru:input=2,hidden=3", "--random", "5", "--gain", "1"], "either"),
    ([], "either"),
    (["--random", "10", "--gain", "1", "--k", "11"], "k must be between"),
    (["--random", "10", "--gain", "1", "--reorth", "often"], "--reorth must be auto"),
    (["--random", "10", "--gain", "1", "--qr", "lu"], "qr must be one of"),
    (["--model", "gru:input=2,hidden=3,bidirectional=true,layers=2"], "name one layer"),
    (["--model", "gru:input=2,hidden=3", "--direction", "1"], "unidirectional"),
    (["--model", "gru:input=2,hidden=3", "--input", "noise.npy"], "no such file"),
    (["--random", "3", "--gain", "1e200"], "at most 1000"),
    (
        [
            "--model",
            "rnn:input=1,hidden=2,nonlinearity=relu,bias=false",
            "--state-dict",
            "{relu}",
            "--steps",
            "200",
            "--warmup",
            "10",
            "--input",
            "random",
        ],
        "diverged",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    relu = {"weight_ih_l0": torch.ones(2, 1), "weight_hh_l0": 1e3 * torch.eye(2)}
    torch.save(relu, tmp_path / "relu.pt")
    args = [a.replace("{relu}", str(tmp_path / "relu.pt")) for a in args]
    extra = [] if "--steps" in args else ["--steps", "60", "--warmup", "10"]
    done = run("lyapunov", *args, *extra)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]


def test_decay_rate_of_the_profile_approaches_minus_lambda1() -> None:
    """The profile's fitted decay and the Lyapunov exponent agree on the same inputs."""
    torch.manual_seed(0)
    module = torch.nn.RNN(4, 64).double()
    comparison = decay_beside_lyapunov(module, torch.randn(400, 8, 4, dtype=torch.float64))
    assert comparison.lambda1[0] < 0
    assert comparison.decay_rates[0] == pytest.approx(-comparison.lambda1[0], abs=0.03)


def test_mean_field_value_in_the_text_output() -> None:
    done = run("lyapunov", "--random", "30", "--gain", "2", "--steps", "200", "--k", "2")
    assert done.returncode == 0, done.stderr
    assert f"{mean_field_lambda1(2.0).lambda1:.5f}" in done.stdout


def test_one_layer() -> None:
    done = run("lyapunov", "--model", "rnn:input=2,hidden=4,layers=2", "--layer", "1",
               "--steps", "100", "--warmup", "10", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["state_size"] == 4 and payload["source"].endswith("layer 1")
    bad = run("lyapunov", "--model", "rnn:input=2,hidden=4", "--layer", "1", "--steps", "20",
              "--warmup", "2")  # fmt: skip
    assert bad.returncode == 2 and "--layer" in bad.stderr
