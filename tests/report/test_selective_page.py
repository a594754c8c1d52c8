"""The page of a Mamba model: its profile, its eigenvalues token by token and its exact
Lyapunov exponents, from the command line as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.cli.test_cli import run
from tests.examples_loader import EXAMPLES, load_example

pytest.importorskip("mambapy", reason="pip install 'rnngrad[ssm]'")


def test_the_page_of_a_mamba_forecaster(tmp_path: Path) -> None:
    """rnngrad report --model examples/mamba_forecaster.py:Forecaster --input X.pt: the
    profile has one layer per Mamba block, the spectrum section is the selective criterion
    of each block (the numbers of rnngrad.selective_spectrum), and the Lyapunov section's
    exponents are each mode's time average of ln|a_t| (exact, no QR)."""
    from rnngrad.selective.criterion import selective_spectra

    torch.manual_seed(0)
    inputs = torch.randn(4, 30, 3)
    torch.save(inputs, tmp_path / "x.pt")
    model_path = f"{EXAMPLES / 'mamba_forecaster.py'}:Forecaster"
    done = run("report", "--model", model_path, "--input", str(tmp_path / "x.pt"), "--quick",
               "--out", str(tmp_path / "page"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "page" / "results.json").read_text())
    sections = results["sections"]
    assert sections["profile"]["title"] == "1. The gradient profile"
    assert set(sections["profile"]["numbers"]) == {"layer 0", "layer 1"}
    assert sections["spectrum"]["title"] == "2. The eigenvalues, token by token"
    assert "made selective" in sections["spectrum"]["sentence"]
    # The same model, weights and input in this process: the same numbers.
    torch.manual_seed(0)
    model = load_example("mamba_forecaster").Forecaster()
    spectra = selective_spectra(model, inputs)
    for spectrum in spectra:
        shown = sections["spectrum"]["numbers"][spectrum.module_name]
        assert shown["kept_share"] == pytest.approx(spectrum.kept_share)
        assert shown["closing_tokens"] == list(spectrum.closing)
        exponents = sections["lyapunov"]["numbers"][spectrum.module_name]["exponents"]
        expected = np.sort(spectrum.log_abs.mean(axis=(0, 1)))[::-1]
        np.testing.assert_allclose(exponents, expected, rtol=1e-9)
    assert "selective_eigenvalues_0" in results["figures"]
    assert "activations" not in sections  # no tanh between a selective scan's states
    # The curse of memory: each block's parameters, the per-mode ones exact.
    from rnngrad.profile.sensitivity import memory_sensitivity

    memory = {entry["name"]: entry for entry in sections["memory"]["numbers"]["parameters"]}
    assert memory["A_log"]["exact"] and not memory["x_proj.weight"]["exact"]
    expected = memory_sensitivity(model, inputs, loss="last", directions=8)
    assert memory["A_log"]["state_sensitivity_last"] == pytest.approx(
        float(expected.parameter("A_log").mean_state_norm[-1]), rel=1e-5
    )
