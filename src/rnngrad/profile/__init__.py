"""Per-time-step gradients of PyTorch models: the front door and its routes.

- :mod:`~rnngrad.profile.front`: :func:`gradient_profile` and
  :func:`gradient_profiles`, which pick the route for the model at hand;
  :mod:`~rnngrad.profile.calls`: :func:`profile_call`, every recurrent module a
  function of the user's calls;
- :mod:`~rnngrad.profile.result`: the result and its summaries;
- fused modules: :mod:`~rnngrad.profile.fused_forward` (the module's own kernel
  run layer by layer, recording every layer's outputs), then the backward
  recursion, :mod:`~rnngrad.profile.recursion` (a loop over time, on the CPU) or
  :mod:`~rnngrad.profile.fused_backward` (the kernel's own backward, on a GPU),
  both from the gates of :mod:`~rnngrad.profile.gates`, over the layers by
  :mod:`~rnngrad.profile.stack`; :mod:`~rnngrad.profile.forward_loops` keeps a
  GRU's or LSTM's gates step by step;
- other modules: :mod:`~rnngrad.profile.stepped` (modules called step by step,
  through probes), :mod:`~rnngrad.profile.cell` (a cell of one's own),
  :mod:`~rnngrad.profile.diagonal` (the modern diagonal recurrences, by their
  adjoint scan);
- :mod:`~rnngrad.profile.precision`: half precision and autocast.
"""

from rnngrad.profile.calls import profile_call
from rnngrad.profile.front import (
    LossSpec,
    ProfileRoute,
    cell_gradient_profile,
    gradient_profile,
    gradient_profiles,
    pack_inputs,
)
from rnngrad.profile.result import GradientProfile, LayerProfile
from rnngrad.profile.summary import summarise

__all__ = [
    "GradientProfile",
    "LayerProfile",
    "LossSpec",
    "ProfileRoute",
    "cell_gradient_profile",
    "gradient_profile",
    "gradient_profiles",
    "pack_inputs",
    "profile_call",
    "summarise",
]
