"""Modern recurrences: scans against sequential loops, the cells' scans against their own
step-by-step definitions, exact profiles against retain_grad, closed-form spectra."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile, lyapunov_spectrum
from rnngrad.errors import InvalidInputError
from rnngrad.modern import (
    LRU,
    IndRNN,
    MinGRU,
    MinLSTM,
    diagonal_adjoint,
    linear_scan,
    log_linear_scan,
)


def loop(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The sequential reference of h_t = a_t h_{t-1} + b_t."""
    h, states = h0, []
    for t in range(b.shape[0]):
        h = (a[t] if a.dim() == b.dim() else a) * h + b[t]
        states.append(h)
    return torch.stack(states)


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 64, 97, 100, 1000])
@pytest.mark.parametrize(
    "kind", ["real", "complex", "constant", "per-channel", "broadcast", "real-a-complex-b"]
)
def test_linear_scan_equals_the_loop(steps: int, kind: str) -> None:
    """Every chunking (T prime: padded; T with a divisor near sqrt(T): not), every shape
    of coefficient (per step, constant, constant per channel, broadcast over the batch),
    real and complex, float64."""
    generator = torch.Generator().manual_seed(steps)
    b = torch.randn(steps, 3, 4, dtype=torch.float64, generator=generator)
    a = torch.rand(steps, 3, 4, dtype=torch.float64, generator=generator) * 1.2
    h0 = torch.randn(3, 4, dtype=torch.float64, generator=generator)
    if kind == "complex":
        a = torch.polar(a, 6 * torch.rand(a.shape, dtype=torch.float64, generator=generator))
        b, h0 = b.to(torch.complex128), h0.to(torch.complex128)
    if kind == "constant":
        a = a[0, 0]
    if kind == "per-channel":
        a = a[0, 0].to(torch.complex128) * torch.exp(1j * torch.arange(4.0, dtype=torch.float64))
        b, h0 = b.to(torch.complex128), h0.to(torch.complex128)
    if kind == "broadcast":
        a = a[:, :1]
    if kind == "real-a-complex-b":
        b, h0 = b * (1 + 0.5j), h0.to(torch.complex128)
    np.testing.assert_allclose(linear_scan(a, b, h0).numpy(), loop(a, b, h0).numpy(), rtol=1e-10)
    zeros = torch.zeros_like(h0)
    np.testing.assert_allclose(linear_scan(a, b).numpy(), loop(a, b, zeros).numpy(), rtol=1e-10)


def test_log_scan_equals_the_loop_even_where_plain_products_underflow() -> None:
    generator = torch.Generator().manual_seed(0)
    log_a = -5 * torch.rand(300, 2, 3, dtype=torch.float64, generator=generator)
    log_b = torch.randn(300, 2, 3, dtype=torch.float64, generator=generator)
    log_h0 = torch.zeros(2, 3, dtype=torch.float64)
    expected = loop(log_a.exp(), log_b.exp(), log_h0.exp())
    np.testing.assert_allclose(log_linear_scan(log_a, log_b, log_h0).numpy(), expected.numpy(),
                               rtol=1e-10)  # fmt: skip


@pytest.mark.parametrize("complex_state", [False, True])
def test_adjoint_scan_equals_retain_grad(complex_state: bool) -> None:
    """g_t = G_t + conj(a_{t+1}) g_{t+1} is dL/dh_t of the loop, via autograd."""
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(30, 2, 3, dtype=torch.float64, generator=generator)
    b = torch.randn(30, 2, 3, dtype=torch.float64, generator=generator)
    weights = torch.randn(30, 2, 3, dtype=torch.float64, generator=generator)
    if complex_state:
        a = torch.polar(a, torch.rand(a.shape, dtype=torch.float64, generator=generator) * 3)
        b = b.to(torch.complex128)
    h = torch.zeros(2, 3, dtype=b.dtype, requires_grad=True)
    states = []
    for t in range(30):
        h = a[t] * h + b[t]
        h.retain_grad()
        states.append(h)
    stacked = torch.stack(states)
    (weights * (stacked.abs() ** 2 if complex_state else stacked)).sum().backward()
    direct = (
        2 * weights * stacked.detach() if complex_state else weights
    )  # dL/dh (PyTorch's convention for complex h: 2 w h)
    total = diagonal_adjoint(direct, a)
    expected = torch.stack([s.grad for s in states])  # type: ignore[misc]
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


CELLS = {
    "lru": lambda: LRU(3, 5, generator=torch.Generator().manual_seed(2)),
    "mingru": lambda: MinGRU(3, 5),
    "minlstm": lambda: MinLSTM(3, 5),
    "indrnn": lambda: IndRNN(3, 5, max_length=20),
}


def sequential(cell: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    h = cell.initial_state(x.shape[1], x)
    states = []
    for t in range(x.shape[0]):
        h = cell.step(x[t], h)
        states.append(h)
    return states


@pytest.mark.parametrize("kind", list(CELLS))
def test_the_scan_equals_the_step_by_step_definition(kind: str) -> None:
    """Forward states and every parameter's gradient, scan against loop, float64."""
    torch.manual_seed(3)
    cell = CELLS[kind]().double()
    x = torch.randn(40, 2, 3, dtype=torch.float64)
    fast = cell(x)
    slow = torch.stack(sequential(cell, x))
    np.testing.assert_allclose(fast.detach().numpy(), slow.detach().numpy(), rtol=1e-9, atol=1e-12)
    weights = torch.randn(fast.shape, dtype=torch.float64)
    parameters = list(cell.parameters())
    grads_fast = torch.autograd.grad((weights * fast.real).sum(), parameters, allow_unused=True)
    grads_slow = torch.autograd.grad((weights * slow.real).sum(), parameters, allow_unused=True)
    compared = 0
    for got, expected in zip(grads_fast, grads_slow, strict=True):
        assert (got is None) == (expected is None)
        if got is not None and expected is not None:
            np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-8, atol=1e-12)
            compared += 1
    assert compared >= 2


class Reader(nn.Module):
    """A model around a modern layer: a linear read-out of the last state's real part."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(x).real[-4:].mean(dim=0))


@pytest.mark.parametrize("kind", list(CELLS))
def test_the_profile_equals_retain_grad_on_the_definition(kind: str) -> None:
    torch.manual_seed(4)
    model = Reader(CELLS[kind]()).double()
    x = torch.randn(25, 3, 3, dtype=torch.float64)
    target = torch.randn(3, 2, dtype=torch.float64)

    def loss(out: torch.Tensor) -> torch.Tensor:
        return ((out - target) ** 2).sum()

    profile = gradient_profile(model, x, loss=loss, keep_gradients=True)
    assert profile.module_name == "layer" and profile.steps == 25
    states = sequential(model.layer, x)
    for state in states:
        state.retain_grad()
    loss(model.head(torch.stack(states).real[-4:].mean(dim=0))).backward()
    expected = torch.stack([s.grad for s in states], dim=1)  # type: ignore[misc]
    got = profile.layers[0].grad
    assert got is not None and expected.abs().max() > 0
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-8, atol=1e-12)


def test_lru_eigenvalues_lie_on_the_ring_and_set_its_lyapunov_spectrum() -> None:
    """Ring initialisation; a diagonal linear recurrence's exponents are ln|lambda_j|
    (each twice: the real and imaginary parts rotate together)."""
    layer = LRU(2, 6, r_min=0.5, r_max=0.95, max_phase=1.0,
                generator=torch.Generator().manual_seed(5)).double()  # fmt: skip
    lam = layer.eigenvalues().detach()
    assert ((lam.abs() >= 0.5 - 1e-12) & (lam.abs() <= 0.95 + 1e-12)).all()
    assert ((lam.angle() >= 0) & (lam.angle() <= 1.0)).all()
    gamma = torch.exp(layer.gamma_log).detach()
    # drawn in float32, then converted: float32 accuracy
    np.testing.assert_allclose(gamma.numpy(), torch.sqrt(1 - lam.abs() ** 2).numpy(), rtol=1e-6)
    result = lyapunov_spectrum(layer, steps=400, warmup=10, batch=2, inputs="random")
    expected = np.sort(np.repeat(np.log(lam.abs().numpy()), 2))[::-1]
    np.testing.assert_allclose(result.exponents, expected, atol=1e-2)


def test_indrnn_keeps_its_recurrent_weights_in_range() -> None:
    layer = IndRNN(2, 4, max_length=10)
    with torch.no_grad():
        layer.u.mul_(10)
    layer.constrain_()
    assert (layer.u.abs() <= 2 ** (1 / 10) + 1e-12).all()


@pytest.mark.parametrize(
    ("arguments", "match"),
    [({"r_min": 0.9, "r_max": 0.5}, "r_min < r_max"), ({"r_min": 0.0, "r_max": 0.5}, "0 < r_min"),
     ({"r_max": 1.0}, "< 1"), ({"max_phase": 0.0}, "max_phase")],
)  # fmt: skip
def test_a_bad_ring_is_refused(arguments: dict[str, float], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        LRU(2, 3, **arguments)


def test_minimal_cells_keep_positive_states_and_their_closed_form_coefficient() -> None:
    """minGRU's coefficient is 1 - z_t, read back from the layer's own Jacobian."""
    torch.manual_seed(6)
    cell = MinGRU(3, 4).double()
    x = torch.randn(10, 2, 3, dtype=torch.float64)
    states = cell(x)
    assert (states > 0).all()
    k = cell.linear(x).chunk(2, dim=-1)[0]
    np.testing.assert_allclose(
        cell.state_jacobian(x, states, cell.initial_state(2, x)).detach().numpy(),
        (1 - torch.sigmoid(k)).detach().numpy(), rtol=1e-12,
    )  # fmt: skip
    assert math.isfinite(float(states.detach().sum()))


def test_the_minimal_cells_g_is_the_papers_piecewise_function() -> None:
    """``g(v) = v + 1/2`` for ``v >= 0`` and ``sigmoid(v)`` below (Feng et al. 2024),
    written with ``torch.where`` here: equal values, and equal derivatives ``1`` and
    ``sigmoid'(v)`` away from the kink, by autograd in float64."""
    from rnngrad.modern.minimal import _g

    v = torch.cat([torch.linspace(-30, -1e-9, 400), torch.linspace(1e-9, 30, 400),
                   torch.tensor([0.0, -0.0])]).double().requires_grad_(True)  # fmt: skip
    reference = torch.where(v >= 0, v + 0.5, torch.sigmoid(v))
    assert torch.equal(_g(v), reference)
    (grad,) = torch.autograd.grad(_g(v).sum(), v)
    (expected,) = torch.autograd.grad(reference.sum(), v)
    away = v.detach() != 0
    np.testing.assert_allclose(grad[away].numpy(), expected[away].numpy(), rtol=1e-15)


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm", "indrnn"])
def test_the_lab_trains_each_modern_cell(cell: str, tmp_path: Path) -> None:
    """A few steps of the adding problem: finite losses, a profile, the recurrence's radius
    (the LRU's largest |lambda|, IndRNN's largest |u| within 2^(1/T))."""
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.train import train

    config = TrainConfig(task="adding", seq_len=12, cell=cell, hidden=8, steps=6, batch=8,
                         eval_every=3, eval_batch=16, profile_every=3)  # fmt: skip
    result = train(config, tmp_path)
    assert result.steps == 6 and math.isfinite(result.final_loss)
    assert result.records["profiles"], "the training run profiles the modern cell"
    radius = result.records["evaluations"][-1]["spectral_radius"]
    if cell == "lru":
        assert 0.9 <= radius < 1.0
    elif cell == "indrnn":
        assert radius <= 2 ** (1 / 12) + 1e-6
    else:
        assert radius is None or math.isnan(radius)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"cell": "lru", "init": "orthogonal"}, "has its own"),
     ({"cell": "mingru", "orthogonal_constraint": True}, "rnn and relu"),
     ({"cell": "indrnn", "forget_bias": 1.0}, "lstm cell only"),
     ({"cell": "gru", "init": "chrono:50"}, "lstm cell only"),
     ({"cell": "lstm", "init": "chrono:1"}, "T > 2")],
)  # fmt: skip
def test_remedies_that_do_not_apply_are_refused(overrides: dict[str, object], match: str) -> None:
    from rnngrad.lab.config import TrainConfig

    settings = {"task": "adding", "seq_len": 10, "cell": "rnn", **overrides}
    with pytest.raises(InvalidInputError, match=match):
        TrainConfig(**settings).validate()  # type: ignore[arg-type]


def test_chrono_initialisation_spreads_the_forget_gate_biases() -> None:
    """Tallec & Ollivier (2018): b_f = ln U(1, T - 1), b_i = -b_f, recurrent biases zero."""
    from rnngrad.lab.models import LabModel

    torch.manual_seed(7)
    model = LabModel("lstm", 2, 64, 1, per_step=False, init="chrono:100")
    bias = model.rnn.get_parameter("bias_ih_l0").detach()
    forget, inputs = bias[64:128], bias[:64]
    assert (forget >= 0).all() and (forget <= math.log(99) + 1e-6).all()
    assert torch.equal(inputs, -forget)
    assert model.rnn.get_parameter("bias_hh_l0").detach()[:128].abs().max() == 0


@pytest.mark.parametrize("kind", ["real", "complex", "constant", "constant-complex"])
def test_the_scans_own_backward_passes_gradcheck(kind: str) -> None:
    """The adjoint-scan backward against finite differences (torch.autograd.gradcheck)."""
    generator = torch.Generator().manual_seed(8)
    shape = (11, 2, 3)
    dtype = torch.complex128 if "complex" in kind else torch.float64
    a = torch.rand(shape[1:] if "constant" in kind else shape, dtype=torch.float64,
                   generator=generator)  # fmt: skip
    if "complex" in kind:
        a = torch.polar(a, torch.rand(a.shape, dtype=torch.float64, generator=generator))
    b = torch.randn(shape, dtype=dtype, generator=generator)
    h0 = torch.randn(shape[1:], dtype=dtype, generator=generator)
    inputs = tuple(t.clone().requires_grad_(True) for t in (a, b, h0))
    assert torch.autograd.gradcheck(linear_scan, inputs)


@pytest.mark.parametrize("cell", ["lru", "mingru"])
def test_the_report_explains_a_modern_cell(cell: str) -> None:
    """Both spectrum sections read the coefficients as eigenvalues token by token (the
    selective criterion); the LRU's also shows its lambda_j exactly (as 2 x 2 real blocks,
    whose eigenvalues are lambda and its conjugate), and says its coefficients do not
    depend on the token; both get the model's own profile and Lyapunov spectrum."""
    from rnngrad.lab.models import LabModel
    from rnngrad.report.build import build_sections

    torch.manual_seed(9)
    model = LabModel(cell, 2, 6, 1, per_step=False)
    x = torch.randn(30, 4, 2)
    sections = {s.key: s for s in build_sections(module=model, inputs=x, quick=True)}
    spectrum = sections["spectrum"]
    if cell == "lru":
        numbers = spectrum.numbers["lambda (real form)"]
        lam = model.rnn.eigenvalues().detach().abs().max().item()  # type: ignore[operator]
        assert numbers["spectral_radius"] == pytest.approx(lam, rel=1e-6)
        assert "not selective" in spectrum.sentence
    assert "made selective" in spectrum.sentence and spectrum.numbers["rnn"]["kept_share"] >= 0
    assert sections["profile"].numbers
    assert "the recurrence" in sections["lyapunov"].numbers  # the model itself, measured
    assert sections["memory"].numbers  # the states' sensitivity to their own parameters


def test_a_stacked_lru_profiles_its_first_layer_exactly() -> None:
    """The lab's stacked LRU (residual blocks, GLUs between): the profile of its first
    layer equals retain_grad on that layer's step-by-step states, float64, with every
    upper layer between the states and the loss."""
    from rnngrad.lab.models import LabModel

    torch.manual_seed(8)
    model = LabModel("lru", 2, 6, 3, per_step=False, layers=3).double()
    x = torch.randn(20, 4, 2, dtype=torch.float64)
    target = torch.randn(4, 3, dtype=torch.float64)

    def loss(out: torch.Tensor) -> torch.Tensor:
        return ((out - target) ** 2).sum()

    profile = gradient_profile(model, x, loss=loss, module="rnn", keep_gradients=True)
    encoded = model.encoder(x)
    first = model.lru_layers()[0]
    z = model.norms[0](encoded)
    states = sequential(first, z)
    for state in states:
        state.retain_grad()
    stacked = torch.stack(states)
    u = encoded + nn.functional.glu(model.mixers[0](nn.functional.gelu(first.read(stacked, z))), -1)
    for layer, norm, mixer in zip(model.lru_layers()[1:], model.norms[1:], model.mixers[1:],
                                  strict=True):  # fmt: skip
        zz = norm(u)
        u = u + nn.functional.glu(mixer(nn.functional.gelu(layer.read(layer(zz), zz))), -1)
    loss(model.head(u[-1])).backward()
    expected = torch.stack([s.grad for s in states], dim=1)  # type: ignore[misc]
    got = profile.layers[0].grad
    assert got is not None and expected.abs().max() > 0
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model(x).detach().numpy(), model.head(u[-1]).detach().numpy(),
                               rtol=1e-10, atol=1e-12)  # fmt: skip


def test_a_stacked_lru_reports_the_largest_eigenvalue_of_all_its_layers(tmp_path: Path) -> None:
    """The spectral radius of a stacked LRU is max_l max_j |lambda_j^(l)| over the layers,
    and each layer's eigenvalues start on the ring the run asks for."""
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.models import LabModel
    from rnngrad.lab.train import train

    torch.manual_seed(9)
    model = LabModel("lru", 1, 16, 1, per_step=False, layers=3, r_min=0.2, r_max=0.6)
    moduli = [layer.eigenvalues().detach().abs() for layer in model.lru_layers()]
    assert len(moduli) == 3 and all(((m >= 0.2 - 1e-6) & (m <= 0.6 + 1e-6)).all() for m in moduli)
    assert model.spectral_radius() == pytest.approx(float(torch.cat(moduli).max()), rel=1e-12)
    config = TrainConfig(task="adding", seq_len=10, cell="lru", hidden=8, steps=4, batch=8,
                         eval_every=2, eval_batch=16, profile_every=2, layers=2, r_min=0.5,
                         r_max=0.7)  # fmt: skip
    result = train(config, tmp_path)
    assert result.steps == 4 and math.isfinite(result.final_loss) and result.records["profiles"]
    assert result.summary()["layers"] == 2
    assert 0.5 - 0.05 <= result.records["evaluations"][0]["spectral_radius"] <= 0.7 + 0.05


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"cell": "gru", "layers": 2}, "lru cell only"),
     ({"cell": "rnn", "r_min": 0.5}, "lru cell only"),
     ({"cell": "lru", "r_min": 0.99, "r_max": 0.9}, "r_min < r_max"),
     ({"cell": "lru", "r_min": 0.0}, "0 < r_min"),
     ({"cell": "lru", "r_max": 1.0}, "< 1"),
     ({"cell": "lru", "r_max": 0.5}, r"r_min=0\.9, r_max=0\.5"),
     ({"cell": "lru", "layers": 0}, "1..64")],
)  # fmt: skip
def test_lru_options_out_of_range_or_for_another_cell_are_refused(
    overrides: dict[str, object], match: str
) -> None:
    from rnngrad.lab.config import TrainConfig

    settings = {"task": "adding", "seq_len": 10, "cell": "rnn", **overrides}
    with pytest.raises(InvalidInputError, match=match):
        TrainConfig(**settings).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize("steps", [1, 2, 7, 97, 100])
@pytest.mark.parametrize("constant", [True, False])
def test_the_reverse_scan_equals_the_backward_loop(steps: int, constant: bool) -> None:
    """h_t = a_t h_{t+1} + b_t from t = T down to 1 (the adjoint's direction, no flips),
    with the start entering after step T, padded or not."""
    from rnngrad.modern.scan import _blocked_scan

    generator = torch.Generator().manual_seed(steps)
    shape = (4,) if constant else (steps, 3, 4)
    a = torch.rand(shape, dtype=torch.float64, generator=generator) * 1.1
    b = torch.randn(steps, 3, 4, dtype=torch.float64, generator=generator)
    start = torch.randn(3, 4, dtype=torch.float64, generator=generator)
    h, states = start, []
    for t in range(steps - 1, -1, -1):
        h = (a if constant else a[t]) * h + b[t]
        states.append(h)
    expected = torch.stack(states[::-1])
    got = _blocked_scan(a, b, start, reverse=True)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


def _indrnn_loop(layer: IndRNN, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The reference: the recurrence written out step by step, through autograd."""
    driven, h, states = layer.input(x), h0, []
    for t in range(x.shape[0]):
        h = torch.relu(driven[t] + layer.u * h)
        states.append(h)
    return torch.stack(states)


@pytest.mark.parametrize("steps", [1, 2, 57])
def test_indrnn_forward_and_gradients_equal_the_autograd_loop(steps: int) -> None:
    """IndRNN's graph-free forward and scanned backward give the states and every
    gradient (input, W, b, u, h0) of the step-by-step loop through autograd, in float64;
    u of both signs and some units switched off by relu make every path count."""
    generator = torch.Generator().manual_seed(steps)
    layer = IndRNN(3, 6, max_length=steps).double()
    with torch.no_grad():
        layer.u.copy_(torch.tensor([0.9, -0.8, 1.0, 0.3, -1.01, 0.0], dtype=torch.float64))
    x = torch.randn(steps, 4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(4, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(steps, 4, 6, generator=generator, dtype=torch.float64)
    results = []
    for run in (layer, lambda x, h: _indrnn_loop(layer, x, h)):
        states = run(x, h0)
        loss = (weights * states).sum() + 0.5 * (states[-1] ** 2).sum()
        inputs = [x, h0, layer.u, layer.input.weight, layer.input.bias]
        results.append((states.detach(), torch.autograd.grad(loss, inputs)))
    (got, got_grads), (expected, expected_grads) = results
    assert (expected > 0).any() and (expected == 0).any(), "both sides of relu must occur"
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_indrnn_passes_gradcheck() -> None:
    """Finite differences agree with the scanned backward (float64)."""
    generator = torch.Generator().manual_seed(3)
    layer = IndRNN(2, 3, max_length=5).double()
    x = torch.randn(5, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(2, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: layer(x, h), (x, h0))


def test_lru_is_the_papers_complex_recurrence() -> None:
    """The LRU (Orvieto et al. 2023) written with complex matrices ``B = B_re + i B_im``
    and ``C = C_re + i C_im``: ``x_t = lambda x_{t-1} + gamma (B u_t)``,
    ``y_t = Re(C x_t) + D u_t``, step by step with ``lambda = exp(-exp(nu) + i
    exp(theta))`` and ``gamma = exp(gamma_log)``; the layer's scan and read-out give the
    same outputs and the same gradients for every parameter, in float64."""
    torch.manual_seed(12)
    cell = LRU(3, 4, r_min=0.6, r_max=0.98, max_phase=math.pi).double()
    u = torch.randn(40, 2, 3, dtype=torch.float64)
    h0 = torch.randn(2, 4, dtype=torch.complex128)

    def reference() -> torch.Tensor:
        lam = torch.exp(torch.complex(-torch.exp(cell.nu_log), torch.exp(cell.theta_log)))
        gamma = torch.exp(cell.gamma_log)
        b_matrix = torch.complex(cell.B_re, cell.B_im)
        c_matrix = torch.complex(cell.C_re, cell.C_im)
        x, outputs = h0, []
        for t in range(u.shape[0]):
            x = lam * x + gamma * (u[t].to(torch.complex128) @ b_matrix.T)
            outputs.append((x @ c_matrix.T).real + cell.D * u[t])
        return torch.stack(outputs)

    expected = reference()
    got = cell.read(cell(u, h0), u)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-12,
                               atol=1e-13)  # fmt: skip
    weights = torch.randn_like(expected)
    parameters = list(cell.parameters())
    for fast, slow in zip(
        torch.autograd.grad((weights * got).sum(), parameters),
        torch.autograd.grad((weights * expected).sum(), parameters),
        strict=True,
    ):
        np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("with_h0", [False, True])
def test_lru_final_state_equals_the_last_step_of_the_loop(with_h0: bool) -> None:
    """``final_state`` (a weighted sum of the inputs by powers of lambda) against the
    step-by-step definition's last state, value and every parameter's gradient, float64,
    over enough steps that the slowest eigenvalue's powers span orders of magnitude."""
    torch.manual_seed(11)
    cell = LRU(3, 5, r_min=0.5, r_max=0.99, max_phase=math.pi).double()
    x = torch.randn(300, 2, 3, dtype=torch.float64)
    h0 = torch.randn(2, 5, dtype=torch.complex128) if with_h0 else None
    h = cell.initial_state(2, x) if h0 is None else h0
    for t in range(x.shape[0]):
        h = cell.step(x[t], h)
    fast = cell.final_state(x, h0)
    np.testing.assert_allclose(fast.detach().numpy(), h.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = torch.randn(2, 5, dtype=torch.complex128)
    parameters = list(cell.parameters())
    grads_fast = torch.autograd.grad((weights * fast).real.sum(), parameters, allow_unused=True)
    grads_slow = torch.autograd.grad((weights * h).real.sum(), parameters, allow_unused=True)
    compared = 0
    for got, expected in zip(grads_fast, grads_slow, strict=True):
        if expected is None:  # C and D do not enter the state
            assert got is None
            continue
        assert got is not None
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-8, atol=1e-12)
        compared += 1
    assert compared == 5  # nu, theta, gamma, B_re, B_im


@pytest.mark.parametrize("layers", [1, 2])
def test_the_lab_lru_read_at_its_last_step_equals_the_full_computation(layers: int) -> None:
    """A head on the last step: the model computes only what that step needs (the top
    block's last state as a weighted sum, its read-out at that step); its output and
    every parameter's gradient equal the computation over all steps, float64."""
    from rnngrad.lab.models import LabModel

    torch.manual_seed(12)
    model = LabModel("lru", 2, 6, 3, per_step=False, layers=layers).double()
    x = torch.randn(50, 4, 2, dtype=torch.float64)

    def full(inputs: torch.Tensor) -> torch.Tensor:  # every block over all steps
        u = model.encoder(inputs)
        if layers == 1:
            return model.head(nn.functional.gelu(model.rnn.read(model.rnn(u), u))[-1])
        for layer, norm, mixer in zip(model.lru_layers(), model.norms, model.mixers,
                                      strict=True):  # fmt: skip
            z = norm(u)
            u = u + nn.functional.glu(mixer(nn.functional.gelu(layer.read(layer(z), z))), -1)
        return model.head(u[-1])

    fast, slow = model(x), full(x)
    np.testing.assert_allclose(fast.detach().numpy(), slow.detach().numpy(), rtol=1e-10, atol=1e-12)
    parameters = list(model.parameters())
    weights = torch.randn(fast.shape, dtype=torch.float64)
    grads_fast = torch.autograd.grad((weights * fast).sum(), parameters)
    grads_slow = torch.autograd.grad((weights * slow).sum(), parameters)
    for got, expected in zip(grads_fast, grads_slow, strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-8, atol=1e-12)
