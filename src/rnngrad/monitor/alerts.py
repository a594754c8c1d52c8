"""How the monitor and its callbacks speak: a warning at the user's own line, and the
one line that says a failing monitor switched itself off while training goes on."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

from rnngrad.monitor.records import MonitorDisabledWarning

__all__ = ["caller_stacklevel", "switched_off"]

logger = logging.getLogger("rnngrad.monitor")
# A library's logger stays silent until the program configures logging: without a
# handler of its own, Python's last-resort handler would print every record to stderr
# beside the warning itself.
logger.addHandler(logging.NullHandler())

# rnngrad's own folder: the monitor lives one folder below it.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Frames of these packages are passed over when a warning looks for the user's line.
_FRAMEWORKS = (
    "rnngrad", "lightning", "pytorch_lightning", "lightning_fabric", "torch", "contextlib",
)  # fmt: skip


def switched_off(error: Exception, who: str, when: str = "") -> str:
    """Say once, at the user's line, that ``who`` switched itself off (``when``) after
    ``error``, training going on; returns the failure in one line."""
    name = type(error).__name__
    reason = f"{name}: {error}".splitlines()[0] if str(error) else name
    after = f" {when}" if when else ""
    message = f"rnngrad's {who} switched itself off{after} (training goes on): {reason}"
    logger.warning(message)
    warnings.warn(message, MonitorDisabledWarning, stacklevel=caller_stacklevel())
    return reason


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the user's line: the first frame
    outside rnngrad, Lightning and torch (the line that called the monitor, or the one in
    the user's training code that called the framework that called our callback)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _passed_over(frame):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _passed_over(frame: Any) -> bool:
    if os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        return True
    module = str(frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in _FRAMEWORKS
