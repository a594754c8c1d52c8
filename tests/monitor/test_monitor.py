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
from rnngrad.monitor.monitor import GradientWarning, MonitorEvent
from rnngrad.monitor.writers import default_color_range, heat_map
from tests.profile.test_sensitivity import Forecaster


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


@pytest.mark.filterwarnings("ignore::rnngrad.monitor.monitor.GradientWarning")
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


def _run_with_costs(costs: list[float], step_seconds: float, steps: int) -> GradientMonitor:
    """Runs a monitor on a fake clock: the i-th profile costs costs[i % len(costs)] s."""
    clock = FakeClock()
    model = nn.RNN(3, 4)
    monitor = GradientMonitor(model, overhead=0.05, clock=clock)
    x = torch.randn(5, 2, 3)
    import rnngrad.monitor.monitor as monitor_module

    real_profile = monitor_module.gradient_profile
    taken = 0

    def slow_profile(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal taken
        clock.now += costs[taken % len(costs)]
        taken += 1
        return real_profile(*args, **kwargs)

    monitor_module.gradient_profile = slow_profile  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientWarning)
            for _ in range(steps):
                monitor.step(x)
                if monitor.history:
                    # After the first profile the run's account never exceeds the budget.
                    assert monitor.profile_seconds <= 0.05 * monitor.training_seconds + costs[0]
                clock.now += step_seconds  # the training step
    finally:
        monitor_module.gradient_profile = real_profile
    return monitor


def test_adaptive_schedule_holds_the_budget_over_the_whole_run() -> None:
    """Profiles of 1 s, steps of 2 s, 5%: the run's total stays within 5% of training
    (the first profile included) and uses most of it (0.75 * 5% aimed at). The first
    profile waits until the training so far pays for its estimate, four steps (8 s):
    8 s <= 0.0375 * 2 (k - 1) s (75% of the budget aimed at) first holds at k = 108."""
    monitor = _run_with_costs([1.0], 2.0, 600)
    steps = [r.step for r in monitor.history]
    assert steps[0] == 108
    share = monitor.profile_seconds / monitor.training_seconds
    assert 0.033 <= share <= 0.05
    assert monitor.training_seconds == pytest.approx(2.0 * 599)
    assert "forward" not in vars(monitor.model)  # the model is left as it was


def test_adaptive_schedule_absorbs_a_dearer_profile() -> None:
    """Costs that vary by 10% (1.0, 1.1 s) still keep the whole run within 5%."""
    monitor = _run_with_costs([1.0, 1.1, 1.05], 2.0, 900)
    assert monitor.profile_seconds / monitor.training_seconds <= 0.05
    assert len(monitor.history) > 30


def test_warns_when_a_layer_turns_vanishing(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = nn.RNN(3, 16)
    with torch.no_grad():
        model.weight_hh_l0.mul_(0.1)
    monitor = GradientMonitor(model, every=1)
    x = torch.randn(50, 2, 3)
    with caplog.at_level(logging.WARNING, logger="rnngrad.monitor"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", GradientWarning)
            monitor.step(x)  # seen once: not yet
        with pytest.warns(GradientWarning, match="layer 0 turned vanishing in two profiles"):
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
    image = events.Images("rnngrad/log10_grad_norm")[0]
    assert image.step == 100 and image.width > 300 and image.height > 100
    assert monitor.color_range == default_color_range(monitor.history[0].log10_grad_norm)
    saturation = events.Scalars("rnngrad/layer_1_reverse/saturation")[0]
    assert saturation.step == 100
    assert saturation.value == pytest.approx(profile.layer(1, 1).saturation, rel=1e-6)
    decay = events.Scalars("rnngrad/layer_0/decay_rate")[0]
    assert decay.value == pytest.approx(profile.layer(0, 0).decay_rate, rel=1e-6)


def test_heat_map_keeps_one_colour_scale() -> None:
    """The heat map's colours come from the fixed range, not from each map's own span: a
    map of one constant value at the range's low end is viridis(0), at the high end
    viridis(1), whatever else happens; beyond the range the end colours hold, and a
    non-finite value is grey."""
    import matplotlib

    viridis = matplotlib.colormaps["viridis"]

    def dominant(values: np.ndarray) -> tuple[int, ...]:
        image = heat_map(values, ["layer 0", "layer 1"], (-4.0, 2.0))
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
        ranked = colours[np.argsort(counts)[::-1]]
        # the most common colour is the page's white; the next is the map itself
        return tuple(int(c) for c in ranked[1])

    def rgb(fraction: float) -> tuple[int, ...]:
        return tuple(round(255 * c) for c in viridis(fraction)[:3])

    def close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 2

    assert close(dominant(np.full((2, 30), -4.0)), rgb(0.0))
    assert close(dominant(np.full((2, 30), 2.0)), rgb(1.0))
    assert close(dominant(np.full((2, 30), -9.0)), rgb(0.0))  # below: the low end
    assert close(dominant(np.full((2, 30), -1.0)), rgb(0.5))
    assert close(dominant(np.full((2, 30), -np.inf)), (153, 153, 153))


def test_default_colour_range_is_whole_decades_widened() -> None:
    assert default_color_range(np.array([[-3.2, 0.4], [np.nan, -np.inf]])) == (-6.0, 3.0)
    assert default_color_range(np.array([[np.nan]])) == (-1.0, 1.0)


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def test_step_passes_targets_to_the_loss() -> None:
    """``step(x, y)`` calls ``loss(output, y)``: the profile equals one taken with the
    targets bound in a closure."""
    from rnngrad import gradient_profile

    torch.manual_seed(0)
    model = Classifier()
    x, y = torch.randn(5, 12, 3), torch.tensor([0, 3, 1, 2, 0])
    monitor = GradientMonitor(model, every=1, loss=nn.functional.cross_entropy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        profile = monitor.step(x, y)
        expected = gradient_profile(model, x, loss=lambda out: nn.functional.cross_entropy(out, y))
    assert profile is not None
    assert profile.loss_value == pytest.approx(expected.loss_value, rel=1e-12)
    np.testing.assert_array_equal(
        profile.layers[0].log10_grad_norm, expected.layers[0].log10_grad_norm
    )


def test_targets_need_a_callable_loss() -> None:
    from rnngrad.errors import InvalidInputError

    monitor = GradientMonitor(Classifier(), every=1)
    with pytest.raises(InvalidInputError, match="targets y were given but the loss is 'last'"):
        monitor.step(torch.randn(2, 5, 3), torch.tensor([0, 1]))


def vanishing_rnn() -> nn.RNN:
    torch.manual_seed(0)
    model = nn.RNN(3, 16)
    with torch.no_grad():
        model.weight_hh_l0.mul_(0.1)
    return model


def test_warning_points_at_the_callers_line_and_shows_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The warning's location is the line that called ``monitor.step`` (not monitor.py);
    one event gives one warning, and nothing reaches stderr through logging unless the
    program configured it."""
    import inspect

    events: list[MonitorEvent] = []
    monitor = GradientMonitor(vanishing_rnn(), every=1, on_warning=events.append)
    x = torch.randn(50, 2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.step(x)  # seen once
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        monitor.step(x)  # seen twice: the warning
        monitor.step(x)  # still vanishing: the same event, not warned again
    gradient_warnings = [w for w in caught if issubclass(w.category, GradientWarning)]
    assert len(gradient_warnings) == 1
    assert gradient_warnings[0].filename == __file__
    assert gradient_warnings[0].lineno == line
    assert [(e.step, e.layer, e.kind) for e in events] == [(2, "layer 0", "vanishing")]
    assert events[0].message == str(gradient_warnings[0].message)
    assert monitor.events == events
    assert capsys.readouterr().err == ""


def test_non_finite_is_one_event_until_it_clears() -> None:
    model = nn.RNN(2, 2, nonlinearity="relu", bias=False)
    with torch.no_grad():
        model.weight_hh_l0.copy_(torch.eye(2) * 1e6)
        model.weight_ih_l0.copy_(torch.eye(2))
    events: list[MonitorEvent] = []
    monitor = GradientMonitor(model, every=1, on_warning=events.append)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        for _ in range(3):
            monitor.step(torch.ones(12, 1, 2))
    assert [e.kind for e in events] == ["non-finite"]
    assert events[0].time_step is not None


def test_a_writer_of_another_kind_is_refused() -> None:
    from rnngrad.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="writer must be a TensorBoard SummaryWriter"):
        GradientMonitor(nn.GRU(3, 4), writer=object())


def test_wandb_writer_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A W&B run (offline: nothing leaves the machine) as the writer gets the same scalars
    as TensorBoard, the heat map as an image and the training step."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    torch.manual_seed(2)
    model = nn.GRU(3, 6, num_layers=2)
    run = wandb.init(project="rnngrad-test", dir=str(tmp_path), mode="offline")
    try:
        monitor = GradientMonitor(model, every=1, writer=run, loss="sum")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientWarning)
            profile = monitor.step(torch.randn(20, 2, 3), step=7)
        summary = dict(run.summary)
    finally:
        run.finish()
    assert profile is not None
    assert summary["rnngrad/step"] == 7
    assert summary["rnngrad/layer_1/saturation"] == pytest.approx(profile.layer(1).saturation)
    assert summary["rnngrad/log10_grad_norm"]["_type"] == "image-file"


def test_a_verdict_on_the_edge_does_not_flip_flop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the monitor warned "exploding" again and again as a label flipped
    between profiles. A change is warned about once it holds in two profiles running."""
    import rnngrad.monitor.monitor as monitor_module

    x = torch.randn(50, 2, 3)
    vanishing = monitor_module.gradient_profile(vanishing_rnn(), x)
    exploding_model = nn.RNN(3, 16, nonlinearity="relu", bias=False)
    with torch.no_grad():  # relu' = 1 on a growing state: every factor is 1.1
        exploding_model.weight_hh_l0.copy_(torch.eye(16) * 1.1)
        exploding_model.weight_ih_l0.fill_(1.0)
    exploding = monitor_module.gradient_profile(exploding_model, torch.ones(50, 2, 3))
    assert vanishing.layers[0].verdict.label == "vanishing"
    assert exploding.layers[0].verdict.label == "exploding"
    sequence = iter([vanishing, exploding] * 5 + [exploding, exploding, vanishing, vanishing])
    monkeypatch.setattr(monitor_module, "gradient_profile", lambda *a, **k: next(sequence))
    events: list[MonitorEvent] = []
    monitor = GradientMonitor(nn.RNN(3, 16), every=1, on_warning=events.append)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        for _ in range(14):
            monitor.step(x)
    # steps 10 and 11 are the first two exploding profiles running; 13 and 14 vanishing
    assert [(e.step, e.kind) for e in events] == [(11, "exploding"), (14, "vanishing")]


def test_the_first_profile_waits_for_the_budget_on_a_short_run() -> None:
    """The first profile is counted: with profiles of 1 s and steps of 0.1 s a 300-step run
    at 5% takes its first profile only once 0.0375 * training >= 4 steps (0.4 s), and the
    whole run stays within 5% plus at most one profile's misjudged share."""
    monitor = _run_with_costs([0.3], 0.1, 300)
    assert monitor.history and monitor.history[0].step == 108
    assert monitor.profile_seconds <= 0.05 * monitor.training_seconds


def test_a_failure_warns_once_and_switches_the_monitor_off() -> None:
    """The monitor never stops training: the model raising on a batch gives one
    MonitorDisabledWarning naming the failure, and later steps do nothing."""
    from rnngrad.monitor import MonitorDisabledWarning

    class Fails(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(3, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("the batch has no column 'price'")

    monitor = GradientMonitor(Fails(), every=1)
    with pytest.warns(MonitorDisabledWarning, match="column 'price'") as caught:
        assert monitor.step(torch.randn(5, 2, 3)) is None
    assert caught[0].filename == __file__
    assert monitor.disabled is not None and "price" in monitor.disabled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert monitor.step(torch.randn(5, 2, 3)) is None
    assert monitor.history == []


def test_step_call_profiles_an_encoder_and_a_decoder_of_other_lengths(tmp_path: Path) -> None:
    """Regression: the record stacked the layers' profiles, which fails for an encoder
    (T 30) and a decoder (T 8); the decoder's row is padded (grey in the heat map), and
    the records name each module's layers."""
    from torch.utils.tensorboard import SummaryWriter

    class Seq2Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.GRU(3, 6, batch_first=True)
            self.decoder = nn.GRU(2, 6, batch_first=True)
            self.head = nn.Linear(6, 1)

        def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
            _, state = self.encoder(past)
            return self.head(self.decoder(future, state)[0])  # type: ignore[no-any-return]

    torch.manual_seed(0)
    model = Seq2Seq()
    past, future, target = torch.randn(4, 30, 3), torch.randn(4, 8, 2), torch.randn(4, 8, 1)
    writer = SummaryWriter(log_dir=str(tmp_path))
    monitor = GradientMonitor(model, every=1, writer=writer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no MonitorDisabledWarning
        warnings.simplefilter("ignore", GradientWarning)
        taken = monitor.step_call(lambda: ((model(past, future) - target) ** 2).mean())
    writer.close()
    assert taken is not None and list(taken) == ["encoder", "decoder"]
    record = monitor.history[0]
    assert record.names == ("encoder layer 0", "decoder layer 0")
    assert record.log10_grad_norm.shape == (2, 30)
    assert np.isnan(record.log10_grad_norm[1, 8:]).all()
    assert np.isfinite(record.log10_grad_norm[1, :8]).all()


def _last_step_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The forecaster's loss on its last step (its output is the whole sequence)."""
    return nn.functional.mse_loss(output[-1], target)


def _jacobian_norm_at_last_token(model: Forecaster, x: torch.Tensor, name: str) -> float:
    """||dh_T/dtheta||_F per sequence from autograd's full Jacobian, mean over the batch."""
    parameter = dict(model.lru.named_parameters())[name].detach()
    u = model.encoder(x).detach()

    def last_state(value: torch.Tensor) -> torch.Tensor:
        states = torch.func.functional_call(model.lru, {name: value}, (u,), strict=False)
        return torch.view_as_real(states[-1])  # (B, N, 2)

    jacobian = torch.autograd.functional.jacobian(last_state, parameter)
    per_sequence = jacobian.reshape(x.shape[1], -1).norm(dim=1)
    return float(per_sequence.mean())


def test_the_monitor_records_the_curse_of_memory_per_parameter(tmp_path: Path) -> None:
    """sensitivity=True: each profile records, per parameter of the recurrence,
    ||dL/dtheta|| (autograd on the user's loss) and ||dh_T/dtheta|| (exact for the LRU's
    nu_log: autograd's full Jacobian), and writes both as TensorBoard scalars; training's
    own gradients and parameters are left as they were."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(5)
    model = Forecaster().double()
    x = torch.randn(15, 3, 2, dtype=torch.float64)
    y = torch.randn(3, 1, dtype=torch.float64)
    writer = SummaryWriter(log_dir=str(tmp_path))
    monitor = GradientMonitor(model, every=1, loss=_last_step_mse, writer=writer,
                              sensitivity=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        monitor.step(x, y, step=7)
    writer.close()
    assert monitor.disabled is None and all(p.grad is None for p in model.parameters())
    record = {entry.name: entry for entry in monitor.history[0].parameters}
    assert set(record) == {name for name, _ in model.lru.named_parameters()}
    nu = record["nu_log"]
    assert nu.exact and nu.module == "lru"
    assert nu.state_sensitivity == pytest.approx(
        _jacobian_norm_at_last_token(model, x, "nu_log"), rel=1e-9
    )
    _last_step_mse(model(x), y).backward()
    for name, parameter in model.lru.named_parameters():
        expected = 0.0 if parameter.grad is None else float(parameter.grad.norm())
        assert record[name].grad_norm == pytest.approx(expected, rel=1e-9, abs=1e-15)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    written = events.Scalars("rnngrad/lru/nu_log/grad_norm")[0]
    assert written.step == 7 and written.value == pytest.approx(nu.grad_norm, rel=1e-6)
    assert "rnngrad/lru/theta_log/state_sensitivity" in events.Tags()["scalars"]


def test_step_call_records_the_same_sensitivities() -> None:
    """The training step's own loss (step_call, as Lightning's callback calls it) gives
    the records that step(x, y) gives (a fused LSTM: every parameter by Hutchinson's
    estimate, the same directions from the same seed)."""
    torch.manual_seed(6)
    model = Model().double().eval()
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    y = torch.randn(2, 1, dtype=torch.float64)
    by_inputs = GradientMonitor(model, every=1, loss=nn.functional.mse_loss, sensitivity=True)
    by_call = GradientMonitor(model, every=1, sensitivity=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        by_inputs.step(x, y)
        by_call.step_call(lambda: nn.functional.mse_loss(model(x), y))
    assert by_inputs.disabled is None and by_call.disabled is None
    records = by_inputs.history[0].parameters, by_call.history[0].parameters
    assert [r.name for r in records[0]] == [n for n, _ in model.rnn.named_parameters()]
    for a, b in zip(*records, strict=True):
        assert not a.exact and a.grad_norm > 0
        assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-12)
        assert a.state_sensitivity == pytest.approx(b.state_sensitivity, rel=1e-12)


def test_sensitivity_needs_a_recurrence_it_can_measure() -> None:
    from rnngrad.errors import InvalidInputError, UnsupportedModuleError

    class Stepped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.GRUCell(2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.zeros(x.shape[1], 3)
            for x_t in x:
                h = self.cell(x_t, h)
            return h

    with pytest.raises(UnsupportedModuleError, match="cell stepped"):
        GradientMonitor(Stepped(), sensitivity=True)
    with pytest.raises(InvalidInputError, match="directions"):
        GradientMonitor(Forecaster(), sensitivity=True, directions=1)
    with pytest.raises(InvalidInputError, match="sensitivity"):
        GradientMonitor(Forecaster(), sensitivity="yes")  # type: ignore[arg-type]
