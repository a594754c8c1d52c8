r"""Pascanu et al.'s (2013) regulariser that keeps the backpropagated gradient's norm.

.. math::

    \Omega = \sum_k \Omega_k = \sum_k \left(
        \frac{\big\| \tfrac{\partial E}{\partial h_{k+1}}\,
                 \tfrac{\partial h_{k+1}}{\partial h_k} \big\|}
             {\big\| \tfrac{\partial E}{\partial h_{k+1}} \big\|} - 1 \right)^2,

with ``dE/dh_{k+1}`` (the total gradient at step ``k + 1``) held constant, as
in the paper, and ``dh_{k+1}/dh_k = diag(phi'(z_{k+1})) W_hh`` for the plain
``h_t = phi(W_ih x_t + W_hh h_{t-1} + b)`` cells. The constant gradients come
from :func:`rnngrad.gradient_profile`; the factors ``phi'`` and ``W_hh`` carry
the autograd graph, so ``lambda * Omega`` added to the loss trains towards
norm-preserving steps. Averaged over the batch; steps where the gradient is 0
are left out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rnngrad.errors import InvalidInputError

__all__ = ["gradient_norm_regularizer"]


def gradient_norm_regularizer(
    rnn: nn.RNN,
    states: torch.Tensor,
    inputs: torch.Tensor,
    loss_of_states: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``Omega`` for a one-layer ``nn.RNN`` along ``states``.

    Args:
        rnn: the module (tanh or relu, one layer, unidirectional, time-major).
        states: ``(T, B, H)``, its outputs ``h_1..h_T`` with their autograd graph.
        inputs: ``(T, B, D)``, what produced ``states``.
        loss_of_states: maps the module's output to the loss ``E``.

    Raises:
        InvalidInputError: another kind of module.
    """
    from rnngrad.profile.front import gradient_profile

    if not isinstance(rnn, nn.RNN) or rnn.num_layers != 1 or rnn.bidirectional or rnn.batch_first:
        raise InvalidInputError(
            "Pascanu's regulariser is defined here for a one-layer, unidirectional, "
            "time-major nn.RNN (the rnn and relu cells)"
        )
    profile = gradient_profile(
        rnn, inputs, loss=lambda output: loss_of_states(output[0]), keep_gradients=True
    )
    grads = profile.layers[0].grad
    assert grads is not None
    following = grads.transpose(0, 1)[1:].detach()  # dE/dh_{k+1}, (T-1, B, H), held constant
    h_next = states[1:]
    derivative = (
        1 - h_next * h_next if rnn.nonlinearity == "tanh" else (h_next > 0).to(h_next.dtype)
    )
    weight = rnn.get_parameter("weight_hh_l0")
    pulled = (following * derivative) @ weight  # row vectors g^T diag(phi') W_hh
    norms = following.norm(dim=-1)
    reached = norms > 0
    ratio = pulled.norm(dim=-1)[reached] / norms[reached]
    batch = states.shape[1]
    penalty: torch.Tensor = ((ratio - 1.0) ** 2).sum() / batch
    return penalty
