"""Recurrent modules called step by step (cells in a loop, decoders stepping a fused
module) and several modules in one model, against retain_grad loops in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import GradientMonitor, gradient_profile
from rnngrad.errors import InvalidInputError
from rnngrad.profile.front import gradient_profiles
from tests.cell_reference import cell_reference
from tests.examples_loader import load_example

CELLS = {
    "rnn_tanh": lambda: nn.RNNCell(3, 5),
    "rnn_relu": lambda: nn.RNNCell(3, 5, nonlinearity="relu"),
    "lstm": lambda: nn.LSTMCell(3, 5),
    "gru": lambda: nn.GRUCell(3, 5),
}


class CellLoop(nn.Module):
    """A model that loops over time with a cell and reads every state with a head."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.cell = CELLS[kind]()
        self.head = nn.Linear(5, 2)
        self.lstm = kind == "lstm"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = None
        outputs = []
        for x_t in x.unbind(0):
            state = self.cell(x_t, state)
            outputs.append(self.head(state[0] if self.lstm else state))
        return torch.stack(outputs)


def reference_loop(model: CellLoop, x: torch.Tensor, target: torch.Tensor):  # type: ignore[no-untyped-def]
    """The same loop with retain_grad on every h_t (and c_t)."""
    state = None
    hs, cs, outputs = [], [], []
    for x_t in x.unbind(0):
        state = model.cell(x_t, state)
        h = state[0] if model.lstm else state
        h.retain_grad()
        hs.append(h)
        if model.lstm:
            state[1].retain_grad()
            cs.append(state[1])
        outputs.append(model.head(h))
    nn.functional.mse_loss(torch.stack(outputs), target).backward()
    grad_h = torch.stack([h.grad for h in hs], dim=1)
    grad_c = torch.stack([c.grad for c in cs], dim=1) if cs else None
    return grad_h, grad_c


@pytest.mark.parametrize("kind", list(CELLS))
def test_a_cell_in_a_loop_equals_retain_grad(kind: str) -> None:
    """nn.RNNCell/LSTMCell/GRUCell called once per step: the total dL/dh_t of every call."""
    torch.manual_seed(0)
    model = CellLoop(kind).double()
    x = torch.randn(9, 4, 3, dtype=torch.float64)
    target = torch.randn(9, 4, 2, dtype=torch.float64)
    profile = gradient_profile(
        model,
        x,
        loss=lambda out: nn.functional.mse_loss(out, target),
        keep_gradients=True,
    )
    grad_h, grad_c = reference_loop(model, x, target)
    assert profile.calls == 9 and profile.steps == 9 and profile.module_name == "cell"
    lp = profile.layers[0]
    assert lp.grad is not None
    scale = grad_h.abs().max().item()
    assert scale > 0
    assert (lp.grad - grad_h).abs().max().item() <= 1e-10 * scale
    np.testing.assert_allclose(lp.grad_norm, grad_h.norm(dim=2).numpy(), rtol=1e-10)
    if grad_c is not None:
        assert lp.grad_c is not None
        assert (lp.grad_c - grad_c).abs().max().item() <= 1e-10 * grad_c.abs().max().item()
    assert 0.0 <= lp.saturation <= 1.0


class SteppedDecoder(nn.Module):
    """Calls a 2-layer nn.LSTM once per step, feeding its state back (a decoder)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 5, num_layers=2)
        self.head = nn.Linear(5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = None
        outputs = []
        for t in range(x.shape[0]):
            out, state = self.lstm(x[t : t + 1], state)
            outputs.append(self.head(out[0]))
        return torch.stack(outputs)


def test_a_fused_module_called_once_per_step_equals_the_whole_sequence() -> None:
    """Stepping a 2-layer LSTM with its state fed back is the same network as one call on
    the whole sequence: every layer's dL/dh_t and dL/dc_t equal the cell-loop reference."""
    torch.manual_seed(1)
    model = SteppedDecoder().double()
    x = torch.randn(7, 3, 4, dtype=torch.float64)

    def loss(out: torch.Tensor) -> torch.Tensor:
        return (out**2).sum()

    profile = gradient_profile(model, x, loss=loss, keep_gradients=True)
    assert profile.calls == 7 and profile.steps == 7 and len(profile.layers) == 2
    reference_h, reference_c, _ = cell_reference(
        model.lstm, x, lambda output: loss(model.head(output))
    )
    for lp in profile.layers:
        expected = reference_h[(lp.layer, 0)]
        assert lp.grad is not None and lp.grad_c is not None
        assert (lp.grad - expected).abs().max().item() <= 1e-10 * expected.abs().max().item()
        expected_c = reference_c[(lp.layer, 0)]
        assert (lp.grad_c - expected_c).abs().max().item() <= 1e-10 * expected_c.abs().max().item()
    whole = gradient_profile(model.lstm, x, loss=lambda out: loss(model.head(out[0])))
    for a, b in zip(profile.layers, whole.layers, strict=True):
        assert a.saturation == pytest.approx(b.saturation, abs=1e-12)
        assert a.verdict.label == b.verdict.label


def seq2seq() -> nn.Module:
    torch.manual_seed(2)
    model: nn.Module = load_example("seq2seq").Seq2Seq(vocab=20, embed=6, hidden=7)
    return model.double()


def test_encoder_and_decoder_in_one_call() -> None:
    """gradient_profiles: one profile per recurrent module of an encoder-decoder. The
    decoder against retain_grad on its loop; the encoder against the fused recursion."""
    model = seq2seq()
    source = torch.randint(0, 20, (3, 8), generator=torch.Generator().manual_seed(3))
    target = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(4))
    labels = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(5))

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.movedim(-1, 1), labels)

    profiles = gradient_profiles(model, (source, target), loss=loss, keep_gradients=True)
    assert list(profiles) == ["encoder", "decoder"]
    assert profiles["encoder"].steps == 8 and profiles["decoder"].steps == 5

    fused = gradient_profile(model, (source, target), loss=loss, module="encoder")
    np.testing.assert_allclose(
        profiles["encoder"].layers[0].grad_norm, fused.layers[0].grad_norm, rtol=1e-10
    )

    _, (h_n, c_n) = model.encoder(model.embedding(source))
    h, c = h_n[-1], c_n[-1]
    hs, cs, logits = [], [], []
    for token in model.embedding(target).unbind(1):
        h, c = model.decoder(token, (h, c))
        h.retain_grad()
        c.retain_grad()
        hs.append(h)
        cs.append(c)
        logits.append(model.head(h))
    loss(torch.stack(logits, dim=1)).backward()
    decoder = profiles["decoder"].layers[0]
    expected = torch.stack([v.grad for v in hs], dim=1)
    assert decoder.grad is not None and decoder.grad_c is not None
    assert (decoder.grad - expected).abs().max().item() <= 1e-10 * expected.abs().max().item()
    expected_c = torch.stack([v.grad for v in cs], dim=1)
    assert (decoder.grad_c - expected_c).abs().max().item() <= 1e-10 * expected_c.abs().max().item()
    single = gradient_profile(model, (source, target), loss=loss, module="decoder")
    np.testing.assert_allclose(single.layers[0].grad_norm, decoder.grad_norm, rtol=1e-12)


def test_several_modules_refuse_a_loss_on_one_modules_output() -> None:
    model = seq2seq()
    source = torch.zeros(2, 4, dtype=torch.int64)
    with pytest.raises(InvalidInputError, match="callable"):
        gradient_profiles(model, (source, source), loss="last")
    with pytest.raises(InvalidInputError, match="several recurrent modules"):
        gradient_profile(model, (source, source), loss=lambda out: out.sum())


def test_a_bidirectional_module_stepped_is_refused() -> None:
    class Stepper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(2, 3, bidirectional=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            state = None
            for t in range(x.shape[0]):
                out, state = self.rnn(x[t : t + 1], state)
            return out

    with pytest.raises(InvalidInputError, match="bidirectional"):
        gradient_profile(Stepper(), torch.randn(4, 1, 2), loss=lambda out: out.sum())


@pytest.mark.filterwarnings("ignore::rnngrad.monitor.monitor.GradientWarning")
def test_the_monitor_follows_a_decoder() -> None:
    torch.manual_seed(1)
    model = SteppedDecoder()
    monitor = GradientMonitor(model, every=1, loss=lambda out: out.pow(2).sum())
    profile = monitor.step(torch.randn(6, 2, 4))
    assert profile is not None and profile.calls == 6
    assert monitor.history[0].log10_grad_norm.shape == (2, 6)


@pytest.mark.parametrize("kind", ["rnn_tanh", "gru", "lstm"])
def test_a_bare_cell_on_a_sequence_is_the_one_layer_module(kind: str) -> None:
    """gradient_profile(cell, x (T, B, D)): the one-layer fused module with the cell's
    weights, whose profile is checked against the cell loop elsewhere."""
    torch.manual_seed(4)
    cell = CELLS[kind]().double()
    fused = {"rnn_tanh": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind](3, 5).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(fused, f"{name}_l0").copy_(getattr(cell, name))
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    profile = gradient_profile(cell, x, loss="sum", keep_gradients=True)
    reference_h, _, _ = cell_reference(fused, x, "sum")
    assert profile.layers[0].grad is not None
    expected = reference_h[(0, 0)]
    assert (profile.layers[0].grad - expected).abs().max() <= 1e-10 * expected.abs().max()
