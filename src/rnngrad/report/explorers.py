"""The page's two explorers: the HTML of their headings, instructions and sliders, and
their words in the page's language for their scripts (``assets/explorer.js``, the scalar
chain rule; ``assets/matrix_explorer.js``, a 2 x 2 ``W_hh``), which recompute every
number in the browser with rnngrad's own recursions."""

from __future__ import annotations

import html
import json

from rnngrad.show.i18n import t

__all__ = ["explorer_text", "matrix_explorer_html", "scalar_explorer_html"]


def explorer_text() -> str:
    """The explorers' words in the page's language, as a JSON object for their scripts."""
    text = {
        "gradient": t("log10 |dy/dh_k|"), "bound": t("log10 bound"),
        "explorer_title": t("explorer: log10 |dy/dh_k| and its bound"),
        "eigenvalues": t("eigenvalues"), "singular_values": t("singular values"),
        "largest_power": t("largest ||W^j||"), "unit_circle": t("unit circle"),
        "eigenvalues_of_w": t("eigenvalues of W"), "linear": t("linear ||dh_T/dh_k||"),
        "tanh": t("tanh ||dh_T/dh_k||"),
        "norms_title": t("log10 of the norms against the number of steps"),
        "steps_axis": t("j = T - k (steps)"),
        "verdict_vanishing": t(
            "Vanishing: over {steps} steps the gradient changes by a factor of {change}, "
            "about {factor} per step."),
        "verdict_exploding": t(
            "Exploding: over {steps} steps the gradient changes by a factor of {change}, about "
            "{factor} per step."),
        "verdict_neither": t(
            "Neither vanishing nor exploding: over {steps} steps the gradient changes by a "
            "factor of {change}, about {factor} per step."),
        "one_step": t("Only one step: there is no recurrence to backpropagate through."),
        "zero": t("The gradient is exactly zero at the first step: it vanished completely."),
        "overflow": t(
            "Exploding: the gradient is no longer finite (it overflowed to infinity or "
            "became NaN) within these steps."),
    }  # fmt: skip
    return json.dumps(text, ensure_ascii=False).replace("</", "<\\/")


def matrix_explorer_html() -> str:
    sliders = [("theta", 0, 3.14, 0.01, 0.3), ("s", 0.5, 1.5, 0.01, 0.95),
               ("m", 0, 10, 0.1, 4.0), ("T", 2, 100, 1, 60)]  # fmt: skip
    names = {"theta": t("rotation θ"), "s": t("scale s"), "m": t("shear m"), "T": "T"}
    parts = [
        f'<label>{names[key]} = <span id="mx-{key}-value">{value}</span>'
        f'<input type="range" id="mx-{key}" min="{low}" max="{high}" step="{step}" '
        f'value="{value}"></label>'
        for key, low, high, step, value in sliders
    ]
    return (
        '<div class="explorer"><h3>'
        + t("Explorer: a 2 x 2 matrix W = V (s R(θ)) V<sup>-1</sup>, V = [[1, m], [0, 1]]")
        + "</h3><p>"
        + t(
            "Its eigenvalues are s e<sup>±iθ</sup> whatever the shear m; m tilts the "
            "eigenvectors towards each other. With s below 1 the eigenvalues say the gradient "
            "vanishes; raise m and watch ||W<sup>j</sup>|| grow for a while first. The right "
            "plot counts j = T - k steps back: ||W<sup>j</sup>|| and the norm of dh<sub>T"
            "</sub>/dh<sub>k</sub> for the linear and the tanh network driven by stored "
            "inputs."
        )
        + " "
        + t(
            "At θ = 0 (or π) the matrix is W = sI (or -sI) whatever m: a multiple of the "
            "identity commutes with V, so the shear changes nothing; turn θ first."
        )
        + "</p>"
        '<div class="controls matrix">' + "".join(parts) + '</div><p id="mx-numbers"></p>'
        '<div class="pair"><div class="figure" id="mx-eigen"></div>'
        '<div class="figure" id="mx-growth"></div></div></div>'
    )


def _example() -> str:
    """The article's example in words: ``a = 0.5, b = 1, ..., x = 1, 0.5, -0.3``."""
    from rnngrad.theory.scalar import TEXTBOOK_EXAMPLE

    example = TEXTBOOK_EXAMPLE
    inputs = tuple(example["x"])  # type: ignore[arg-type]
    parts = [f"{key} = {example[key]:g}" for key in "abcd"]
    return ", ".join([*parts, f"T = {len(inputs)}", "x = " + ", ".join(f"{v:g}" for v in inputs)])


def scalar_explorer_html() -> str:
    """The scalar explorer: a heading, how to use it, the sliders, then what the script
    recomputes from them (the verdict, the substituted chain rule, the curve and a table
    of every step)."""
    sliders = [("a", -2, 2, 0.01, 0.5), ("b", -2, 2, 0.01, 1.0), ("c", -2, 2, 0.01, 0.0),
               ("d", -2, 2, 0.01, 1.0), ("T", 2, 100, 1, 3)]  # fmt: skip
    parts = []
    for key, low, high, step, value in sliders:
        parts.append(
            f'<label>{key} = <span id="ex-{key}-value">{value}</span>'
            f'<input type="range" id="ex-{key}" min="{low}" max="{high}" step="{step}" '
            f'value="{value}">'
            "</label>"
        )
    head = ["t", "x_t", "z_t", "tanh'(z_t)", t("factor dh_t/dh_(t-1) = a tanh'(z_t)"),
            "|dy/dh_t|", t("bound |d| |a|^(T-t)")]  # fmt: skip
    header = "".join(f"<th>{html.escape(cell)}</th>" for cell in head)
    return (
        '<div class="explorer"><h3>'
        + html.escape(t("Explorer: the chain rule on numbers of your choosing"))
        + "</h3><p>"
        + html.escape(t(
            "Move the sliders: the verdict, the chain rule with your numbers, the curve and "
            "the table of every step are recomputed at once. It starts on the article's "
            "example ({example}); the inputs beyond those three, up to T = 100, are random "
            "N(0, 1) draws (seeded, the same on every page).", example=_example()))
        + "</p><p>"
        + html.escape(t(
            "Saturation: with a = 1.5 the bound grows like 1.5^(T-1), yet the gradient "
            "vanishes, because the inputs push z_t far from 0, where tanh'(z_t) is small "
            "(the units saturate) and every factor a tanh'(z_t) falls below 1. Set b = 0 "
            "(no input): h stays at 0, tanh' = 1, and the same a = 1.5 explodes."))
        + "</p>"
        + '<div class="controls">' + "".join(parts) + "</div>"
        + '<p id="ex-verdict" class="verdict"></p><div id="ex-formula"></div>'
        + '<div class="figure" id="explorer"></div>'
        + f'<div class="scroll"><table class="numbers" id="ex-table"><thead><tr>{header}'
        + "</tr></thead><tbody></tbody></table></div></div>"
    )  # fmt: skip
