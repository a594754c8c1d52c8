"""Adapters to training frameworks, each imported only when used.

- :mod:`rnngrad.integrations.lightning`: :class:`GradientMonitorCallback`, the
  monitor as a PyTorch Lightning callback (``pip install 'rnngrad[lightning]'``).
- :mod:`rnngrad.integrations.wandb`: the monitor's records written to a Weights &
  Biases run (``pip install 'rnngrad[wandb]'``); ``GradientMonitor(writer=run)``
  uses it by itself.
"""
