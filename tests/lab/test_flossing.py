"""Gradient flossing in the lab, and the delayed tasks of its paper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnngrad.errors import InvalidInputError
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.flossing import flossing_exponents
from rnngrad.lab.records import read_table_rows
from rnngrad.lab.tasks import make_task
from rnngrad.lab.train import train


@pytest.mark.parametrize("name", ["delayed_copy", "delayed_xor"])
def test_the_delayed_tasks_ask_for_the_first_bit_after_the_delay(name: str) -> None:
    """``d + 1`` steps; the first input is the bit ``+-1`` at step 1 (and, for the XOR, the
    second bit at step ``d + 1``) and 0 between; the class is the bit (or the XOR of the
    two), read from the inputs themselves; the second input is noise."""
    task = make_task(name, 30)
    batch = task.sample(2000, torch.Generator().manual_seed(0))
    inputs, targets = batch.inputs, batch.targets
    assert inputs.shape == (31, 2000, 2) and targets.shape == (2000,)
    first = (inputs[0, :, 0] > 0).long()
    assert torch.all(inputs[1:30, :, 0] == 0) and torch.all(inputs[0, :, 0].abs() == 1)
    if name == "delayed_copy":
        assert torch.all(inputs[30, :, 0] == 0) and torch.equal(targets, first)
    else:
        second = (inputs[30, :, 0] > 0).long()
        assert torch.all(inputs[30, :, 0].abs() == 1) and torch.equal(targets, first ^ second)
    assert abs(float(targets.float().mean()) - 0.5) < 0.05
    assert abs(float(inputs[:, :, 1].std()) - 1.0) < 0.02
    assert task.baseline_loss == pytest.approx(np.log(2.0)) and not task.per_step


def test_flossing_before_training_pushes_the_exponents_to_zero(tmp_path: Path) -> None:
    """A tanh RNN at gain 3 is chaotic (lambda_1 > 0) and the default one contracts
    (lambda_k < 0): after flossing alone, the sum of the squared exponents, measured
    independently by lyapunov_spectrum along the task's inputs, is a fraction of what
    it was."""
    from rnngrad import lyapunov_spectrum
    from rnngrad.lab.trained import initial_model

    config = TrainConfig(task="delayed_copy", seq_len=40, cell="rnn", hidden=16, batch=8,
                         steps=1, floss=4, floss_before=150, eval_every=1)  # fmt: skip
    task = config.validate()
    drive = task.sample(1, torch.Generator().manual_seed(9)).inputs[:, 0].double()
    drive = drive.repeat(20, 1)  # 820 steps of the task's inputs, one sequence after another

    def squares(model: torch.nn.Module) -> float:
        spectrum = lyapunov_spectrum(model.rnn, steps=600, warmup=220, k=4, batch=2,
                                     inputs=drive, progress=False)  # fmt: skip
        return float(np.sum(spectrum.exponents**2))

    before = squares(initial_model(config, task, torch.device("cpu")))
    train(config, tmp_path / "run", progress=False)
    from rnngrad.lab.trained import trained_model

    after = squares(trained_model(tmp_path / "run").model)
    assert after < 0.2 * before, (before, after)
    rows = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert rows["floss"] == 4
    import pandas as pd

    table = pd.read_csv(tmp_path / "run" / "exponents.csv")
    assert set(table["phase"]) == {"before", "train"} and table["i"].max() == 4
    first = table[(table.phase == "before") & (table.step == table.step.min())]["lambda"]
    last = table[(table.phase == "before") & (table.step == 0)]["lambda"]
    assert float((last**2).sum()) < 0.2 * float((first**2).sum())


def test_the_recorded_exponents_are_the_differentiable_estimate(tmp_path: Path) -> None:
    """The exponents recorded at an evaluation are flossing_exponents of the model along
    the held-out inputs' window; flossing during training adds its penalty to the loss
    (a ``floss`` column) every ``every`` steps, and weight 0 only records."""
    config = TrainConfig(task="delayed_xor", seq_len=20, cell="gru", hidden=8, batch=4,
                         steps=4, eval_every=4, eval_batch=20, floss=3, floss_before=0,
                         floss_every=2, floss_window=10)  # fmt: skip
    result = train(config, tmp_path / "run", progress=False)
    history = result.records["history"]
    assert [row["floss"] is not None for row in history] == [True, False, True, False]
    from rnngrad.lab.trained import trained_model

    trained = trained_model(tmp_path / "run")
    task = config.validate()
    held_out = task.held_out(20, torch.Generator().manual_seed(config.seed + 2))
    with torch.no_grad():
        exponents = flossing_exponents(trained.model.rnn, held_out.inputs[:10, :16], 3,
                                       torch.Generator().manual_seed(config.seed + 5))  # fmt: skip
    recorded = [row["lambda"] for row in result.records["exponents"] if row["step"] == 4]
    np.testing.assert_allclose(recorded, exponents.mean(dim=0).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"floss": 17}, r"--floss K must be in 1\.\.16"),
        ({"floss": 33, "cell": "lstm"}, r"--floss K must be in 1\.\.32"),
        ({"floss": 0}, "floss must be in 1"),
        ({"floss": 2, "floss_window": 0}, "floss_window must be in 1"),
        ({"floss": 2, "floss_every": -1}, "floss_every must be in 1"),
        ({"floss": 2, "floss_weight": -1.0}, "--floss-weight must be a number >= 0"),
        ({"floss_every": 5}, "--floss-every needs gradient flossing: --floss K"),
        ({"floss": 2, "cell": "lru"}, "gradient flossing needs a cell whose Jacobians"),
    ],
)
def test_flossing_settings_are_checked(overrides: dict[str, object], match: str) -> None:
    settings: dict[str, object] = {"task": "delayed_copy", "seq_len": 10, "cell": "rnn",
                                   "hidden": 16, **overrides}  # fmt: skip
    with pytest.raises(InvalidInputError, match=match):
        TrainConfig(**settings).validate()  # type: ignore[arg-type]


def test_flossing_from_the_command_line(tmp_path: Path) -> None:
    """``rnngrad train --floss K``: the run flosses and records; K beyond the state is one
    line and exit 2."""
    from tests.cli.test_cli import run, strict_json

    args = ["train", "--task", "delayed_copy", "--seq-len", "8", "--cell", "rnn", "--hidden",
            "6", "--batch", "4", "--steps", "2", "--floss-before", "3"]  # fmt: skip
    done = run(*args, "--floss", "2", "--out", str(tmp_path / "run"), "--json")
    assert done.returncode == 0, done.stderr
    assert strict_json(done.stdout)["floss"] == 2
    refused = run(*args, "--floss", "7", "--out", str(tmp_path / "x"))
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "rnngrad: error: --floss K must be in 1..6 (the rnn cell's state size), got 7"
    ]


FLOSS_GRID = """
[grid]
task = ["delayed_copy"]
seq_len = [6]
cell = ["rnn"]
floss = [2]
floss_weight = [0.0, 1.0]
[train]
hidden = 6
steps = 4
batch = 4
eval_every = 2
eval_batch = 8
floss_before = 2
"""


def test_a_sweep_compares_flossing_with_none(tmp_path: Path) -> None:
    """A grid over the flossing options: two configurations, told apart in the summary
    and named apart in the report's remedies section."""
    from rnngrad.lab.grid import load_sweep
    from rnngrad.lab.sweep import run_sweep, sweep_summary
    from rnngrad.report.sections.lab import lab_section

    grid = tmp_path / "grid.toml"
    grid.write_text(FLOSS_GRID)
    run_sweep(load_sweep(grid), tmp_path / "out", workers=1)
    summary = sweep_summary(tmp_path / "out")
    assert sorted(row["floss_weight"] for row in summary) == [0.0, 1.0]
    assert all(row["floss"] == 2 and row["floss_before"] == 2 for row in summary)
    section = lab_section(tmp_path / "out")
    names = " | ".join(trace.name for figure in section.figures for trace in figure.traces)
    assert "floss weight 0.0" in names and "floss weight 1.0" in names


def test_flossing_benchmark_on_a_tiny_budget(tmp_path: Path) -> None:
    """The flossing tables and figure come from this code; here on a tiny budget: every
    task, delay and arm is a row or a cell, the exponents read from the runs' records."""
    import re

    from tests.examples_loader import load_benchmark

    module = load_benchmark("flossing")
    table = module.main(["--out", str(tmp_path), "--delays", "3,5", "--seeds", "1",
                         "--steps", "2", "--hidden", "4", "--batch", "4", "--floss", "2",
                         "--workers", "1"])  # fmt: skip
    for task in ("delayed_copy", "delayed_xor"):
        for arm in ("none", "flossing"):
            assert re.search(rf"\| {task}, {arm} \| [01]/1 \(.*\) \| [01]/1 \(.*\) \|", table)
            assert re.search(rf"\| {task}, {arm} \| -?\d+\.\d+ → -?\d+\.\d+ / \d+\.\d+ → ", table)
    assert (tmp_path / "flossing.png").stat().st_size > 0
    rows = read_table_rows(tmp_path / "results.parquet")
    assert sorted({(r["floss"], r["floss_weight"]) for r in rows}) == [(2, 0.0), (2, 1.0)]
