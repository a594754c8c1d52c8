"""The fused-kernel route of the backward recursion against the loop over time, in float64."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnngrad import gradient_profile
from rnngrad.cells import FUSED_KERNELS, LayerWeights
from rnngrad.errors import InvalidInputError
from rnngrad.profile.recursion import backward_direction

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
TOLERANCE = 1e-12


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    scale = expected.abs().max().item()
    assert scale > 0, "the reference is all zero: the comparison would prove nothing"
    return (got - expected).abs().max().item() / scale


CASES = [
    (kind, proj, bias, packed)
    for kind, proj, bias, packed in itertools.product(GATES, [0, 3], [True, False], [False, True])
    if not (proj and kind != "lstm")
]


@pytest.mark.parametrize(
    ("kind", "proj", "bias", "packed"),
    CASES,
    ids=[f"{k}-proj{p}-bias{b}-packed{q}" for k, p, b, q in CASES],
)
def test_fused_route_equals_the_recursion(kind: str, proj: int, bias: bool, packed: bool) -> None:
    """dL/dh_t, dL/dc_t, dL/dx_t and the saturated share of one layer and direction, from
    the fused kernel's backward with an extra input slot, equal the loop's to 1e-12."""
    generator = torch.Generator().manual_seed(len(kind) + 7 * proj + 3 * bias + packed)

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=generator, dtype=torch.float64)

    steps, batch, width, hidden = 41, 5, 4, 6
    size = proj or hidden
    gates = GATES[kind] * hidden
    w = LayerWeights(
        randn(gates, width, scale=0.6),
        randn(gates, size, scale=0.6),
        randn(gates) if bias else None,
        randn(gates) if bias else None,
        randn(size, hidden, scale=0.6) if proj else None,
    )
    x = randn(steps, batch, width)
    h0 = randn(batch, size)
    c0 = randn(batch, hidden) if kind == "lstm" else None
    kernel_weights = [w.w_ih, w.w_hh, *([w.b_ih, w.b_hh] if bias else []), *([w.w_hr] * bool(proj))]
    hx = h0[None] if c0 is None else (h0[None], c0[None])
    valid = None
    lengths = torch.tensor([steps, 30, 30, 9, 1])
    if packed:  # padding last, zeros there, as the profile hands it over
        valid = torch.arange(steps)[:, None] < lengths[None, :]
        x = x * valid[..., None]
        sequence = pack_padded_sequence(x, lengths)
        out = FUSED_KERNELS[kind](
            sequence.data, sequence.batch_sizes, hx, kernel_weights, bias, 1, 0.0, False, False
        )[0]
        h = pad_packed_sequence(PackedSequence(out, sequence.batch_sizes), total_length=steps)[0]
    else:
        h = FUSED_KERNELS[kind](x, hx, kernel_weights, bias, 1, 0.0, False, False, False)[0]
    direct = randn(steps, batch, size)
    if valid is not None:
        direct = direct * valid[..., None]
    direct_c_last = randn(batch, hidden) if kind == "lstm" else None
    direct_c_steps = None
    if packed and direct_c_last is not None:  # each sequence's final cell state: its own last step
        direct_c_steps = torch.zeros(steps, batch, hidden, dtype=torch.float64)
        direct_c_steps[lengths - 1, torch.arange(batch)] = direct_c_last
        direct_c_last = torch.zeros_like(direct_c_last)
    given = direct.clone()
    arguments = (kind, w, x, h, h0, c0, direct, direct_c_last)
    options = {"direct_c_steps": direct_c_steps, "valid": valid}
    loop = backward_direction(*arguments, **options)  # type: ignore[arg-type]
    fused = backward_direction(*arguments, **options, route="fused")  # type: ignore[arg-type]
    assert torch.equal(direct, given), "the fused route changed the caller's direct gradients"
    assert _relative(fused.grad_h, loop.grad_h) <= TOLERANCE
    assert fused.grad_input is not None and loop.grad_input is not None
    assert _relative(fused.grad_input, loop.grad_input) <= TOLERANCE
    if kind == "lstm":
        assert fused.grad_c is not None and loop.grad_c is not None
        assert _relative(fused.grad_c, loop.grad_c) <= TOLERANCE
    else:
        assert fused.grad_c is None
    assert fused.saturated == loop.saturated
    if valid is not None:  # exact zeros through the padding
        assert not fused.grad_h[~valid].any()
    without_input = backward_direction(*arguments, **options, need_input=False, route="fused")  # type: ignore[arg-type]
    assert without_input.grad_input is None
    assert _relative(without_input.grad_h, loop.grad_h) <= TOLERANCE


MODELS = {
    "rnn": lambda: nn.RNN(4, 5, num_layers=2, bidirectional=True, dropout=0.4),
    "lstm_proj": lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, proj_size=3, dropout=0.4),
    "gru": lambda: nn.GRU(4, 5, num_layers=3, bidirectional=True, dropout=0.4),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("packed", [False, True])
def test_profile_routes_agree_on_whole_modules(name: str, packed: bool) -> None:
    """gradient_profile(route="fused") equals route="recursion" on multi-layer bidirectional
    modules in train mode (dropout between layers), packed or not, with an initial state."""
    torch.manual_seed(3)
    module = MODELS[name]().double().train()
    x = torch.randn(23, 4, 4, dtype=torch.float64)
    layers, size = module.num_layers, module.proj_size or module.hidden_size
    h0 = torch.randn(2 * layers, 4, size, dtype=torch.float64)
    hx = (h0, torch.randn(2 * layers, 4, 5, dtype=torch.float64)) if name.startswith("lstm") else h0
    inputs = (
        pack_padded_sequence(x, torch.tensor([23, 7, 19, 2]), enforce_sorted=False) if packed else x
    )
    profiles = {
        route: gradient_profile(
            module,
            inputs,
            hx=hx,
            loss="sum",
            keep_gradients=True,
            route=route,
            generator=torch.Generator().manual_seed(9),
        )
        for route in ("recursion", "fused")
    }
    for loop, fused in zip(profiles["recursion"].layers, profiles["fused"].layers, strict=True):
        assert loop.grad is not None and fused.grad is not None
        assert _relative(fused.grad, loop.grad) <= TOLERANCE
        if loop.grad_c is not None:
            assert fused.grad_c is not None
            assert _relative(fused.grad_c, loop.grad_c) <= TOLERANCE
        assert fused.saturation == loop.saturation
        assert fused.verdict.label == loop.verdict.label


def test_auto_route_on_a_cpu_is_the_recursion() -> None:
    """On a CPU "auto" runs the loop: bit for bit the same gradients."""
    torch.manual_seed(1)
    module = nn.GRU(3, 4, num_layers=2).double()
    x = torch.randn(12, 2, 3, dtype=torch.float64)
    auto = gradient_profile(module, x, keep_gradients=True)
    loop = gradient_profile(module, x, keep_gradients=True, route="recursion")
    for a, b in zip(auto.layers, loop.layers, strict=True):
        assert a.grad is not None and b.grad is not None
        assert torch.equal(a.grad, b.grad)


def test_unknown_route_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="route must be"):
        gradient_profile(nn.RNN(2, 3), torch.randn(4, 1, 2), route="loop")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(MODELS))
def test_routes_agree_in_float32(name: str) -> None:
    """In float32, the dtype a GPU runs, the two routes agree to float32 rounding
    (1e-5 of the largest entry) over 200 steps."""
    torch.manual_seed(4)
    module = MODELS[name]().eval()
    x = torch.randn(200, 3, 4)
    profiles = [
        gradient_profile(module, x, loss="sum", keep_gradients=True, route=route)
        for route in ("recursion", "fused")
    ]
    for loop, fused in zip(profiles[0].layers, profiles[1].layers, strict=True):
        assert loop.grad is not None and fused.grad is not None
        assert fused.grad.dtype == torch.float32
        assert _relative(fused.grad, loop.grad) <= 1e-5
