"""`rnngrad train` and `rnngrad sweep` through the installed entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import run, strict_json

TINY = ["--task", "order", "--seq-len", "12", "--cell", "lstm", "--hidden", "8", "--steps", "30",
        "--batch", "16"]  # fmt: skip


def test_train_json_contract(tmp_path: Path) -> None:
    done = run("train", *TINY, "--out", str(tmp_path / "run"), "--json")
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    for key in ("task", "seq_len", "cell", "init", "clip", "final_loss", "baseline_loss", "solved",
                "steps", "skipped_steps", "wall_s"):  # fmt: skip
        assert key in payload
    assert payload["task"] == "order" and payload["steps"] == 30
    assert (tmp_path / "run" / "history.parquet").exists()


def test_train_a_stacked_lru_on_its_own_ring(tmp_path: Path) -> None:
    done = run("train", *TINY[:4], "--cell", "lru", "--layers", "2", "--r-min", "0.5",
               "--r-max", "0.8", "--hidden", "8", "--steps", "4", "--batch", "8",
               "--out", str(tmp_path / "run"), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert (payload["cell"], payload["layers"], payload["r_min"], payload["r_max"]) == (
        "lru", 2, 0.5, 0.8)  # fmt: skip


def test_train_text_output(tmp_path: Path) -> None:
    done = run(
        "train", *TINY, "--clip", "value:0.5", "--init", "orthogonal", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "results in" in done.stdout


def test_sweep_and_summary(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\ntask = ["adding"]\nseq_len = [5]\ncell = ["rnn", "gru"]\n'
                    "[train]\nhidden = 4\nsteps = 10\nbatch = 8\neval_batch = 16\n")  # fmt: skip
    done = run("sweep", str(grid), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "2/2 runs finished" in done.stdout
    summary = run("sweep", "--summary", str(tmp_path / "out"))
    assert summary.returncode == 0 and "gru" in summary.stdout and "0/1" in summary.stdout
    # Regression: a results file holding NaN losses (written by another tool, or by hand)
    # printed "nan" as a median loss; a loss that is no number is no median.
    import pyarrow as pa
    import pyarrow.parquet as pq

    results = tmp_path / "out" / "results.parquet"
    table = pq.read_table(results)
    column = table.schema.get_field_index("final_loss")
    nan = pa.array([float("nan")] * table.num_rows, type=pa.float64())
    pq.write_table(table.set_column(column, "final_loss", nan), results)
    summary = run("sweep", "--summary", str(tmp_path / "out"))
    assert summary.returncode == 0, summary.stderr
    assert "nan" not in summary.stdout.lower() and "gru" in summary.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", *TINY[:4], "--cell", "transformer", "--out", "{tmp}"], "unknown cell"),
        (["train", *TINY, "--clip", "norm:-1", "--out", "{tmp}"], "clip"),
        (["train", *TINY, "--init", "radius:x", "--out", "{tmp}"], "radius"),
        (["train", *TINY, "--lr", "nan", "--out", "{tmp}"], "finite"),
        (["train", *TINY, "--out", "/proc/forbidden"], "cannot be written"),
        (["sweep", "{tmp}/missing.toml", "--out", "{tmp}/out"], "no such file"),
        (["sweep", "--summary", "{tmp}"], "no results.parquet"),
        (["sweep", "{tmp}/bad.toml", "--out", "{tmp}/out"], "line 2: unknown key"),
        (["train", *TINY, "--layers", "2", "--out", "{tmp}"], "lru cell only, not lstm"),
        (
            [
                "train",
                *TINY[:4],
                "--cell",
                "lru",
                "--r-min",
                "0.99",
                "--r-max",
                "0.9",
                "--out",
                "{tmp}",
            ],
            "0 < r_min < r_max < 1",
        ),
        (["train", *TINY[:4], "--cell", "lru", "--r-max", "nan", "--out", "{tmp}"], "finite"),
        (["train", *TINY[:4], "--cell", "lru", "--layers", "0", "--out", "{tmp}"], "1..64"),
        (["train", *TINY, "--shuffle", "--out", "{tmp}"], "--shuffle applies to --task mnist1d"),
        (
            ["train", "--task", "mnist1d", "--cell", "gru", "--permute", "--out", "{tmp}"],
            "--permute applies to --task digits, not mnist1d",
        ),
        (["train", *TINY, "--readout", "max", "--out", "{tmp}"], "readout must be last or mean"),
        (
            [
                "train",
                "--task",
                "copy",
                "--seq-len",
                "12",
                "--cell",
                "gru",
                "--readout",
                "mean",
                "--out",
                "{tmp}",
            ],
            "copy is read at every step",
        ),
    ],
)
def test_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.toml").write_text("[grid]\ndepth = [1]\n")
    done = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]


def test_permute_and_shuffle_pick_the_variant(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    done = run("train", "--task", "digits", "--permute", "--cell", "gru", "--hidden", "4",
               "--steps", "2", "--batch", "8", "--out", out, "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = strict_json(done.stdout)
    assert payload["task"] == "digits_permuted" and payload["seq_len"] == 64
