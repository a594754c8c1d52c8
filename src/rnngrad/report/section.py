"""One section of the report page, as data (its faces: the page, results.json, the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnngrad.show.figure import Figure

__all__ = ["Section"]


@dataclass
class Section:
    """One section of the page: a plain sentence, its verdict, figures and numbers."""

    key: str
    title: str
    sentence: str
    verdict: str | None
    figures: list[Figure] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    #: The derivation behind the section, for the page: HTML paragraphs with the
    #: mathematics between ``\\( \\)`` and ``\\[ \\]`` (rendered by KaTeX).
    explanation: str = ""
