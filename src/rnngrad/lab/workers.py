"""What runs in a sweep's workers: one cell's training, and a process pool's worker that
ends with the sweep's process."""

from __future__ import annotations

import os
import sys
from typing import Any

from rnngrad.errors import RnngradError
from rnngrad.lab.config import TrainConfig

__all__ = ["SweepInterrupted", "die_with_parent", "run_cell"]


class SweepInterrupted(RnngradError):
    """A worker died; the finished runs are kept and a rerun completes the sweep."""


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker as soon as the sweep's process is gone, however
    it went (``kill -9`` included), so that a rerun never races orphans."""
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:  # where prctl is missing: notice the new parent within 0.5 s
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="rnngrad-parent-watch", daemon=True).start()


def run_cell(
    config: dict[str, Any], folder: str, device: str = "cpu", threads: int = 1
) -> dict[str, Any]:
    """Run one cell in a worker with ``threads`` torch threads (1 by default: the workers
    share the cores, and oversubscribed threads have made a 26 s run take 236 s on a
    loaded 2-core machine); with ``device="auto"`` each worker takes its own machine's GPU
    when it has one."""
    import torch

    from rnngrad.lab.train import train

    torch.set_num_threads(threads)
    return train(TrainConfig(**config), folder, device=device, progress=False).summary()
