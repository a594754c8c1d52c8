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
