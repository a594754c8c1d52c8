"""A sweep on a Dask cluster: a scheduler's workers or a ``LocalCluster`` of this
machine, the shared output folder checked before any run, a lost scheduler said in one
line (the same command resumes), and Dask's own log lines held back meanwhile."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rnngrad.errors import InvalidInputError
from rnngrad.lab.workers import SweepInterrupted, run_cell

__all__ = ["quiet_dask", "run_on_dask"]

# What a future raises when the Dask scheduler goes away mid-sweep (a cancelled future
# whose reason names the lost connection, or the closed connection itself).
_LOST_SCHEDULER: tuple[type[BaseException], ...] = (
    concurrent.futures.CancelledError, asyncio.CancelledError, OSError,
)  # fmt: skip


# Dask sets MALLOC_TRIM_THRESHOLD_=65536 in new worker processes so that idle workers
# hand memory back; glibc then trims after every large free, and torch, which frees
# and allocates its activations every training step, faults the pages in again: a
# sweep's runs took 1.8x as long in such workers (31.5 s against 17.7 s for the same
# eight runs). None unsets it (Dask's own convention), leaving glibc's adaptive
# thresholds as in any other process. A Dask nanny also writes its pre-spawn
# variables into the environment of the process that starts it, so one started
# earlier in this process with Dask's defaults leaves the variable behind for every
# later worker: it is taken out of this process's environment while workers start.
_WORKER_ENVIRONMENT = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


_WORKER_LOGGING = "DASK_LOGGING__DISTRIBUTED"


@contextlib.contextmanager
def without_trim_threshold() -> Iterator[None]:
    import dask

    left = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # The local workers' own log lines (a cancelled task when the sweep is interrupted)
    # held back: they inherit this environment when they start.
    logging_before = os.environ.get(_WORKER_LOGGING)
    os.environ[_WORKER_LOGGING] = "error"
    try:
        with dask.config.set(_WORKER_ENVIRONMENT):
            yield
    finally:
        if left is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = left
        if logging_before is None:
            os.environ.pop(_WORKER_LOGGING, None)
        else:
            os.environ[_WORKER_LOGGING] = logging_before


@contextlib.contextmanager
def quiet_dask() -> Iterator[None]:
    """Dask's and tornado's own log lines held back while the sweep talks to a cluster:
    a lost scheduler or an interrupt is said once, by the sweep (errors stay typed)."""
    with contextlib.suppress(ImportError):  # its loggers exist, with its levels, once imported
        import distributed.client  # noqa: F401
    names = ["distributed", "tornado"] + [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith(("distributed.", "tornado."))
    ]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_on_dask(
    jobs: list[tuple[str, dict[str, Any], str]],
    scheduler: str | None,
    workers: int | None,
    connect_timeout: float,
    device: str,
    threads: int,
    folder: Path,
    record: Callable[[str, dict[str, Any]], None],
    save: Callable[[], object],
    progress: Callable[[], tuple[int, int]],
) -> None:
    """Run ``jobs`` on a Dask scheduler, or on a ``LocalCluster`` of ``workers``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InvalidInputError("Dask is not installed: pip install 'rnngrad[cluster]'") from None
    cluster = None
    if scheduler is None:
        with without_trim_threshold():
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=None,
            )  # fmt: skip
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as error:
            raise InvalidInputError(
                f"the Dask scheduler at {scheduler} did not answer within "
                f"{connect_timeout:g} s ({type(error).__name__}); is it running? "
                "(--connect-timeout sets the wait)"
            ) from None
    else:
        client = Client(cluster)
    try:
        if scheduler is not None:
            _check_workers_share(client, folder)
        futures = {
            client.submit(run_cell, config, path, device, threads, pure=False): key
            for key, config, path in jobs
        }
        try:
            with _interrupt_between_waits() as interrupted:
                for future in _completed(futures, interrupted):
                    record(futures[future], future.result())
        except _LOST_SCHEDULER as error:
            if not _scheduler_lost(client, error):
                raise
            save()
            done, total = progress()
            raise SweepInterrupted(
                f"the Dask scheduler was lost ({done} of {total} runs had reported back; "
                "every run that finished is kept): the same command resumes with a "
                "running scheduler"
            ) from None
    finally:
        client.close(timeout=_CLOSE_SECONDS)
        if cluster is not None:
            cluster.close(timeout=_CLOSE_SECONDS)


# How long the client and a local cluster get to close; how often the wait for the
# next finished run looks up for a Ctrl-C.
_CLOSE_SECONDS = 30
_POLL_SECONDS = 0.5


@contextlib.contextmanager
def _interrupt_between_waits() -> Iterator[list[bool]]:
    """Ctrl-C during a Dask sweep, taken at a safe point: the handler only notes it, and
    the wait for the next finished run raises ``KeyboardInterrupt`` between its polls,
    never inside Dask's own machinery (a KeyboardInterrupt there has left the client's
    event loop unable to close). Off the main thread, Python's own handling stays."""
    import signal
    import threading

    interrupted = [False]
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def note(signum: int, frame: Any) -> None:
        interrupted[0] = True

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _completed(futures: dict[Any, str], interrupted: list[bool]) -> Iterator[Any]:
    """The futures as they finish, polling so that a noted Ctrl-C is raised here."""
    from dask.distributed import wait

    pending = set(futures)
    while pending:
        if interrupted[0]:
            raise KeyboardInterrupt
        try:
            finished = wait(pending, timeout=_POLL_SECONDS, return_when="FIRST_COMPLETED")
        except TimeoutError:
            continue
        for future in finished.done:
            pending.discard(future)
            yield future


def _sees_probe(path: str, token: str) -> bool:
    """On a worker: whether it reads the client's probe file at ``path``."""
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def _check_workers_share(client: Any, folder: Path) -> None:
    """Every connected worker sees the sweep's folder (a probe file the client writes):
    else its runs would land in a folder the client never reads."""
    import uuid

    token = uuid.uuid4().hex
    probe = folder / f".rnngrad-probe-{token}"
    probe.write_text(token)
    try:
        seen = client.run(_sees_probe, str(probe), token)
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(str(worker) for worker, sees in seen.items() if not sees)
    if blind:
        raise InvalidInputError(
            f"the Dask worker(s) {', '.join(blind)} do not see the sweep's folder {folder}: "
            "the output folder must be shared, at the same path, with every worker"
        )


def _scheduler_lost(client: Any, error: BaseException) -> bool:
    """A cancelled future or a closed connection because the scheduler went away (not a
    run that failed)."""
    status = str(getattr(client, "status", ""))
    return "scheduler" in str(error).lower() or status not in ("running", "")
