"""The page's languages: English, the language of the code, and Korean, the language of the
article the derivation comes from.

Every message the page shows is written in English in the code and passed through
:func:`t`, with its numbers as named fields (``t("{name}: rho = {rho}", name=...,
rho=...)``); one table per language, ``locale/<lang>.json``, maps each English
message to its translation (the gettext model, in a form Python reads without a
compiler and whose escaping keeps the TeX of the explanations intact). Its header holds
the catalog's glossary: the term each field word takes (``"exploding": "폭주"``, the
article's word) and the spellings to avoid; the test suite holds every translation to it. The test
suite checks that every message the code passes to :func:`t` has a Korean
counterpart with the same fields. Numbers are formatted before they reach
:func:`t`, so they are identical in every language.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from importlib import resources
from typing import Any

from rnngrad.errors import InvalidInputError
from rnngrad.logspace import format_signed_log10
from rnngrad.verdict import GrowthVerdict

__all__ = [
    "LANGUAGES",
    "catalog",
    "fields",
    "growth_sentence",
    "language",
    "shown",
    "t",
    "verdict_word",
]

#: The page's languages: English and Korean.
LANGUAGES = ("en", "ko")

_current: ContextVar[str] = ContextVar("rnngrad_report_language", default="en")


@lru_cache(maxsize=len(LANGUAGES))
def catalog(lang: str) -> dict[str, str]:
    """The table of ``lang``: English message to its translation (empty for English)."""
    if lang not in LANGUAGES:
        raise InvalidInputError(f"unknown language {lang!r}; expected one of: en, ko")
    if lang == "en":
        return {}
    text = resources.files("rnngrad.show").joinpath(f"locale/{lang}.json").read_text("utf-8")
    messages: dict[str, str] = json.loads(text)["messages"]
    return messages


@contextmanager
def language(lang: str) -> Iterator[None]:
    """Build the page in ``lang`` within this block."""
    catalog(lang)  # an unknown language is refused before any work
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def current_language() -> str:
    """The language the page is being built in."""
    return _current.get()


def fields(message: str) -> set[str]:
    """The named fields of a message (``{rho}``)."""
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def t(message: str, /, **values: Any) -> str:
    """``message`` in the current language, its fields filled with ``values``."""
    translated = catalog(_current.get()).get(message, message)
    return translated.format(**values) if values else translated


# Composite names on the page (legend entries, keys of a sentence), translated piece by
# piece; the keys of results.json stay English.
_NAME_PIECES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\blayer (\d+) reverse\b"), lambda m: t("layer {n} reverse", n=m.group(1))),
    (re.compile(r"\blayer (\d+)\b"), lambda m: t("layer {n}", n=m.group(1))),
    (re.compile(r", gate (\w+)"), lambda m: t(", gate {gate}", gate=m.group(1))),
    (re.compile(r"\ball layers\b"), lambda m: t("all layers")),
    (re.compile(r"\bthe recurrence\b"), lambda m: t("the recurrence")),
    (re.compile(r"^random tanh network \(N = (\d+), g = ([\d.]+)\)$"),
     lambda m: t("random tanh network (N = {size}, g = {gain})", size=m.group(1),
                 gain=m.group(2))),
    (re.compile(r"^random rate network \(N = (\d+), g = ([\d.]+), delta = ([\d.]+)\)$"),
     lambda m: t("random rate network (N = {size}, g = {gain}, delta = {delta})",
                 size=m.group(1), gain=m.group(2), delta=m.group(3))),
    (re.compile(r"^\(1 - delta\) I \+ delta W, at rest$"),
     lambda m: t("(1 - delta) I + delta W, at rest")),
    (re.compile(r"^contracting \(random, rho ([\d.]+)\)$"),
     lambda m: t("contracting (random, rho {rho})", rho=m.group(1))),
    (re.compile(r"^expanding \(random, rho ([\d.]+)\)$"),
     lambda m: t("expanding (random, rho {rho})", rho=m.group(1))),
    (re.compile(r"^non-normal \(rho ([\d.]+)\)$"),
     lambda m: t("non-normal (rho {rho})", rho=m.group(1))),
    (re.compile(r"^lambda \(real form\)$"), lambda m: t("lambda (real form)")),
]  # fmt: skip


def shown(name: str) -> str:
    """A name as the page shows it in the current language (``layer 0 reverse, gate f``)."""
    if _current.get() == "en":
        return name
    for pattern, translate in _NAME_PIECES:
        name = pattern.sub(translate, name)
    return name


def growth_sentence(verdict: GrowthVerdict) -> str:
    """:attr:`rnngrad.verdict.GrowthVerdict.sentence` in the current language."""
    if verdict.steps == 0:
        return t("Only one step: there is no recurrence to backpropagate through.")
    if verdict.log10_change == -math.inf:
        return t("The gradient is exactly zero at the first step: it vanished completely.")
    if verdict.log10_change == math.inf:
        return t(
            "Exploding: the gradient is no longer finite (it overflowed to infinity or "
            "became NaN) within these steps."
        )
    values = {
        "steps": verdict.steps,
        "change": format_signed_log10(1.0, verdict.log10_change),
        "factor": f"{verdict.factor_per_step:.4g}",
    }
    if verdict.label == "neither":
        return t(
            "Neither vanishing nor exploding: over {steps} steps the gradient changes by a "
            "factor of {change}, about {factor} per step.", **values,
        )  # fmt: skip
    if verdict.label == "vanishing":
        return t(
            "Vanishing: over {steps} steps the gradient changes by a factor of {change}, "
            "about {factor} per step.", **values,
        )  # fmt: skip
    return t(
        "Exploding: over {steps} steps the gradient changes by a factor of {change}, about "
        "{factor} per step.", **values,
    )  # fmt: skip


def verdict_word(label: str, lang: str | None = None) -> str:
    """A verdict's label (``vanishing``, ``chaotic``...) in ``lang`` (by default the
    current language)."""
    if lang is not None:
        with language(lang):
            return verdict_word(label)
    words = {
        "vanishing": t("vanishing"), "exploding": t("exploding"), "neither": t("neither"),
        "mixed": t("mixed"), "chaotic": t("chaotic"), "contracting": t("contracting"),
        "solved": t("solved"), "unsolved": t("unsolved"),
    }  # fmt: skip
    return words.get(label, label)
