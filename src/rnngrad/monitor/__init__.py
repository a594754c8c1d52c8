"""The training-loop monitor (:mod:`~rnngrad.monitor.monitor`) and the writers it
records to (:mod:`~rnngrad.monitor.writers`: TensorBoard, Weights & Biases, the heat
map)."""

from rnngrad.monitor.monitor import (
    GradientMonitor,
    GradientWarning,
    MonitorDisabledWarning,
    MonitorEvent,
    MonitorRecord,
    ScalarWriter,
)

__all__ = [
    "GradientMonitor",
    "GradientWarning",
    "MonitorDisabledWarning",
    "MonitorEvent",
    "MonitorRecord",
    "ScalarWriter",
]
