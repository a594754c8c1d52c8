"""Which route profiles a model whose recurrences are not PyTorch's fused modules.

rnngrad reads three families of recurrence that ``nn.RNN``'s kernels do not cover,
each through its own exact backward recursion:

* xLSTM's mLSTM and sLSTM cells (:mod:`rnngrad.profile.mlstm`, :mod:`rnngrad.profile.slstm`);
* rate networks, :class:`rnngrad.rate.RateRNN` (:mod:`rnngrad.profile.rate`);
* selective scans: mambapy's blocks and layers that follow the selective protocol
  (:mod:`rnngrad.profile.selective`).

A model that also holds an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (or one of rnngrad's
diagonal layers) is profiled through that module as before; these routes take a model
whose only recurrences are of one of these kinds (or the one named by ``module``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from rnngrad.cells import find_recurrent_modules
from rnngrad.errors import InvalidInputError
from rnngrad.profile.result import GradientProfile, LossSpec

__all__ = ["has_library_recurrence", "library_profile", "selective_blocks_to_profile"]


def has_library_recurrence(model: nn.Module, module: str | None = None) -> bool:
    """``model`` (or its submodule ``module``) is, or holds, one of the recurrences these
    routes read: a selective scan, an xLSTM cell or a rate network."""
    from rnngrad.modern.selective import is_selective_scan, selective_blocks
    from rnngrad.profile.mlstm import mlstm_cells
    from rnngrad.profile.rate import rate_modules
    from rnngrad.profile.slstm import slstm_cells

    named = dict(model.named_modules()).get(module) if module is not None else None
    scope = named if named is not None else model
    return (
        (named is not None and is_selective_scan(named))
        or bool(selective_blocks(scope))
        or bool(mlstm_cells(scope) or slstm_cells(scope))
        or bool(rate_modules(scope))
    )


def library_profile(
    model: nn.Module,
    arguments: tuple[Any, ...],
    *,
    module: str | None,
    hx: Any,
    lengths: Any,
    loss: LossSpec,
    keep_gradients: bool,
    tolerance: float,
) -> GradientProfile | None:
    """The profile of ``model(*arguments)`` through the first of the routes above that
    applies, or ``None`` when none does (the model's recurrence is a fused module's)."""
    from rnngrad.profile.mlstm import mlstm_cells
    from rnngrad.profile.rate import rate_modules
    from rnngrad.profile.slstm import slstm_cells

    scope = model if module is None else dict(model.named_modules()).get(module)
    if scope is None:
        return None  # the fused route names the missing module
    fused = bool(find_recurrent_modules(scope))
    xlstm = [] if fused else [*mlstm_cells(scope), *slstm_cells(scope)]
    rates = [] if fused or xlstm else rate_modules(scope)
    selective = [] if xlstm or rates else selective_blocks_to_profile(model, module)
    if not (xlstm or rates or selective):
        return None
    if hx is not None or lengths is not None:
        raise InvalidInputError("hx= and lengths= apply to nn.RNN, nn.LSTM and nn.GRU")
    if xlstm:
        from rnngrad.profile.mlstm import profile_xlstm_cells

        return profile_xlstm_cells(
            model, arguments, loss=loss, keep_gradients=keep_gradients, tolerance=tolerance,
            module=module,
        )  # fmt: skip
    if rates:
        from rnngrad.profile.rate import rate_profile

        named = [(".".join(filter(None, (module, n))), m) for n, m in rates]
        return rate_profile(
            model, arguments, named, loss=loss, keep_gradients=keep_gradients,
            tolerance=tolerance,
        )  # fmt: skip
    from rnngrad.profile.selective import selective_profile

    return selective_profile(
        model, arguments, selective, loss=loss, keep_gradients=keep_gradients,
        tolerance=tolerance,
    )  # fmt: skip


def selective_blocks_to_profile(
    model: nn.Module, module: str | None
) -> list[tuple[str, nn.Module]]:
    """The selective scans to profile (mambapy's blocks, the protocol's layers): the one
    named, or all of them in a model that has no other recurrent module."""
    from rnngrad.modern.selective import is_selective_scan, selective_blocks

    if module is not None:
        found = dict(model.named_modules()).get(module)
        if found is None:
            return []
        if is_selective_scan(found):
            return [(module, found)]
        inside = [(f"{module}.{name}", block) for name, block in selective_blocks(found)]
        return inside if inside and not find_recurrent_modules(found) else []
    blocks = selective_blocks(model)
    return blocks if blocks and not find_recurrent_modules(model) else []
