"""The growth rule, the horizon, and log-space formatting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnngrad import format_signed_log10, gradient_horizon, growth_labels, growth_verdict, to_float


@pytest.mark.parametrize(
    ("change", "steps", "label"),
    [
        (-3.0, 100, "vanishing"),  # 0.933 per step
        (3.0, 100, "exploding"),
        (0.4, 100, "neither"),  # 1.0093 per step: inside 1%
        (-0.4, 100, "neither"),
        (100 * math.log10(1.02), 100, "exploding"),
        (-math.inf, 10, "vanishing"),
        (5.0, 0, "neither"),
    ],
)
def test_growth_rule(change: float, steps: int, label: str) -> None:
    verdict = growth_verdict(change, steps)
    assert verdict.label == label
    assert growth_labels(change, steps).item() == label
    assert verdict.sentence


def test_growth_rule_tolerance_is_a_parameter() -> None:
    assert growth_verdict(-0.4, 100, tolerance=0.005).label == "vanishing"
    assert "1.005" in growth_verdict(-0.4, 100, tolerance=0.005).rule


def test_growth_labels_broadcast() -> None:
    labels = growth_labels(np.array([[-5.0, 5.0], [0.0, -5.0]]), np.array([10, 0]))
    assert labels.tolist() == [["vanishing", "neither"], ["neither", "neither"]]


def test_horizon() -> None:
    # norms 1e-5 .. 1 over 6 steps; peak at the end; 1e-3 below it first met 4 steps back
    logs = np.array([-5.0, -4.0, -3.5, -2.0, -1.0, 0.0])
    assert gradient_horizon(logs) == 3
    assert gradient_horizon(np.zeros(10)) is None
    assert gradient_horizon(np.array([-np.inf, -np.inf])) == 0


@pytest.mark.parametrize(
    ("sign", "log10", "text"),
    [
        (1.0, 0.0, "1.000e+00"),
        (-1.0, -30103.2, "-6.310e-30104"),
        (1.0, 2.999999999, "1.000e+03"),
        (1.0, -math.inf, "0"),
        (0.0, 1.0, "0"),
    ],
)
def test_format_signed_log10(sign: float, log10: float, text: str) -> None:
    assert format_signed_log10(sign, log10) == text


def test_to_float_marks_unrepresentable_values() -> None:
    values = to_float(np.array([1.0, -1.0, 1.0, 1.0]), np.array([2.0, -400.0, 400.0, -np.inf]))
    assert values[0] == 100.0
    assert math.isnan(values[1]) and math.isnan(values[2])
    assert values[3] == 0.0
