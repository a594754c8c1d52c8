"""The monitor's records in a Weights & Biases run (``pip install 'rnngrad[wandb]'``).

``GradientMonitor(model, writer=wandb.init(...))`` uses :func:`wandb_writer` by
itself; it lives with the monitor's other writers in :mod:`rnngrad.monitor.writers`
and is named here for those who look for it among the framework adapters.
"""

from rnngrad.monitor.writers import wandb_writer

__all__ = ["wandb_writer"]
