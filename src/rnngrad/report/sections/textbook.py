"""The textbook's sections: the scalar chain rule with its explorers' inputs, and the
activation's derivative beside the saturation of the models' units."""

from __future__ import annotations

import numpy as np

from rnngrad.jsonout import scalar_json
from rnngrad.report.section import Section
from rnngrad.report.teaching import (
    scalar_explanation,
)
from rnngrad.show.figure import Figure, Trace
from rnngrad.show.i18n import growth_sentence, shown, t
from rnngrad.theory.activations import get_activation
from rnngrad.theory.scalar import TEXTBOOK_EXAMPLE, scalar_chain_rule, scalar_figure, scalar_inputs

__all__ = [
    "EXPLORER_STEPS",
    "activation_section",
    "explorer_inputs",
    "explorer_matrix",
    "matrix_explorer_inputs",
    "scalar_section",
]


#: The explorer's longest sequence; its inputs are the textbook's, then N(0, 1) draws.
EXPLORER_STEPS = 100


def explorer_inputs() -> list[float]:
    """``x_1..x_100`` of the explorer: the textbook's three, then seeded N(0, 1) values."""
    textbook = [float(v) for v in TEXTBOOK_EXAMPLE["x"]]  # type: ignore[union-attr]
    rest = scalar_inputs(EXPLORER_STEPS - len(textbook), 0)
    return textbook + [float(v) for v in rest]


def matrix_explorer_inputs() -> list[list[float]]:
    """``u_1..u_100`` of the matrix explorer's tanh network, ``(100, 2)``: seeded
    ``0.5 N(0, 1)`` draws."""
    draws = np.random.default_rng(1).standard_normal((EXPLORER_STEPS, 2)) * 0.5
    return [[float(v) for v in row] for row in draws]


def explorer_matrix(rotation: float, scale: float, shear: float) -> np.ndarray:
    """The matrix explorer's ``W = V (scale R(rotation)) V^{-1}`` with ``V = [[1, shear],
    [0, 1]]``: its eigenvalues are ``scale * exp(+-i rotation)`` whatever the shear, which
    only tilts the eigenvectors towards each other (a non-normal ``W`` for ``shear != 0``)."""
    cos, sin = np.cos(rotation), np.sin(rotation)
    result: np.ndarray = scale * np.array(
        [[cos + shear * sin, -sin * (1 + shear**2)], [sin, cos - shear * sin]]
    )
    return result


def scalar_section() -> Section:
    result = scalar_chain_rule()
    figure = scalar_figure(result, t("dy/dh_k against its bound, textbook example"))
    figure.on_page = False  # the page's explorer draws this curve live, from these numbers
    factors = ", ".join(f"{v:.4f}" for v in result.factors)
    sentence = (
        growth_sentence(result.verdict)
        + " "
        + t("With a = {a}, the chain factors dh_(k+1)/dh_k are {factors}, each below "
            "|a| = {abs_a}, so dy/dh_1 = {gradient} against the bound {bound}.",
            a=f"{result.a:g}", factors=factors, abs_a=f"{abs(result.a):g}",
            gradient=f"{result.dy_dh[0]:.4f}", bound=f"{result.bound[0]:.4f}")
    )  # fmt: skip
    numbers = {"textbook": scalar_json(result), "explorer_inputs": explorer_inputs()}
    return Section(
        "scalar", t("The scalar chain rule"), sentence, result.verdict.label, [figure], numbers,
        explanation=scalar_explanation(result),
    )  # fmt: skip


def activation_section(saturation: dict[str, float]) -> Section:
    """tanh and its derivative, beside the saturated share of each layer's units (layers
    without tanh units, such as a selective scan's linear state, have none to show)."""
    saturation = {name: share for name, share in saturation.items() if np.isfinite(share)}
    tanh = get_activation("tanh")
    z = np.linspace(-4, 4, 161)
    figure = Figure(
        "tanh_and_derivative", t("tanh and its derivative"), "z", t("value"),
        [Trace("tanh(z)", list(z), list(tanh.function(z))),
         Trace("tanh'(z) = 1 - tanh(z)^2", list(z), list(tanh.derivative(z)))],
    )  # fmt: skip
    if saturation:
        worst = max(saturation, key=lambda k: saturation[k])
        detail = "; ".join(f"{shown(name)}: {share:.1%}" for name, share in saturation.items())
        sentence = t(
            "tanh' is at most 1 (at z = 0) and falls below 0.1 once |z| > 1.82; the most "
            "saturated is {worst}, where {share} of the derivatives are below 10% of their "
            "maximum ({detail}).", worst=shown(worst), share=f"{saturation[worst]:.1%}",
            detail=detail,
        )  # fmt: skip
    else:
        sentence = t("tanh' is at most 1 (at z = 0) and falls below 0.1 once |z| > 1.82.")
    return Section("activations", t("tanh and saturation"), sentence, None, [figure],
                   {"gamma": tanh.gamma, "saturation": saturation})  # fmt: skip
