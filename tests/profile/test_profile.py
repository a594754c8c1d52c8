"""Gradient profiles of fused modules against the cell-by-cell retain_grad reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile
from rnngrad.cells import UnsupportedModuleError
from rnngrad.errors import InvalidInputError, NonFiniteInputError, ShapeError
from tests.cell_reference import cell_reference

KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "lstm": nn.LSTM,
    "lstm_proj": lambda **kw: nn.LSTM(proj_size=3, **kw),
    "gru": nn.GRU,
}


def build(
    kind: str,
    *,
    layers: int = 2,
    bidirectional: bool = False,
    batch_first: bool = False,
    bias: bool = True,
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    torch.manual_seed(seed)
    module = KINDS[kind](
        input_size=4,
        hidden_size=5,
        num_layers=layers,
        bias=bias,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dropout=dropout,
    )
    return module.double()


def assert_matches(  # type: ignore[no-untyped-def]
    profile, reference_h, reference_c, valid: list[int] | None = None
) -> None:
    """Every layer, direction and step agrees to 1e-8 relative (scaled by the largest entry);
    with ``valid`` lengths, the norms are compared on each sequence's own steps."""
    for lp in profile.layers:
        expected = reference_h[(lp.layer, lp.direction)]
        got = lp.grad
        assert got is not None and got.shape == expected.shape
        scale = expected.abs().max().item()
        assert scale > 0, "the reference gradient is all zero: the test would prove nothing"
        assert (got - expected).abs().max().item() <= 1e-8 * scale
        norms = expected.norm(dim=2).numpy()
        if valid is not None:
            steps = np.arange(norms.shape[1])[None, :]
            norms = np.where(steps < np.asarray(valid)[:, None], norms, np.nan)
        np.testing.assert_allclose(lp.grad_norm, norms, rtol=1e-8, atol=1e-12 * scale)
        if reference_c:
            expected_c = reference_c[(lp.layer, lp.direction)]
            assert lp.grad_c is not None
            assert (
                lp.grad_c - expected_c
            ).abs().max().item() <= 1e-8 * expected_c.abs().max().item()


COMBINATIONS = list(
    itertools.product(
        list(KINDS), [1, 3], [False, True], [False, True], [True, False], ["last", "sum"]
    )
)


@pytest.mark.parametrize(
    ("kind", "layers", "bidirectional", "batch_first", "bias", "loss"),
    COMBINATIONS,
    ids=["-".join(str(v) for v in c) for c in COMBINATIONS],
)
def test_profile_equals_cell_reference(
    kind: str, layers: int, bidirectional: bool, batch_first: bool, bias: bool, loss: str
) -> None:
    """dL/dh_t of the fused route equals the retain_grad cell loop, everywhere."""
    module = build(
        kind, layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias
    )
    x = (
        torch.randn(3, 6, 4, dtype=torch.float64)
        if batch_first
        else torch.randn(6, 3, 4, dtype=torch.float64)
    )
    profile = gradient_profile(module, x, loss=loss, keep_gradients=True)
    reference_h, reference_c, _ = cell_reference(module, x, loss)
    assert_matches(profile, reference_h, reference_c)
    assert len(profile.layers) == layers * (2 if bidirectional else 1)
    assert profile.steps == 6 and profile.batch == 3


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input(kind: str) -> None:
    module = build(kind, bidirectional=True)
    x = torch.randn(7, 4, dtype=torch.float64)
    profile = gradient_profile(module, x, loss="sum", keep_gradients=True)
    reference_h, reference_c, _ = cell_reference(module, x, "sum")
    assert profile.batch == 1
    assert_matches(profile, reference_h, reference_c)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_train_mode_with_dropout_between_layers(kind: str) -> None:
    """The profile's own dropout masks, replayed in the reference, give the same gradients."""
    module = build(kind, layers=3, bidirectional=True, dropout=0.5).train()
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    generator = torch.Generator().manual_seed(5)
    profile = gradient_profile(module, x, loss="sum", keep_gradients=True, generator=generator)
    # Replay: the same generator state draws the same masks in the same order.
    replay = torch.Generator().manual_seed(5)
    masks = []
    for _ in range(2):
        draw = torch.rand((6, 3, 10), generator=replay, dtype=torch.float64)
        masks.append((draw < 0.5).double() / 0.5)
    reference_h, reference_c, _ = cell_reference(module, x, "sum", masks=masks)
    assert_matches(profile, reference_h, reference_c)


def test_eval_mode_ignores_dropout() -> None:
    module = build("lstm", layers=2, dropout=0.5).eval()
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    profile = gradient_profile(module, x, keep_gradients=True)
    reference_h, reference_c, _ = cell_reference(module, x, "last")
    assert_matches(profile, reference_h, reference_c)


def test_profiling_leaves_the_global_rng_and_gradients_alone() -> None:
    module = build("gru", layers=2, dropout=0.3).train()
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    for p in module.parameters():
        p.grad = torch.full_like(p, 7.0)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    gradient_profile(module, x)
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.all(p.grad == 7.0) for p in module.parameters())


def test_initial_state_is_used() -> None:
    module = build("lstm", layers=2, bidirectional=True)
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    hx = (torch.randn(4, 2, 5, dtype=torch.float64), torch.randn(4, 2, 5, dtype=torch.float64))
    profile = gradient_profile(module, x, hx=hx, keep_gradients=True)
    reference_h, reference_c, _ = cell_reference(module, x, "last", hx=hx)
    assert_matches(profile, reference_h, reference_c)


class Classifier(nn.Module):
    """A model that contains an LSTM and reads its final hidden state."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.encoder(x)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=-1))


def test_model_containing_a_module_through_its_head() -> None:
    """The loss reaches the LSTM through h_n and a linear head: checked against autograd."""
    torch.manual_seed(1)
    model = Classifier().double()
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    target = torch.tensor([0, 2, 1])
    loss = lambda logits: nn.functional.cross_entropy(logits, target)  # noqa: E731
    profile = gradient_profile(model, x, loss=loss, keep_gradients=True)
    assert profile.module_name == "encoder"
    assert profile.loss == "custom"

    # Reference: the cell loop, with the head applied to the final states.
    captured: dict[str, torch.Tensor] = {}

    def head_loss(output: torch.Tensor) -> torch.Tensor:
        # output is (T, B, 10) time-major; the final states are the forward direction's
        # last step and the reverse direction's first step of the top layer.
        h_forward = output[-1, :, :5]
        h_reverse = output[0, :, 5:]
        logits = model.head(torch.cat([h_forward, h_reverse], dim=-1))
        captured["loss"] = loss(logits)
        return captured["loss"]

    reference_h, reference_c, _ = cell_reference(model.encoder, x, head_loss)
    assert profile.loss_value == pytest.approx(captured["loss"].item(), rel=1e-12)
    assert_matches(profile, reference_h, reference_c)


def test_module_is_found_or_named() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.GRU(4, 5)
            self.b = nn.GRU(5, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x)[0])[0]

    model = Two().double()
    x = torch.randn(4, 2, 4, dtype=torch.float64)
    with pytest.raises(UnsupportedModuleError, match="several recurrent modules"):
        gradient_profile(model, x, loss=lambda out: out.sum())
    profile = gradient_profile(model, x, loss=lambda out: (out**2).sum(), module="b")
    assert profile.module_name == "b"
    with pytest.raises(UnsupportedModuleError, match="no submodule"):
        gradient_profile(model, x, module="c")
    with pytest.raises(UnsupportedModuleError, match="contains no"):
        gradient_profile(nn.Linear(3, 3), x)


def test_summary_numbers_follow_their_definitions() -> None:
    """log10 ratio, decay rate (a least-squares slope in nats), horizon, from the norms."""
    torch.manual_seed(3)
    module = nn.RNN(4, 16, num_layers=1).double()
    with torch.no_grad():
        module.weight_hh_l0.mul_(0.5)
    x = torch.randn(40, 8, 4, dtype=torch.float64)
    lp = gradient_profile(module, x).layers[0]
    mean = lp.grad_norm.mean(axis=0)
    np.testing.assert_allclose(lp.mean_grad_norm, mean)
    assert lp.log10_ratio == pytest.approx(math.log10(mean[0] / mean[-1]))
    slope = np.polyfit(np.arange(40), np.log(mean), 1)[0]
    assert lp.decay_rate == pytest.approx(slope, rel=1e-10)
    below = np.flatnonzero(np.log10(mean) < np.log10(mean.max()) - 3)
    assert lp.horizon == 40 - 1 - below[-1]
    assert lp.verdict.label == "vanishing"
    assert 0.0 <= lp.saturation <= 1.0


def test_reverse_direction_summaries_follow_its_processing_order() -> None:
    """A reverse direction is judged from t = 1 (where its carried gradient starts) back to
    t = T, on the carried gradient; the total is kept in input order too."""
    module = build("gru", layers=2, bidirectional=True)
    x = torch.randn(12, 2, 4, dtype=torch.float64)
    profile = gradient_profile(module, x, loss="sum")
    reverse = profile.layer(0, 1)
    mean = reverse.mean_grad_norm
    np.testing.assert_array_equal(reverse.processing_mean_grad_norm, mean[::-1])
    carried = reverse.mean_carried_norm
    assert (reverse.carried_from == 1).all()
    np.testing.assert_array_equal(reverse.processing_mean_carried_norm, carried[::-1])
    assert reverse.log10_ratio == pytest.approx(math.log10(carried[-1] / carried[0]))
    slope = np.polyfit(np.arange(12), np.log(carried[::-1]), 1)[0]
    assert reverse.decay_rate == pytest.approx(slope, rel=1e-10)
    forward = profile.layer(0, 0)
    assert forward.log10_ratio == pytest.approx(
        math.log10(forward.mean_carried_norm[0] / forward.mean_carried_norm[-1])
    )


def test_last_loss_reaches_one_step_of_the_reverse_direction_of_one_layer() -> None:
    """Only input position T, the reverse direction's first processed step, is read: there
    is no recurrent path to judge, and the verdict says so instead of inventing a change."""
    module = build("rnn_tanh", layers=1, bidirectional=True)
    profile = gradient_profile(module, torch.randn(5, 2, 4, dtype=torch.float64))
    reverse = profile.layer(0, 1)
    assert np.all(reverse.mean_grad_norm[:-1] == 0.0)
    assert reverse.mean_grad_norm[-1] > 0.0
    assert reverse.log10_ratio is None
    assert reverse.decay_rate is None
    assert reverse.verdict.label == "neither"
    assert reverse.verdict.steps == 0


def test_float32_profile_is_close_to_float64() -> None:
    module = build("lstm", layers=2)
    x = torch.randn(20, 4, 4, dtype=torch.float64)
    exact = gradient_profile(module, x)
    single = gradient_profile(module.float(), x.float())
    for a, b in zip(exact.layers, single.layers, strict=True):
        np.testing.assert_allclose(b.grad_norm, a.grad_norm, rtol=1e-4)
    assert single.dtype == "float32"


def test_nonfinite_gradient_is_located() -> None:
    module = nn.RNN(2, 2, nonlinearity="relu", bias=False).float()
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.eye(2) * 1e6)
        module.weight_ih_l0.copy_(torch.eye(2))
    x = torch.ones(12, 1, 2)
    lp = gradient_profile(module, x).layers[0]
    assert lp.first_nonfinite_step is not None


@pytest.mark.parametrize(
    ("x", "error"),
    [
        (torch.randn(0, 2, 4, dtype=torch.float64), ShapeError),
        (torch.randn(5, 2, 3, dtype=torch.float64), ShapeError),
        (torch.randn(5, 2, 4), InvalidInputError),  # float32 input, float64 module
        (torch.full((5, 2, 4), float("nan"), dtype=torch.float64), NonFiniteInputError),
        (torch.randn(5, 4, dtype=torch.float64).unsqueeze(0).unsqueeze(0), ShapeError),
    ],
)
def test_bad_input(x: torch.Tensor, error: type[Exception]) -> None:
    with pytest.raises(error):
        gradient_profile(build("lstm"), x)


def test_unknown_loss() -> None:
    with pytest.raises(InvalidInputError, match="loss must be 'last', 'sum' or a callable"):
        gradient_profile(build("gru"), torch.randn(3, 1, 4, dtype=torch.float64), loss="mean")  # type: ignore[arg-type]


class ElmanCell(nn.Module):
    """A user's own cell following the protocol h_t = cell(x_t, h_{t-1})."""

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.hidden_size = hidden
        self.W_xh = nn.Linear(inputs, hidden)
        self.W_hh = nn.Linear(hidden, hidden, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.W_xh(x) + self.W_hh(h))


@pytest.mark.parametrize("make", [lambda: nn.GRUCell(4, 5), lambda: ElmanCell(4, 5)])
@pytest.mark.parametrize("loss", ["last", "sum"])
def test_custom_cell_protocol(make, loss: str) -> None:  # type: ignore[no-untyped-def]
    """A cell's profile equals a retain_grad loop written out by hand."""
    from rnngrad import cell_gradient_profile

    torch.manual_seed(4)
    cell = make().double()
    x = torch.randn(9, 3, 4, dtype=torch.float64)
    profile = cell_gradient_profile(cell, x, loss=loss, keep_gradients=True)
    h = torch.zeros(3, 5, dtype=torch.float64)
    states = []
    for t in range(9):
        h = cell(x[t], h)
        h.retain_grad()
        states.append(h)
    stacked = torch.stack(states)
    (0.5 * (stacked[-1] ** 2).sum() if loss == "last" else 0.5 * (stacked**2).sum()).backward()
    expected = torch.stack([s.grad for s in states]).transpose(0, 1)  # type: ignore[misc]
    got = profile.layers[0].grad
    assert got is not None
    assert (got - expected).abs().max().item() <= 1e-12 * expected.abs().max().item()
    assert profile.layout.kind == "custom"
    assert math.isnan(profile.layers[0].saturation)


def test_custom_cell_with_a_tuple_state_is_refused() -> None:
    from rnngrad import cell_gradient_profile

    cell = nn.LSTMCell(4, 5).double()
    with pytest.raises(ShapeError, match="flat state"):
        cell_gradient_profile(
            lambda x, h: cell(x, (h, h)),
            torch.randn(3, 2, 4, dtype=torch.float64),
            h0=torch.zeros(2, 5, dtype=torch.float64),
        )
