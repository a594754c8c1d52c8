"""The lab's cells from other libraries (Mamba, mLSTM, sLSTM): they train on the lab's
tasks with their gradient profiles recorded, and a missing library is one line."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from rnngrad.errors import MissingExtraError
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.library_cells import LibraryRecurrence
from rnngrad.lab.train import train

pytest.importorskip("mambapy", reason="pip install 'rnngrad[ssm]'")
pytest.importorskip("xlstm", reason="pip install 'rnngrad[ssm]'")


@pytest.mark.parametrize("cell", ["mamba", "mlstm", "slstm"])
def test_a_library_cell_trains_with_its_profile_recorded(cell: str, tmp_path: Path) -> None:
    """A few Adam steps on the adding problem: the loss is a number, the profile of the
    block's state is recorded at every token, and the checkpoint resumes."""
    config = TrainConfig(
        task="adding", seq_len=12, cell=cell, hidden=16, batch=8, steps=4, eval_every=2,
        eval_batch=16, profile_every=2, checkpoint_every=2,
    )  # fmt: skip
    result = train(config, tmp_path / "run", progress=False)
    assert math.isfinite(result.final_loss) and result.steps == 4
    profiled = [row for row in result.records["profiles"] if row["step"] == 2]
    assert [row["t"] for row in profiled] == list(range(1, 13))
    assert all(row["log10_grad_norm"] is not None for row in profiled)
    again = train(config, tmp_path / "run", progress=False)  # resumes: nothing left to do
    assert again.final_loss == pytest.approx(result.final_loss)


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mambapy.mamba", None)
    with pytest.raises(MissingExtraError, match=r"rnngrad\[ssm\]"):
        LibraryRecurrence("mamba", 2, 8, 10)


def test_the_selective_copy_task() -> None:
    """Gu & Dao's selective copy: the copy problem's targets, the 10 symbols at distinct
    random steps among the first T + 9 in their order, the delimiter at T + 9; a
    memoryless strategy scores the copy problem's baseline."""
    import torch

    from rnngrad.lab.tasks import make_task

    task = make_task("selective_copy", 15)
    batch = task.sample(64, torch.Generator().manual_seed(3))
    tokens = batch.inputs.argmax(-1)  # (T + 20, B)
    assert tokens.shape == (35, 64) and task.per_step
    assert bool((tokens[24] == 9).all()) and bool((tokens[25:] == 0).all())
    for column in range(64):
        placed = tokens[:24, column]
        symbols = placed[placed > 0]
        assert symbols.numel() == 10
        assert torch.equal(symbols, batch.targets[-10:, column])
    positions = torch.stack([torch.nonzero(tokens[:24, c]).squeeze(1) for c in range(64)])
    assert len({tuple(p.tolist()) for p in positions}) > 50  # not always the same steps
    assert task.baseline_loss == pytest.approx(make_task("copy", 15).baseline_loss)
