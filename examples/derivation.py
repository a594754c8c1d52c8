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
# table, `.plot()` the interactive figure and `.image()` the same figure as a picture
# (which stays visible where the notebook is read without running it).

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

# %%
chain.image()

# %% [markdown]
# ## 2. tanh' and saturation
# `tanh'(z) = 1 - tanh(z)^2` is 1 at `z = 0` and falls fast: a saturated unit passes
# almost no gradient back.

# %%
tanh = rnngrad.get_activation("tanh")
z = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
for value, slope in zip(z, tanh.derivative(z), strict=True):
    print(f"tanh'({value:g}) = {slope:.5f}")
print("gamma = sup |tanh'| =", tanh.gamma)

# %% [markdown]
# Saturation is why `|a| > 1` does not always explode. With `a = 1.5` and random
# inputs the unit saturates and every factor `a tanh'(z_t)` falls below 1; with no
# input (`b = 0`) the state stays at 0, where `tanh' = 1`, and the same `a` explodes.

# %%
x = rnngrad.scalar_inputs(30, 0)
for b in (1.0, 0.0):
    run = rnngrad.scalar_chain_rule(x, a=1.5, b=b)
    print(f"b = {b:g}: {run.verdict.label}, about {run.verdict.factor_per_step:.3f} per step")

# %% [markdown]
# ## 3. The recurrent matrix
# With many units the Jacobian of a step is `diag(1 - h_t^2) W_hh`; where the units are
# not saturated the product over `T - k` steps is nearly `W_hh^(T-k)`. Writing
# `W_hh = V D V^-1` gives `W_hh^k = V D^k V^-1`: each eigen-direction is scaled by
# `lambda_i^k`, so `|lambda_i|` against 1 decides. On numbers:

# %%
W = np.array([[0.6, 0.5], [0.0, 0.7]])
eigenvalues, V = np.linalg.eig(W)
assert np.allclose(V @ np.diag(eigenvalues) @ np.linalg.inv(V), W)
assert np.allclose(np.linalg.matrix_power(W, 10), V @ np.diag(eigenvalues**10) @ np.linalg.inv(V))
print("eigenvalues", eigenvalues, "-> |lambda| below 1:", np.abs(eigenvalues) < 1)
print("||W^k||:", [f"{np.linalg.norm(np.linalg.matrix_power(W, k), 2):.3f}" for k in (1, 5, 20)])

# %% [markdown]
# A non-normal matrix is the exception: `||W^k|| <= kappa(V) rho^k` only, and with
# eigenvectors far from orthogonal (`kappa(V)` large) its powers grow by orders of
# magnitude before they decay, although every `|lambda_i| < 1`.

# %%
spectrum = rnngrad.recurrent_spectrum(rnngrad.example_matrix("nonnormal"))
spectrum

# %%
spectrum.plot("growth")

# %%
spectrum.image("growth")

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

# %%
profile.image()

# %% [markdown]
# What the verdict says. It reads the gradient carried back from the last step, the
# product of the step Jacobians the scalar example follows, over the LSTM's whole state
# `(h, c)`. The cell state's path `c_t = f_t c_(t-1) + ...` multiplies the gradient by
# the forget gate `f_t` at each step, with no `tanh'` and no `W_hh` in between: that is
# the path that carries most of it here (`carried by c`), and it still shrinks, because
# this LSTM started with forget gates near `sigmoid(0) = 0.5` and 200 steps have not
# opened them.

# %%
layer = profile.layers[0]
first = layer.position_of(1) - 1
print(f"verdict {layer.verdict.label}: {layer.verdict.sentence}")
print(
    f"decay {layer.decay_rate:.3f} nats per step (a factor e^-r = "
    f"{np.exp(-layer.decay_rate):.3f} per step back), horizon {layer.horizon}"
)
print(
    f"carried by {layer.carried_by}: at t = 1, |dL/dc| = {layer.mean_carried_c_norm[0]:.3e}, "
    f"|dL/dh| = {layer.mean_carried_h_norm[0]:.3e}"
)

# %% [markdown]
# The remedy is in the same factor: a forget-gate bias that opens the gates from the
# start (here 3, so `f_t` starts near `sigmoid(3) = 0.95`; the chrono initialisation of
# Tallec and Ollivier 2018 spreads it over the time scales of the task). Before any
# training, on the same batch, the cell path then carries the gradient across the
# whole sequence:

# %%
opened = Adder()
with torch.no_grad():
    size = opened.rnn.hidden_size
    opened.rnn.bias_hh_l0[size : 2 * size] = 3.0  # PyTorch's gate order: i, f, g, o
before = rnngrad.gradient_profile(
    opened, x, loss=lambda out: nn.functional.mse_loss(out, y)
).layers[0]
print(
    f"forget-gate bias 3: {before.verdict.label}, decay {before.decay_rate:.3f} nats per step, "
    f"horizon {before.horizon or 'beyond T'}, carried by {before.carried_by}"
)
