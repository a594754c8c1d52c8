"""The profile's memory estimate (what the budget check refuses on) against measured peaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs in a fresh process: big blocks are mapped and unmapped (a fixed mmap threshold, so
# that freed arrays leave the resident set), the high-water mark is reset before each
# profile, and the growth over the resident set before it is the profile's peak.
_SCRIPT = r"""
import json, torch
from torch import nn
from rnngrad import gradient_profile
from rnngrad.cells import describe_module
from rnngrad.profile.fused_forward import profile_memory_estimate

def resident(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return float(line.split()[1]) * 1024

torch.set_num_threads(1)
gradient_profile(nn.LSTM(3, 4, num_layers=2, bidirectional=True), torch.randn(5, 2, 3))
makers = {
    "rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU,
    "lstm_proj": lambda *a, **k: nn.LSTM(*a, proj_size=64, **k),
}
rows = []
for name, make in makers.items():
    for layers, bidirectional, loss in ((1, False, "last"), (2, True, "sum")):
        torch.manual_seed(0)
        module = make(64, 256, num_layers=layers, bidirectional=bidirectional)
        x = torch.randn(300, 16, 64)
        gradient_profile(module, x[:3], loss=loss)  # the kernels' own first-call buffers
        with open("/proc/self/clear_refs", "w") as reset:
            reset.write("5")
        before = resident("VmRSS")
        gradient_profile(module, x, loss=loss)
        peak = resident("VmHWM") - before
        estimate = profile_memory_estimate(describe_module(module), 300 * 16, 4)
        rows.append([name, layers, peak, estimate])
print(json.dumps(rows))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.access("/proc/self/clear_refs", os.W_OK),
    reason="peak memory is read from /proc (Linux)",
)
def test_the_memory_estimate_bounds_the_measured_peak(tmp_path: Path) -> None:
    """For every cell, one layer and two bidirectional ones: the estimate the budget check
    uses is above the measured peak, and within 3x of it (not so loose that feasible
    profiles are refused)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    for name, layers, peak, estimate in json.loads(done.stdout.strip().splitlines()[-1]):
        assert peak > 10 * 2**20, f"{name}: nothing measured, the test would prove nothing"
        assert peak <= estimate, f"{name}, {layers} layers: peak {peak:.3g} > {estimate:.3g}"
        assert estimate <= 3 * peak, f"{name}, {layers} layers: {estimate:.3g} >> {peak:.3g}"
