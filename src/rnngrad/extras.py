"""Optional dependencies, imported only when a feature needs them.

Each extra of ``pyproject.toml`` brings the packages of one feature; a missing
one is reported in one line that names the install command that fixes it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rnngrad.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str, *, what: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming
    ``pip install 'rnngrad[extra]'``.

    Args:
        module: the module to import (``"wandb"``, ``"lightning.pytorch"``).
        extra: the extra of rnngrad that installs it.
        what: the package's name in the message (the top-level module when omitted).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        name = what or module.split(".")[0]
        raise MissingExtraError(
            f"{name} is not installed: pip install 'rnngrad[{extra}]'"
        ) from None
