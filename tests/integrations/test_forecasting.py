"""Recurrent models of the forecasting libraries, as their users build and train them:
pytorch-forecasting's RecurrentNetwork and DeepAR, neuralforecast's LSTM, darts'
RNNModel. Each runs in a few seconds on tiny data."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("pytorch_forecasting")
pd = pytest.importorskip("pandas")

# The libraries' own advice while they build and fit (hyperparameters saved twice, data
# loader workers): theirs to give, not this test's concern.
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning:lightning", "ignore::UserWarning:pytorch_forecasting",
    "ignore::DeprecationWarning", "ignore::FutureWarning",
)  # fmt: skip


def _series_frame(groups: int = 4, steps: int = 50) -> Any:
    rng = np.random.default_rng(0)
    rows = [
        {"group": str(g), "time_idx": t, "value": float(np.sin(t / 4 + g) + rng.normal(0, 0.1))}
        for g in range(groups)
        for t in range(steps)
    ]
    return pd.DataFrame(rows)


def _dataset() -> Any:
    from pytorch_forecasting import TimeSeriesDataSet

    return TimeSeriesDataSet(
        _series_frame(), time_idx="time_idx", target="value", group_ids=["group"],
        min_encoder_length=6, max_encoder_length=10, min_prediction_length=2,
        max_prediction_length=4, time_varying_unknown_reals=["value"],
    )  # fmt: skip


class StepByStepLSTM(nn.Module):
    """The reference: pytorch-forecasting's LSTM call (x, hx, lengths=, enforce_sorted=) done
    one sequence and one step at a time by nn.LSTMCell with the module's weights; every
    state is kept in the graph, so autograd gives dL/dh_t at each of them."""

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm
        self.states: list[dict[int, list[torch.Tensor]]] = []  # per call: sequence -> h_t

    def _cell(self, layer: int) -> nn.LSTMCell:
        cell = nn.LSTMCell(
            self.lstm.input_size if layer == 0 else self.lstm.hidden_size, self.lstm.hidden_size
        ).double()
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(self.lstm, f"{name}_l{layer}"))
        return cell

    def forward(
        self, x: torch.Tensor, hx: Any = None, lengths: Any = None, enforce_sorted: bool = True
    ) -> Any:
        layers, hidden = self.lstm.num_layers, self.lstm.hidden_size
        cells = [self._cell(layer) for layer in range(layers)]
        batch = x.shape[0]
        zeros = torch.zeros(layers, batch, hidden, dtype=x.dtype)
        h0, c0 = (zeros, zeros) if hx is None else hx
        padded_rows = []
        finals_h, finals_c, kept = [], [], {}
        for b in range(batch):
            h = [h0[layer, b : b + 1] for layer in range(layers)]
            c = [c0[layer, b : b + 1] for layer in range(layers)]
            kept[b] = []
            rows = []
            for t in range(int(lengths[b])):
                inp = x[b : b + 1, t]
                for layer in range(layers):
                    h[layer], c[layer] = cells[layer](inp, (h[layer], c[layer]))
                    inp = h[layer]
                h[-1].retain_grad()
                kept[b].append(h[-1])
                rows.append(h[-1][0])
            padding = torch.zeros(x.shape[1] - len(rows), hidden, dtype=x.dtype)
            padded_rows.append(torch.cat([torch.stack(rows), padding]))
            finals_h.append(torch.cat(h)[:, None])
            finals_c.append(torch.cat(c)[:, None])
        self.states.append(kept)
        outputs = torch.stack(padded_rows)
        return outputs, (torch.cat(finals_h, dim=1), torch.cat(finals_c, dim=1))


def test_recurrent_networks_lstm_against_a_float64_step_by_step_reference() -> None:
    """gradient_profile of pytorch-forecasting's RecurrentNetwork (its LSTM subclass called
    with lengths=, once for the encoder and once for the decoder from the encoder's state)
    equals, per sequence and step, autograd through the same model with its LSTM replaced
    by nn.LSTMCell steps over each sequence alone, in float64."""
    from pytorch_forecasting import RecurrentNetwork

    from rnngrad import gradient_profile
    from rnngrad.profile.precision import cast_floating

    dataset = _dataset()
    torch.manual_seed(0)
    model = RecurrentNetwork.from_dataset(
        dataset, cell_type="LSTM", hidden_size=6, rnn_layers=2, dropout=0.0
    ).double()
    batch, _ = next(iter(dataset.to_dataloader(train=True, batch_size=5, num_workers=0)))
    x = cast_floating(batch, torch.float64)

    def loss(output: Any) -> torch.Tensor:
        return (output["prediction"] ** 2).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profile = gradient_profile(model, x, loss=loss, module="rnn")
        reference = StepByStepLSTM(model.rnn)
        original, model.rnn = model.rnn, reference
        try:
            loss(model(x)).backward()
        finally:
            model.rnn = original
    encoder, decoder = reference.states
    top = profile.layer(1)
    assert profile.calls == 2
    for b in range(x["encoder_lengths"].shape[0]):
        states = encoder[b] + decoder[b]
        expected = np.array([float(h.grad.norm()) for h in states])  # type: ignore[union-attr]
        np.testing.assert_allclose(top.grad_norm[b, : len(states)], expected, rtol=1e-9)


def _fit(model: Any, loader: Any, tmp_path: Path, callback: Any, steps: int = 4) -> list[Any]:
    import lightning.pytorch as pl

    trainer = pl.Trainer(
        max_steps=steps, callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        accelerator="cpu", devices=1,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, train_dataloaders=loader)
    return list(caught)


@pytest.mark.parametrize("name", ["RecurrentNetwork", "DeepAR"])
def test_the_callback_with_defaults_in_a_pytorch_forecasting_fit(tmp_path: Path, name: str) -> None:
    """GradientMonitorCallback() with no arguments in a short Trainer.fit: it re-runs the
    model's training_step and profiles its LSTM over both calls; the warnings name layers
    and point at the user's line (this file), never at Lightning's."""
    import pytorch_forecasting

    from rnngrad.integrations.lightning import GradientMonitorCallback
    from rnngrad.monitor import GradientWarning

    dataset = _dataset()
    torch.manual_seed(0)
    kind = getattr(pytorch_forecasting, name)
    options = {"cell_type": "LSTM"} if name == "RecurrentNetwork" else {}
    model = kind.from_dataset(dataset, hidden_size=8, rnn_layers=2, **options)
    loader = dataset.to_dataloader(train=True, batch_size=8, num_workers=0)
    callback = GradientMonitorCallback(every=1, writer=None)
    caught = _fit(model, loader, tmp_path, callback)
    monitor = callback.monitor
    assert monitor is not None and monitor.disabled is None
    assert [r.step for r in monitor.history] == [1, 2, 3, 4]
    assert monitor.history[0].names == ("layer 0", "layer 1")
    for warning in caught:
        if issubclass(warning.category, GradientWarning):
            assert warning.filename == __file__


def test_the_callback_with_defaults_in_a_neuralforecast_fit() -> None:
    """neuralforecast builds its windows inside training_step from dict batches and
    deep-copies its callbacks: the user's callback still holds the monitor."""
    pytest.importorskip("neuralforecast")
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    from rnngrad.integrations.lightning import GradientMonitorCallback

    frame = pd.DataFrame({
        "unique_id": "a", "ds": pd.date_range("2020-01-01", periods=120, freq="D"),
        "y": np.sin(np.arange(120) / 5),
    })  # fmt: skip
    callback = GradientMonitorCallback(every=1, writer=None)
    model = LSTM(
        h=5, input_size=20, max_steps=4, callbacks=[callback], logger=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
        encoder_hidden_size=8, decoder_hidden_size=8,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NeuralForecast(models=[model], freq="D").fit(frame)
    monitor = callback.monitor
    assert monitor is not None and monitor.disabled is None
    assert len(monitor.history) == 4
    assert all(np.isfinite(r.log10_grad_norm).any() for r in monitor.history)


def test_the_callback_with_defaults_in_a_darts_fit() -> None:
    """darts hands its training_step dataclass batches."""
    pytest.importorskip("darts")
    from darts import TimeSeries
    from darts.models import RNNModel

    from rnngrad.integrations.lightning import GradientMonitorCallback

    series = TimeSeries.from_values(np.sin(np.arange(80) / 5).astype(np.float32))
    callback = GradientMonitorCallback(every=1, writer=None)
    model = RNNModel(
        model="LSTM", input_chunk_length=10, training_length=16, hidden_dim=8, n_epochs=1,
        batch_size=16, random_state=0,
        pl_trainer_kwargs={"callbacks": [callback], "enable_progress_bar": False,
                           "accelerator": "cpu", "logger": False,
                           "enable_model_summary": False},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(series)
    monitor = callback.monitor
    assert monitor is not None and monitor.disabled is None
    assert len(monitor.history) >= 2
