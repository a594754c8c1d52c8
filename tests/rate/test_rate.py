"""Rate networks: the map, its Jacobian, its Lyapunov spectrum against closed forms and
the tanh network, and the mean-field lambda_1 for delta < 1 against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnngrad import lyapunov_spectrum
from rnngrad.errors import InvalidInputError, ShapeError
from rnngrad.lyapunov.rate import RateDynamics
from rnngrad.lyapunov.spectrum import random_tanh_network
from rnngrad.rate import RateRNN, random_rate_network
from rnngrad.theory.leaky_meanfield import leaky_mean_field_lambda1
from rnngrad.theory.meanfield import mean_field_lambda1


def test_the_jacobian_product_is_autograd_s_jacobian() -> None:
    """``J v = (1 - delta) v + delta W (phi'(x) v)`` equals autograd's Jacobian of one
    step (float64), applied to a basis, for a network with inputs and a bias."""
    torch.manual_seed(0)
    network = RateRNN(3, 7, delta=0.3).double()
    dynamics = RateDynamics(network)
    x = torch.randn(2, 7, dtype=torch.float64)
    u = torch.randn(2, 3, dtype=torch.float64)
    basis = torch.randn(2, 7, 4, dtype=torch.float64)
    _, cache = dynamics.step(x, u)
    for row in range(2):
        u_row = u[row : row + 1]
        full = torch.autograd.functional.jacobian(lambda s, u_row=u_row: network.step(s, u_row),
                                                  x[row : row + 1])[0, :, 0]  # fmt: skip
        expected = full @ basis[row]
        np.testing.assert_allclose(dynamics.apply_jacobian(cache, basis)[row].numpy(),
                                   expected.numpy(), rtol=1e-12, atol=1e-14)  # fmt: skip


def test_forward_runs_the_map_and_returns_the_rates() -> None:
    torch.manual_seed(1)
    network = RateRNN(2, 5, delta=0.5, batch_first=True).double()
    u = torch.randn(3, 6, 2, dtype=torch.float64)
    with torch.no_grad():
        rates, last = network(u)
    x = torch.zeros(3, 5, dtype=torch.float64)
    network.requires_grad_(False)
    for t in range(6):
        x = 0.5 * x + 0.5 * (torch.tanh(x) @ network.weight_hh.T + u[:, t] @ network.weight_ih.T
                             + network.bias)  # fmt: skip
        np.testing.assert_allclose(rates[:, t].detach().numpy(), torch.tanh(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(last.detach().numpy(), x.numpy(), rtol=1e-12)
    with pytest.raises(ShapeError):
        network(torch.zeros(3, 6, 4, dtype=torch.float64))


def test_at_the_quiet_fixed_point_the_exponents_are_the_logs_of_the_shifted_eigenvalues() -> None:
    """g < 1, no input: x = 0 attracts, every step's Jacobian is ``(1 - delta) I + delta W``
    and the exponents are ``ln |1 - delta + delta mu_i|`` over W's eigenvalues ``mu_i``."""
    network = random_rate_network(12, 0.8, 0.3, seed=2)
    result = lyapunov_spectrum(network, steps=4000, warmup=2000, batch=2, progress=False)
    mu = np.linalg.eigvals(network.weight_hh.detach().numpy())
    expected = np.sort(np.log(np.abs(1 - 0.3 + 0.3 * mu)))[::-1]
    np.testing.assert_allclose(result.exponents, expected, atol=2e-3)


def test_delta_one_is_the_tanh_network_in_other_coordinates() -> None:
    """``x' = W tanh(x)`` and ``h' = tanh(W h)`` (``h = tanh(x)``) with the same ``W``: the
    same exponents, to within their intervals."""
    rate = lyapunov_spectrum(random_rate_network(40, 2.5, 1.0, seed=3), steps=3000, warmup=500,
                             k=5, batch=4, progress=False)  # fmt: skip
    tanh = lyapunov_spectrum(random_tanh_network(40, 2.5, seed=3), steps=3000, warmup=500,
                             k=5, batch=4, progress=False)  # fmt: skip
    spread = 3.0 / 1.96 * np.hypot(rate.ci95, tanh.ci95)
    assert np.all(np.abs(rate.exponents - tanh.exponents) <= spread + 1e-3)


def test_the_leaky_mean_field_reduces_to_its_known_cases() -> None:
    """delta = 1: the tanh network's mean field; g <= 1: ln(1 - delta + delta g) (the
    circular law's rightmost eigenvalue); delta and g out of range: one line."""
    assert leaky_mean_field_lambda1(2.0, 1.0).lambda1 == mean_field_lambda1(2.0).lambda1
    assert leaky_mean_field_lambda1(0.8, 0.25).lambda1 == pytest.approx(math.log(0.95))
    for delta in (0.0, 1.5, float("nan")):
        with pytest.raises(InvalidInputError, match="delta"):
            leaky_mean_field_lambda1(2.0, delta)
    with pytest.raises(InvalidInputError, match="gain"):
        leaky_mean_field_lambda1(50.0, 0.5)
    with pytest.raises(InvalidInputError, match="span"):
        leaky_mean_field_lambda1(2.0, 0.5, span=-3)


def test_the_leaky_mean_field_matches_a_large_simulated_network() -> None:
    """g = 3, delta = 0.5: the simulated network (N = 600) has lambda_1 within 10% of the
    mean-field value, and its currents' variance, averaged over networks, is within 5% of
    Delta(0); the annealed
    shortcut 0.5 ln((1 - delta)^2 + delta^2 g^2 E[phi'^2]), which drops the perturbation's
    memory of earlier steps, is negative and far off."""
    gain, delta = 3.0, 0.5
    theory = leaky_mean_field_lambda1(gain, delta)
    network = random_rate_network(600, gain, delta, seed=4)
    result = lyapunov_spectrum(network, steps=2000, warmup=500, k=1, batch=2, progress=False)
    assert result.exponents[0] == pytest.approx(theory.lambda1, rel=0.1)
    # The theory's variance is an average over the disorder: one network of 600 units
    # sits a few per cent from it (5.36 to 5.80 for seeds 4 to 7, against 5.44), so the
    # simulation averages four networks, each from two seeded initial states.
    variances = []
    for seed in (4, 5, 6, 7):
        network = random_rate_network(600, gain, delta, seed=seed)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            x = torch.randn(2, 600, dtype=torch.float64, generator=generator)
            zeros = torch.zeros(2, 1, dtype=torch.float64)
            samples = []
            for t in range(1500):
                x = network.step(x, zeros)
                if t >= 500:
                    samples.append(x.pow(2).mean())
        variances.append(float(torch.stack(samples).mean()))
    assert float(np.mean(variances)) == pytest.approx(theory.variance, rel=0.05)
    z, w = np.polynomial.hermite_e.hermegauss(101)
    slope = float(np.sum(w * (1 - np.tanh(math.sqrt(theory.variance) * z) ** 2) ** 2)
                  / math.sqrt(2 * math.pi))  # fmt: skip
    annealed = 0.5 * math.log((1 - delta) ** 2 + delta**2 * gain**2 * slope)
    assert annealed < 0 < theory.lambda1


def test_lyapunov_of_a_random_rate_network_from_the_command_line() -> None:
    """``rnngrad lyapunov --random N --gain g --delta d``: the spectrum, its per-unit
    summaries and the leaky mean field in JSON; bad deltas are one line and exit 2."""
    from tests.cli.test_cli import run, strict_json

    done = run("lyapunov", "--random", "30", "--gain", "2", "--delta", "0.5", "--steps", "200",
               "--warmup", "100", "--batch", "2", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    theory = leaky_mean_field_lambda1(2.0, 0.5).lambda1
    assert payload["mean_field_lambda1"] == pytest.approx(theory)
    assert len(payload["exponents"]) == 30 and payload["summaries"]["unstable_fraction"] >= 0
    assert "delta = 0.5" in payload["source"]
    for args, message in (
        (["--random", "30", "--gain", "2", "--delta", "0"], "delta must be in (0, 1]"),
        (["--random", "30", "--gain", "2", "--delta", "nan"], "delta"),
        (["--model", "rnn:input=2,hidden=4", "--delta", "0.5"], "--delta applies to --random only"),
    ):
        refused = run("lyapunov", *args)
        assert refused.returncode == 2 and message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


class _Forecaster(torch.nn.Module):
    """A rate network behind a linear read-out of its rates, as a model is built."""

    def __init__(self, delta: float, batch_first: bool) -> None:
        super().__init__()
        self.rates = RateRNN(3, 6, delta=delta, batch_first=batch_first)
        self.head = torch.nn.Linear(6, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        rates, _ = self.rates(u)
        return self.head(rates)


@pytest.mark.parametrize("batch_first", [False, True])
def test_the_profile_of_a_rate_network_is_autograd_s_through_a_step_loop(
    batch_first: bool,
) -> None:
    """gradient_profile of a model with a RateRNN: the total ``dL/dx_t`` at the currents
    equals autograd's through a loop of the map written here (probes on ``x_t``), for a
    loss on every step; the carried gradient, from the last step alone, equals autograd's
    of the last step's loss."""
    from rnngrad import gradient_profile

    torch.manual_seed(5)
    model = _Forecaster(0.4, batch_first).double()
    u = torch.randn(4, 9, 3, dtype=torch.float64)
    if not batch_first:
        u = u.transpose(0, 1).contiguous()
    profile = gradient_profile(model, u, loss=lambda out: out.pow(2).sum(), keep_gradients=True)
    network = model.rates
    sequence = u.transpose(0, 1) if batch_first else u

    def reference(last_only: bool) -> torch.Tensor:
        x = torch.zeros(4, 6, dtype=torch.float64)
        probes = []
        outputs = []
        for u_t in sequence:
            x = network.step(x, u_t)
            probe = torch.zeros_like(x, requires_grad=True)
            probes.append(probe)
            x = x + probe
            outputs.append(model.head(torch.tanh(x)))
        value = outputs[-1].pow(2).sum() if last_only else torch.stack(outputs).pow(2).sum()
        return torch.stack(torch.autograd.grad(value, probes))  # (T, B, N)

    layer = profile.layers[0]
    expected = reference(last_only=False)
    np.testing.assert_allclose(layer.grad.numpy(), expected.transpose(0, 1).numpy(),
                               rtol=1e-10, atol=1e-14)  # fmt: skip
    carried = reference(last_only=True).norm(dim=2).T.numpy()
    np.testing.assert_allclose(layer.carried_norm, carried, rtol=1e-10, atol=1e-14)


def test_the_lab_trains_a_rate_network_and_flosses_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``--cell rate --delta d``: the run's gradient profiles come from the rate route, the
    spectral radius it records is that of ``(1 - delta) I + delta W`` (numpy), and
    flossing alone pulls its exponents towards zero."""
    import pandas as pd

    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.train import train
    from rnngrad.lab.trained import trained_model

    config = TrainConfig(task="delayed_copy", seq_len=15, cell="rate", delta=0.3, hidden=12,
                         batch=8, steps=3, eval_every=3, eval_batch=16, profile_every=3,
                         floss=3, floss_before=60)  # fmt: skip
    result = train(config, tmp_path / "run", progress=False)
    model = trained_model(tmp_path / "run").model
    weight = model.rnn.weight_hh.detach().double().numpy()
    expected = np.abs(np.linalg.eigvals(0.7 * np.eye(12) + 0.3 * weight)).max()
    assert result.records["evaluations"][-1]["spectral_radius"] == pytest.approx(expected)
    assert {row["step"] for row in result.records["profiles"]} == {1, 3}
    exponents = pd.DataFrame(result.records["exponents"])
    before = exponents[exponents.phase == "before"]
    first, last = before[before.step == before.step.min()], before[before.step == 0]
    assert float((last["lambda"] ** 2).sum()) < 0.5 * float((first["lambda"] ** 2).sum())
    with pytest.raises(InvalidInputError, match="delta applies to the rate cell only"):
        TrainConfig(task="adding", seq_len=10, cell="gru", delta=0.5).validate()
    with pytest.raises(InvalidInputError, match="delta must be in"):
        TrainConfig(task="adding", seq_len=10, cell="rate", delta=2.0).validate()


def test_the_spectrum_of_a_rate_networks_step() -> None:
    """With ``delta`` the eigenvalue criterion reads ``(1 - delta) I + delta W``: a ``W``
    whose eigenvalue -1.5 explodes as a tanh network's (rho = 1.5) contracts in a rate
    network with delta = 0.5 (|1 - 0.5 - 0.75| = 0.25); the eigenvalues are
    ``1 - delta + delta mu``, the transient is the norms of that matrix's powers (numpy),
    and the singular-value bound ``(1 - delta) + delta sigma_max gamma``."""
    from rnngrad.theory.spectrum import recurrent_spectrum

    rng = np.random.default_rng(6)
    basis = rng.standard_normal((4, 4))
    weights = basis @ np.diag([-1.5, 0.6, 0.3, -0.2]) @ np.linalg.inv(basis)
    plain = recurrent_spectrum(weights)
    leaky = recurrent_spectrum(weights, delta=0.5)
    assert plain.verdict.eigenvalue_label == "exploding"
    assert leaky.verdict.eigenvalue_label == "vanishing"
    expected = np.sort(np.abs(1 - 0.5 + 0.5 * np.array([-1.5, 0.6, 0.3, -0.2])))[::-1]
    np.testing.assert_allclose(np.abs(leaky.eigenvalues), expected, rtol=1e-10)
    step = 0.5 * np.eye(4) + 0.5 * weights
    powers = [np.linalg.norm(np.linalg.matrix_power(step, k), 2) for k in range(1, 60)]
    assert leaky.transient.max_growth == pytest.approx(max(powers), rel=1e-9)
    sigma = np.linalg.svd(weights, compute_uv=False)[0]
    assert leaky.verdict.norm2_times_gamma == pytest.approx(0.5 + 0.5 * sigma)
    np.testing.assert_allclose(leaky.singular_values, plain.singular_values)
    with pytest.raises(InvalidInputError, match="delta"):
        recurrent_spectrum(weights, delta=0.0)


def test_spectrum_of_a_rate_networks_weights_from_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.test_cli import run, strict_json

    network = random_rate_network(8, 1.2, 0.25, seed=7)
    torch.save(network.state_dict(), tmp_path / "rate.pt")
    done = run("spectrum", "--weights", str(tmp_path / "rate.pt"), "--key", "weight_hh",
               "--delta", "0.25", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    mu = np.linalg.eigvals(network.weight_hh.detach().numpy())
    assert payload["delta"] == 0.25
    assert payload["spectral_radius"] == pytest.approx(np.abs(0.75 + 0.25 * mu).max())
    refused = run("spectrum", "--example", "random", "--delta", "1.5")
    assert refused.returncode == 2 and "delta must be in (0, 1]" in refused.stderr


def test_the_products_of_a_rate_networks_jacobians_at_rest() -> None:
    """At the quiet fixed point (g < 1, no input) every step's Jacobian is
    ``M = (1 - delta) I + delta W``: finite_time_spectrum's singular values of
    ``dx_T/dx_k`` are those of ``M^(T-k)`` (numpy)."""
    from rnngrad import finite_time_spectrum

    network = random_rate_network(6, 0.7, 0.4, seed=8)
    result = finite_time_spectrum(network, steps=12, warmup=400)
    step = 0.6 * np.eye(6) + 0.4 * network.weight_hh.detach().numpy()
    assert result.log_singular_values is not None
    for k in (1, 5, 11):  # row k - 1: dx_T/dx_k, a product of T - k steps
        power = np.linalg.matrix_power(step, 12 - k)
        expected = np.log(np.linalg.svd(power, compute_uv=False))
        np.testing.assert_allclose(result.log_singular_values[k - 1], expected, atol=1e-8)


def test_the_profile_counts_the_saturation_of_a_rate_networks_units() -> None:
    """A layer's saturation is the share of ``phi'(x_t) = 1 - r_t^2`` below 0.1, read here
    from the rates the network's own forward returns (strong weights saturate many units)."""
    from rnngrad import gradient_profile

    torch.manual_seed(2)
    network = RateRNN(3, 20, delta=0.5).double()
    with torch.no_grad():
        network.weight_hh.mul_(12.0)
        network.weight_ih.mul_(6.0)
    u = torch.randn(30, 4, 3, dtype=torch.float64)
    rates, _ = network(u)
    expected = float(((1.0 - rates**2) < 0.1).double().mean())
    assert 0.1 < expected < 0.9  # the test has units on both sides of the threshold
    profile = gradient_profile(network, u, loss="sum")
    assert profile.layers[0].saturation == pytest.approx(expected, abs=1e-12)


def test_the_monitor_follows_a_rate_network_in_training() -> None:
    """GradientMonitor on a model holding a RateRNN: it profiles on schedule, and the last
    record's per-step norms are the batch means of ``||dL/dx_t||`` that autograd gives
    through a loop of the map written here, with the weights that record saw."""
    import copy
    import warnings

    from rnngrad import GradientMonitor
    from rnngrad.monitor.monitor import GradientWarning

    torch.manual_seed(6)
    model = _Forecaster(0.3, False).double()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss(out: torch.Tensor) -> torch.Tensor:
        return out[-1].pow(2).sum()

    monitor = GradientMonitor(model, every=2, loss=loss)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        u = torch.randn(12, 3, 3, dtype=torch.float64, generator=generator)
        optimiser.zero_grad()
        loss(model(u)).backward()
        with warnings.catch_warnings():  # the verdicts' warnings are not this test's subject
            warnings.simplefilter("ignore", GradientWarning)
            monitor.step(u)
        seen = copy.deepcopy(model)  # the weights of this step's profile
        optimiser.step()
    assert [record.step for record in monitor.history] == [1, 3, 5]
    cell, head = seen.rates, seen.head
    x = torch.zeros(3, 6, dtype=torch.float64)
    probes = []
    for u_t in u:
        probe = torch.zeros(3, 6, dtype=torch.float64, requires_grad=True)
        x = cell.step(x, u_t) + probe
        probes.append(probe)
    value = head(torch.tanh(x)).pow(2).sum()
    grads = torch.autograd.grad(value, probes)
    expected = np.array([float(g.norm(dim=1).mean()) for g in grads])
    shown = 10.0 ** monitor.history[-1].log10_grad_norm[0]
    np.testing.assert_allclose(shown, expected, rtol=1e-10)


def test_a_spec_with_a_gain_builds_the_classic_random_network() -> None:
    """``rate:...,gain=g`` draws ``W_ij ~ N(0, g^2/N)`` from the seed: the entries' sample
    variance times ``N`` is ``g^2`` (160000 entries: within 1%), their mean 0, the same
    seed the same ``W``; without ``gain`` PyTorch's uniform ``U(-1/sqrt(N), 1/sqrt(N))``
    (variance ``1/(3N)``). A gain that is not a positive number is one line, exit 2."""
    from rnngrad.io.spec import build_module, parse_spec
    from tests.cli.test_cli import run

    spec = parse_spec("rate:input=1,hidden=400,delta=0.2,gain=2")
    first, again = build_module(spec, seed=3), build_module(spec, seed=3)
    weight = first.weight_hh.detach().double()
    assert float(weight.var() * 400) == pytest.approx(4.0, rel=0.01)
    assert abs(float(weight.mean())) < 5 * 2.0 / 400  # five standard errors
    assert torch.equal(first.weight_hh, again.weight_hh) and first.delta == 0.2
    uniform = build_module(parse_spec("rate:input=1,hidden=400"), seed=3).weight_hh.detach()
    assert float(uniform.double().var() * 400) == pytest.approx(1 / 3, rel=0.01)
    assert float(uniform.abs().max()) <= 1 / 20
    for gain in ("-1", "0", "abc", "inf"):
        refused = run("profile", "--model", f"rate:input=1,hidden=4,gain={gain}",
                      "--random-input", "2,5")  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        assert f"gain must be a positive number, got '{gain}'" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
