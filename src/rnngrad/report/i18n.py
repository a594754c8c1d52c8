"""The page's languages: English, the language of the code, and Korean, the language of the
article the derivation comes from.

Every message the page shows is written in English in the code and passed through
:func:`t`, with its numbers as named fields (``t("{name}: rho = {rho}", name=...,
rho=...)``); one table per language, ``locale/<lang>.json``, maps each English
message to its translation (the gettext model, in a form Python reads without a
compiler and whose escaping keeps the TeX of the explanations intact). The test
suite checks that every message the code passes to :func:`t` has a Korean
counterpart with the same fields. Numbers are formatted before they reach
:func:`t`, so they are identical in every language.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from importlib import resources
from typing import Any

from rnngrad.errors import InvalidInputError

__all__ = ["LANGUAGES", "catalog", "fields", "language", "t"]

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
    text = resources.files("rnngrad.report").joinpath(f"locale/{lang}.json").read_text("utf-8")
    messages: dict[str, str] = json.loads(text)
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


def fields(message: str) -> set[str]:
    """The named fields of a message (``{rho}``)."""
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def t(message: str, /, **values: Any) -> str:
    """``message`` in the current language, its fields filled with ``values``."""
    translated = catalog(_current.get()).get(message, message)
    return translated.format(**values) if values else translated
