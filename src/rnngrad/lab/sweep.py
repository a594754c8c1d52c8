r"""Sweeps over grids of lab runs: parallel on one machine or on a Dask cluster, resumable.

A sweep file (:mod:`rnngrad.lab.grid`) names the grid and the fixed training
settings. Each cell of the grid runs in ``DIR/runs/<key>`` (``key``: a hash of
its full configuration), so a finished run is never run again: rerunning the
same command after an interruption runs only the missing cells (a half-finished
run resumes from its checkpoint), and a changed grid runs only its new cells.
``DIR/results.parquet`` and ``.csv`` (one row per finished cell: the grid keys,
then the run's JSON summary) are rewritten atomically after every finished run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rnngrad.atomic import FolderLock, atomic_write_text
from rnngrad.errors import InvalidInputError
from rnngrad.lab.grid import Sweep, new_cells
from rnngrad.lab.workers import SweepInterrupted, die_with_parent, run_cell

__all__ = ["DESCRIBING", "SweepInterrupted", "run_sweep", "sweep_summary"]

#: What a configuration is, beyond its task, length and seed: the fields by which
#: ``sweep --summary`` and the report's remedies section group runs.
DESCRIBING = ("cell", "init", "clip", "orthogonal_constraint", "hidden", "forget_bias",
              "layers", "r_min", "r_max", "readout", "regularizer", "floss", "floss_before",
              "floss_every", "floss_window", "floss_weight", "delta")  # fmt: skip


logger = logging.getLogger("rnngrad.sweep")


def _finished(folder: Path) -> dict[str, Any] | None:
    summary = folder / "summary.json"
    if not summary.exists():
        return None
    try:
        payload: dict[str, Any] = json.loads(summary.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return payload


def _write_results(sweep: Sweep, out: Path, summaries: dict[str, dict[str, Any]]) -> int:
    """Rewrite ``results`` from the finished cells' summaries (keyed by configuration)."""
    from rnngrad.lab.records import write_table

    rows = []
    for config in sweep.configs:
        summary = summaries.get(config.key())
        if summary is None:
            continue
        # The grid's "steps" is the budget; the summary's "steps" is the steps taken.
        grid_values = {
            ("step_budget" if k == "steps" else k): getattr(config, k) for k in sweep.grid_keys
        }
        rows.append({**grid_values, **{k: v for k, v in summary.items() if k not in grid_values}})
    if rows:
        write_table(rows, out / "results")
    return len(rows)


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    use_dask: bool = False,
    on_finish: Callable[[int, int, dict[str, Any] | None], None] | None = None,
    connect_timeout: float = 10.0,
    device: str = "cpu",
    progress: bool = True,
    threads_per_worker: int = 1,
) -> list[dict[str, Any]]:
    """Run the cells that have not finished; return every finished cell's summary.

    Args:
        sweep: from :func:`load_sweep`.
        out: the sweep's folder.
        scheduler: a Dask scheduler address (``tcp://host:8786``).
        workers: parallel workers; with ``use_dask`` a ``LocalCluster`` of that
            many workers, else a process pool (default: the CPU count).
        use_dask: start a ``dask.distributed.LocalCluster`` of ``workers``.
        on_finish: called as ``on_finish(done, total, summary)`` as runs finish
            (``summary`` is ``None`` for the already finished ones at start).
        connect_timeout: seconds to wait for ``scheduler`` before giving up.
        device: for every run (``"auto"``: each worker's own GPU when it has one).
        progress: a bar of finished runs in a terminal or notebook (see
            :mod:`rnngrad.progress`); ``False`` for none.
        threads_per_worker: torch threads in each worker (1: workers times threads
            should not exceed the cores).

    Raises:
        InvalidInputError: ``out`` cannot be written, or Dask is not installed.
    """
    from rnngrad.limits import check_folder

    # Absolute before dispatch: a worker elsewhere resolves a relative path against its
    # own working directory.
    folder = check_folder(out, "out").resolve()
    try:
        (folder / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(
            f"{folder}: cannot be written ({error.strerror or error})"
        ) from None
    from rnngrad.limits import check_whole
    from rnngrad.progress import progress_callback

    check_whole(threads_per_worker, "threads_per_worker", 1, 1024)
    total = len(sweep.configs)
    with progress_callback(progress, "sweep", total) as bar, FolderLock(folder, "the sweep"):
        finish = on_finish
        if bar is not None:

            def finish(done: int, of: int, summary: dict[str, Any] | None) -> None:
                bar(done, of)
                if on_finish is not None:
                    on_finish(done, of, summary)

        return _run_sweep(
            sweep, folder, scheduler, workers, use_dask, finish, connect_timeout, device,
            threads_per_worker,
        )  # fmt: skip


def _run_sweep(
    sweep: Sweep,
    folder: Path,
    scheduler: str | None,
    workers: int | None,
    use_dask: bool,
    on_finish: Callable[[int, int, dict[str, Any] | None], None] | None,
    connect_timeout: float,
    device: str,
    threads: int,
) -> list[dict[str, Any]]:
    total = len(sweep.configs)
    summaries: dict[str, dict[str, Any]] = {}  # every finished cell, read from disk once
    for config in sweep.configs:
        summary = _finished(folder / "runs" / config.key())
        if summary is not None:
            summaries[config.key()] = summary
    pending = [c for c in sweep.configs if c.key() not in summaries]
    done = total - len(pending)
    changed = new_cells(sweep, folder)
    if changed:
        logger.info("the grid changed: %d new cells", changed)
    atomic_write_text(
        folder / "grid.json",
        json.dumps(
            {
                "source": sweep.path,
                "grid_keys": sweep.grid_keys,
                "cells": [c.key() for c in sweep.configs],
            },
            indent=1,
        ),
    )
    if on_finish is not None:
        on_finish(done, total, None)
    jobs = [(c.key(), asdict(c), str(folder / "runs" / c.key())) for c in pending]

    def record(key: str, summary: dict[str, Any]) -> None:
        nonlocal done
        summaries[key] = summary
        done += 1
        _write_results(sweep, folder, summaries)
        if on_finish is not None:
            on_finish(done, total, summary)

    if jobs and (scheduler is not None or use_dask):
        from rnngrad.lab.cluster import quiet_dask, run_on_dask  # dask only when used

        with quiet_dask():
            run_on_dask(
                jobs, scheduler, workers, connect_timeout, device, threads, folder, record,
                lambda: _write_results(sweep, folder, summaries), lambda: (done, total),
            )  # fmt: skip
    elif jobs:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import as_completed as completed
        from concurrent.futures.process import BrokenProcessPool

        context = multiprocessing.get_context("spawn")
        count = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(
            max_workers=count,
            mp_context=context,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            pool_futures = {
                pool.submit(run_cell, config, path, device, threads): key
                for key, config, path in jobs
            }
            try:
                for finished in completed(pool_futures):
                    try:
                        summary = finished.result()
                    except BrokenProcessPool:
                        _write_results(sweep, folder, summaries)
                        raise SweepInterrupted(
                            f"a worker died after {done} of {total} runs finished; they are kept "
                            "in the results, and rerunning the same command runs the rest"
                        ) from None
                    record(pool_futures[finished], summary)
            except BaseException:
                for waiting in pool_futures:
                    waiting.cancel()
                raise
    _write_results(sweep, folder, summaries)
    return [summaries[c.key()] for c in sweep.configs if c.key() in summaries]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sweep_summary(out: str | Path) -> list[dict[str, Any]]:
    """Per task and sequence length, each configuration: runs, solved runs, the median
    solve step, the median final loss and (data sets) the median final test accuracy.

    Raises:
        InvalidInputError: no ``results.parquet`` in ``out``.
    """
    from rnngrad.lab.records import read_table_rows

    path = Path(out) / "results.parquet"
    if not path.exists():
        raise InvalidInputError(f"{out}: no results.parquet (has the sweep run?)")
    rows = read_table_rows(
        path, required=("task", "seq_len", "cell", "init", "clip", "solved", "final_loss")
    )
    if not rows:
        raise InvalidInputError(f"{path}: holds no finished runs")
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["task"], row["seq_len"], *(row.get(k) for k in DESCRIBING))
        groups.setdefault(key, []).append(row)
    summary = []
    for key, members in sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0])):
        solved = [m for m in members if m["solved"]]
        steps = sorted(m["solved_at"] for m in solved if m.get("solved_at") is not None)
        # A diverged run's loss (NaN or inf in a results file) is no number to take a
        # median of: it counts as a run, not as a loss.
        losses = sorted(m["final_loss"] for m in members if _finite(m["final_loss"]))
        accuracies = sorted(
            m["final_accuracy"] for m in members if _finite(m.get("final_accuracy"))
        )
        summary.append(
            {
                "task": key[0],
                "seq_len": key[1],
                **dict(zip(DESCRIBING, key[2:], strict=True)),
                "runs": len(members),
                "solved": len(solved),
                "median_steps_to_solve": steps[len(steps) // 2] if steps else None,
                "median_final_loss": losses[len(losses) // 2] if losses else None,
                "median_final_accuracy": (accuracies[len(accuracies) // 2] if accuracies else None),
            }
        )
    return summary
