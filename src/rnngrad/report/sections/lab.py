"""The report's remedies section: which remedy trained, how fast, and what it did to W_hh.

From a sweep's folder (``rnngrad sweep GRID.toml --out DIR``) it draws

- the held-out loss against the training step, one line per configuration at the
  longest sequence length: the median over seeds, with the range over seeds shaded;
- the share of seeds that solved the task per configuration: bars for one length,
  lines against ``T`` for several (left out, and said in words, when none solved);
- beside them, a table: per configuration, the seeds that solved it and, for its first
  seed's trained model, the verdict on the gradient carried back (its decay per step,
  its horizon, and whether an LSTM's cell state ``c`` carries it);
- the spectral radius of the recurrence over training (median over seeds): whether
  a remedy works by keeping ``rho`` near 1.

Without a sweep the built-in page runs
:func:`rnngrad.report.models.built_in_sweep`, a short sweep of the classic cells on the
adding problem, labelled as such on the page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnngrad.logspace import finite_or_none
from rnngrad.profile.result import LayerProfile
from rnngrad.report.section import Section
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import t, verdict_word

__all__ = ["lab_section"]


@dataclass
class _Run:
    folder: Path
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
        runs.append(_Run(run, summary, evaluations))
    return runs


def _labels(summaries: list[dict[str, Any]]) -> dict[int, str]:
    """Short names: the cell, then only the settings that differ between configurations."""
    from rnngrad.lab.models import CELL_NAMES
    from rnngrad.lab.sweep import DESCRIBING

    varying = [k for k in DESCRIBING[1:] if len({str(s.get(k)) for s in summaries}) > 1]
    names = {}
    for index, summary in enumerate(summaries):
        parts = [CELL_NAMES.get(str(summary["cell"]), str(summary["cell"]))]
        for key in varying:
            value = summary.get(key)
            if key == "orthogonal_constraint":
                parts.append("+orth" if value else "")
            elif key == "init":
                parts.append("" if value == "default" else f"({value})")
            elif key == "regularizer":
                parts.append(f"+reg {value:g}" if value else "")
            elif key == "floss":
                parts.append(f"+floss {value}" if value else "")
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
    short sweep, said so on the page)."""
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
          length=longest), t("training step"), t("held-out loss"), log_y=True, integer_x=True,
    )  # fmt: skip
    radius = Figure(
        "lab_spectral_radius",
        t("spectral radius of the recurrence during training, T = {length}", length=longest),
        t("training step"), t("rho (median over seeds)"), integer_x=True,
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
            curves.traces.append(Trace(band, steps, list(low), fill="edge", group=name))
            curves.traces.append(Trace(band, steps, list(high), fill="band", group=name))
        curves.traces.append(
            Trace(
                t("{name} ({seeds} seeds)", name=name, seeds=len(group)),
                steps,
                list(median),
                group=name,
            )
        )
        _, radii = _series(group, "spectral_radius")
        with np.errstate(all="ignore"):
            radius_median = np.nanmedian(radii, axis=0)
        if np.isfinite(radius_median).any():
            radius.traces.append(Trace(name, steps, list(radius_median), group=name))
        numbers["curves"][name] = {
            "step": steps,
            "median_loss": [finite_or_none(v) for v in median],
            "median_spectral_radius": [finite_or_none(v) for v in radius_median],
            "seeds": len(group),
        }
    solved = [names[i] for i, group in enumerate(members)
              if any(run.summary.get("solved") for run in group)]  # fmt: skip
    table, numbers["trained"] = _verdict_table(members, names)
    if solved:
        outcome = t("{names} solved it in at least one seed; ", names=", ".join(solved))
        unsolved = [names[i] for i in range(len(members)) if names[i] not in solved]
        outcome += (
            t("{names} did not within the budget.", names=", ".join(unsolved))
            if unsolved
            else t("every configuration did.")
        )
    else:
        outcome = t(
            "no configuration solved the task within its budget, so no share of solved seeds "
            "is drawn: give the runs more steps, or shorter sequences."
        )
    if built_in:
        sentence = t(
            "The report's own sweep: the classic cells trained on the adding problem at "
            "T = {length} (the same task and seeds for each, two seeds, at most {steps} "
            "training steps, stopped once solved; `benchmarks/remedies.py` is the full "
            "comparison). {outcome}", length=longest, steps=_budget(runs), outcome=outcome,
        )  # fmt: skip
    else:
        sentence = t("At the longest sequence, T = {length}, {outcome}", length=longest,
                     outcome=outcome)  # fmt: skip
    sentence += " " + t(
        "The table reads each configuration's first seed after training: the verdict on the "
        "gradient carried back from the last step, and the path that carries it (a decay "
        "whose horizon lies beyond T still reaches the first step)."
    )
    figures = [curves] + ([_share_figure(rows)] if any(row["solved"] for row in rows) else [])
    figures += [radius] if radius.traces else []
    return Section(
        "lab",
        t("The remedies lab"),
        sentence,
        "solved" if solved else "unsolved",
        figures,
        numbers,
        table=table,
    )


def _budget(runs: list[_Run]) -> int:
    return max(int(run.summary.get("step_budget") or run.summary["steps"]) for run in runs)


def _verdict_table(
    members: list[list[_Run]], names: dict[int, str]
) -> tuple[list[list[str]], dict[str, Any]]:
    """Per configuration: the seeds that solved it, and the gradient carried back through
    its first seed's trained model (verdict, decay, horizon, the path that carries it),
    profiled on 16 sequences of its task."""
    header = [t("configuration"), t("solved"), t("carried gradient after training"),
              t("decay (nat/step)"), t("horizon (steps)"), t("carried by")]  # fmt: skip
    rows: list[list[str]] = [header]
    numbers: dict[str, dict[str, Any] | None] = {}
    for index, group in enumerate(members):
        solved = [run for run in group if run.summary.get("solved")]
        steps = sorted(int(run.summary["solved_at"]) for run in solved
                       if run.summary.get("solved_at") is not None)  # fmt: skip
        share = t("{solved} of {runs}", solved=len(solved), runs=len(group))
        if steps:
            share += " " + t("(median step {step})", step=steps[len(steps) // 2])
        layer = _trained_profile(group[0].folder)
        if layer is None:
            rows.append([names[index], share, t("no checkpoint"), "", "", ""])
            numbers[names[index]] = None
            continue
        decay = "" if layer.decay_rate is None else f"{layer.decay_rate:.3g}"
        horizon = (
            t("beyond T = {length}", length=layer.mean_grad_norm.size)
            if layer.horizon is None
            else str(layer.horizon)
        )
        path = t("the cell state c") if layer.carried_by == "c" else t("the hidden state h")
        rows.append([names[index], share, verdict_word(layer.verdict.label), decay, horizon,
                     path])  # fmt: skip
        numbers[names[index]] = {
            "verdict": layer.verdict.label,
            "decay_rate": None if layer.decay_rate is None else finite_or_none(layer.decay_rate),
            "horizon": layer.horizon,
            "carried_by": layer.carried_by,
            "seed": group[0].summary.get("seed"),
        }
    return rows, numbers


def _trained_profile(run: Path) -> LayerProfile | None:
    """The first layer's profile of the trained model in ``run`` (``None`` without a
    readable checkpoint), on 16 sequences drawn from ``seed + 7`` with the task's loss."""
    import torch

    from rnngrad.errors import RnngradError
    from rnngrad.lab.trained import trained_model
    from rnngrad.profile.front import gradient_profile

    try:
        trained = trained_model(run)
    except RnngradError:
        return None
    task = trained.task
    batch = task.sample(16, torch.Generator().manual_seed(trained.config.seed + 7))

    def loss(output: torch.Tensor) -> torch.Tensor:
        return task.loss(output, batch.targets)

    profile = gradient_profile(trained.model, batch.inputs, loss=loss, module="rnn")
    return profile.layers[0]


def _share_figure(rows: list[dict[str, Any]]) -> Figure:
    lengths = sorted({row["seq_len"] for row in rows})
    names = _labels(rows)
    if len(lengths) == 1:
        figure = Figure("remedies", t("share of seeds that solved it, T = {length}",
                                      length=lengths[0]),
                        t("configuration"), t("solved share"), y_range=(0.0, 1.0))  # fmt: skip
        for index, row in enumerate(rows):  # one bar each, in its configuration's colour
            figure.traces.append(Trace(names[index], [names[index]], [row["solved"] / row["runs"]],
                                       kind="bar", group=names[index]))  # fmt: skip
        return figure
    figure = Figure(
        "remedies",
        t("share of seeds that solved it against T"),
        "T",
        t("solved share"),
        y_range=(0.0, 1.0),
        integer_x=True,
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
