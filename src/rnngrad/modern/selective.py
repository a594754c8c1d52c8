r"""Selective scans of other libraries and of users: one protocol, and mambapy's block.

A selective state space layer (Mamba; Gu & Dao 2023) keeps a state ``h_t`` of shape
``(ED, N)`` per token and updates it by a diagonal recurrence whose coefficients the
input chooses:

.. math:: h_t = a_t \odot h_{t-1} + b_t, \qquad a_t = \exp(\Delta_t A), \quad
          b_t = \Delta_t B_t x_t,

so ``dh_t/dh_{t-1} = diag(a_t)``, and the exact per-token gradient is the adjoint scan
``g_t = G_t + a_{t+1} g_{t+1}`` of the direct gradients ``G_t``
(:func:`rnngrad.modern.scan.diagonal_adjoint`), as for rnngrad's own diagonal layers.

rnngrad reaches the recursion through one method. **The protocol**: a module whose
class sets ``rnngrad_selective_scan = True`` and computes its states by calling
``self.scan(a, b)``, where ``a`` and ``b`` are ``(B, L, *state)`` (batch first) and
``scan`` returns ``h`` of the same shape with ``h_t = a_t * h_{t-1} + b_t`` from
``h_0 = 0``. During a profile rnngrad swaps ``scan`` for its own (the same numbers,
with a probe on every state); the module's own ``scan`` runs at every other time.

**mambapy** (the pure-PyTorch Mamba, ``pip install 'rnngrad[ssm]'``): its
``MambaBlock`` is read as it is, through ``selective_scan`` (and the sequential
``selective_scan_seq``), whose ``deltaA = exp(delta A)`` and ``deltaB x`` are ``a``
and ``b``. A block that runs ``mamba_ssm``'s fused CUDA kernel (``use_cuda=True``)
cannot be read that way and is refused.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from rnngrad.errors import UnsupportedModuleError

__all__ = [
    "all_scans_through",
    "is_mamba_block",
    "is_selective_scan",
    "scans_through",
    "selective_blocks",
]

Scan = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def is_mamba_block(module: nn.Module) -> bool:
    """mambapy's ``MambaBlock`` (recognised without importing mambapy)."""
    return any(
        cls.__name__ == "MambaBlock" and cls.__module__.startswith("mambapy")
        for cls in type(module).__mro__
    )


def is_selective_scan(module: nn.Module) -> bool:
    """A module of the protocol (``rnngrad_selective_scan = True``) or a mambapy block."""
    return bool(getattr(type(module), "rnngrad_selective_scan", False)) or is_mamba_block(module)


def selective_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The selective scans inside ``model`` (itself included), in registration order."""
    return [(name, module) for name, module in model.named_modules() if is_selective_scan(module)]


def _mamba_scan(self: Any, x: Any, delta: Any, A: Any, B: Any, C: Any, D: Any) -> torch.Tensor:
    """mambapy's ``selective_scan``, the recursion through ``self.scan``: the same
    ``deltaA``, ``deltaB x``, read-out ``h C`` and skip ``D x``."""
    delta_a = torch.exp(delta.unsqueeze(-1) * A)  # (B, L, ED, N)
    inputs = delta.unsqueeze(-1) * B.unsqueeze(2) * x.unsqueeze(-1)  # (B, L, ED, N)
    states: torch.Tensor = self.scan(delta_a, inputs)
    read = (states @ C.unsqueeze(-1)).squeeze(3)
    result: torch.Tensor = read + D * x
    return result


@contextmanager
def scans_through(module: nn.Module, scan: Scan) -> Iterator[None]:
    """Inside the block, ``module``'s state recursion runs through ``scan(a, b)``.

    The module's class is swapped for the block (a subclass that only replaces the
    recursion; ``isinstance`` still holds) and restored whatever happens.

    Raises:
        UnsupportedModuleError: a mambapy block set to use the fused CUDA kernel.
    """
    original = type(module)
    if is_mamba_block(module):
        if getattr(getattr(module, "config", None), "use_cuda", False):
            raise UnsupportedModuleError(
                f"{original.__name__} runs mamba_ssm's fused CUDA kernel (use_cuda=True), whose "
                "recursion rnngrad cannot read: build it with use_cuda=False, or give the "
                "layer a scan(a, b) method (the selective-scan protocol, rnngrad.modern.selective)"
            )
        body = {"scan": lambda self, a, b: scan(a, b), "selective_scan": _mamba_scan,
                "selective_scan_seq": _mamba_scan}  # fmt: skip
    else:
        body = {"scan": lambda self, a, b: scan(a, b)}
    module.__class__ = types.new_class(
        original.__name__, (original,), exec_body=lambda ns: ns.update(body)
    )
    try:
        yield
    finally:
        module.__class__ = original


@contextmanager
def all_scans_through(
    blocks: list[tuple[str, nn.Module]], scan_of: Callable[[str], Scan]
) -> Iterator[None]:
    """Inside the block, every named block's recursion runs through ``scan_of(name)``."""
    with ExitStack() as stack:
        for name, block in blocks:
            stack.enter_context(scans_through(block, scan_of(name)))
        yield
