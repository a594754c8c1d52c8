"""Framework adapters: the Lightning callback and optional extras' messages."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnngrad.errors import MissingExtraError
from rnngrad.extras import require
from tests.monitor.test_monitor import Classifier


def test_a_missing_extra_names_its_install_command() -> None:
    with pytest.raises(MissingExtraError, match=r"^no_such_pkg is not installed: pip install "
                       r"'rnngrad\[lightning\]'$"):  # fmt: skip
        require("no_such_pkg.sub", "lightning")


@pytest.mark.filterwarnings("ignore::rnngrad.monitor.monitor.GradientWarning")
def test_lightning_callback_in_a_20_step_fit(tmp_path: Path) -> None:
    """A 20-step ``Trainer.fit`` of a GRU classifier with the callback (every step, a loss
    that needs the labels): one record per step, at the trainer's global steps, and the
    last record equals a profile of the trained model on the last batch, its parameters'
    ``||dL/dtheta||`` (sensitivity=True) autograd's on that batch."""
    lightning = pytest.importorskip("lightning.pytorch")
    from rnngrad import gradient_profile
    from rnngrad.integrations.lightning import GradientMonitorCallback

    class LightningClassifier(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = Classifier()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(
            self, batch: tuple[torch.Tensor, torch.Tensor], index: int
        ) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(80, 15, 3, generator=generator)
    y = torch.randint(0, 4, (80,), generator=generator)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    torch.manual_seed(0)
    model = LightningClassifier()
    callback = GradientMonitorCallback(
        loss=nn.functional.cross_entropy, every=1, writer=None, sensitivity=True
    )
    trainer = lightning.Trainer(
        max_steps=20, callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        accelerator="cpu", devices=1,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on data-loader workers
        trainer.fit(model, loader)
    monitor = callback.monitor
    assert monitor is not None
    assert [r.step for r in monitor.history] == list(range(1, 21))
    expected = gradient_profile(
        model, x[76:80], loss=lambda out: nn.functional.cross_entropy(out, y[76:80])
    )
    np.testing.assert_allclose(
        monitor.history[-1].log10_grad_norm[0], expected.layers[0].log10_grad_norm, rtol=1e-12
    )
    named = dict(model.net.rnn.named_parameters())
    loss = nn.functional.cross_entropy(model(x[76:80]), y[76:80])
    grads = torch.autograd.grad(loss, list(named.values()))
    recorded = {r.name: r.grad_norm for r in monitor.history[-1].parameters}
    for name, grad in zip(named, grads, strict=True):
        assert recorded[name] == pytest.approx(float(grad.norm()), rel=1e-5)


def _lightning_forecaster(lightning: object, batch_kind: str) -> object:
    """A LightningModule as forecasting libraries write them: the batch is a dict (or a
    dataclass), the windows are cut inside training_step, and it logs with self.log."""
    from dataclasses import dataclass

    @dataclass
    class Window:
        series: torch.Tensor

    class Forecaster(lightning.LightningModule):  # type: ignore[attr-defined,misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(1, 8, batch_first=True)
            self.head = nn.Linear(8, 1)

        def training_step(self, batch: object, index: int) -> dict[str, torch.Tensor]:
            series = batch["insample_y"] if isinstance(batch, dict) else batch.series  # type: ignore[index,attr-defined]
            past, future = series[:, :-1, None], series[:, -1:]
            out, _ = self.rnn(past)
            loss = nn.functional.mse_loss(self.head(out[:, -1]), future)
            self.log("train_loss", loss)
            return {"loss": loss}

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    def collate(rows: list[tuple[torch.Tensor]]) -> object:
        series = torch.stack([row[0] for row in rows])
        return {"insample_y": series} if batch_kind == "dict" else Window(series)

    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 24, generator=generator))
    loader = torch.utils.data.DataLoader(data, batch_size=8, collate_fn=collate)
    return Forecaster(), loader


@pytest.mark.parametrize("batch_kind", ["dict", "dataclass"])
def test_the_callback_with_no_arguments_reruns_training_step(
    tmp_path: Path, batch_kind: str
) -> None:
    """Regression: the callback fitted only (x, y) batches (KeyError on a dict, an
    AttributeError on a dataclass). With no arguments it re-runs the module's own
    training_step (its self.log silenced) and profiles the GRU it calls; a library that
    deep-copies its callbacks leaves the results on the user's callback and the trainer."""
    import copy

    lightning = pytest.importorskip("lightning.pytorch")
    from rnngrad.integrations.lightning import GradientMonitorCallback

    torch.manual_seed(0)
    model, loader = _lightning_forecaster(lightning, batch_kind)  # type: ignore[misc]
    callback = GradientMonitorCallback(every=2, writer=None)
    trainer = lightning.Trainer(
        max_steps=8, callbacks=[copy.deepcopy(callback)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, accelerator="cpu", devices=1,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, loader)
    monitor = callback.monitor
    assert monitor is not None and monitor.disabled is None
    assert trainer.rnngrad_monitor is monitor
    assert [r.step for r in monitor.history] == [1, 3, 5, 7]
    assert monitor.history[0].names == ("layer 0",)
    assert np.isfinite(monitor.history[-1].log10_grad_norm).all()


def test_a_callback_failure_warns_and_training_goes_on(tmp_path: Path) -> None:
    """Regression: an error inside the callback aborted Trainer.fit. Now it warns once
    (MonitorDisabledWarning, naming it) and the fit runs to its last step."""
    lightning = pytest.importorskip("lightning.pytorch")
    from rnngrad.integrations.lightning import GradientMonitorCallback
    from rnngrad.monitor import MonitorDisabledWarning

    model, loader = _lightning_forecaster(lightning, "dict")  # type: ignore[misc]
    callback = GradientMonitorCallback(inputs=lambda batch: batch["no such key"], every=1)
    trainer = lightning.Trainer(
        max_steps=5, callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        accelerator="cpu", devices=1,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, loader)
    assert trainer.global_step == 5
    disabled = [w for w in caught if issubclass(w.category, MonitorDisabledWarning)]
    assert len(disabled) == 1 and "no such key" in str(disabled[0].message)
    assert disabled[0].filename == __file__  # the user's line: trainer.fit above
