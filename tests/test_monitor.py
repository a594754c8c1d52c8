"""The training monitor: schedule, warnings, TensorBoard, and no effect on training."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad import GradientMonitor
from rnngrad.monitor import GradientWarning, heat_map


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 8, num_layers=2, dropout=0.2, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(x)
        return self.head(self.dropout(output[:, -1]))


def train(steps: int, monitor_every: int | None) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = Model()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = (
        GradientMonitor(model, every=monitor_every, loss=lambda y: y.pow(2).sum())
        if monitor_every
        else None
    )
    data = torch.randn(steps, 4, 10, 3)
    for step in range(steps):
        optimiser.zero_grad()
        loss = (model(data[step]) - 1.0).pow(2).mean()
        loss.backward()
        if monitor is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GradientWarning)
                monitor.step(data[step])  # after backward, before the optimiser step
        optimiser.step()
    return [p.detach().clone() for p in model.parameters()]


def test_monitor_never_changes_training() -> None:
    """Same seed with and without the monitor (every step, dropout on): identical weights."""
    plain = train(6, None)
    monitored = train(6, 1)
    for a, b in zip(plain, monitored, strict=True):
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore::rnngrad.monitor.GradientWarning")
def test_fixed_schedule() -> None:
    model = nn.GRU(3, 4)
    monitor = GradientMonitor(model, every=3)
    x = torch.randn(5, 2, 3)
    taken = [monitor.step(x) is not None for _ in range(7)]
    assert taken == [True, False, False, True, False, False, True]
    assert [r.step for r in monitor.history] == [1, 4, 7]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.filterwarnings("ignore::rnngrad.monitor.GradientWarning")
def test_adaptive_schedule_keeps_overhead_under_the_share() -> None:
    """With profiles costing 1 s and training steps 2 s, a profile comes every 10 steps."""
    clock = FakeClock()
    model = nn.RNN(3, 4)
    monitor = GradientMonitor(model, overhead=0.05, clock=clock)
    original = monitor.model.forward
    x = torch.randn(5, 2, 3)

    import rnngrad.monitor as monitor_module

    real_profile = monitor_module.gradient_profile

    def slow_profile(*args, **kwargs):  # type: ignore[no-untyped-def]
        clock.now += 1.0
        return real_profile(*args, **kwargs)

    monitor_module.gradient_profile = slow_profile  # type: ignore[assignment]
    try:
        for _ in range(60):
            monitor.step(x)
            clock.now += 2.0  # the training step
    finally:
        monitor_module.gradient_profile = real_profile
    steps = [r.step for r in monitor.history]
    assert steps == [1, 11, 21, 31, 41, 51]
    assert monitor.profile_seconds / clock.now <= 0.05 + 1.0 / clock.now
    assert monitor.model.forward == original


def test_warns_when_a_layer_turns_vanishing(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = nn.RNN(3, 16)
    with torch.no_grad():
        model.weight_hh_l0.mul_(0.1)
    monitor = GradientMonitor(model, every=1)
    x = torch.randn(50, 2, 3)
    with caplog.at_level(logging.WARNING, logger="rnngrad.monitor"):
        with pytest.warns(GradientWarning, match="layer 0 turned vanishing"):
            monitor.step(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error", GradientWarning)
            monitor.step(x)  # still vanishing: no new warning
    assert any("turned vanishing" in r.getMessage() for r in caplog.records)


def test_warns_on_non_finite_gradients_naming_layer_and_step() -> None:
    model = nn.RNN(2, 2, nonlinearity="relu", bias=False)
    with torch.no_grad():
        model.weight_hh_l0.copy_(torch.eye(2) * 1e6)
        model.weight_ih_l0.copy_(torch.eye(2))
    monitor = GradientMonitor(model, every=1)
    with pytest.warns(
        GradientWarning, match=r"non-finite gradient dL/dh_t in layer 0, first at time step t = \d+"
    ):
        monitor.step(torch.ones(12, 1, 2))


def test_tensorboard_scalars_and_heat_map(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(2)
    model = nn.GRU(3, 6, num_layers=2, bidirectional=True)
    writer = SummaryWriter(log_dir=str(tmp_path))
    monitor = GradientMonitor(model, every=1, writer=writer, loss="sum")
    x = torch.randn(20, 2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        profile = monitor.step(x, step=100)
    writer.close()
    assert profile is not None
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()
    assert "rnngrad/layer_1_reverse/saturation" in tags["scalars"]
    assert "rnngrad/log10_grad_norm" in tags["images"]
    saturation = events.Scalars("rnngrad/layer_1_reverse/saturation")[0]
    assert saturation.step == 100
    assert saturation.value == pytest.approx(profile.layer(1, 1).saturation, rel=1e-6)
    decay = events.Scalars("rnngrad/layer_0/decay_rate")[0]
    assert decay.value == pytest.approx(profile.layer(0, 0).decay_rate, rel=1e-6)


def test_heat_map() -> None:
    image = heat_map(np.array([[0.0, -2.0, -np.inf], [1.0, 0.5, -1.0]]), row_height=2)
    assert image.shape == (4, 3)
    assert image.max().item() == 1.0 and image.min().item() == 0.0
    assert image[0, 2].item() == 0.0  # an exact zero gradient is black
