"""The gradient carried back: exact, and the verdict read from it whatever the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile, lyapunov_spectrum
from rnngrad.lab.models import LabModel
from rnngrad.lab.tasks import make_task
from tests.cell_reference import carried_reference
from tests.profile.test_profile import build


def _norms(values: torch.Tensor) -> np.ndarray:
    return torch.linalg.vector_norm(values, dim=2).numpy()


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("loss", ["last", "sum"])
@pytest.mark.parametrize("route", ["recursion", "fused"])
def test_the_carried_gradient_equals_autograd_through_the_cell_loop(
    kind: str, bidirectional: bool, loss: str, route: str
) -> None:
    """Per sequence and step, the carried norm over the whole state (h, and c for LSTM) of
    every layer and direction equals the cell loop's: <G, h_s*> differentiated by autograd
    with respect to the earlier states, G the total gradient at the last loss-bearing step."""
    torch.manual_seed(0)
    module = build(kind, layers=2, bidirectional=bidirectional)
    x = torch.randn(9, 3, 4, dtype=torch.float64)
    profile = gradient_profile(module, x, loss=loss, route=route)  # type: ignore[arg-type]
    carried_h, carried_c = carried_reference(module, x, loss)
    for lp in profile.layers:
        key = (lp.layer, lp.direction)
        h = _norms(carried_h[key])
        c = carried_c[key]
        whole = h if c is None else np.hypot(h, _norms(c))
        np.testing.assert_allclose(lp.carried_norm, whole, rtol=1e-8, atol=1e-300)

        def covered_mean(values: np.ndarray) -> np.ndarray:
            covered = ~np.isnan(values)
            mean = np.where(covered, values, 0).sum(axis=0) / np.maximum(covered.sum(axis=0), 1)
            mean[~covered.any(axis=0)] = np.nan  # no sequence's carried gradient there
            return mean

        np.testing.assert_allclose(lp.mean_carried_h_norm, covered_mean(h), rtol=1e-8, atol=1e-300)
        if c is not None:
            assert lp.mean_carried_c_norm is not None
            np.testing.assert_allclose(
                lp.mean_carried_c_norm, covered_mean(_norms(c)), rtol=1e-8, atol=1e-300
            )
        covered = ~np.isnan(whole)
        assert (lp.carried_from > 0).all()
        if lp.direction == 0:
            assert (lp.carried_from == covered.sum(axis=1)).all()


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_packed_sequences_carry_from_their_own_last_step(kind: str) -> None:
    """Each packed sequence is carried back from its own last step: equal to the cell loop
    run on that sequence alone, for both directions."""
    torch.manual_seed(1)
    module = build(kind, layers=1, bidirectional=True)
    lengths = [7, 4, 6]
    x = torch.randn(7, 3, 4, dtype=torch.float64)
    profile = gradient_profile(module, x, lengths=torch.tensor(lengths), loss="sum")
    for b, length in enumerate(lengths):
        alone_h, alone_c = carried_reference(module, x[:length, b : b + 1], "sum")
        for lp in profile.layers:
            key = (lp.layer, lp.direction)
            h = _norms(alone_h[key])[0]
            c = alone_c[key]
            whole = h if c is None else np.hypot(h, _norms(c)[0])
            np.testing.assert_allclose(lp.carried_norm[b, :length], whole, rtol=1e-8)
            assert np.isnan(lp.carried_norm[b, length:]).all()
            assert lp.carried_from[b] == (length if lp.direction == 0 else 1)


def _gru_and_head(hidden: int = 32) -> tuple[nn.GRU, nn.Linear]:
    torch.manual_seed(4)
    return nn.GRU(3, hidden, batch_first=True), nn.Linear(hidden, 1)


class _Forecaster(nn.Module):
    """A GRU read at every step by a linear head, as seq2seq forecasters are."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = _gru_and_head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


def test_a_loss_on_every_step_gives_the_verdict_of_a_loss_at_the_last() -> None:
    """Regression: an untrained GRU (hidden 32, T 48) with an MSE loss on every output step
    was called exploding (decay -0.010) while the same GRU with the loss at the last step
    was vanishing (0.345). The carried gradient gives one verdict and decay rates within
    10% for the loss at the last step, on every step, summed, and as cross-entropy on a
    head over h_n; and the network contracts (lambda_1 < 0), as the verdict says."""
    model = _Forecaster()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 48, 3, generator=generator)
    target = torch.randn(16, 48, 1, generator=generator)
    labels = torch.randint(0, 2, (16,), generator=generator)
    classes = nn.Linear(32, 2)

    def every_step(out: torch.Tensor) -> torch.Tensor:
        return ((out - target) ** 2).mean()

    def last_step(out: torch.Tensor) -> torch.Tensor:
        return ((out[:, -1] - target[:, -1]) ** 2).mean()

    def summed(out: torch.Tensor) -> torch.Tensor:
        return out.sum()

    losses = {"last": last_step, "every step": every_step, "summed": summed}
    rates, labels_seen = {}, set()
    for name, loss in losses.items():
        layer = gradient_profile(model, x, loss=loss).layers[0]
        rates[name] = layer.decay_rate
        labels_seen.add(layer.verdict.label)
    # cross-entropy on a head over h_n
    layer = gradient_profile(
        model.rnn, x, loss=lambda out: nn.functional.cross_entropy(classes(out[1][-1]), labels)
    ).layers[0]
    rates["cross-entropy on h_n"] = layer.decay_rate
    labels_seen.add(layer.verdict.label)
    assert labels_seen == {"vanishing"}, rates
    reference = rates["last"]
    assert reference is not None and reference > 0.1
    for name, rate in rates.items():
        assert rate is not None and abs(rate - reference) <= 0.1 * reference, (name, rates)
    spectrum = lyapunov_spectrum(model.rnn, steps=300, k=1, seed=0)
    assert spectrum.exponents[0] < 0


def test_over_long_sequences_the_carried_decay_approaches_minus_lambda_1() -> None:
    """For a contracting tanh network driven by the same inputs, the carried gradient's
    decay rate over T = 400 approaches -lambda_1 of lyapunov_spectrum on that trajectory
    (the largest exponent governs the product of the step Jacobians)."""
    torch.manual_seed(2)
    rnn = nn.RNN(2, 24).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.randn(24, 24, dtype=torch.float64) * 0.7 / math.sqrt(24))
    steps, warmup = 400, 100
    x = torch.randn(warmup + steps, 1, 2, dtype=torch.float64)
    spectrum = lyapunov_spectrum(rnn, steps=steps, warmup=warmup, k=1, batch=1, inputs=x, seed=0)
    layer = gradient_profile(rnn, x, loss="last").layers[0]
    lambda_1 = float(spectrum.exponents[0])
    assert lambda_1 < -0.05
    assert layer.decay_rate is not None
    assert abs(layer.decay_rate + lambda_1) <= 0.1 * abs(lambda_1)


def test_a_forget_bias_3_lstm_carries_its_gradient_through_the_cell() -> None:
    """Regression: an LSTM with forget-gate bias 3 (the lab's, on the adding problem at
    T = 200) was called vanishing from h alone; over the whole state it is not, and the
    result says the cell state carries the gradient. The default LSTM still vanishes."""
    task = make_task("adding", 200)
    batch = task.sample(32, torch.Generator().manual_seed(0))

    def loss(out: torch.Tensor) -> torch.Tensor:
        return task.loss(out, batch.targets)

    torch.manual_seed(0)
    remedied = LabModel("lstm", task.input_size, 64, task.output_size, per_step=False,
                        forget_bias=3.0)  # fmt: skip
    layer = gradient_profile(remedied, batch.inputs, loss=loss).layers[0]
    assert layer.verdict.label != "vanishing"
    assert layer.carried_by == "c"
    assert layer.mean_carried_c_norm is not None
    assert layer.mean_carried_c_norm[0] > layer.mean_carried_h_norm[0]
    torch.manual_seed(0)
    default = LabModel("lstm", task.input_size, 64, task.output_size, per_step=False)
    assert gradient_profile(default, batch.inputs, loss=loss).layers[0].verdict.label == (
        "vanishing"
    )


def test_a_tanh_rnn_at_default_initialisation_stays_vanishing() -> None:
    torch.manual_seed(5)
    model = nn.RNN(3, 64)
    x = torch.randn(100, 8, 3)
    for loss in ("last", "sum"):
        assert gradient_profile(model, x, loss=loss).layers[0].verdict.label == "vanishing"


class _Decoder(nn.Module):
    """Steps a cell (or a one-layer fused module, one step a call) and reads every step."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(6)
        self.kind = kind
        modules = {
            "gru_cell": nn.GRUCell(3, 8),
            "lstm_cell": nn.LSTMCell(3, 8),
            "gru_steps": nn.GRU(3, 8),
            "lstm_steps": nn.LSTM(3, 8, num_layers=2),
        }
        self.rnn = modules[kind].double()
        self.head = nn.Linear(8, 1).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state: object = None
        outputs = []
        for t in range(x.shape[0]):
            if self.kind.endswith("cell"):
                state = self.rnn(x[t], state)
                h = state[0] if isinstance(state, tuple) else state
            else:
                out, state = self.rnn(x[t : t + 1], state)
                h = out[0]
            outputs.append(self.head(h))
        return torch.stack(outputs)


def _decoder_reference(
    model: _Decoder, x: torch.Tensor, target: torch.Tensor
) -> tuple[np.ndarray, np.ndarray | None]:
    """The decoder's loop written out: the states kept in the graph, the total gradient at
    the last step is G, and <G, h_T> (+ <G_c, c_T>) differentiated by autograd with respect
    to every earlier state; norms over the whole state. A fused module's step gives its
    output and its final state as two tensors: the gradient at the state is their sum."""
    steps = x.shape[0]
    rnn = model.rnn
    views_h: list[list[torch.Tensor]] = []  # per step, every tensor that is h_t
    states_c: list[torch.Tensor] = []
    state: object = None
    outputs = []
    for t in range(steps):
        if model.kind.endswith("cell"):
            state = rnn(x[t], state)
            h, c = state if isinstance(state, tuple) else (state, None)
            views_h.append([h])
        else:
            out, state = rnn(x[t : t + 1], state)
            h = out[0]
            h_n = state[0] if isinstance(state, tuple) else state
            c = state[1] if isinstance(state, tuple) else None
            views_h.append([h, h_n])  # the whole h_n: the next step reads it, not a view
        if c is not None:
            states_c.append(c)
        outputs.append(model.head(h))
    loss = ((torch.stack(outputs) - target) ** 2).mean()

    def at_states(value: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        flat = [v for views in views_h for v in views] + states_c
        grads = torch.autograd.grad(value, flat, retain_graph=True, allow_unused=True)
        grads = [torch.zeros_like(v) if g is None else g for g, v in zip(grads, flat, strict=True)]
        summed, at = [], 0
        for views in views_h:
            # a fused module's h_n and c_n are (layers, B, H): the top layer's is the state
            top = [g[-1] if g.dim() == 3 else g for g in grads[at : at + len(views)]]
            summed.append(sum(top))
            at += len(views)
        return summed, [g[-1] if g.dim() == 3 else g for g in grads[at:]]

    total_h, total_c = at_states(loss)
    entry = (total_h[-1].detach() * views_h[-1][0]).sum()
    if states_c:
        _, through_h = at_states(entry)
        direct_c = total_c[-1] - through_h[-1]
        last_c = states_c[-1][-1] if states_c[-1].dim() == 3 else states_c[-1]
        entry = entry + (direct_c.detach() * last_c).sum()
    carried_h, carried_c = at_states(entry)
    h_norms = torch.stack([g.norm(dim=-1) for g in carried_h]).T.numpy()
    if not states_c:
        return h_norms, None
    return h_norms, torch.stack([g.norm(dim=-1) for g in carried_c]).T.numpy()


@pytest.mark.parametrize("kind", ["gru_cell", "lstm_cell", "gru_steps", "lstm_steps"])
def test_a_decoder_stepping_its_module_is_carried_through_its_own_graph(kind: str) -> None:
    """A cell or a fused module called once per step (the stepped route): the carried
    gradient equals autograd through the decoder's loop written out (over the whole state
    for a cell; at h for a fused LSTM, whose c_n is an output the step's h does not read)."""
    model = _Decoder(kind)
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(12, 4, 3, generator=generator, dtype=torch.float64)
    target = torch.randn(12, 4, 1, generator=generator, dtype=torch.float64)
    profile = gradient_profile(model, x, loss=lambda out: ((out - target) ** 2).mean())
    assert profile.calls == 12
    expected_h, expected_c = _decoder_reference(model, x, target)
    top = profile.layers[-1]
    np.testing.assert_allclose(top.mean_carried_h_norm, expected_h.mean(axis=0), rtol=1e-8)
    if kind != "lstm_steps":
        whole = expected_h if expected_c is None else np.hypot(expected_h, expected_c)
        np.testing.assert_allclose(top.carried_norm, whole, rtol=1e-8)


def test_a_custom_cell_without_parameters_is_carried_by_its_closed_form() -> None:
    """Regression: a cell with no trainable parameters (nothing required a gradient) got
    torch's raw RuntimeError. For h_t = tanh(a h_{t-1} + x_t) the carried gradient is the
    textbook's product: |g~_t| = |G_T| prod_{k=t+1..T} |a (1 - h_k^2)|, per sequence."""
    from rnngrad import cell_gradient_profile

    a = 0.8
    x = torch.randn(30, 2, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    profile = cell_gradient_profile(
        lambda x_t, h: torch.tanh(a * h + x_t), x, h0=torch.zeros(2, 1, dtype=torch.float64)
    )
    h = torch.zeros(2, 1, dtype=torch.float64)
    states = []
    for t in range(30):
        h = torch.tanh(a * h + x[t])
        states.append(h[:, 0].numpy())
    hs = np.array(states)  # (T, B)
    factors = np.abs(a * (1 - hs**2))  # dh_t/dh_{t-1} at t = 1..T
    expected = np.empty((2, 30))
    expected[:, -1] = np.abs(hs[-1])  # G_T = h_T for the loss 0.5 h_T^2
    for t in range(28, -1, -1):
        expected[:, t] = expected[:, t + 1] * factors[t + 1]
    np.testing.assert_allclose(profile.layers[0].carried_norm, expected, rtol=1e-12)
    assert profile.layers[0].verdict.label == "vanishing"
