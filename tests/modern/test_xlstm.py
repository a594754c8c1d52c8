"""xLSTM's sLSTM (the xlstm package, vanilla PyTorch backend), profiled exactly: the
per-step gradient of its whole state (h, c, n, m) against autograd through a step loop."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch

from rnngrad import gradient_profile

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


def _reference_memory_norms(model: Any, x: torch.Tensor, loss: Any) -> list[np.ndarray]:
    """``(B, T)`` norms of the total gradient of every mLSTM cell's memory (C, n, m), by
    autograd through the package's own recurrent steps, each memory kept with
    retain_grad; the read-out h_t = C_t q_t / (max(|n_t^T q_t|, e^-m_t) + eps) is the
    package's formula, from those states."""
    cells = [m for m in model.modules() if type(m).__name__ == "mLSTMCell"]
    kept: list[list[tuple[torch.Tensor, ...]]] = []

    def loop(cell: Any) -> Any:
        def run(queries: Any, keys: Any, values: Any, igate_preact: Any, fgate_preact: Any,
                **_: Any) -> torch.Tensor:  # fmt: skip
            batch, heads, steps, size = queries.shape
            c = queries.new_zeros(batch, heads, size, size)
            n = queries.new_zeros(batch, heads, size, 1)
            m = queries.new_zeros(batch, heads, 1, 1)
            chain, outputs = [], []
            for t in range(steps):
                parts = [z[:, :, t : t + 1].clone() for z in (queries, keys, values, igate_preact,
                                                               fgate_preact)]  # fmt: skip
                _, (c, n, m) = cell.backend_fn_step(c, n, m, *parts)
                # The memory as independent coordinates (C, n, m): fresh nodes that the
                # read-out and the next step both start from (the stabiliser m is a state
                # of its own, as in the recursion, not a function of C and n).
                c, n, m = c + 0.0, n + 0.0, m + 0.0
                for state in (c, n, m):
                    state.retain_grad()
                chain.append((c, n, m))
                q = queries[:, :, t : t + 1].squeeze(2).unsqueeze(-1)
                numerator = q.transpose(-1, -2) @ c  # the package's read-out, written out
                denominator = torch.maximum((q.transpose(-1, -2) @ n).abs(), torch.exp(-m))
                outputs.append(numerator / (denominator + 1e-6))
            kept.append(chain)
            return torch.cat(outputs, dim=2)

        return run

    for cell in cells:
        cell.backend_fn = loop(cell)
    loss(model(x)).backward()

    def norm(state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        flat = torch.cat([s.grad.reshape(s.shape[0], -1) for s in state], dim=1)
        return flat.norm(dim=1)

    return [torch.stack([norm(state) for state in chain], dim=1).numpy() for chain in kept]


@pytest.mark.parametrize("loss_name", ["sum", "last"])
def test_mlstm_memory_gradients_match_autograd_through_its_recurrent_steps(
    loss_name: str,
) -> None:
    """A stack of an mLSTM block and an sLSTM block, float64: the mLSTM's per-step
    ||dL/d(C, n, m)|| (its matrix memory of every head) equals autograd's through the
    package's own recurrent steps; the sLSTM layer still matches its own reference."""
    torch.manual_seed(1)
    model = _stack(blocks=2, mlstm=True)
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    losses = {"sum": lambda out: 0.5 * (out**2).sum(),
              "last": lambda out: 0.5 * (out[:, -1] ** 2).sum()}  # fmt: skip
    profile = gradient_profile(model, x, loss=loss_name)
    assert len(profile.layers) == 2
    memory = _reference_memory_norms(model, x, losses[loss_name])
    np.testing.assert_allclose(profile.layers[0].grad_norm, memory[0], rtol=1e-9, atol=1e-14)
    scalar = _reference_norms(model, x, losses[loss_name])
    np.testing.assert_allclose(profile.layers[1].grad_norm, scalar[0], rtol=1e-9, atol=1e-14)


def test_the_monitor_attaches_and_the_report_says_what_it_lacks() -> None:
    """A training loop of an xLSTM stack: the monitor profiles every cell on its schedule;
    the report refuses such a model in one line that says where its profile is."""
    from rnngrad import GradientMonitor
    from rnngrad.errors import UnsupportedModuleError
    from rnngrad.monitor.monitor import GradientWarning
    from rnngrad.report.build import build_sections

    torch.manual_seed(2)
    model = _stack(blocks=2, mlstm=True)
    monitor = GradientMonitor(model, every=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    with warnings.catch_warnings():  # the verdicts' warnings are not this test's subject
        warnings.simplefilter("ignore", GradientWarning)
        for _ in range(4):
            x = torch.randn(2, 12, 8, dtype=torch.float64)
            loss = model(x).pow(2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            monitor.step(x)
    assert len(monitor.history) == 2 and len(monitor.history[-1].labels) == 2
    with pytest.raises(UnsupportedModuleError, match=r"with sLSTM blocks: .* its page is not"):
        build_sections(module=model, inputs=torch.randn(1, 12, 8, dtype=torch.float64), quick=True)


def test_the_mlstm_forget_gates_are_its_selective_eigenvalues() -> None:
    """selective_spectrum of a model with an mLSTM cell: ln f_t = ln sigma(f~_t) per head
    and token, whose sum over the tokens is the log of the memory's own growth through
    the package's recurrent steps (forward-mode derivative of C_T along C_0, one head at a
    time), corrected by the stabiliser's gauge m_T - m_0."""
    from rnngrad import selective_spectrum

    torch.manual_seed(3)
    model = _stack(blocks=2, mlstm=True)  # an mLSTM block, then an sLSTM block
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    spectrum = selective_spectrum(model, x)
    cell = next(m for m in model.modules() if type(m).__name__ == "mLSTMCell")
    growth = _memory_log_growth(model, cell, x, spectrum.modes)
    np.testing.assert_allclose(spectrum.log_abs.sum(axis=0), growth, rtol=1e-9)
    assert spectrum.log_abs.shape == (12, 2, spectrum.modes) and np.all(spectrum.log_abs < 0)


def _memory_log_growth(model: Any, cell: Any, x: torch.Tensor, heads: int) -> np.ndarray:
    """``ln |dC_T/dC_0|`` per sequence and head ``(B, heads)``, through the package's own
    recurrent steps of ``cell`` inside ``model``: the forward-mode derivative of one memory
    entry along ``C_0``, plus the stabiliser's gauge ``m_T - m_0``."""
    import torch.autograd.forward_ad as fwad

    captured: list[dict[str, Any]] = []

    def keep(_m: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        captured.append({**dict(zip(("q", "k", "v"), args, strict=False)), **kwargs})

    handle = cell.register_forward_pre_hook(keep, with_kwargs=True)
    with torch.no_grad():
        model(x)
    handle.remove()
    q, k, v = (captured[0][name] for name in ("q", "k", "v"))
    batch = x.shape[0]
    size = q.shape[-1] // heads
    growths = np.empty((batch, heads))
    for head in range(heads):
        tangent = torch.zeros(batch, heads, size, size, dtype=torch.float64)
        tangent[:, head] = 1.0
        with torch.no_grad(), fwad.dual_level():
            c = fwad.make_dual(torch.zeros_like(tangent), tangent)
            n = torch.zeros(batch, heads, size, 1, dtype=torch.float64)
            m = torch.zeros(batch, heads, 1, 1, dtype=torch.float64)
            for t in range(q.shape[1]):
                _, (c, n, m) = cell.step(q[:, t : t + 1], k[:, t : t + 1], v[:, t : t + 1],
                                         mlstm_state=(c, n, m))  # fmt: skip
            growth = fwad.unpack_dual(c).tangent[:, head, 0, 0]
        growths[:, head] = (torch.log(growth) + m[:, head, 0, 0]).numpy()
    return growths


def test_a_stack_of_mlstm_blocks_has_a_page_read_through_its_forget_gates() -> None:
    """The report of an mLSTM-only stack: its profile, its forget gates as the eigenvalues
    token by token, and Lyapunov exponents per head that equal the memory's own growth
    rate through the package's recurrent steps (ln|dC_T/dC_0| / T, averaged over the
    sequences); the page's explanation is the mLSTM's, not Mamba's."""
    from rnngrad.report.build import build_sections

    torch.manual_seed(4)
    config = xlstm.xLSTMBlockStackConfig(
        mlstm_block=xlstm.mLSTMBlockConfig(), context_length=12, num_blocks=2, embedding_dim=8
    )
    model = xlstm.xLSTMBlockStack(config).double()
    for cell in (m for m in model.modules() if type(m).__name__ == "mLSTMCell"):
        torch.nn.init.normal_(cell.fgate.weight, std=0.5)  # the gates read the input
    x = torch.randn(3, 12, 8, dtype=torch.float64)
    sections = build_sections(module=model, name="xlstm", inputs=x, quick=True)
    by_key = {section.key: section for section in sections}
    assert ["profile", "spectrum", "lyapunov", "lab", "scalar"] == [s.key for s in sections]
    assert "mLSTM" in (by_key["spectrum"].explanation or "")
    cells = [(name, m) for name, m in model.named_modules() if type(m).__name__ == "mLSTMCell"]
    assert len(cells) == 2
    for name, cell in cells:
        heads = cell.config.num_heads
        growth = _memory_log_growth(model, cell, x, heads)
        expected = np.sort(growth.mean(axis=0) / x.shape[1])[::-1]
        np.testing.assert_allclose(by_key["lyapunov"].numbers[name]["exponents"], expected,
                                   rtol=1e-9)  # fmt: skip
        assert "not selective" not in by_key["spectrum"].sentence
    korean = build_sections(module=model, name="xlstm", inputs=x, quick=True, lang="ko")
    assert "mLSTM 헤드" in (next(s for s in korean if s.key == "spectrum").explanation or "")
