"""The page of a rate network: its profile, its step Jacobian along the trajectory and at
rest, its Lyapunov spectrum beside the random rate network of the same delta and the
leaky network's mean field, in English and Korean, from the command line as a user runs
it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnngrad.rate import RateRNN
from tests.cli.test_cli import run


def _at_rest(delta: float, hidden: int = 12) -> RateRNN:
    """A rate network whose state settles at 0: no input weights, no bias, and a
    contracting ``W`` (gain 0.5). From ``x_0 = 0`` (the profile) every step's Jacobian is
    exactly the matrix at rest ``M = (1 - delta) I + delta W``; from the random states of
    the spectra, after their warm-up (``|x| < 1e-3``, so ``1 - phi'`` is below 1e-6)."""
    network = RateRNN(3, hidden, delta=delta, bias=False).double()
    generator = torch.Generator().manual_seed(4)
    weight = torch.randn(hidden, hidden, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        network.weight_ih.zero_()
        network.weight_hh.copy_(weight * 0.5 / hidden**0.5)
    return network


def test_a_rate_network_at_rest_shows_the_closed_forms_of_its_step_matrix() -> None:
    """With the state held at 0, every number on the page is a closed form of
    ``M = (1 - delta) I + delta W``: the singular values of ``dx_T/dx_k`` are those of
    ``M^(T-k)``; the block's spectral radius is ``max |1 - delta + delta lambda_i(W)|``;
    the profile's carried gradient from the last step is ``(M^T)^(T-1)`` applied to
    ``dL/dx_T``; the Lyapunov exponents are ``ln |eig M|`` (a complex pair's together);
    no unit saturates; the reference is the random rate network of the same delta and its
    mean field."""
    from rnngrad.report.build import build_sections
    from rnngrad.report.models import AT_REST
    from rnngrad.theory.leaky_meanfield import leaky_mean_field_lambda1
    from rnngrad.theory.meanfield import mean_field_lambda1

    delta, steps = 0.3, 40
    network = _at_rest(delta)
    generator = torch.Generator().manual_seed(5)
    weight = network.weight_hh.detach().numpy()
    step = (1.0 - delta) * np.eye(12) + delta * weight
    inputs = torch.randn(steps, 2, 3, dtype=torch.float64, generator=generator)

    def loss(output: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return output[0][-1].sum()  # dL/dr_T = 1, dL/dx_T = phi'(0) = 1 for every unit

    sections = {s.key: s for s in build_sections(module=network, inputs=inputs, loss=loss,
                                                   quick=True)}  # fmt: skip
    assert [s.key for s in sections.values()][:4] == [
        "profile", "spectrum", "lyapunov", "activations"
    ]  # fmt: skip
    spectrum = sections["spectrum"]
    assert spectrum.title == "2. The state Jacobian and the network at rest"
    shown = np.asarray(spectrum.numbers["the recurrence"]["log10_sigma"])  # row j: j back
    for back in (1, 7, 30):
        expected = np.linalg.svd(np.linalg.matrix_power(step, back), compute_uv=False)
        np.testing.assert_allclose(shown[back], np.log10(expected[: shown.shape[1]]),
                                   atol=1e-6)  # fmt: skip
    # the figures of the matrix at rest name it, not W_hh, and so does their selector
    assert [f.title for f in spectrum.figures[1:]] == [
        "eigenvalues of (1 - delta) I + delta W and the unit circle",
        "singular values of (1 - delta) I + delta W",
        "transient growth ||M^k||_2, M = (1 - delta) I + delta W",
    ]
    assert spectrum.selector == "matrix:"
    rest = spectrum.numbers[f"W_hh block {AT_REST}"]
    eigenvalues = 1.0 - delta + delta * np.linalg.eigvals(weight)
    assert rest["spectral_radius"] == pytest.approx(np.abs(eigenvalues).max(), rel=1e-10)
    assert sections["profile"].figures[0].y_label == "||dL/dx_t||"  # at the currents
    profile = sections["profile"].numbers["layer 0"]
    carried = np.linalg.matrix_power(step.T, steps - 1) @ np.ones(12)
    assert profile["log10_ratio"] == pytest.approx(
        np.log10(np.linalg.norm(carried) / np.sqrt(12)), abs=1e-9
    )
    assert profile["saturation"] == 0.0
    lyapunov = sections["lyapunov"].numbers
    exponents = np.asarray(lyapunov["the recurrence"]["exponents"])
    logs = np.sort(np.log(np.abs(np.linalg.eigvals(step))))[::-1]
    assert abs(exponents.sum() - logs.sum()) < 1e-9  # the volume's rate: ln |det M|, exactly
    # A complex pair of eigenvalues shares one modulus, which QR splits as it rotates: the
    # sum of the leading exponents is exact at every boundary between distinct moduli.
    boundaries = [k for k in range(1, 12) if logs[k - 1] - logs[k] > 1e-6]
    assert len(boundaries) >= 4
    for k in boundaries:
        assert abs(exponents[:k].sum() - logs[:k].sum()) < 0.02 * k, k  # QR over 150 steps
    reference = f"random rate network (N = 256, g = 2, delta = {delta:g})"
    assert reference in lyapunov
    assert lyapunov["mean_field_lambda1"] == pytest.approx(
        leaky_mean_field_lambda1(2.0, delta).lambda1
    )
    assert lyapunov["mean_field_lambda1"] < 0.5 * mean_field_lambda1(2.0).lambda1
    assert r"(1 - \delta) I + \delta W" in spectrum.explanation.replace(r"\,", "")
    assert r"\ln(1 - \delta + \delta g)" in sections["lyapunov"].explanation  # its mean field


def test_the_rate_page_from_the_command_line_in_korean(tmp_path: Path) -> None:
    """rnngrad report --model rate:... --lang ko writes the page, with the rate network's
    derivation in Korean and the same section keys as in English."""
    done = run("report", "--model", "rate:input=2,hidden=16,delta=0.5", "--quick", "--lang",
               "ko", "--out", str(tmp_path / "page"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "page" / "results.json").read_text())
    sections = results["sections"]
    assert list(sections)[:4] == ["profile", "spectrum", "lyapunov", "activations"]
    assert "정지 상태" in sections["spectrum"]["title"]
    assert "무작위 발화율 신경망 (N = 256, g = 2, delta = 0.5)" in sections["lyapunov"]["sentence"]
    page = (tmp_path / "page" / "index.html").read_text()
    assert "오일러 사상" in page and "행렬:" in page and "W_hh 블록:" not in page


def test_a_model_with_two_rate_networks_asks_which_one() -> None:
    """Two rate networks and no name: one line that names them and the option to choose."""
    from rnngrad.errors import UnsupportedModuleError
    from rnngrad.report.build import build_sections

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = RateRNN(2, 4), RateRNN(4, 4)

        def forward(self, u: torch.Tensor) -> torch.Tensor:
            return self.second(self.first(u)[0])[0]

    with pytest.raises(UnsupportedModuleError, match=r"has 2 rate networks \(first, second\)"):
        build_sections(module=Two(), inputs=torch.randn(5, 2, 2), quick=True)
    sections = build_sections(module=Two(), recurrent="second", inputs=torch.randn(5, 2, 2),
                              quick=True)  # fmt: skip
    assert sections[1].numbers["the recurrence"]["verdict"] in {"vanishing", "exploding",
                                                                "neither"}  # fmt: skip
