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
    last record equals a profile of the trained model on the last batch."""
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
    callback = GradientMonitorCallback(loss=nn.functional.cross_entropy, every=1, writer=None)
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
