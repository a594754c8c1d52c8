r"""The derivation the page teaches, section by section, with the reader's numbers put in.

Each function returns HTML paragraphs whose mathematics sits between ``\( \)`` and
``\[ \]`` for KaTeX. The order follows the textbook argument: the scalar chain rule
and its bound, the derivative of tanh and saturation, ``W = V D V^{-1}`` and why the
eigenvalues decide, where that criterion fails (non-normal ``W``), the per-step
gradient as a backward recursion, and what Lyapunov exponents add.
"""

from __future__ import annotations

import numpy as np

from rnngrad.scalar import ScalarChainRule

__all__ = [
    "activation_explanation",
    "lab_explanation",
    "lyapunov_explanation",
    "profile_explanation",
    "scalar_explanation",
    "spectrum_explanation",
]


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) >= 1e-4 else f"{value:.3e}"


def scalar_explanation(result: ScalarChainRule) -> str:
    """The chain rule of ``h_t = tanh(a h_{t-1} + b x_t + c)``, ``y = d h_T + e``, with the
    example's own numbers substituted into every factor."""
    a, d, steps = result.a, result.d, result.steps
    derivatives = 1.0 - np.asarray(result.h, dtype=float) ** 2
    factors = [rf"({_number(a)} \times {_number(float(derivatives[t]))})" for t in range(1, steps)]
    if len(factors) > 6:
        factors = [*factors[:3], r"\cdots", *factors[-2:]]
    gradient = float(
        np.asarray(result.sign_dy_dh)[0] * 10.0 ** np.asarray(result.log10_abs_dy_dh)[0]
    )
    bound = 10.0 ** float(np.asarray(result.log10_bound)[0])
    return (
        r"<p>A one-unit recurrent network reads \(x_1, \dots, x_T\): "
        r"\(h_t = \tanh(z_t)\) with \(z_t = a\,h_{t-1} + b\,x_t + c\), and "
        r"\(y = d\,h_T + e\). Backpropagation through time multiplies one factor per step:</p>"
        r"\[ \frac{\partial y}{\partial h_1} = d \prod_{t=2}^{T} "
        r"\frac{\partial h_t}{\partial h_{t-1}} = d \prod_{t=2}^{T} a\,\tanh'(z_t). \]"
        r"<p>Because \(\tanh'(z) = 1 - \tanh^2(z) \le 1\), every factor is at most \(|a|\) "
        r"in size, so \(\left|\partial y/\partial h_1\right| \le |d|\,|a|^{T-1}\): the "
        r"gradient vanishes when \(|a| < 1\) and can explode when \(|a| > 1\). "
        rf"Here \(T = {steps}\), \(a = {a:g}\), \(d = {d:g}\), and "
        r"\(\tanh'(z_t) = 1 - h_t^2\) along the real trajectory:</p>"
        rf"\[ \frac{{\partial y}}{{\partial h_1}} = {_number(d)} \times "
        + r" \times ".join(factors)
        + rf" = {_number(gradient)}, \qquad |d|\,|a|^{{T-1}} = {_number(bound)}. \]"
    )


def activation_explanation() -> str:
    return (
        r"<p>The derivative of the activation sits in every factor: "
        r"\(\tanh'(z) = 1 - \tanh^2(z)\), which is 1 only at \(z = 0\) and falls "
        r"below \(0.1\) once \(|z| > 1.82\). A saturated unit (large \(|z|\)) passes almost "
        r"nothing back, whatever the weights: saturation makes gradients vanish even where "
        r"the recurrent matrix alone would not.</p>"
    )


def spectrum_explanation(model: bool) -> str:
    """From one unit to many: the Jacobian, the eigen-decomposition, and its limits."""
    text = (
        r"<p>With many units, \(h_t = \tanh(W_{hh} h_{t-1} + W_{xh} x_t + b)\) and each step "
        r"contributes the Jacobian</p>"
        r"\[ \frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}\!\left(1 - h_t^2\right)"
        r" W_{hh}, \qquad \frac{\partial h_T}{\partial h_k} = \prod_{t=k+1}^{T} "
        r"\operatorname{diag}\!\left(1 - h_t^2\right) W_{hh}. \]"
        r"<p>Where the units are not saturated this is nearly \(W_{hh}^{T-k}\), and with "
        r"\(W_{hh} = V D V^{-1}\) the powers are \(W_{hh}^{k} = V D^{k} V^{-1}\): each "
        r"eigen-direction is scaled by \(\lambda_i^{k}\), so the spectral radius "
        r"\(\rho = \max_i |\lambda_i|\) decides, vanishing for \(\rho < 1\) and exploding "
        r"for \(\rho > 1\).</p>"
        r"<p>The criterion can be wrong. The powers obey only "
        r"\(\|W^{k}\| \le \kappa(V)\,\rho^{k}\) with \(\kappa(V) = \|V\|\,\|V^{-1}\|\): for a "
        r"non-normal matrix (eigenvectors far from orthogonal) \(\kappa(V)\) is large and "
        r"\(\|W^{k}\|\) can grow by orders of magnitude before it decays, although every "
        r"\(|\lambda_i| < 1\). The singular values bound every step instead: "
        r"\(\sigma_{\max}(W_{hh})\,\gamma < 1\), with \(\gamma = \sup|\tanh'| = 1\), is "
        r"enough for vanishing (Pascanu et al. 2013).</p>"
    )
    if model:
        text += (
            r"<p>For an LSTM or a GRU the fixed matrices are the gate blocks of "
            r"\(W_{hh}\), and no one of them is the recurrence: the gates' derivatives mix "
            r"them into each step's Jacobian. The headline is therefore the product of the "
            r"real Jacobians along a trajectory, through its largest singular value "
            r"\(\sigma_1\!\left(\partial h_T/\partial h_k\right)\).</p>"
        )
    return text


def profile_explanation() -> str:
    return (
        r"<p>A real loss reaches the states at many steps. The total gradient of each state "
        r"obeys the backward recursion</p>"
        r"\[ \frac{\partial L}{\partial h_t} = \left.\frac{\partial L}{\partial h_t}"
        r"\right|_{\text{direct}} + \left(\frac{\partial h_{t+1}}{\partial h_t}\right)^{\!\top}"
        r" \frac{\partial L}{\partial h_{t+1}}, \]"
        r"<p>which rnngrad evaluates exactly for every step. Its norm against \(t\), on a "
        r"logarithmic axis, is a straight line when the factors are alike: the slope is the "
        r"decay rate per step, and the horizon is how far back the gradient stays within "
        r"a few powers of ten of its largest value.</p>"
    )


def lyapunov_explanation() -> str:
    return (
        r"<p>Over long spans the product of Jacobians has a growth rate of its own, "
        r"whatever the inputs: the Lyapunov exponents</p>"
        r"\[ \lambda_i = \lim_{T \to \infty} \frac{1}{T} \ln \sigma_i\!\left("
        r"\frac{\partial h_T}{\partial h_0}\right), \]"
        r"<p>measured along the network's real trajectory (QR steps, Benettin et al. 1980). "
        r"\(\lambda_1 < 0\): gradients over long spans shrink like "
        r"\(e^{\lambda_1 (T-k)}\); \(\lambda_1 > 0\): nearby trajectories separate and "
        r"gradients can explode. Mean-field theory predicts \(\lambda_1\) of a large random "
        r"network from its gain alone.</p>"
    )


def lab_explanation() -> str:
    return (
        r"<p>Each remedy attacks one factor of the product: clipping caps "
        r"\(\|\partial L/\partial \theta\|\) when it explodes; orthogonal or identity "
        r"initialisation starts with \(|\lambda_i| = 1\); the LSTM's and GRU's additive "
        r"cell path gives factors near 1 when their gates are open.</p>"
    )
