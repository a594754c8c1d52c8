"""Jacobians of recurrent maps and Lyapunov spectra against independent routes."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from torch import nn
from torch.func import jacrev

from rnngrad.errors import InvalidInputError, NumericalError, ShapeError
from rnngrad.lyapunov.dynamics import CellDynamics, ModuleDynamics
from rnngrad.lyapunov.finite_time import finite_time_spectrum
from rnngrad.lyapunov.spectrum import (
    kaplan_yorke_dimension,
    lyapunov_spectrum,
    student_t_975,
)
from rnngrad.theory.meanfield import mean_field_lambda1

MODULES = {
    "rnn_tanh": lambda: nn.RNN(3, 5, num_layers=2),
    "rnn_relu": lambda: nn.RNN(3, 5, nonlinearity="relu"),
    "lstm": lambda: nn.LSTM(3, 4, num_layers=2),
    "lstm_proj": lambda: nn.LSTM(3, 5, proj_size=2, num_layers=2),
    "gru": lambda: nn.GRU(3, 4, num_layers=3),
}


def generic(dynamics: ModuleDynamics) -> CellDynamics:
    """The same map through torch.func, for cross-checking the analytic Jacobians."""
    return CellDynamics(
        lambda x, s: dynamics.step(s, x)[0],
        state_size=dynamics.state_size,
        input_size=dynamics.input_size,
    )


@pytest.mark.parametrize("name", list(MODULES))
def test_analytic_jacobian_equals_torch_func_and_finite_differences(name: str) -> None:
    """J_t Q analytic == torch.func.jvp to 1e-10, and == central differences to 1e-7."""
    torch.manual_seed(0)
    module = MODULES[name]().double()
    dynamics = ModuleDynamics(module)
    state = dynamics.initial_state(2, torch.Generator().manual_seed(1))
    x = torch.randn(2, 3, dtype=torch.float64)
    basis = torch.randn(2, dynamics.state_size, 3, dtype=torch.float64)
    _, cache = dynamics.step(state, x)
    analytic = dynamics.apply_jacobian(cache, basis)
    route = generic(dynamics)
    _, generic_cache = route.step(state, x)
    through_func = route.apply_jacobian(generic_cache, basis)
    assert (analytic - through_func).abs().max().item() <= 1e-10 * analytic.abs().max().item()
    step = 1e-5
    for column in range(3):
        ahead = dynamics.step(state + step * basis[:, :, column], x)[0]
        behind = dynamics.step(state - step * basis[:, :, column], x)[0]
        numeric = (ahead - behind) / (2 * step)
        scale = max(1.0, analytic.abs().max().item())
        assert (numeric - analytic[:, :, column]).abs().max().item() <= 1e-7 * scale
        assert (numeric - through_func[:, :, column]).abs().max().item() <= 1e-7 * scale


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru"])
def test_trajectory_equals_the_fused_module(name: str) -> None:
    """Stepping the map reproduces the module's own fused forward, layer by layer."""
    torch.manual_seed(2)
    module = MODULES[name]().double()
    dynamics = ModuleDynamics(module)
    x = torch.randn(7, 1, 3, dtype=torch.float64)
    output, _ = module(x)
    state = torch.zeros(1, dynamics.state_size, dtype=torch.float64)
    top = dynamics.layers[-1]
    for t in range(7):
        state, _ = dynamics.step(state, x[t])
        h = state[:, top.state_slice][:, : top.size]
        assert torch.allclose(h, output[t], atol=1e-12)


def linear_cell(matrix: torch.Tensor) -> CellDynamics:
    return CellDynamics(lambda x, h: h @ matrix.T, state_size=matrix.shape[0], input_size=1)


def test_linear_map_gives_log_moduli_of_eigenvalues() -> None:
    """h' = A h: the exponents are ln |eig(A)| (A diagonalizable, distinct moduli)."""
    rng = np.random.default_rng(3)
    eigenvalues = np.array([0.98, -0.9, 0.6, 0.25])
    basis = rng.standard_normal((4, 4))
    matrix = torch.tensor(basis @ np.diag(eigenvalues) @ np.linalg.inv(basis))
    result = lyapunov_spectrum(linear_cell(matrix), steps=3000, warmup=10, batch=2, inputs="zeros")
    np.testing.assert_allclose(result.exponents, np.log(np.abs(eigenvalues)), atol=2e-3)


def test_fixed_point_gives_log_moduli_of_eigenvalues() -> None:
    """tanh RNN, no bias, rho(W) < 1: the attractor is h = 0 and lambda_i = ln|eig_i(W)|."""
    torch.manual_seed(4)
    module = nn.RNN(1, 6, bias=False).double()
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
        d = torch.tensor([0.9, 0.8, 0.7, 0.5, 0.3, 0.2], dtype=torch.float64)
        module.weight_hh_l0.copy_(q @ torch.diag(d) @ q.T)
    result = lyapunov_spectrum(module, steps=2000, warmup=500, batch=3)
    np.testing.assert_allclose(result.exponents, np.log(d.numpy()), atol=1e-3)
    assert result.kaplan_yorke_dim == 0.0
    assert result.reliable.all()


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru"])
def test_sum_of_exponents_is_mean_log_det(name: str) -> None:
    """sum_i lambda_i (k = n) equals the mean of ln|det J_t| along the same trajectory."""
    torch.manual_seed(5)
    module = MODULES[name]().double()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(3.0)
    dynamics = ModuleDynamics(module)
    steps, warmup = 60, 5
    result = lyapunov_spectrum(module, steps=steps, warmup=warmup, batch=1, seed=9, inputs="zeros")
    # Replay the same trajectory: same seed, same order of draws.
    generator = torch.Generator().manual_seed(9)
    state = dynamics.initial_state(1, generator)
    x = torch.zeros(1, 3, dtype=torch.float64)
    for _ in range(warmup):
        state, _ = dynamics.step(state, x)
    log_dets = []
    for _ in range(steps):
        full = jacrev(lambda s: dynamics.step(s.unsqueeze(0), x)[0].squeeze(0))(state.squeeze(0))
        log_dets.append(torch.linalg.slogdet(full).logabsdet.item())
        state, _ = dynamics.step(state, x)
    assert result.total == pytest.approx(np.mean(log_dets), rel=1e-9, abs=1e-9)


def random_network(size: int, gain: float, seed: int) -> nn.RNN:
    generator = torch.Generator().manual_seed(seed)
    module = nn.RNN(1, size, bias=False).double()
    with torch.no_grad():
        weights = torch.randn(size, size, generator=generator, dtype=torch.float64)
        module.weight_hh_l0.copy_(weights * gain / math.sqrt(size))
    return module


def test_two_trajectories_confirm_lambda1() -> None:
    """In the chaotic regime the two-trajectory estimate matches the QR estimate."""
    result = lyapunov_spectrum(random_network(100, 3.0, 0), steps=1500, warmup=300, k=3, batch=4)
    assert result.exponents[0] > 0.1
    assert result.lambda1_two_trajectories == pytest.approx(result.exponents[0], abs=0.02)
    assert np.all(np.diff(result.exponents) <= 0)
    assert result.running.shape[1] == 3 and result.running_steps[-1] == 1500


def mpmath_mean_field(gain: float) -> float:
    """An independent route: mpmath quadrature and root finding at 30 digits."""
    with mpmath.workdps(30):
        density = lambda z: mpmath.exp(-z * z / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa: E731

        def expect(f):  # type: ignore[no-untyped-def]
            return mpmath.quad(lambda z: f(z) * density(z), [-mpmath.inf, 0, mpmath.inf])

        q = mpmath.findroot(
            lambda q: gain**2 * expect(lambda z: mpmath.tanh(mpmath.sqrt(q) * z) ** 2) - q,
            gain**2 / 2,
        )
        chi = gain**2 * expect(lambda z: (1 - mpmath.tanh(mpmath.sqrt(q) * z) ** 2) ** 2)
        return float(mpmath.log(chi) / 2)


@pytest.mark.parametrize("gain", [1.2, 2.0, 4.0])
def test_mean_field_matches_an_independent_quadrature(gain: float) -> None:
    assert mean_field_lambda1(gain).lambda1 == pytest.approx(mpmath_mean_field(gain), rel=1e-9)


def test_mean_field_below_the_transition() -> None:
    assert mean_field_lambda1(0.7).lambda1 == pytest.approx(math.log(0.7))
    assert mean_field_lambda1(1.0).lambda1 == 0.0
    with pytest.raises(InvalidInputError):
        mean_field_lambda1(-1.0)


def test_measured_lambda1_approaches_mean_field_for_a_large_network() -> None:
    """N = 400, g = 3: the measured lambda_1 is within 0.05 nats of the N -> inf theory."""
    result = lyapunov_spectrum(random_network(400, 3.0, 1), steps=600, warmup=200, k=1, batch=2)
    assert result.exponents[0] == pytest.approx(mean_field_lambda1(3.0).lambda1, abs=0.05)


def test_kaplan_yorke() -> None:
    assert kaplan_yorke_dimension(np.array([0.5, -0.2, -1.0]), complete=True) == pytest.approx(2.3)
    assert kaplan_yorke_dimension(np.array([-0.1, -0.2]), complete=True) == 0.0
    assert kaplan_yorke_dimension(np.array([0.3, 0.1]), complete=True) == 2.0
    assert kaplan_yorke_dimension(np.array([0.3, 0.1]), complete=False) is None


def test_student_t() -> None:
    assert student_t_975(1) == pytest.approx(12.706)
    assert student_t_975(9) == pytest.approx(2.262)
    assert student_t_975(1000) == pytest.approx(1.96)


def test_units() -> None:
    result = lyapunov_spectrum(random_network(20, 0.5, 2), steps=200, warmup=50, k=2, batch=2)
    np.testing.assert_allclose(result.exponents_log10, result.exponents / math.log(10))
    np.testing.assert_allclose(result.exponents_bits, result.exponents / math.log(2))
    assert result.units == "nats per step"
    assert np.all(np.isfinite(result.ci95))


def test_given_and_random_inputs() -> None:
    module = nn.GRU(3, 4).double()
    sequence = torch.randn(150, 3, dtype=torch.float64)
    given = lyapunov_spectrum(module, steps=100, warmup=50, inputs=sequence, batch=2)
    assert given.exponents.shape == (4,)
    random = lyapunov_spectrum(module, steps=100, warmup=50, inputs="random", batch=2)
    assert np.all(np.isfinite(random.exponents))
    with pytest.raises(ShapeError, match="warm-up plus steps"):
        lyapunov_spectrum(module, steps=200, warmup=50, inputs=sequence)


def test_finite_time_spectrum_of_a_diagonal_map_is_exact() -> None:
    """h' = D h: dh_T/dh_k = D^(T-k), stretching factors (T-k) ln|d_i| exactly."""
    d = torch.tensor([1.1, -0.5, 0.8], dtype=torch.float64)
    result = finite_time_spectrum(linear_cell(torch.diag(d)), steps=30, warmup=0)
    expected = np.sort(np.log(np.abs(d.numpy())))[::-1]
    for k in range(1, 31):
        np.testing.assert_allclose(result.log_stretch[k - 1], (30 - k) * expected, atol=1e-12)
        singular = result.log_singular_values[k - 1]  # type: ignore[index]
        target = (30 - k) * expected
        resolvable = target - target[0] > np.log(1e-8)
        assert np.array_equal(np.isfinite(singular), resolvable)
        np.testing.assert_allclose(singular[resolvable], target[resolvable], atol=1e-12)


def test_finite_time_top_factor_bounds_and_approaches_the_norm() -> None:
    """sum ln R_11 <= ln ||dh_T/dh_k||_2, and their rates per step converge as T - k grows.

    The first column follows a fixed vector, whose growth differs from sigma_1 by the
    constant ln|cos| of its angle to the top singular vector: an O(1 / (T - k)) rate error.
    """
    module = random_network(8, 1.5, 3)
    dynamics = ModuleDynamics(module)
    result = finite_time_spectrum(module, steps=80, warmup=20, seed=4)
    generator = torch.Generator().manual_seed(4)
    state = dynamics.initial_state(1, generator)
    x = torch.zeros(1, 1, dtype=torch.float64)
    for _ in range(20):
        state, _ = dynamics.step(state, x)
    jacobians = []
    for _ in range(80):
        jacobians.append(
            jacrev(lambda s: dynamics.step(s.unsqueeze(0), x)[0].squeeze(0))(state.squeeze(0))
        )
        state, _ = dynamics.step(state, x)
    product = torch.eye(8, dtype=torch.float64)
    gaps = {}
    for k in range(79, 0, -1):  # dh_80/dh_k = J_80 ... J_{k+1}; jacobians[j] is J_{j+1}
        product = product @ jacobians[k]
        exact = torch.linalg.matrix_norm(product, 2).log().item()
        assert result.log_stretch[k - 1, 0] <= exact + 1e-9
        gaps[k] = (exact - result.log_stretch[k - 1, 0]) / (80 - k)
        # The exact singular values where double precision resolves them.
        reference = torch.linalg.svdvals(product.detach()).log().numpy()
        ours = result.log_singular_values[k - 1]  # type: ignore[index]
        resolved = np.isfinite(ours)
        assert resolved[0] and ours[0] == pytest.approx(exact, abs=1e-9)
        np.testing.assert_allclose(ours[resolved], reference[resolved], rtol=0, atol=1e-7)
    assert gaps[1] < 0.02
    assert gaps[1] < gaps[70]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 99}, InvalidInputError, "k must be between"),
        ({"reorth": "sometimes"}, InvalidInputError, "'auto' or a whole number"),
        ({"qr": "lu"}, InvalidInputError, "householder, cholesky2"),
        ({"reorth": 0}, InvalidInputError, "reorth"),
        ({"inputs": "noise"}, InvalidInputError, "zeros"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        lyapunov_spectrum(nn.RNN(2, 3).double(), **kwargs)


def test_diverging_trajectory_is_an_error() -> None:
    cell = CellDynamics(lambda x, h: 10.0 * h, state_size=2, input_size=1)
    with pytest.raises(NumericalError, match="diverged"):
        lyapunov_spectrum(cell, steps=500, warmup=10)


def test_cell_with_a_tuple_state_is_refused() -> None:
    lstm_cell = nn.LSTMCell(1, 3).double()
    cell = CellDynamics(lambda x, h: lstm_cell(x, (h, h)), state_size=3, input_size=1)
    with pytest.raises(ShapeError, match="flat state"):
        lyapunov_spectrum(cell, steps=20, warmup=2)


def test_stacked_bidirectional_layers_at_once_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="one layer"):
        lyapunov_spectrum(nn.GRU(2, 3, num_layers=2, bidirectional=True).double())
    with pytest.raises(InvalidInputError, match="causal"):
        ModuleDynamics(nn.GRU(2, 3, num_layers=2, bidirectional=True).double())


def test_dead_relu_directions_are_marked_unreliable() -> None:
    module = nn.RNN(1, 3, nonlinearity="relu", bias=False).double()
    with torch.no_grad():
        module.weight_hh_l0.copy_(-torch.eye(3))
    result = lyapunov_spectrum(module, steps=50, warmup=5, batch=1)
    assert np.isneginf(result.exponents).all()
    assert not result.reliable.any()


def test_per_layer_spectra_make_up_the_stacked_spectrum() -> None:
    """Block lower-triangular stacked Jacobian: its spectrum is the union of the layers'."""
    torch.manual_seed(6)
    module = nn.GRU(2, 3, num_layers=2).double()
    kwargs = {"steps": 3000, "warmup": 200, "batch": 2, "seed": 1, "inputs": "zeros"}
    stacked = lyapunov_spectrum(module, **kwargs)
    bottom = lyapunov_spectrum(ModuleDynamics(module, layers=1, only_top=True), **kwargs)
    top = lyapunov_spectrum(ModuleDynamics(module, layers=2, only_top=True), **kwargs)
    assert top.state_size == 3 and top.exponents.shape == (3,)
    union = np.sort(np.concatenate([bottom.exponents, top.exponents]))[::-1]
    np.testing.assert_allclose(stacked.exponents, union, atol=5e-3)


def test_a_full_spectrum_s_summaries_have_their_closed_forms() -> None:
    """``h_{t+1} = diag(e^{lambda}) h_t``: the exponents are ``lambda`` exactly, so the
    unstable fraction is 2/6, the entropy rate per unit (0.02 + 0.01)/6, the Kaplan-Yorke
    dimension 2 + 0.03/0.05 (partial sums 0.02, 0.03, -0.02) over 6 units, the
    mean exponent the mean of lambda; both halves nearly the same; a partial spectrum has
    none; JSON and the frame carry them."""
    from rnngrad.jsonout import lyapunov_json

    exponents = np.array([0.02, 0.01, -0.05, -0.2, -0.5, -1.0])
    system = linear_cell(torch.diag(torch.exp(torch.tensor(exponents))))
    # the basis aligns with the modes over the run: each exponent carries an O(1/T) error
    # (their sum, ln |det|, is exact at every step)
    result = lyapunov_spectrum(system, steps=3000, warmup=0, batch=2, progress=False)
    summaries = result.summaries
    assert summaries is not None
    assert summaries.unstable_fraction == pytest.approx(2 / 6)
    assert summaries.entropy_rate_per_unit == pytest.approx(0.03 / 6, abs=2e-4)
    assert summaries.kaplan_yorke_per_unit == pytest.approx(2.6 / 6, abs=3e-3)
    assert summaries.mean_exponent == pytest.approx(exponents.mean(), rel=1e-9)
    assert summaries.halves is not None
    for half in summaries.halves:  # each half's average carries the basis's alignment
        assert half.entropy_rate_per_unit == pytest.approx(0.03 / 6, abs=4e-4)
    payload = lyapunov_json(result, "test", None)["summaries"]
    assert payload["unstable_fraction"] == pytest.approx(2 / 6)
    assert payload["first_half"]["mean_exponent"] == pytest.approx(exponents.mean(), rel=1e-6)
    frame = result.to_frame().attrs["summaries"]
    assert frame["kaplan_yorke_per_unit"] == summaries.kaplan_yorke_per_unit
    partial = lyapunov_spectrum(system, steps=50, warmup=0, k=3, batch=2, progress=False)
    assert partial.summaries is None and lyapunov_json(partial, "t", None)["summaries"] is None
