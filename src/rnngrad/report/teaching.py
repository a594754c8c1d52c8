r"""The derivation the page teaches, section by section, with the reader's numbers put in.

Each function returns HTML paragraphs whose mathematics sits between ``\( \)`` and
``\[ \]`` for KaTeX. The order follows the textbook argument: the scalar chain rule
and its bound, the derivative of tanh and saturation, ``W = V D V^{-1}`` and why the
eigenvalues decide, where that criterion fails (non-normal ``W``), the per-step
gradient as a backward recursion, and what Lyapunov exponents add.
"""

from __future__ import annotations

import numpy as np

from rnngrad.show.i18n import t
from rnngrad.theory.scalar import ScalarChainRule

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


def _p(text: str) -> str:
    return f"<p>{text}</p>"


def scalar_explanation(result: ScalarChainRule) -> str:
    """The chain rule of ``h_t = tanh(a h_{t-1} + b x_t + c)``, ``y = d h_T + e``, with the
    example's own numbers substituted into every factor."""
    a, d, steps = result.a, result.d, result.steps
    derivatives = 1.0 - np.asarray(result.h, dtype=float) ** 2
    factors = [rf"({_number(a)} \times {_number(float(derivatives[t]))})" for t in range(1, steps)]
    if len(factors) > 6:
        factors = [*factors[:3], r"\cdots", *factors[-2:]]
    sign = float(np.asarray(result.sign_dy_dh)[0])
    gradient = sign * 10.0 ** float(np.asarray(result.log10_abs_dy_dh)[0])
    bound = 10.0 ** float(np.asarray(result.log10_bound)[0])
    return (
        _p(t(r"A one-unit recurrent network reads \(x_1, \dots, x_T\): \(h_t = \tanh(z_t)\) "
             r"with \(z_t = a\,h_{t-1} + b\,x_t + c\), and \(y = d\,h_T + e\). "
             r"Backpropagation through time multiplies one factor per step:"))
        + r"\[ \frac{\partial y}{\partial h_1} = d \prod_{t=2}^{T} "
        r"\frac{\partial h_t}{\partial h_{t-1}} = d \prod_{t=2}^{T} a\,\tanh'(z_t). \]"
        + _p(t(r"Because \(\tanh'(z) = 1 - \tanh^2(z) \le 1\), every factor is at most \(|a|\) "
               r"in size, so \(\left|\partial y/\partial h_1\right| \le |d|\,|a|^{T-1}\): the "
               r"gradient vanishes when \(|a| < 1\) and can explode when \(|a| > 1\).")
             + " "
             + t(r"Here \(T = {steps}\), \(a = {a}\), \(d = {d}\), and \(\tanh'(z_t) = 1 - "
                 r"h_t^2\) along the real trajectory:", steps=steps, a=f"{a:g}", d=f"{d:g}"))
        + rf"\[ \frac{{\partial y}}{{\partial h_1}} = {_number(d)} \times "
        + r" \times ".join(factors)
        + rf" = {_number(gradient)}, \qquad |d|\,|a|^{{T-1}} = {_number(bound)}. \]"
    )  # fmt: skip


def activation_explanation() -> str:
    return _p(t(
        r"The derivative of the activation sits in every factor: "
        r"\(\tanh'(z) = 1 - \tanh^2(z)\), which is 1 only at \(z = 0\) and falls below "
        r"\(0.1\) once \(|z| > 1.82\). A saturated unit (large \(|z|\)) passes almost "
        r"nothing back, whatever the weights: saturation makes gradients vanish even where "
        r"the recurrent matrix alone would not."
    ))  # fmt: skip


def spectrum_explanation(
    model: bool, selective: bool = False, mlstm: bool = False, rate: bool = False
) -> str:
    """From one unit to many: the Jacobian, the eigen-decomposition, and its limits; for a
    selective scan (or the mLSTM's memory), the eigenvalues that the input chooses token by
    token; for a rate network, the same argument through its leak."""
    if rate:
        return _rate_explanation()
    if mlstm:
        return _p(t(
            r"An mLSTM head (xLSTM) keeps a matrix memory "
            r"\(C_t = f_t\, C_{t-1} + i_t\, v_t k_t^\top\) and a normaliser "
            r"\(n_t = f_t\, n_{t-1} + i_t\, k_t\), with one forget gate "
            r"\(f_t = \sigma(\tilde f_t)\) per head that the input sets token by token: its "
            r"Jacobian \(\partial C_t/\partial C_{t-1} = f_t I\) is diagonal, so \(f_t\) is "
            r"the eigenvalue of every entry of the head's memory (the exponential gating's "
            r"stabiliser rescales the stored memory without changing what it carries). The "
            r"textbook's \(|\lambda| < 1\) becomes one number per head and token: a head keeps "
            r"a signal over \(T\) tokens when \(\prod_t f_t \ge e^{-2}\), and a token with a "
            r"small \(f_t\) clears its memory."
        ))  # fmt: skip
    if selective:
        return _p(t(
            r"A selective scan (Mamba) updates each mode of its state by "
            r"\(h_{t,j} = a_{t,j}\, h_{t-1,j} + b_{t,j}\) with \(a_{t,j} = \exp(\Delta_t A_j)\): "
            r"its Jacobian \(\partial h_t/\partial h_{t-1} = \operatorname{diag}(a_t)\) is "
            r"diagonal, so \(a_{t,j}\) are its eigenvalues, and the input \(\Delta_t\) chooses "
            r"them token by token. The textbook's \(|\lambda| < 1\) becomes a distribution: "
            r"a mode keeps a signal over \(T\) tokens when "
            r"\(\prod_t |a_{t,j}| \ge e^{-2}\), its memory lasts about "
            r"\(-1/\langle \ln|a_{t,j}| \rangle_t\) steps, and a token with small "
            r"\(|a_t|\) resets the memory."
        ))  # fmt: skip
    text = (
        _p(t(r"With many units, \(h_t = \tanh(W_{hh} h_{t-1} + W_{xh} x_t + b)\) and each "
             r"step contributes the Jacobian"))
        + r"\[ \frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}\!\left(1 - h_t^2\right)"
        r" W_{hh}, \qquad \frac{\partial h_T}{\partial h_k} = \prod_{t=k+1}^{T} "
        r"\operatorname{diag}\!\left(1 - h_t^2\right) W_{hh}. \]"
        + _p(t(r"Where the units are not saturated this is nearly \(W_{hh}^{T-k}\), and with "
               r"\(W_{hh} = V D V^{-1}\) the powers are \(W_{hh}^{k} = V D^{k} V^{-1}\): each "
               r"eigen-direction is scaled by \(\lambda_i^{k}\), so the spectral radius "
               r"\(\rho = \max_i |\lambda_i|\) decides, vanishing for \(\rho < 1\) and "
               r"exploding for \(\rho > 1\)."))
        + _p(t(r"The criterion can be wrong. The powers obey only "
               r"\(\|W^{k}\| \le \kappa(V)\,\rho^{k}\) with \(\kappa(V) = \|V\|\,\|V^{-1}\|\): "
               r"for a non-normal matrix (eigenvectors far from orthogonal) \(\kappa(V)\) is "
               r"large and \(\|W^{k}\|\) can grow by orders of magnitude before it decays, "
               r"although every \(|\lambda_i| < 1\). The singular values bound every step "
               r"instead: \(\sigma_{\max}(W_{hh})\,\gamma < 1\), with "
               r"\(\gamma = \sup|\tanh'| = 1\), is enough for vanishing (Pascanu et al. 2013)."))
    )  # fmt: skip
    if model:
        text += _p(t(
            r"For an LSTM or a GRU the fixed matrices are the gate blocks of \(W_{hh}\), and "
            r"no one of them is the recurrence: the gates' derivatives mix them into each "
            r"step's Jacobian. The headline is therefore the product of the real Jacobians "
            r"along a trajectory, through its largest singular value "
            r"\(\sigma_1\!\left(\partial h_T/\partial h_k\right)\)."
        ))  # fmt: skip
    return text


def _rate_explanation() -> str:
    """The textbook's argument for the rate network ``x_{t+1} = (1 - delta) x_t +
    delta (W phi(x_t) + U u_t + b)``: its step Jacobian, the criterion at rest, the
    singular-value bound, and what the leak keeps when the units saturate."""
    return (
        _p(t(r"A rate network follows the currents \(x_t\) of its units, \(x_{t+1} = "
             r"(1 - \delta)\, x_t + \delta\,(W \phi(x_t) + U u_t + b)\), the Euler map of "
             r"\(\tau\, dx/dt = -x + W \phi(x) + U u\) with \(\delta = \Delta t/\tau\) and "
             r"\(\phi = \tanh\) (\(\delta = 1\) is the tanh network). Each step contributes "
             r"the Jacobian"))
        + r"\[ \frac{\partial x_{t+1}}{\partial x_t} = (1 - \delta)\, I + \delta\, W "
        r"\operatorname{diag}\!\left(\phi'(x_t)\right), \qquad \frac{\partial x_T}{\partial "
        r"x_k} = \prod_{t=k}^{T-1} \frac{\partial x_{t+1}}{\partial x_t}. \]"
        + _p(t(r"At rest (\(\phi' = 1\)) each eigen-direction of \(W\) is scaled by "
               r"\(1 - \delta + \delta \lambda_i\) per step, so the textbook's "
               r"\(|\lambda| < 1\) becomes \(|1 - \delta + \delta \lambda_i| < 1\): the "
               r"eigenvalues of \(W\) must lie in the disc of radius \(1/\delta\) around "
               r"\(1 - 1/\delta\), which contains the unit disc and touches it at 1; as "
               r"\(\delta \to 0\) it becomes the continuous-time criterion "
               r"\(\operatorname{Re} \lambda_i < 1\). Since \(0 < \phi' \le 1\), every "
               r"step's Jacobian has norm at most \((1 - \delta) + \delta\, "
               r"\sigma_{\max}(W)\), so \(\sigma_{\max}(W) < 1\) is enough for vanishing."))
        + _p(t(r"Saturation pulls each factor towards the leak: where every unit saturates "
               r"(\(\phi' \to 0\)) the Jacobian is \((1 - \delta) I\), and the gradient "
               r"still travels back, shrinking by \(1 - \delta\) per step, whereas a saturated "
               r"tanh network passes nothing. The Lyapunov exponents below are per step of "
               r"the map; divided by \(\delta\) they are the flow's, per unit of "
               r"\(\tau\)."))
    )  # fmt: skip


def profile_explanation() -> str:
    return (
        _p(t("A real loss reaches the states at many steps. The total gradient of each state "
             "obeys the backward recursion"))
        + r"\[ \frac{\partial L}{\partial h_t} = \left.\frac{\partial L}{\partial h_t}"
        r"\right|_{\text{direct}} + \left(\frac{\partial h_{t+1}}{\partial h_t}\right)^{\!\top}"
        r" \frac{\partial L}{\partial h_{t+1}}, \]"
        + _p(t(r"which rnngrad evaluates exactly for every step. Its norm against \(t\), on a "
               r"logarithmic axis, is a straight line when the factors are alike: the slope is "
               r"the decay rate per step, and the horizon is how far back the gradient stays "
               r"within a few powers of ten of its largest value."))
        + _p(t(r"The direct term enters at every step the loss reads. The verdict, the decay "
               r"rate and the horizon read the gradient carried back from the last such step "
               r"alone, \(\tilde g_s = (\partial h_{s+1}/\partial h_s)^{\top} \tilde g_{s+1}\): "
               r"the product of Jacobians the scalar example follows, over the whole state "
               r"(\(h\) and \(c\) for an LSTM). The solid lines are the total gradient, which "
               r"shows where the loss enters; the dashed ones are the gradient carried back."))
    )  # fmt: skip


def lyapunov_explanation(rate: bool = False) -> str:
    """The exponents as growth rates of the product of Jacobians; for a rate network, the
    mean field that depends on its gain and ``delta``."""
    text = (
        _p(t("Over long spans the product of Jacobians has a growth rate of its own, whatever "
             "the inputs: the Lyapunov exponents"))
        + r"\[ \lambda_i = \lim_{T \to \infty} \frac{1}{T} \ln \sigma_i\!\left("
        r"\frac{\partial h_T}{\partial h_0}\right), \]"
    )  # fmt: skip
    if rate:
        return text + _p(t(
            r"measured along the network's real trajectory (QR steps, Benettin et al. 1980). "
            r"\(\lambda_1 < 0\): gradients over long spans shrink like "
            r"\(e^{\lambda_1 (T-k)}\); \(\lambda_1 > 0\): nearby trajectories separate and "
            r"gradients can explode. For a large random rate network, dynamic mean-field "
            r"theory predicts \(\lambda_1\) from its gain \(g\) and \(\delta\): the leak "
            r"slows the chaos, and for \(g \le 1\) it is \(\ln(1 - \delta + \delta g)\)."
        ))  # fmt: skip
    return text + _p(t(
        r"measured along the network's real trajectory (QR steps, Benettin et al. 1980). "
        r"\(\lambda_1 < 0\): gradients over long spans shrink like "
        r"\(e^{\lambda_1 (T-k)}\); \(\lambda_1 > 0\): nearby trajectories separate and "
        r"gradients can explode. Mean-field theory predicts \(\lambda_1\) of a large "
        r"random network from its gain alone."
    ))  # fmt: skip


def lab_explanation() -> str:
    return _p(t(
        r"Each remedy attacks one factor of the product: clipping caps "
        r"\(\|\partial L/\partial \theta\|\) when it explodes; orthogonal or identity "
        r"initialisation starts with \(|\lambda_i| = 1\); the LSTM's and GRU's additive cell "
        r"path gives factors near 1 when their gates are open."
    ))  # fmt: skip
