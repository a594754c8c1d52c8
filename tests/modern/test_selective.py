"""Selective scans: mambapy's Mamba and a layer of the selective-scan protocol, profiled
exactly, against autograd through a sequential selective-scan loop written here."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import gradient_profile
from rnngrad.errors import UnsupportedModuleError

mamba = pytest.importorskip("mambapy.mamba", reason="pip install 'rnngrad[ssm]'")


def _sequential_states(
    states: list[torch.Tensor],
) -> Callable[..., torch.Tensor]:
    """mambapy's ``selective_scan`` written as a loop over tokens, each state kept (with
    ``retain_grad``) in ``states``: the reference's total ``dL/dh_t`` is each one's
    ``.grad``, autograd's through every later state, independent of rnngrad's scans."""

    def selective_scan(self: Any, x: Any, delta: Any, A: Any, B: Any, C: Any, D: Any) -> Any:
        delta_a = torch.exp(delta.unsqueeze(-1) * A)
        inputs = delta.unsqueeze(-1) * B.unsqueeze(2) * x.unsqueeze(-1)
        h = torch.zeros_like(inputs[:, 0])
        kept = []
        for t in range(x.shape[1]):
            h = delta_a[:, t] * h + inputs[:, t]
            h.retain_grad()
            kept.append(h)
        states.append(kept)  # type: ignore[arg-type]
        stacked = torch.stack(kept, dim=1)
        return (stacked @ C.unsqueeze(-1)).squeeze(3) + D * x

    return selective_scan


def _reference_norms(model: nn.Module, x: torch.Tensor, loss: Callable[[Any], Any]) -> list[Any]:
    """``(B, T)`` norms of the total ``dL/dh_t`` of every block, through the loop."""
    blocks = [m for m in model.modules() if type(m).__name__ == "MambaBlock"]
    states: list[Any] = []
    loop = _sequential_states(states)
    originals = [type(block).selective_scan for block in blocks]
    try:
        for block in blocks:
            type(block).selective_scan = loop  # type: ignore[method-assign]
        loss(model(x)).backward()
    finally:
        for block, original in zip(blocks, originals, strict=True):
            type(block).selective_scan = original  # type: ignore[method-assign]
    return [
        torch.stack([h.grad.flatten(1).norm(dim=1) for h in kept], dim=1).numpy() for kept in states
    ]


@pytest.mark.parametrize("loss_name", ["sum", "last", "callable"])
def test_mamba_per_token_gradients_match_a_sequential_loop(loss_name: str) -> None:
    """A two-layer mambapy Mamba in float64: every layer's ||dL/dh_t|| (the state of
    shape (ED, N) per token) equals autograd's through a sequential selective-scan loop,
    whatever the loss; with the loss at the last token alone the top layer's carried
    gradient is its total (the layer below it reaches that token at the last few tokens,
    through the top block's short convolution)."""
    torch.manual_seed(0)
    config = mamba.MambaConfig(d_model=6, n_layers=2, d_state=4, expand_factor=2)
    model = mamba.Mamba(config).double()
    x = torch.randn(3, 16, 6, dtype=torch.float64)
    target = torch.randn(3, 16, 6, dtype=torch.float64)
    losses: dict[str, Callable[[Any], Any]] = {
        "sum": lambda out: 0.5 * (out**2).sum(),
        "last": lambda out: 0.5 * (out[:, -1] ** 2).sum(),
        "callable": lambda out: nn.functional.mse_loss(out, target),
    }
    given = losses[loss_name] if loss_name == "callable" else loss_name
    profile = gradient_profile(model, x, loss=given)
    expected = _reference_norms(model, x, losses[loss_name])
    assert len(profile.layers) == 2
    for layer, norms in zip(profile.layers, expected, strict=True):
        np.testing.assert_allclose(layer.grad_norm, norms, rtol=1e-9, atol=1e-15)
    if loss_name == "last":
        top = profile.layers[-1]
        np.testing.assert_allclose(top.mean_carried_norm, top.mean_grad_norm, rtol=1e-9)


class ToySelective(nn.Module):
    """A selective layer of one's own, on the protocol: a_t = exp(-softplus(W x_t)) per
    channel, b_t = x_t, its states through ``self.scan``."""

    rnngrad_selective_scan = True

    def __init__(self, size: int) -> None:
        super().__init__()
        self.gate = nn.Linear(size, size)
        self.read = nn.Linear(size, 1)

    def scan(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, out = torch.zeros_like(b[:, 0]), []
        for t in range(b.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return torch.stack(out, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.exp(-nn.functional.softplus(self.gate(x)))
        return self.read(self.scan(a, x))


def test_a_layer_of_the_protocol_is_profiled_exactly() -> None:
    """The protocol's layer: rnngrad's scan gives the layer's own outputs, and the
    per-token gradients equal autograd's through the layer's own loop."""
    torch.manual_seed(1)
    layer = ToySelective(4).double()
    x = torch.randn(2, 12, 4, dtype=torch.float64)
    profile = gradient_profile(layer, x, loss="sum")
    states: list[torch.Tensor] = []
    own = ToySelective.scan

    def keeping(self: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, out = torch.zeros_like(b[:, 0]), []
        for t in range(b.shape[1]):
            h = a[:, t] * h + b[:, t]
            h.retain_grad()
            states.append(h)
            out.append(h)
        return torch.stack(out, dim=1)

    ToySelective.scan = keeping  # type: ignore[method-assign]
    try:
        (0.5 * (layer(x) ** 2).sum()).backward()
    finally:
        ToySelective.scan = own  # type: ignore[method-assign]
    expected = torch.stack([h.grad.norm(dim=1) for h in states], dim=1).numpy()
    np.testing.assert_allclose(profile.layers[0].grad_norm, expected, rtol=1e-10)
    assert type(layer) is ToySelective  # the class is restored


def test_the_fused_cuda_kernel_is_refused_naming_the_protocol() -> None:
    config = mamba.MambaConfig(d_model=4, n_layers=1, d_state=2)
    model = mamba.Mamba(config)
    block = model.layers[0].mixer
    block.config.use_cuda = True
    with pytest.raises(UnsupportedModuleError, match="scan\\(a, b\\)"):
        gradient_profile(model, torch.randn(1, 5, 4))
    assert type(block).__name__ == "MambaBlock"


def test_mambas_selective_eigenvalues_are_exp_delta_a() -> None:
    """The criterion of each Mamba block: ln|a_t| = Delta_t A_j for every token, channel
    and state mode, recomputed here from the block's own projections; the exact Lyapunov
    exponents are their time averages."""
    from rnngrad.lyapunov.diagonal import exponents_from_log_moduli
    from rnngrad.selective.criterion import selective_spectra

    torch.manual_seed(3)
    config = mamba.MambaConfig(d_model=4, n_layers=2, d_state=3, expand_factor=2)
    model = mamba.Mamba(config).double()
    x = torch.randn(2, 10, 4, dtype=torch.float64)
    spectra = selective_spectra(model, x)
    assert [s.module_name for s in spectra] == ["layers.0.mixer", "layers.1.mixer"]
    block, norm = model.layers[0].mixer, model.layers[0].norm
    with torch.no_grad():
        inner = block.in_proj(norm(x)).chunk(2, dim=-1)[0]
        inner = nn.functional.silu(block.conv1d(inner.transpose(1, 2))[:, :, :10].transpose(1, 2))
        delta = block.x_proj(inner)[..., : config.dt_rank]
        delta = nn.functional.softplus(block.dt_proj(delta))
        rates = -torch.exp(block.A_log.float()).double()
        expected = (delta.unsqueeze(-1) * rates).transpose(0, 1).reshape(10, 2, -1).numpy()
    np.testing.assert_allclose(spectra[0].log_abs, expected, rtol=1e-6, atol=1e-12)
    exponents = exponents_from_log_moduli(spectra[0].log_abs)
    np.testing.assert_allclose(
        np.sort(exponents.exponents), np.sort(expected.mean(axis=(0, 1))), rtol=1e-10
    )


def test_the_monitor_profiles_a_mamba_model_in_training() -> None:
    """GradientMonitor on a Mamba model: one profile per schedule, one verdict per block."""
    from rnngrad import GradientMonitor
    from rnngrad.monitor.monitor import GradientWarning

    torch.manual_seed(4)
    model = mamba.Mamba(mamba.MambaConfig(d_model=4, n_layers=2, d_state=2))
    monitor = GradientMonitor(model, every=3, loss=lambda out: out[:, -1].pow(2).sum())
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    with warnings.catch_warnings():  # the verdicts' warnings are not this test's subject
        warnings.simplefilter("ignore", GradientWarning)
        for _ in range(6):
            x = torch.randn(2, 10, 4)
            loss = model(x)[:, -1].pow(2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            monitor.step(x)
    assert len(monitor.history) == 2 and len(monitor.history[-1].labels) == 2


def test_norms_per_channel_group_on_request() -> None:
    """With keep_gradients=True, a block's per-token gradient splits into groups of its
    channels: each group's norm is the norm of that slice of the (ED, N) state's gradient
    (autograd's, through the sequential loop), and their squares add up to the total."""
    from rnngrad.errors import InvalidInputError
    from rnngrad.profile.selective import channel_group_norms

    torch.manual_seed(5)
    config = mamba.MambaConfig(d_model=4, n_layers=1, d_state=3, expand_factor=2)
    model = mamba.Mamba(config).double()
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    profile = gradient_profile(model, x, loss="sum", keep_gradients=True)
    grad = profile.layers[0].grad
    assert grad is not None
    groups = channel_group_norms(grad, channels=8, groups=4)  # (4, B, T)
    states: list[Any] = []
    block = model.layers[0].mixer
    original = type(block).selective_scan
    type(block).selective_scan = _sequential_states(states)  # type: ignore[method-assign]
    try:
        (0.5 * (model(x) ** 2).sum()).backward()
    finally:
        type(block).selective_scan = original  # type: ignore[method-assign]
    expected = torch.stack([h.grad for h in states[0]], dim=1)  # (B, T, ED, N)
    for group in range(4):
        part = expected[:, :, 2 * group : 2 * group + 2].flatten(2).norm(dim=2).numpy()
        np.testing.assert_allclose(groups[group], part, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose((groups**2).sum(axis=0), profile.layers[0].grad_norm**2,
                               rtol=1e-9)  # fmt: skip
    with pytest.raises(InvalidInputError, match="divide"):
        channel_group_norms(grad, channels=8, groups=3)
