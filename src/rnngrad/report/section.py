"""One section of the report page, as data (its faces: the page, results.json, the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rnngrad.show.figure import Figure

if TYPE_CHECKING:
    from rnngrad.report.models import ReportModel

__all__ = ["Section", "legend_label"]


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
    #: A table beside the figures: its header row first, then one row per entry (text).
    table: list[list[str]] = field(default_factory=list)
    #: The label of the selector of the figures that show one matrix at a time (``None``:
    #: "W_hh block:").
    selector: str | None = None


def legend_label(model: ReportModel, part: str, models: list[ReportModel]) -> str:
    """A legend entry: the part alone for the reader's one model (its name is in the page's
    header), prefixed with the model's name when the page compares several."""
    return part if len(models) == 1 else f"{model.name}, {part}"
