# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Vanishing and exploding gradients, step by step, on real numbers
#
# The derivation every course gives, checked number by number with rnngrad:
#
# 1. the three-step scalar RNN `h_t = tanh(a h_{t-1} + b x_t + c)`, `y = d h_3 + e`,
#    and its chain rule `dy/dh_1 = (dh_2/dh_1)(dh_3/dh_2) d`;
# 2. why each factor is at most `|a|`: `tanh' = 1 - tanh^2 <= 1`, and saturation;
# 3. the matrix case `W_hh = V D V^-1`: eigenvalues, and where they mislead;
# 4. a real PyTorch model: its per-time-step gradient `dL/dh_t` during training.
#
# Every result shows itself as a short summary; `.to_frame()` gives the numbers as a
# table and `.plot()` the figure.

# %%
import numpy as np
import torch
from torch import nn

import rnngrad

# %% [markdown]
# ## 1. The scalar chain rule
# The textbook example: `a = 0.5`, three steps.

# %%
chain = rnngrad.scalar_chain_rule()
chain

# %%
chain.to_frame()[["k", "x", "h", "factor", "dy_dh", "bound"]]

# %% [markdown]
# Each factor is `a * tanh'(z_k) = a (1 - h_k^2)`. Recomputed by hand from the forward
# pass, it is the same number, and `dy/dh_1` is their product times `d`:

# %%
by_hand = chain.a * (1 - chain.h[1:] ** 2)
assert np.allclose(by_hand, chain.factors, rtol=1e-12)
assert np.isclose(chain.d * np.prod(by_hand), chain.dy_dh[0], rtol=1e-12)
print("factors", by_hand, "each below |a| =", abs(chain.a))

# %%
chain.plot()

# %% [markdown]
# ## 2. tanh' and saturation
# `tanh'(z) = 1 - tanh(z)^2` is 1 at `z = 0` and falls fast: a saturated unit passes
# almost no gradient back.

# %%
tanh = rnngrad.get_activation("tanh")
z = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
print(dict(zip(z, tanh.derivative(z).round(5), strict=True)), "gamma =", tanh.gamma)

# %% [markdown]
# ## 3. The recurrent matrix
# With `h_t ~ W_hh^(t-1) h_1`, the eigenvalues of `W_hh` decide the long run: spectral
# radius below 1 vanishes, above 1 can explode. A non-normal matrix is the exception:
# its powers can grow by orders of magnitude before they decay.

# %%
spectrum = rnngrad.recurrent_spectrum(rnngrad.example_matrix("nonnormal"))
spectrum

# %%
spectrum.plot("growth")

# %% [markdown]
# ## 4. A real model during training
# A small LSTM learns to add two marked numbers from a sequence of 50 (the adding
# problem). The monitor profiles `dL/dh_t` every 50 steps, with the training loss.

# %%
torch.manual_seed(0)


class Adder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(2, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)


def batch(size: int = 32, steps: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.rand(size, steps)
    markers = torch.zeros(size, steps)
    rows = torch.arange(size)
    markers[rows, torch.randint(0, steps // 2, (size,))] = 1
    markers[rows, torch.randint(steps // 2, steps, (size,))] = 1
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)


model = Adder()
optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
monitor = rnngrad.GradientMonitor(model, every=50, loss=nn.functional.mse_loss)
for _ in range(200):
    x, y = batch()
    loss = nn.functional.mse_loss(model(x), y)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    monitor.step(x, y)
monitor

# %% [markdown]
# The trained model's profile on a fresh batch, with the loss the model trains on:

# %%
x, y = batch()
profile = rnngrad.gradient_profile(model, x, loss=lambda out: nn.functional.mse_loss(out, y))
profile

# %%
profile.to_frame().head()

# %%
profile.plot()
