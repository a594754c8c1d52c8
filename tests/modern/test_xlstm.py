"""xLSTM's sLSTM (the xlstm package, vanilla PyTorch backend), profiled exactly: the
per-step gradient of its whole state (h, c, n, m) against autograd through a step loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from rnngrad import gradient_profile
from rnngrad.errors import UnsupportedModuleError

xlstm = pytest.importorskip("xlstm", reason="pip install 'rnngrad[ssm]'")


def _stack(blocks: int = 2, mlstm: bool = False) -> Any:
    slstm = xlstm.sLSTMBlockConfig(
        slstm=xlstm.sLSTMLayerConfig(backend="vanilla", num_heads=2, conv1d_kernel_size=0),
        feedforward=None,
    )
    config = xlstm.xLSTMBlockStackConfig(
        slstm_block=slstm,
        mlstm_block=xlstm.mLSTMBlockConfig() if mlstm else None,
        context_length=12, num_blocks=blocks, embedding_dim=8,
        slstm_at="all" if not mlstm else [1],
    )  # fmt: skip
    return xlstm.xLSTMBlockStack(config).double()


def _reference_norms(model: Any, x: torch.Tensor, loss: Any) -> list[np.ndarray]:
    """``(B, T)`` norms of the total gradient of every cell's state (h, c, n, m), by
    autograd through a loop of the cell's own steps, each state kept with retain_grad."""
    cells = [m for m in model.modules() if type(m).__name__ == "sLSTMCell_vanilla"]
    kept: list[list[torch.Tensor]] = []

    def loop(self: Any, training: bool, inputs: torch.Tensor, states: torch.Tensor) -> Any:
        chain, state = [], states
        for k in range(inputs.shape[0]):
            state = self._impl_step(training, inputs[k : k + 1], state)[:, 0]
            state.retain_grad()
            chain.append(state)
        kept.append(chain)
        return torch.stack([states, *chain], dim=1)

    original = type(cells[0])._impl
    type(cells[0])._impl = loop  # type: ignore[method-assign]
    try:
        loss(model(x)).backward()
    finally:
        type(cells[0])._impl = original  # type: ignore[method-assign]
    return [
        torch.stack([s.grad.permute(1, 0, 2).flatten(1).norm(dim=1) for s in chain], 1).numpy()
        for chain in kept
    ]


@pytest.mark.parametrize("loss_name", ["sum", "last"])
def test_slstm_per_step_gradients_match_autograd_through_a_step_loop(loss_name: str) -> None:
    """Two sLSTM blocks in float64: every step's ||dL/d(h, c, n, m)|| equals autograd's
    through the cell's own steps (the stabilised exponential gates' Jacobian included);
    with the loss at the last step the top cell's carried gradient is its total."""
    torch.manual_seed(0)
    model = _stack()
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    losses = {
        "sum": lambda out: 0.5 * (out**2).sum(),
        "last": lambda out: 0.5 * (out[:, -1] ** 2).sum(),
    }
    profile = gradient_profile(model, x, loss=loss_name)
    expected = _reference_norms(model, x, losses[loss_name])
    assert len(profile.layers) == 2
    for layer, norms in zip(profile.layers, expected, strict=True):
        np.testing.assert_allclose(layer.grad_norm, norms, rtol=1e-9, atol=1e-14)
    if loss_name == "last":
        top = profile.layers[-1]
        np.testing.assert_allclose(top.mean_carried_norm, top.mean_grad_norm, rtol=1e-9)


def test_a_stack_with_mlstm_blocks_is_refused() -> None:
    """The mLSTM's matrix memory is not read yet: said in one line, not skipped silently."""
    torch.manual_seed(1)
    model = _stack(blocks=2, mlstm=True)
    with pytest.raises(UnsupportedModuleError, match="mLSTM"):
        gradient_profile(model, torch.randn(1, 12, 8, dtype=torch.float64))
