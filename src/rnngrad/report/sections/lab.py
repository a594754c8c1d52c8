"""The report's remedies section: which remedy trained, how fast, and what it did to W_hh.

From a sweep's folder (``rnngrad sweep GRID.toml --out DIR``) it draws

- the held-out loss against the training step, one line per configuration at the
  longest sequence length: the median over seeds, with the range over seeds shaded;
- the share of seeds that solved the task per configuration: bars for one length,
  lines against ``T`` for several;
- the spectral radius of the recurrence over training (median over seeds): whether
  a remedy works by keeping ``rho`` near 1.

Without a sweep the built-in page runs :func:`built_in_sweep`, a quick sweep of the
classic cells on the adding problem, labelled as such on the page.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngrad.logspace import finite_or_none
from rnngrad.report.section import Section
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import t

__all__ = ["BUILT_IN_SWEEP", "built_in_sweep", "lab_section"]

#: The built-in sweep: the classic cells and remedies on the adding problem, two seeds.
BUILT_IN_SWEEP = (("rnn", "default"), ("relu", "identity"), ("lstm", "default"), ("gru", "default"))


def built_in_sweep(folder: Path, *, quick: bool, seed: int) -> Path:
    """Run the quick built-in sweep into ``folder`` (resumable, like any sweep) and return it:
    the tanh RNN, the IRNN (relu, identity init), an LSTM and a GRU on the adding problem
    at T = 50, seeds ``seed`` and ``seed + 1``, 300 Adam steps (60 with ``quick``)."""
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.grid import Sweep
    from rnngrad.lab.sweep import run_sweep

    configs = tuple(
        TrainConfig(
            task="adding",
            seq_len=50,
            cell=cell,
            init=init,
            hidden=32,
            batch=32,
            steps=60 if quick else 300,
            lr=3e-3,
            seed=seed + offset,
            eval_every=20,
            eval_batch=200,
            checkpoint_every=1000,
            profile_every=1000,
        )
        for cell, init in BUILT_IN_SWEEP
        for offset in (0, 1)
    )
    sweep = Sweep(("cell", "init", "seed"), configs, "the report's built-in sweep")
    run_sweep(sweep, folder, workers=min(2, os.cpu_count() or 1), progress=False)
    return folder


@dataclass
class _Run:
    summary: dict[str, Any]
    evaluations: list[dict[str, Any]]


def _runs(folder: Path) -> list[_Run]:
    """The finished runs of the sweep's current grid, with their held-out evaluations."""
    from rnngrad.lab.records import read_table_rows

    try:  # the grid's own order
        cells = [str(c) for c in json.loads((folder / "grid.json").read_text())["cells"]]
    except (OSError, ValueError, KeyError, TypeError):
        cells = sorted(run.name for run in (folder / "runs").glob("*"))
    runs = []
    for run in (folder / "runs" / cell for cell in cells):
        try:
            summary = json.loads((run / "summary.json").read_text())
        except (OSError, ValueError):
            continue
        evaluations = []
        if (run / "evaluations.parquet").is_file():
            evaluations = read_table_rows(run / "evaluations.parquet", required=("step", "loss"))
        runs.append(_Run(summary, evaluations))
    return runs


def _labels(summaries: list[dict[str, Any]]) -> dict[int, str]:
    """Short names: the cell, then only the settings that differ between configurations."""
    from rnngrad.lab.sweep import DESCRIBING

    varying = [k for k in DESCRIBING[1:] if len({str(s.get(k)) for s in summaries}) > 1]
    names = {}
    for index, summary in enumerate(summaries):
        parts = [str(summary["cell"])]
        for key in varying:
            value = summary.get(key)
            if key == "orthogonal_constraint":
                parts.append("+orth" if value else "")
            elif key == "init":
                parts.append("" if value == "default" else f"({value})")
            elif value is not None:
                parts.append(f"{key.replace('_', ' ')} {value}")
        names[index] = " ".join(p for p in parts if p)
    return names


def _series(runs: list[_Run], field: str) -> tuple[list[int], np.ndarray]:
    """``field`` of each run at every evaluation step of any of them, ``(runs, steps)``;
    a run that stopped early (solved) keeps its last value."""
    steps = sorted({int(e["step"]) for run in runs for e in run.evaluations})
    table = np.full((len(runs), len(steps)), np.nan)
    for i, run in enumerate(runs):
        values = {int(e["step"]): e.get(field) for e in run.evaluations}
        last = math.nan
        for j, step in enumerate(steps):
            value = values.get(step, last if step > max(values, default=0) else None)
            number = math.nan if value is None else float(value)
            table[i, j] = number
            if step in values:
                last = number
    return steps, table


def lab_section(lab: Path | None, *, built_in: bool = False) -> Section:
    """The remedies section of a sweep's folder ``lab`` (``built_in``: the report's own
    quick sweep, said so on the page)."""
    if lab is None:
        return Section(
            "lab", t("The remedies lab"),
            t("No lab results were given: run `rnngrad sweep GRID.toml --out DIR` and pass "
              "`--lab DIR` to compare the remedies here."), None,
        )  # fmt: skip
    from rnngrad.lab.sweep import DESCRIBING, sweep_summary

    rows = sweep_summary(lab)
    runs = _runs(lab)
    longest = max(row["seq_len"] for row in rows)
    groups: dict[tuple[Any, ...], list[_Run]] = {}
    for run in runs:
        if run.summary["seq_len"] == longest:
            key = tuple(str(run.summary.get(k)) for k in ("task", *DESCRIBING))
            groups.setdefault(key, []).append(run)
    members = list(groups.values())
    names = _labels([group[0].summary for group in members])
    curves = Figure(
        "lab_learning_curves",
        t("held-out loss during training, T = {length} (median over seeds, range shaded)",
          length=longest), t("step"), t("held-out loss"), log_y=True,
    )  # fmt: skip
    radius = Figure(
        "lab_spectral_radius",
        t("spectral radius of the recurrence during training, T = {length}", length=longest),
        t("step"), t("rho (median over seeds)"),
    )  # fmt: skip
    numbers: dict[str, Any] = {"summary": rows, "curves": {}}
    for index, group in enumerate(members):
        name = names[index]
        steps, losses = _series(group, "loss")
        if not steps:
            continue
        with np.errstate(all="ignore"):
            median = np.nanmedian(losses, axis=0)
            low, high = np.nanmin(losses, axis=0), np.nanmax(losses, axis=0)
        if len(group) > 1:
            band = t("{name} range", name=name)
            curves.traces.append(Trace(band, steps, list(low), fill="edge"))
            curves.traces.append(Trace(band, steps, list(high), fill="band"))
        curves.traces.append(
            Trace(t("{name} ({seeds} seeds)", name=name, seeds=len(group)), steps, list(median))
        )
        _, radii = _series(group, "spectral_radius")
        with np.errstate(all="ignore"):
            radius_median = np.nanmedian(radii, axis=0)
        if np.isfinite(radius_median).any():
            radius.traces.append(Trace(name, steps, list(radius_median)))
        numbers["curves"][name] = {
            "step": steps,
            "median_loss": [finite_or_none(v) for v in median],
            "median_spectral_radius": [finite_or_none(v) for v in radius_median],
            "seeds": len(group),
        }
    share = _share_figure(rows)
    solved = sorted({names[i] for i, group in enumerate(members)
                     if any(run.summary.get("solved") for run in group)})  # fmt: skip
    outcome = (
        t("these solved the task in at least one seed: {names}.", names=", ".join(solved))
        if solved
        else t("no configuration solved the task within its budget.")
    )
    sentence = (
        t("In the report's own quick sweep (the classic cells on the adding problem, two "
          "seeds, a few hundred steps; `benchmarks/remedies.py` is the full comparison), at "
          "the longest sequence, T = {length}, {outcome}", length=longest, outcome=outcome)
        if built_in
        else t("At the longest sequence, T = {length}, {outcome}", length=longest,
               outcome=outcome)
    )  # fmt: skip
    figures = [curves, share] + ([radius] if radius.traces else [])
    return Section(
        "lab",
        t("The remedies lab"),
        sentence,
        "solved" if solved else "unsolved",
        figures,
        numbers,
    )


def _share_figure(rows: list[dict[str, Any]]) -> Figure:
    lengths = sorted({row["seq_len"] for row in rows})
    names = _labels(rows)
    if len(lengths) == 1:
        figure = Figure("remedies", t("share of seeds that solved it, T = {length}",
                                      length=lengths[0]),
                        t("configuration"), t("solved share"))  # fmt: skip
        figure.traces.append(
            Trace(
                t("solved share"),
                [names[i] for i in range(len(rows))],
                [row["solved"] / row["runs"] for row in rows],
                kind="bar",
            )
        )
        return figure
    figure = Figure(
        "remedies", t("share of seeds that solved it against T"), "T", t("solved share")
    )
    groups: dict[str, list[tuple[int, float]]] = {}
    for index, row in enumerate(rows):
        several_tasks = len({r["task"] for r in rows}) > 1
        label = f"{row['task']}: {names[index]}" if several_tasks else names[index]
        groups.setdefault(label, []).append((row["seq_len"], row["solved"] / row["runs"]))
    for label, points in groups.items():
        points.sort()
        figure.traces.append(
            Trace(label, [p[0] for p in points], [p[1] for p in points], "lines+markers")
        )
    return figure
