"""The GRU and LSTM layers' own forward loops against the module's fused kernel, in float64."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnngrad.cells import FUSED_KERNELS, LayerWeights
from rnngrad.profile.forward_loops import GruSaved, LstmSaved, gru_layer_forward, lstm_layer_forward

CASES = [
    (kind, proj, bias, packed)
    for kind, proj, bias, packed in itertools.product(
        ["gru", "lstm"], [0, 3], [True, False], [False, True]
    )
    if not (proj and kind == "gru")
]


@pytest.mark.parametrize(
    ("kind", "proj", "bias", "packed"),
    CASES,
    ids=[f"{k}-proj{p}-bias{b}-packed{q}" for k, p, b, q in CASES],
)
def test_loop_equals_the_fused_kernel(kind: str, proj: int, bias: bool, packed: bool) -> None:
    """Outputs (zeros at padding) and, for the LSTM, each sequence's final cell state
    equal the kernel's to 1e-12; the kept gates are the gates of those outputs."""
    generator = torch.Generator().manual_seed(11 + 5 * proj + 3 * bias + packed)

    def randn(*shape: int) -> torch.Tensor:
        return 0.6 * torch.randn(*shape, generator=generator, dtype=torch.float64)

    steps, batch, width, hidden = 29, 5, 4, 6
    size = proj or hidden
    gates = (4 if kind == "lstm" else 3) * hidden
    w = LayerWeights(
        randn(gates, width),
        randn(gates, size),
        randn(gates) if bias else None,
        randn(gates) if bias else None,
        randn(size, hidden) if proj else None,
    )
    weights = [w.w_ih, w.w_hh, *([w.b_ih, w.b_hh] if bias else []), *([w.w_hr] * bool(proj))]
    x, h0 = randn(steps, batch, width), randn(batch, size)
    c0 = randn(batch, hidden) if kind == "lstm" else None
    hx = h0[None] if c0 is None else (h0[None], c0[None])
    lengths = torch.tensor([steps, 20, 20, 7, 1])
    batch_sizes = None
    if packed:
        valid = torch.arange(steps)[:, None] < lengths[None, :]
        x = x * valid[..., None]
        sequence = pack_padded_sequence(x, lengths)
        batch_sizes = sequence.batch_sizes
        result = FUSED_KERNELS[kind](
            sequence.data, batch_sizes, hx, weights, bias, 1, 0.0, False, False
        )
        expected = pad_packed_sequence(PackedSequence(result[0], batch_sizes), total_length=steps)[
            0
        ]
    else:
        result = FUSED_KERNELS[kind](x, hx, weights, bias, 1, 0.0, False, False, False)
        expected = result[0]
    saved: GruSaved | LstmSaved
    if kind == "gru":
        out, saved = gru_layer_forward(w, x, h0, batch_sizes)
    else:
        assert c0 is not None
        out, kept = lstm_layer_forward(w, x, h0, c0, batch_sizes)
        last = lengths - 1 if packed else torch.full((batch,), steps - 1)
        final_c = kept.c[last, torch.arange(batch)]
        assert (final_c - result[2][0]).abs().max() <= 1e-12 * result[2].abs().max()
        assert torch.equal(kept.tanh_c, torch.tanh(kept.c))
        saved = kept
    scale = expected.abs().max()
    assert scale > 0
    assert (out - expected).abs().max() <= 1e-12 * scale
    if packed:
        assert not out[~valid].any(), "padding steps must stay zero"
    assert torch.isfinite(saved.gates).all()
