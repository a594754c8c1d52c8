"""Profiles of models as people build them: directions judged in their own order,
packed sequences, initial states, against the retain_grad cell loop in float64."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnngrad import GradientMonitor, gradient_profile
from rnngrad.errors import InvalidInputError, ShapeError
from rnngrad.monitor.monitor import GradientWarning
from tests.cell_reference import cell_reference
from tests.examples_loader import load_example
from tests.profile.test_profile import KINDS, assert_matches, build


def classifier(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model: nn.Module = load_example("classifier").Classifier(vocab=50, embed=6, hidden=7)
    return model.double().eval()


def test_reverse_direction_of_a_classifier_reading_h_n_vanishes() -> None:
    """Regression: the head reads h_n, so the reverse direction's gradient enters at t = 1
    and decays towards t = T. It used to be called exploding with horizon 0."""
    model = classifier()
    tokens = torch.randint(0, 50, (6, 80), generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    profile = gradient_profile(
        model, tokens, loss=lambda logits: nn.functional.cross_entropy(logits, labels)
    )
    top_reverse = profile.layer(1, 1)
    mean = top_reverse.mean_carried_norm  # over (h, c): the head reads h_n alone
    assert mean[0] > 1e6 * mean[-1], "the test needs a reverse gradient that decays over t"
    assert top_reverse.verdict.label == "vanishing"
    assert top_reverse.log10_ratio == pytest.approx(math.log10(mean[-1] / mean[0]))
    assert top_reverse.log10_ratio < -6
    assert top_reverse.horizon is not None and top_reverse.horizon > 0
    # Its horizon counts from t = 1: the norm at t = 1 + horizon is 3 decades below the peak.
    at = top_reverse.position_of(80 - top_reverse.horizon)
    assert math.log10(mean[at - 1]) < math.log10(mean.max()) - 3
    assert profile.layer(1, 0).verdict.label == "vanishing"


def test_monitor_does_not_call_a_decaying_reverse_direction_exploding() -> None:
    model = classifier()
    tokens = torch.randint(0, 50, (6, 80), generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    monitor = GradientMonitor(
        model, every=1, loss=lambda logits: nn.functional.cross_entropy(logits, labels)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GradientWarning)
        monitor.step(tokens)
        monitor.step(tokens)  # a verdict is warned about once it holds in two profiles
    messages = [str(w.message) for w in caught]
    assert not any("exploding" in m for m in messages), messages
    assert any("layer 1 reverse turned vanishing" in m for m in messages), messages


def test_initial_state_in_the_inputs_tuple_is_used() -> None:
    """Regression: gradient_profile(rnn, (x, h0)) used to drop h0 without a word."""
    module = build("gru", layers=2, bidirectional=True)
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    h0 = torch.randn(4, 2, 5, dtype=torch.float64)
    profile = gradient_profile(module, (x, h0), loss="sum", keep_gradients=True)
    reference_h, reference_c, _ = cell_reference(module, x, "sum", hx=h0)
    assert_matches(profile, reference_h, reference_c)
    zero_state = gradient_profile(module, x, loss="sum")
    assert not np.allclose(zero_state.layer(1, 0).grad_norm, profile.layer(1, 0).grad_norm)


def test_initial_state_given_twice_or_for_a_model_is_refused() -> None:
    module = build("rnn_tanh")
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    h0 = torch.zeros(2, 2, 5, dtype=torch.float64)
    with pytest.raises(InvalidInputError, match="given twice"):
        gradient_profile(module, (x, h0), hx=h0)
    with pytest.raises(InvalidInputError, match="called with"):
        gradient_profile(module, (x, h0, h0))
    with pytest.raises(InvalidInputError, match="applies to a bare recurrent module"):
        gradient_profile(classifier(), torch.zeros(2, 5, dtype=torch.int64), hx=h0)
    with pytest.raises(InvalidInputError, match="pair"):
        gradient_profile(build("lstm"), (x, h0))
    with pytest.raises(ShapeError, match="h0 must have shape"):
        gradient_profile(module, (x, h0[:1]))


def packed_reference(
    module: nn.Module,
    x: torch.Tensor,
    lengths: list[int],
    loss: str,
    hx: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict[tuple[int, int], torch.Tensor], dict[tuple[int, int], torch.Tensor]]:
    """Each sequence alone through the cell loop, over its own steps; zeros at padding.
    The losses "last" and "sum" add up over sequences, so this is exact."""
    batch_first = module.batch_first
    steps = x.shape[1] if batch_first else x.shape[0]
    grads_h: dict[tuple[int, int], torch.Tensor] = {}
    grads_c: dict[tuple[int, int], torch.Tensor] = {}
    for b, length in enumerate(lengths):
        one = x[b : b + 1, :length] if batch_first else x[:length, b : b + 1]
        state = None
        if hx is not None:
            state = (
                tuple(s[:, b : b + 1] for s in hx) if isinstance(hx, tuple) else hx[:, b : b + 1]
            )
        ref_h, ref_c, _ = cell_reference(module, one, loss, hx=state)  # type: ignore[arg-type]
        for store, ref in ((grads_h, ref_h), (grads_c, ref_c)):
            for key, value in ref.items():
                full = store.setdefault(
                    key, torch.zeros(len(lengths), steps, value.shape[-1], dtype=value.dtype)
                )
                full[b, :length] = value[0]
    return grads_h, grads_c


PACKED = list(itertools.product(list(KINDS), [1, 2], [False, True], [False, True], ["last", "sum"]))


@pytest.mark.parametrize(
    ("kind", "layers", "bidirectional", "enforce_sorted", "loss"),
    PACKED,
    ids=["-".join(str(v) for v in c) for c in PACKED],
)
def test_packed_sequence_equals_each_sequence_alone(
    kind: str, layers: int, bidirectional: bool, enforce_sorted: bool, loss: str
) -> None:
    """A PackedSequence: each sequence's dL/dh_t over its own steps equals the cell loop run
    on that sequence alone; padding steps are never profiled."""
    module = build(kind, layers=layers, bidirectional=bidirectional)
    lengths = [7, 5, 5, 2] if enforce_sorted else [3, 7, 1, 5]
    x = torch.randn(7, 4, 4, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=enforce_sorted)
    profile = gradient_profile(module, packed, loss=loss, keep_gradients=True)
    reference_h, reference_c = packed_reference(module, x, lengths, loss)
    assert_matches_packed(profile, reference_h, reference_c, lengths)
    np.testing.assert_array_equal(profile.lengths, lengths)
    np.testing.assert_array_equal(
        profile.sequences_per_step, [sum(n >= t for n in lengths) for t in range(1, 8)]
    )


def assert_matches_packed(  # type: ignore[no-untyped-def]
    profile, reference_h, reference_c, lengths: list[int]
) -> None:
    assert_matches(profile, reference_h, reference_c, valid=lengths)
    for lp in profile.layers:
        expected = reference_h[(lp.layer, lp.direction)].norm(dim=2).numpy()
        for b, length in enumerate(lengths):
            assert np.all(np.isnan(lp.grad_norm[b, length:])), "padding must not be profiled"
            assert np.all(np.isfinite(lp.grad_norm[b, :length]))
        means = [
            np.mean([expected[b, t] for b, n in enumerate(lengths) if n > t])
            for t in range(max(lengths))
        ]
        np.testing.assert_allclose(lp.mean_grad_norm, means, rtol=1e-8, atol=1e-300)
        assert lp.first_nonfinite_step is None


def test_lengths_pack_a_padded_input_of_a_bare_module() -> None:
    module = build("lstm", layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    lengths = [2, 6, 4]
    via_lengths = gradient_profile(module, x, lengths=lengths, keep_gradients=True)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    via_packed = gradient_profile(module, packed, keep_gradients=True)
    for a, b in zip(via_lengths.layers, via_packed.layers, strict=True):
        np.testing.assert_array_equal(a.grad_norm, b.grad_norm)
    reference_h, reference_c = packed_reference(module, x, lengths, "last")
    assert_matches_packed(via_lengths, reference_h, reference_c, lengths)


def test_packed_with_an_initial_state_in_the_users_batch_order() -> None:
    module = build("lstm", layers=1, bidirectional=True)
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    lengths = [2, 6, 4]
    hx = (torch.randn(2, 3, 5, dtype=torch.float64), torch.randn(2, 3, 5, dtype=torch.float64))
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    profile = gradient_profile(module, packed, hx=hx, loss="sum", keep_gradients=True)
    reference_h, reference_c = packed_reference(module, x, lengths, "sum", hx=hx)
    assert_matches_packed(profile, reference_h, reference_c, lengths)


@pytest.mark.parametrize(
    ("lengths", "error", "match"),
    [
        ([3, 0, 2], InvalidInputError, "1..6"),
        ([3, 7, 2], InvalidInputError, "1..6"),
        ([3, 2], ShapeError, "one per sequence"),
        ([3.0, 2.0, 1.0], InvalidInputError, "whole numbers"),
    ],
)
def test_bad_lengths_are_refused(lengths: list[float], error: type, match: str) -> None:
    module = build("gru")
    with pytest.raises(error, match=match):
        gradient_profile(module, torch.randn(6, 3, 4, dtype=torch.float64), lengths=lengths)


def test_classifier_packing_inside_its_forward_equals_the_reference() -> None:
    """pack_padded_sequence inside the model, a head on h_n and cross-entropy: each
    sequence's gradients over its own steps, against the cell loop with the same head."""
    model = classifier(seed=2)
    tokens = torch.randint(0, 50, (4, 9), generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([4, 9, 1, 6])
    labels = torch.tensor([1, 0, 3, 2])
    profile = gradient_profile(
        model,
        (tokens, lengths),
        loss=lambda logits: nn.functional.cross_entropy(logits, labels),
        keep_gradients=True,
    )
    assert profile.module_name == "lstm"
    hidden = model.lstm.hidden_size
    grads_h: dict[tuple[int, int], torch.Tensor] = {}
    grads_c: dict[tuple[int, int], torch.Tensor] = {}
    for b, length in enumerate(lengths.tolist()):
        embedded = model.embedding(tokens[b : b + 1, :length]).detach()

        def head_loss(output: torch.Tensor, b: int = b) -> torch.Tensor:
            final = torch.cat([output[-1, :, :hidden], output[0, :, hidden:]], dim=-1)
            logits = model.head(final)
            return nn.functional.cross_entropy(logits, labels[b : b + 1]) / len(lengths)

        ref_h, ref_c, _ = cell_reference(model.lstm, embedded, head_loss)
        for store, ref in ((grads_h, ref_h), (grads_c, ref_c)):
            for key, value in ref.items():
                full = store.setdefault(key, torch.zeros(4, 9, value.shape[-1], dtype=value.dtype))
                full[b, :length] = value[0]
    assert_matches_packed(profile, grads_h, grads_c, lengths.tolist())


def test_packed_sequences_with_dropout_between_layers() -> None:
    """Train mode: the masks the profile draws (padded, in the packed batch order) replayed
    for each sequence alone give the same gradients."""
    module = build("lstm", layers=2, bidirectional=True, dropout=0.5).train()
    lengths = [3, 6, 4]
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    generator = torch.Generator().manual_seed(7)
    profile = gradient_profile(module, packed, loss="sum", keep_gradients=True, generator=generator)
    replay = torch.Generator().manual_seed(7)
    draw = torch.rand((6, 3, 10), generator=replay, dtype=torch.float64)
    mask = (draw < 0.5).double() / 0.5  # (T, B) in the packed order: longest first
    sorted_position = {int(b): j for j, b in enumerate(packed.sorted_indices)}
    grads_h: dict[tuple[int, int], torch.Tensor] = {}
    grads_c: dict[tuple[int, int], torch.Tensor] = {}
    for b, length in enumerate(lengths):
        own = mask[:length, sorted_position[b] : sorted_position[b] + 1]
        ref_h, ref_c, _ = cell_reference(module, x[:length, b : b + 1], "sum", masks=[own])
        for store, ref in ((grads_h, ref_h), (grads_c, ref_c)):
            for key, value in ref.items():
                full = store.setdefault(key, torch.zeros(3, 6, value.shape[-1], dtype=value.dtype))
                full[b, :length] = value[0]
    assert_matches_packed(profile, grads_h, grads_c, lengths)


def test_errors_of_the_users_own_code_are_quoted_in_a_typed_error() -> None:
    """A model that fails on its input, or a loss that fails on the model's output, gives a
    ModelError (an InvalidInputError) quoting the user's exception, chained."""
    from rnngrad.errors import ModelError

    model = classifier()
    with pytest.raises(ModelError, match="Classifier raised") as caught:
        gradient_profile(model, torch.randn(2, 5), loss=lambda out: out.sum())
    assert caught.value.__cause__ is not None
    tokens = torch.zeros(2, 5, dtype=torch.int64)

    def broken(out: torch.Tensor) -> torch.Tensor:
        raise KeyError("labels")

    with pytest.raises(ModelError, match="the loss raised KeyError"):
        gradient_profile(model, tokens, loss=broken)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "gru"])
def test_long_packed_sequences_cross_the_derivative_blocks(kind: str) -> None:
    """An RNN layer's phi' (and a GRU's h_{t-1} - n_t) is computed 128 steps at a time:
    sequences of 300 and 130 steps (block edges inside both, padding across one) still
    equal each sequence alone, and an RNN's saturation share is the count of phi' < 0.1
    over the valid steps of the trajectory."""
    module = build(kind, layers=2, bidirectional=True)
    with torch.no_grad():  # larger weights, so that some tanh units saturate
        module.weight_hh_l0.mul_(3.0)
        module.weight_ih_l0.mul_(3.0)
    lengths = [300, 130]
    x = torch.randn(300, 2, 4, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(lengths))
    profile = gradient_profile(module, packed, loss="sum", keep_gradients=True)
    reference_h, reference_c = packed_reference(module, x, lengths, "sum")
    assert_matches_packed(profile, reference_h, reference_c, lengths)
    if kind == "gru":
        return
    outputs, _ = module(x[:, :1])  # the first sequence alone: the top layer's h
    forward = outputs[:, 0, :5].detach()
    derivative = 1 - forward**2 if kind == "rnn_tanh" else (forward > 0).double()
    short, _ = module(x[:130, 1:])
    short_forward = short[:, 0, :5].detach()
    short_derivative = 1 - short_forward**2 if kind == "rnn_tanh" else (short_forward > 0).double()
    below = int((derivative < 0.1).sum() + (short_derivative < 0.1).sum())
    expected = below / (5 * (300 + 130))
    top = next(lp for lp in profile.layers if lp.layer == 1 and lp.direction == 0)
    assert 0 < expected < 1
    assert top.saturation == pytest.approx(expected, abs=1e-12)
