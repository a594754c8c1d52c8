"""Progress bars from Python: drawn where someone sees them, never in a pipe or a log."""

from __future__ import annotations

import pytest
from torch import nn

import rnngrad
from rnngrad.progress import progress_callback


def test_off_and_callable() -> None:
    with progress_callback(False, "x", 10) as report:
        assert report is None
    with progress_callback(None, "x", 10) as report:
        assert report is None
    seen: list[tuple[int, int]] = []
    with progress_callback(lambda done, total: seen.append((done, total)), "x", 10) as report:
        assert report is not None
        report(3, 10)
    assert seen == [(3, 10)]


def test_no_bar_where_nobody_sees_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Captured output (a pipe, a log file, CI) gets no bar and no text."""
    with progress_callback(True, "x", 10) as report:
        assert report is None
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_a_transient_bar_and_nesting_is_safe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a terminal a bar runs; inside another live display no second bar starts."""
    from rich.console import Console

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    with progress_callback(True, "outer", 10) as outer:
        assert outer is not None
        outer(5, 10)
        with progress_callback(True, "inner", 10) as inner:
            # rich allows one live display per console; each bar has its own console,
            # so the inner one either draws or stands aside, but never raises
            if inner is not None:
                inner(1, 10)


def test_lyapunov_reports_its_steps_to_a_callable() -> None:
    seen: list[tuple[int, int]] = []
    rnngrad.lyapunov_spectrum(
        nn.RNN(2, 4), steps=150, k=2, batch=1, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (0, 150) and seen[-1] == (150, 150)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
