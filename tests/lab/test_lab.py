"""The remedies lab: tasks, remedies, training runs and sweeps (tiny budgets)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from rnngrad.errors import InvalidInputError
from rnngrad.lab.config import TrainConfig
from rnngrad.lab.grid import load_sweep
from rnngrad.lab.models import LabModel
from rnngrad.lab.records import read_table_rows
from rnngrad.lab.sweep import run_sweep, sweep_summary
from rnngrad.lab.tasks import make_task
from rnngrad.lab.train import train
from tests.examples_loader import load_benchmark

# ---- tasks


def test_adding_task_targets_and_baseline() -> None:
    task = make_task("adding", 30)
    batch = task.sample(20000, torch.Generator().manual_seed(0))
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert torch.all(markers.sum(dim=0) == 2)
    assert torch.all(markers[:15].sum(dim=0) == 1)  # one marker in each half
    assert torch.allclose((values * markers).sum(dim=0), batch.targets)
    always_one = torch.ones_like(batch.targets)
    assert float(task.loss(always_one.unsqueeze(-1), batch.targets)) == pytest.approx(
        1 / 6, abs=0.005
    )


def test_copy_task_memoryless_baseline_is_exact() -> None:
    """Blanks for T + 10 steps, then uniform over the 8 symbols: CE = 10 ln 8 / (T + 20)."""
    task = make_task("copy", 15)
    batch = task.sample(64, torch.Generator().manual_seed(1))
    assert batch.inputs.shape == (35, 64, 10)
    assert torch.equal(batch.targets[-10:], batch.inputs[:10].argmax(-1))
    logits = torch.full((35, 64, 9), -1e4)
    logits[: 15 + 10, :, 0] = 0.0
    logits[-10:, :, 1:] = 0.0
    assert float(task.loss(logits, batch.targets)) == pytest.approx(task.baseline_loss, rel=1e-6)
    assert task.baseline_loss == pytest.approx(10 * math.log(8) / 35)


def test_order_task() -> None:
    task = make_task("order", 100)
    batch = task.sample(4000, torch.Generator().manual_seed(2))
    symbols = batch.inputs.argmax(-1)
    relevant = (symbols >= 4) & (symbols <= 5)
    assert torch.all(relevant.sum(dim=0) == 2)
    positions = relevant.float().argmax(dim=0)
    assert torch.all((positions >= 10) & (positions < 20))
    uniform = torch.zeros(4000, 4)
    assert float(task.loss(uniform, batch.targets)) == pytest.approx(math.log(4))
    assert torch.bincount(batch.targets, minlength=4).min() > 900


@pytest.mark.parametrize(("name", "length"), [("unknown", 10), ("adding", 1), ("order", 5)])
def test_bad_tasks(name: str, length: int) -> None:
    with pytest.raises(InvalidInputError):
        make_task(name, length)


# ---- remedies


def test_orthogonal_and_identity_and_radius_initialisations() -> None:
    torch.manual_seed(0)
    orthogonal = LabModel("rnn", 2, 8, 1, per_step=False, init="orthogonal").recurrent_matrix()
    assert torch.allclose(orthogonal @ orthogonal.T, torch.eye(8), atol=1e-5)
    identity = LabModel("relu", 2, 8, 1, per_step=False, init="identity").recurrent_matrix()
    assert torch.equal(identity, torch.eye(8))
    radius = LabModel("rnn", 2, 8, 1, per_step=False, init="radius:1.3").recurrent_matrix()
    rho = torch.linalg.eigvals(radius.detach().double()).abs().max()
    assert float(rho) == pytest.approx(1.3, rel=1e-5)
    gates = LabModel("lstm", 2, 4, 1, per_step=False, init="orthogonal").recurrent_matrix()
    for block in gates.reshape(4, 4, 4):
        assert torch.allclose(block @ block.T, torch.eye(4), atol=1e-5)


def test_orthogonal_constraint_holds_after_training_steps() -> None:
    torch.manual_seed(1)
    model = LabModel("rnn", 2, 6, 1, per_step=False, orthogonal_constraint=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    task = make_task("adding", 10)
    for _ in range(20):
        batch = task.sample(16, torch.Generator().manual_seed(3))
        optimiser.zero_grad()
        task.loss(model(batch.inputs), batch.targets).backward()
        optimiser.step()
    weight = model.recurrent_matrix().detach()
    assert torch.allclose(weight @ weight.T, torch.eye(6), atol=1e-5)


def test_forget_bias_and_refusals() -> None:
    model = LabModel("lstm", 2, 4, 1, per_step=False, forget_bias=1.0)
    assert torch.all(model.rnn.bias_ih_l0[4:8] == 1.0) and torch.all(model.rnn.bias_hh_l0[4:8] == 0)
    with pytest.raises(InvalidInputError, match="square"):
        LabModel("lstm", 2, 4, 1, per_step=False, orthogonal_constraint=True)
    with pytest.raises(InvalidInputError, match="init"):
        LabModel("rnn", 2, 4, 1, per_step=False, init="radius:-1")


# ---- training runs

TINY = {"task": "adding", "seq_len": 8, "cell": "gru", "hidden": 8, "steps": 60, "batch": 16,
        "lr": 0.01, "eval_every": 20, "eval_batch": 64, "checkpoint_every": 20,
        "profile_every": 30}  # fmt: skip


def test_run_writes_its_records_and_is_deterministic(tmp_path: Path) -> None:
    first = train(TrainConfig(**TINY), tmp_path / "a")
    second = train(TrainConfig(**TINY), tmp_path / "b")
    assert first.records["history"] == second.records["history"]
    for name in ("history", "evaluations", "profiles"):
        assert (tmp_path / "a" / f"{name}.parquet").exists()
        assert (tmp_path / "a" / f"{name}.csv").exists()
    for name in ("learning_curve.png", "gradient_profiles.png", "summary.json"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    for key in ("task", "seq_len", "cell", "init", "clip", "final_loss", "baseline_loss", "solved",
                "steps", "skipped_steps", "wall_s"):  # fmt: skip
        assert key in summary
    history = read_table_rows(tmp_path / "a" / "history.parquet")
    assert [r["step"] for r in history] == list(range(1, 61))
    evaluations = read_table_rows(tmp_path / "a" / "evaluations.parquet")
    assert all(r["spectral_radius"] > 0 for r in evaluations)
    profiles = read_table_rows(tmp_path / "a" / "profiles.parquet")
    assert {r["step"] for r in profiles} == {1, 30, 60}


def test_interrupted_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    whole = train(TrainConfig(**TINY), tmp_path / "whole")

    def interrupt(step: int, total: int, loss: float) -> None:
        if step == 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY), tmp_path / "cut", progress=interrupt)
    resumed = train(TrainConfig(**TINY), tmp_path / "cut")
    assert resumed.resumed_from == 40
    assert resumed.records["history"] == whole.records["history"]
    assert resumed.final_loss == whole.final_loss


def test_another_configuration_in_the_folder_is_refused(tmp_path: Path) -> None:
    train(TrainConfig(**TINY), tmp_path)
    with pytest.raises(InvalidInputError, match="another configuration"):
        train(TrainConfig(**{**TINY, "seed": 5}), tmp_path)


def test_non_finite_gradients_skip_the_step(tmp_path: Path) -> None:
    """Relu with spectral radius 30 overflows: steps are skipped, the weights stay finite."""
    config = TrainConfig(
        **{**TINY, "cell": "relu", "seq_len": 40, "init": "radius:30", "clip": "none"}
    )
    result = train(config, tmp_path)
    assert result.skipped_steps > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["skipped_steps"] == result.skipped_steps
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in state.values())


@pytest.mark.parametrize("clip", ["norm:0.01", "value:0.001"])
def test_clipping_is_counted(tmp_path: Path, clip: str) -> None:
    result = train(TrainConfig(**{**TINY, "clip": clip}), tmp_path)
    assert result.clipped_steps == result.steps


def test_an_easy_task_is_solved_and_stops_early(tmp_path: Path) -> None:
    config = TrainConfig(task="adding", seq_len=5, cell="lstm", hidden=16, steps=2000, batch=32,
                         lr=0.01, eval_every=50, eval_batch=256)  # fmt: skip
    result = train(config, tmp_path)
    assert result.solved and result.solved_at is not None and result.steps == result.solved_at
    assert result.final_loss <= 0.01


# ---- sweeps


GRID = """
[grid]
task = ["adding"]
seq_len = [6, 8]
cell = ["rnn", "gru"]
[train]
hidden = 6
steps = 20
batch = 8
eval_every = 10
eval_batch = 32
"""


def test_sweep_runs_resumes_and_detects_a_changed_grid(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    events: list[int] = []
    results = run_sweep(load_sweep(grid), tmp_path / "out", workers=2,
                        on_finish=lambda done, total, s: events.append(done))  # fmt: skip
    assert len(results) == 4 and events[-1] == 4
    rows = read_table_rows(tmp_path / "out" / "results.parquet")
    assert list(rows[0])[:3] == ["task", "seq_len", "cell"]  # the grid keys first
    assert len(rows) == 4
    again: list[dict | None] = []
    run_sweep(load_sweep(grid), tmp_path / "out", on_finish=lambda d, t, s: again.append(s))
    assert again == [None]  # nothing left to run
    grid.write_text(GRID.replace('cell = ["rnn", "gru"]', 'cell = ["rnn", "gru", "lstm"]'))
    ran: list[dict | None] = []
    results = run_sweep(load_sweep(grid), tmp_path / "out", workers=2,
                        on_finish=lambda d, t, s: ran.append(s))  # fmt: skip
    assert len(results) == 6
    assert [s["cell"] for s in ran if s is not None] == ["lstm", "lstm"]
    summary = sweep_summary(tmp_path / "out")
    assert {(r["seq_len"], r["cell"]) for r in summary} == {
        (t, c) for t in (6, 8) for c in ("rnn", "gru", "lstm")
    }


def test_sweep_on_a_dask_local_cluster(tmp_path: Path) -> None:
    """Each Dask worker runs with one torch thread unless told otherwise."""
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace('cell = ["rnn", "gru"]', 'cell = ["rnn"]'))
    results = run_sweep(load_sweep(grid), tmp_path / "out", workers=2, use_dask=True)
    assert len(results) == 2
    assert [r["threads"] for r in results] == [1, 1]
    assert (tmp_path / "out" / "results.csv").exists()
    results = run_sweep(
        load_sweep(grid), tmp_path / "two", workers=1, use_dask=True, threads_per_worker=2
    )
    assert [r["threads"] for r in results] == [2, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[grid]\ntask = ["adding"\n', "not valid TOML"),
        (
            '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\nheads = [2]\n',
            "line 5: unknown key 'heads'",
        ),
        (
            '[grid]\ntask = ["adding"]\nseq_len = []\ncell = ["rnn"]\n',
            "line 3: seq_len is an empty list",
        ),
        (
            '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["transformer"]\n',
            "line 4: unknown cell",
        ),
        (
            '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\n[train]\nsteps = "many"\n',
            "line 6: steps must be a whole number",
        ),
        ('[grid]\ntask = ["adding"]\nseq_len = [5]\n', "cell must be given"),
        ("[grid]\n", "missing or empty"),
        (
            '[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn"]\n[other]\nx = 1\n',
            "unknown section",
        ),
    ],
)
def test_bad_sweep_files(tmp_path: Path, text: str, message: str) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_sweep(grid)


def test_remedies_benchmark_on_a_tiny_budget(tmp_path: Path) -> None:
    """The remedies table of docs/lab.md comes from this code; here on a tiny budget."""
    module = load_benchmark("remedies")
    table = module.main(["--out", str(tmp_path), "--lengths", "4,6", "--seeds", "1", "--steps", "5",
                         "--hidden", "4", "--batch", "4", "--workers", "2"])  # fmt: skip
    assert table.count("\n") == 2 + 5
    assert re.search(r"\| LSTM \| [01]/1[^|]* \| [01]/1[^|]* \|", table)
    assert (tmp_path / "remedies.png").stat().st_size > 0
    assert len(read_table_rows(tmp_path / "results.parquet")) == 10


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_regularizer_equals_a_cell_loop_reference(nonlinearity: str) -> None:
    """Omega and its gradient in W_hh equal a loop with retain_grad and explicit Jacobians."""
    from rnngrad.lab.regularizer import gradient_norm_regularizer

    torch.manual_seed(3)
    rnn = torch.nn.RNN(2, 5, nonlinearity=nonlinearity).double()
    x = torch.randn(9, 3, 2, dtype=torch.float64)
    target = torch.randn(3, 5, dtype=torch.float64)

    def loss_of_states(states: torch.Tensor) -> torch.Tensor:
        return ((states[-1] - target) ** 2).sum()

    states, _ = rnn(x)
    ours = gradient_norm_regularizer(rnn, states, x, loss_of_states)
    (ours_grad,) = torch.autograd.grad(ours, rnn.weight_hh_l0)

    # Reference: the loop, total gradients by retain_grad, then the Jacobians explicitly.
    phi = torch.tanh if nonlinearity == "tanh" else torch.relu
    h = torch.zeros(3, 5, dtype=torch.float64)
    hs = []
    for t in range(9):
        h = phi(
            x[t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        )
        h.retain_grad()
        hs.append(h)
    loss_of_states(torch.stack(hs)).backward(retain_graph=True)
    total = 0.0
    for k in range(8):
        for b in range(3):
            g = hs[k + 1].grad[b].detach()
            if g.norm() == 0:
                continue
            z = (
                x[k + 1, b] @ rnn.weight_ih_l0.T
                + rnn.bias_ih_l0
                + hs[k][b] @ rnn.weight_hh_l0.T
                + rnn.bias_hh_l0
            )
            derivative = 1 - torch.tanh(z) ** 2 if nonlinearity == "tanh" else (z > 0).double()
            jacobian = torch.diag(derivative) @ rnn.weight_hh_l0
            total = total + ((g @ jacobian).norm() / g.norm() - 1) ** 2
    reference = total / 3
    (reference_grad,) = torch.autograd.grad(reference, rnn.weight_hh_l0)
    assert float(ours.detach()) == pytest.approx(float(reference.detach()), rel=1e-10)
    assert torch.allclose(ours_grad, reference_grad, rtol=1e-8, atol=1e-12)


def test_training_with_the_regularizer(tmp_path: Path) -> None:
    config = TrainConfig(**{**TINY, "cell": "rnn", "regularizer": 0.5})
    result = train(config, tmp_path)
    penalties = [r["regularizer"] for r in result.records["history"]]
    assert all(p is not None and p >= 0 for p in penalties)
    with pytest.raises(InvalidInputError, match="rnn and relu"):
        train(TrainConfig(**{**TINY, "regularizer": 0.5}), tmp_path / "gru")


def test_data_sets_are_generated_offline_and_reproducibly() -> None:
    """MNIST-1D from its own generator (4000/1000, 40 steps, 10 classes), digits from
    scikit-learn (64 steps), the shuffled and permuted variants one fixed permutation."""
    from rnngrad.lab.datasets import load_dataset

    mnist = load_dataset("mnist1d")
    assert mnist.train_x.shape == (4000, 40, 1) and mnist.test_x.shape == (1000, 40, 1)
    assert set(mnist.train_y.tolist()) == set(range(10))
    load_dataset.cache_clear()
    again = load_dataset("mnist1d")
    assert torch.equal(again.train_x, mnist.train_x), "generated from the same seed"
    shuffled = load_dataset("mnist1d_shuffled")
    order = np.random.default_rng(0).permutation(40)
    assert torch.equal(shuffled.train_x, mnist.train_x[:, order])
    digits = load_dataset("digits")
    assert (
        digits.train_x.shape[1:] == (64, 1)
        and digits.train_x.shape[0] + digits.test_x.shape[0] == 1797
    )
    assert 0.0 <= float(digits.train_x.min()) and float(digits.train_x.max()) <= 1.0


def test_a_data_set_task_trains_to_its_target_accuracy(tmp_path: Path) -> None:
    """digits with a GRU: the length comes from the data, the held-out batch is the whole
    test split, and the run stops at the target accuracy (a low one, so that it is met)."""
    config = TrainConfig(task="digits", seq_len=0, cell="gru", hidden=32, steps=400, batch=64,
                         lr=1e-2, eval_every=20, target_accuracy=0.3)  # fmt: skip
    result = train(config, tmp_path)
    assert result.solved and result.solved_at is not None and result.steps < 400
    assert result.final_accuracy is not None and result.final_accuracy >= 0.3
    summary = result.summary()
    assert summary["seq_len"] == 64 and summary["target_accuracy"] == 0.3


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"task": "digits", "seq_len": 10}, "64 steps"),
     ({"task": "adding", "seq_len": 0}, "--seq-len"),
     ({"task": "adding", "seq_len": 10, "target_accuracy": 0.5}, "data-set tasks"),
     ({"task": "mnist1d", "seq_len": 0, "target_accuracy": 1.5}, r"\(0, 1\]")],
)  # fmt: skip
def test_data_set_options_are_checked(overrides: dict[str, object], match: str) -> None:
    settings = {"cell": "gru", **overrides}
    with pytest.raises(InvalidInputError, match=match):
        TrainConfig(**settings).validate()  # type: ignore[arg-type]


def test_later_fields_keep_the_keys_of_earlier_runs() -> None:
    """Fields added later (target_accuracy; layers, r_min, r_max; readout) count in the
    run's key only when they are set (``readout="last"``, the default spelled out, is not)."""
    config = TrainConfig(task="adding", seq_len=10, cell="rnn")
    later = ("target_accuracy", "layers", "r_min", "r_max", "readout", "floss", "floss_before",
             "floss_every", "floss_window", "floss_weight", "delta")  # fmt: skip
    text = json.dumps({k: v for k, v in asdict(config).items() if k not in later},
                      sort_keys=True)  # fmt: skip
    assert config.key() == hashlib.sha1(text.encode()).hexdigest()[:12]
    assert TrainConfig(task="digits", seq_len=0, cell="rnn", target_accuracy=0.9).key() != (
        TrainConfig(task="digits", seq_len=0, cell="rnn").key()
    )
    lru = TrainConfig(task="adding", seq_len=10, cell="lru")
    assert lru.key() != TrainConfig(task="adding", seq_len=10, cell="lru", layers=2).key()
    assert lru.key() != TrainConfig(task="adding", seq_len=10, cell="lru", r_max=0.99).key()
    assert TrainConfig(task="adding", seq_len=10, cell="rnn", readout="last").key() == config.key()
    assert TrainConfig(task="adding", seq_len=10, cell="rnn", readout="mean").key() != config.key()
    assert TrainConfig(task="adding", seq_len=10, cell="rnn", floss=2).key() != config.key()
    rate = TrainConfig(task="adding", seq_len=10, cell="rate")
    assert rate.key() != TrainConfig(task="adding", seq_len=10, cell="rate", delta=0.3).key()


@pytest.mark.parametrize(
    ("cell", "layers"),
    [("rnn", None), ("lstm", None), ("gru", None), ("lru", None), ("lru", 3), ("mingru", None),
     ("minlstm", None), ("indrnn", None)],
)  # fmt: skip
def test_the_mean_readout_is_the_mean_of_the_per_step_predictions(
    cell: str, layers: int | None
) -> None:
    """The head is affine, so the prediction from the mean of the outputs over the steps
    equals the mean over the steps of the head at every step: the same weights read out
    every step (as for the copy task) give the reference, in float64."""
    torch.manual_seed(0)
    kwargs = {"max_length": 7, "layers": layers or 1}
    mean = LabModel(cell, 3, 6, 2, per_step=False, readout="mean", **kwargs).double()
    every = LabModel(cell, 3, 6, 2, per_step=True, **kwargs).double()
    every.load_state_dict(mean.state_dict())
    x = torch.randn(7, 4, 3, dtype=torch.float64)
    prediction, states = mean.forward_with_states(x)
    assert prediction.shape == (4, 2)
    torch.testing.assert_close(prediction, every(x).mean(dim=0), rtol=1e-12, atol=1e-12)
    last = LabModel(cell, 3, 6, 2, per_step=False, **kwargs).double()
    last.load_state_dict(mean.state_dict())
    assert not torch.allclose(last(x), prediction), "the last step alone differs"
    assert states.shape[:2] == (7, 4)


def test_the_readout_is_checked_against_the_task() -> None:
    """``readout`` is last or mean, for tasks answered once per sequence (not copy)."""
    with pytest.raises(InvalidInputError, match="readout must be last or mean, got 'max'"):
        TrainConfig(task="adding", seq_len=10, cell="gru", readout="max").validate()
    with pytest.raises(InvalidInputError, match="copy is read at every step"):
        TrainConfig(task="copy", seq_len=10, cell="gru", readout="mean").validate()
    TrainConfig(task="adding", seq_len=10, cell="gru", readout="mean").validate()


def test_a_results_table_keeps_a_field_the_first_row_lacks(tmp_path: Path) -> None:
    """Regression: the table's columns were the first row's keys, so a field that an
    older run's summary lacks (``threads``, ``readout``) vanished from a sweep's
    results and runs that differ only in it were grouped together."""
    from rnngrad.lab.records import write_table

    rows = [{"cell": "gru", "seed": 0}, {"cell": "gru", "seed": 1, "readout": "mean"}]
    write_table(rows, tmp_path / "results")
    read = read_table_rows(tmp_path / "results.parquet")
    assert read == [{"cell": "gru", "seed": 0, "readout": None},
                    {"cell": "gru", "seed": 1, "readout": "mean"}]  # fmt: skip
    assert (tmp_path / "results.csv").read_text().splitlines()[0] == '"cell","seed","readout"'


def test_mnist1d_benchmark_on_a_tiny_budget(tmp_path: Path) -> None:
    """The MNIST-1D table comes from this code; here on a tiny budget."""
    module = load_benchmark("mnist1d_accuracy")
    table = module.main(["--out", str(tmp_path), "--models", "gru,lru4", "--seeds", "1",
                         "--steps", "3", "--hidden", "4", "--batch", "8",
                         "--workers", "2"])  # fmt: skip
    assert table.count("\n") == 2 + 2 + 1
    assert re.search(r"\| lru4 \| \d+\.\d% \(", table)
    assert (tmp_path / "mnist1d.png").stat().st_size > 0
    assert len(read_table_rows(tmp_path / "results.parquet")) == 4


def test_long_memory_benchmark_on_a_tiny_budget(tmp_path: Path) -> None:
    """The long-memory table comes from this code; here on a tiny budget."""
    module = load_benchmark("long_memory")
    table = module.main(["--out", str(tmp_path), "--lengths", "6", "--seeds", "1",
                         "--steps", "3", "--hidden", "4", "--batch", "4",
                         "--workers", "2", "--copy", "5"])  # fmt: skip
    assert table.count("\n") == 2 + 11 + 1 + 2 + 11 + 1 + 2 + 2 + 1 + 2 + 11
    # the copy problem: every model, its own table, recall read from the runs
    copy = table.split("| copy problem | T = 5 |")[1]
    assert re.search(
        r"\| GRU \| [01]/1 \((median \d+ steps|loss [\d.e+-]+ x baseline, \d+% recalled)\) \|", copy
    )
    assert "| LRU (2 layers) | " in copy
    assert re.search(r"\| LRU \(2 layers, ring 1 - 2/T\) \| \d+% / \d+% \|", table)
    assert re.search(r"\| LSTM \(chrono\) \| [01]/1", table)
    # how far back each run's last recorded gradient profile reaches, in decades
    assert re.search(r"\| GRU \| (-?\d+\.\d|0 before t = \d) \|", table.split("gradient reach")[1])
    assert re.search(r"\| LRU \(2 layers\) \| [01]/1", table)
    rows = read_table_rows(tmp_path / "results.parquet")
    assert len(rows) == 11 + 11
    assert sorted(r["r_min"] for r in rows if r["r_min"] is not None) == [1 - 2 / 5, 1 - 2 / 6]
    assert sorted({(r["task"], r["seq_len"]) for r in rows}) == [("adding", 6), ("copy", 5)]
    assert re.search(r"\| LRU \(2 layers, ring 1 - 2/T\) \| [01]/1", table)
    # the full grid: the default ring's LRU stops at T = 1000, Mamba, mLSTM and sLSTM at
    # T = 200 (a CPU's step times), every other model runs all; the copy problem at
    # T = 500 the models that reach it
    full = module.build([200, 1000, 2000], 3, 6000, 64, 50, 1e-3, (500,)).configs
    assert len(full) == 3 * 11 * 3 - 3 - 3 * 2 * 3 + 8 * 3
    assert {c.init for c in full if c.task == "copy" and c.cell == "lstm"} == {"chrono:500"}
    assert not [c for c in full if c.seq_len == 2000 and c.cell == "lru" and c.r_min is None]


def test_long_memory_benchmark_tabulates_the_selective_copy(tmp_path: Path) -> None:
    """--selective-copy adds Gu & Dao's task for every model, in a table of its own."""
    module = load_benchmark("long_memory")
    table = module.main(["--out", str(tmp_path), "--lengths", "4", "--seeds", "1",
                         "--steps", "2", "--hidden", "4", "--batch", "4", "--workers", "2",
                         "--selective-copy", "5"])  # fmt: skip
    selective = table.split("| selective copy | T = 5 |")[1]
    assert selective.count("\n| ") == 1 + len(module.MODELS)  # the rule, then one row each
    assert re.search(r"\| Mamba \| [01]/1 \(", selective)
    rows = read_table_rows(tmp_path / "results.parquet")
    assert sorted({r["task"] for r in rows}) == ["adding", "selective_copy"]


@pytest.mark.parametrize("option", [["--copy", "abc"], ["--lengths", "200,x"], ["--copy", "1"]])
def test_long_memory_benchmark_refuses_a_bad_length_list(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_benchmark("long_memory")
    with pytest.raises(SystemExit) as stopped:
        module.main(["--out", str(tmp_path), "--report-only", *option])
    assert stopped.value.code == 2
    assert f"argument {option[0]}:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_gradient_reach_reads_the_last_profile_of_each_run(tmp_path: Path) -> None:
    """The long-memory report's reach: log10 |dL/dh_1|/|dL/dh_T| at the last recorded
    profile, or the first step with a gradient where dL/dh_1 is zero in float32; the
    median over seeds, each run matched to its model by cell, init and layers."""
    from rnngrad.lab.records import write_table

    module = load_benchmark("long_memory")
    profiles = {  # seed: (step 1 profile, last profile), log10 |dL/dh_t| for t = 1..5
        0: ([-1.0] * 5, [-4.0, -3.0, -2.5, -2.2, -2.0]),  # reach -2.0
        1: ([-1.0] * 5, [None, None, -3.0, -2.5, -2.0]),  # zero before t = 3
        2: ([-1.0] * 5, [-3.5, -3.0, -2.5, -2.2, -2.0]),  # reach -1.5
    }
    for seed, (first, last) in profiles.items():
        folder = tmp_path / "runs" / f"gru{seed}"
        folder.mkdir(parents=True)
        summary = {"seq_len": 5, "cell": "gru", "init": "default", "layers": None}
        (folder / "summary.json").write_text(json.dumps(summary))
        rows = [{"step": step, "t": t, "log10_grad_norm": value}
                for step, values in ((1, first), (400, last))
                for t, value in enumerate(values, start=1)]  # fmt: skip
        write_table(rows, folder / "profiles")
    table = module.reach_table(tmp_path, [5])
    assert "| GRU | -2.0 |" in table  # the median of (-inf, -2.0, -1.5)
    assert "| tanh RNN | — |" in table
    (tmp_path / "runs" / "gru2" / "profiles.parquet").unlink()  # one run without profiles
    table = module.reach_table(tmp_path, [5])
    assert "| GRU | -2.0 |" in table  # the median of (-inf, -2.0): the upper one
    (tmp_path / "runs" / "gru0" / "profiles.parquet").unlink()
    assert "| GRU | 0 before t = 3 |" in module.reach_table(tmp_path, [5])


def test_lru_modes_kept_counts_the_final_eigenvalues_against_the_length(tmp_path: Path) -> None:
    """The share of each LRU layer's eigenvalues with |lambda|^T > e^-2, read from a run's
    checkpoint (then from the eigenvalues.json it writes), against a direct count."""
    sweep_helpers = load_benchmark("_sweep")
    torch.manual_seed(13)
    model = LabModel("lru", 2, 16, 1, per_step=False, layers=3, r_min=0.5, r_max=0.999)
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    torch.save({"model": model.state_dict()}, run / "checkpoint.pt")
    shares = []
    for steps in (3, 30, 300):
        expected = [float((layer.eigenvalues().abs() > math.exp(-2 / steps)).double().mean())
                    for layer in model.lru_layers()]  # fmt: skip
        assert sweep_helpers.lru_modes_kept(run, steps) == pytest.approx(expected, abs=1e-12)
        shares += expected
    assert any(0 < share < 1 for share in shares)  # the thresholds cut through the ring
    (run / "checkpoint.pt").unlink()  # from now on, the committed moduli
    assert sweep_helpers.lru_modes_kept(run, 300) == pytest.approx(expected, abs=1e-12)
    assert sweep_helpers.lru_modes_kept(tmp_path / "unfinished", 300) is None


def test_lru_adding_benchmark_on_a_tiny_budget(tmp_path: Path) -> None:
    """The LRU variants' table comes from this code; here on a tiny budget: one row per
    variant, each matched to its own runs (four blocks, the ring, the learning rates)."""
    module = load_benchmark("lru_adding")
    table = module.main(["--out", str(tmp_path), "--seeds", "1", "--steps", "3", "--hidden",
                         "4", "--batch", "4", "--workers", "1"])  # fmt: skip
    assert table.count("\n") == 2 + 7
    for label in ("lr 3e-4", "lr 3e-3", "ring 0.99-0.9999", "4 blocks", "3x the steps"):
        assert re.search(rf"\| {label} \| 200 \| 0/1 \| — \| \d", table)
    rows = read_table_rows(tmp_path / "results.parquet")
    assert len(rows) == 7
    assert sorted((r["seq_len"], r["layers"]) for r in rows).count((200, 4)) == 1
    assert sorted(r["step_budget"] for r in rows) == [3] * 6 + [9]
    four_shares = r"\d+% / \d+% / \d+% / \d+%"
    assert re.search(rf"\| 4 blocks \| 200 \| 0/1 \| — \| [^|]+ \| {four_shares} \|", table)


def test_a_benchmark_with_nothing_to_tabulate_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--report-only`` before any run has finished: one line on stderr, exit 2."""
    module = load_benchmark("remedies")
    with pytest.raises(SystemExit) as exited:
        module.main(["--out", str(tmp_path / "none"), "--report-only"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no results.parquet" in error


def test_a_benchmark_table_replaces_the_documents_table_with_its_header(tmp_path: Path) -> None:
    """``--docs`` replaces exactly the tables whose header row a new table has (rows may
    be added), leaves the prose and the other tables alone, and rewrites nothing when
    the tables are already current."""
    sweep_helpers = load_benchmark("_sweep")
    document = tmp_path / "lab.md"
    before = (
        "Prose before.\n\n| model | T = 200 |\n| --- | --- |\n| tanh | 0/2 |\n\n"
        "Between.\n\n| other | x |\n| --- | --- |\n| a | 1 |\n\nAfter.\n"
    )
    document.write_text(before)
    tables = (
        "| model | T = 200 |\n| --- | --- |\n| tanh | 0/3 |\n| LRU | 3/3 |\n\n"
        "| absent | y |\n| --- | --- |\n| b | 2 |\n"
    )
    assert sweep_helpers.replace_tables(document, tables) == 1
    after = document.read_text()
    assert after == before.replace("| tanh | 0/2 |", "| tanh | 0/3 |\n| LRU | 3/3 |")
    stamp = document.stat().st_mtime_ns
    assert sweep_helpers.replace_tables(document, tables) == 1
    assert document.read_text() == after and document.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(("task_name", "cell"), [("copy", "gru"), ("adding", "lru")])
def test_evaluation_in_chunks_equals_one_pass_over_the_held_out_set(
    task_name: str, cell: str, tmp_path: Path
) -> None:
    """The held-out set (250 sequences) is evaluated in chunks of 100; the recorded loss
    and accuracy equal one pass of the final model over the whole set."""
    config = TrainConfig(task=task_name, seq_len=12, cell=cell, hidden=8, steps=3, batch=8,
                         eval_every=3, eval_batch=250, profile_every=3)  # fmt: skip
    result = train(config, tmp_path)
    task = make_task(task_name, 12)
    held_out = task.held_out(250, torch.Generator().manual_seed(config.seed + 2))
    model = LabModel(cell, task.input_size, 8, task.output_size, per_step=task.per_step,
                     max_length=12)  # fmt: skip
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    model.load_state_dict(state["model"])
    with torch.no_grad():
        output = model(held_out.inputs)
    last = result.records["evaluations"][-1]
    assert last["loss"] == pytest.approx(float(task.loss(output, held_out.targets)), rel=1e-5)
    expected_accuracy = task.accuracy(output, held_out.targets)
    if expected_accuracy is None:
        assert last["accuracy"] is None
    else:
        assert last["accuracy"] == pytest.approx(expected_accuracy, abs=1e-7)


def test_dask_workers_start_without_the_malloc_trim_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 slows torch training 1.8x in its
    workers; run_sweep's clusters start without it, even when an earlier nanny left it
    in this process's environment, which is restored afterwards."""
    from dask.distributed import Client, LocalCluster

    from rnngrad.lab.cluster import without_trim_threshold

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with without_trim_threshold():
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        )
    try:
        with Client(cluster) as client:
            seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    finally:
        cluster.close()
    assert list(seen.values()) == [None]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_runs_that_differ_only_in_their_readout_are_told_apart(tmp_path: Path) -> None:
    """``sweep --summary`` and the report's remedies section group by the same fields
    (one list), the read-out among them, and the report names the one that differs."""
    from rnngrad.lab.records import write_table
    from rnngrad.report.sections.lab import _labels

    common = {"task": "digits", "seq_len": 64, "cell": "gru", "init": "default",
              "clip": "norm:1.0", "solved": False, "final_loss": 1.0}  # fmt: skip
    rows = [{**common, "seed": 0}, {**common, "seed": 0, "readout": "mean", "final_loss": 0.5}]
    write_table(rows, tmp_path / "results")
    summary = sweep_summary(tmp_path)
    assert [(s["readout"], s["runs"], s["median_final_loss"]) for s in summary] == [
        (None, 1, 1.0),
        ("mean", 1, 0.5),
    ]
    assert _labels(summary) == {0: "GRU", 1: "GRU readout mean"}


def test_the_summary_gives_a_data_sets_median_test_accuracy(tmp_path: Path) -> None:
    """Runs on a data set are judged by their test accuracy: the summary has its median
    over seeds (the middle of three, as ``statistics.median``); generated tasks have none."""
    import statistics

    from rnngrad.lab.records import write_table

    common = {"seq_len": 64, "cell": "gru", "init": "default", "clip": "norm:1.0",
              "solved": False, "final_loss": 1.0}  # fmt: skip
    accuracies = [0.5, 0.9, 0.7]
    rows = [{**common, "task": "digits", "seed": s, "final_accuracy": a}
            for s, a in enumerate(accuracies)]  # fmt: skip
    rows.append({**common, "task": "adding", "seed": 0, "final_accuracy": None})
    write_table(rows, tmp_path / "results")
    by_task = {s["task"]: s for s in sweep_summary(tmp_path)}
    assert by_task["digits"]["median_final_accuracy"] == statistics.median(accuracies)
    assert by_task["adding"]["median_final_accuracy"] is None


def test_an_empty_output_folder_is_refused_by_the_api(tmp_path: Path) -> None:
    """Regression: train(config, "") and run_sweep(sweep, "") wrote into the working
    directory (Path("") is "."); now both refuse an empty name."""
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    with pytest.raises(InvalidInputError, match="out is empty"):
        run_sweep(load_sweep(grid), "")
    with pytest.raises(InvalidInputError, match="out is empty"):
        train(TrainConfig(task="adding", seq_len=6, cell="rnn", hidden=4, steps=2), "")
