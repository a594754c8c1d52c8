"""How results show themselves where people work: consoles and notebooks.

Every result class mixes in :class:`Displayable` and says three things about
itself, as data: a :class:`Summary` (what it is, its verdict, its key numbers),
its tidy columns, and its figure (a :class:`~rnngrad.show.figure.Figure`, built
beside the result by the same function the page uses). From those the mixin gives

- ``repr(result)``: one line, what it is and its verdict;
- ``result._repr_html_()``: the summary table a notebook shows (verdict sentence
  first, then the key numbers);
- ``result.to_table()``: a tidy ``pyarrow.Table`` (one row per step, layer or
  index; non-finite values are nulls, never numbers);
- ``result.to_frame()``: the same as a ``pandas.DataFrame``
  (``pip install 'rnngrad[pandas]'``);
- ``result.plot()``: a Plotly ``Figure``, the page's figure for this result;
- ``result.image()``: the same figure drawn as a PNG (Matplotlib), which notebooks
  keep where interactive figures do not show (read without a kernel, on GitHub).

Nothing here is imported by the numerical core at start-up: pyarrow, pandas and
Plotly load on the first call that needs them.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnngrad.show.figure import Figure

__all__ = ["Displayable", "Summary", "number"]


@dataclass(frozen=True)
class Summary:
    """What a result says about itself.

    Attributes:
        what: a few words on what it is (``"gradient profile of LSTM, T = 100"``).
        verdict: its verdict label (``"vanishing"``), or ``None`` where it has none.
        sentence: the verdict in a sentence, first thing a reader sees.
        numbers: ``(name, value as text)`` pairs, the key numbers in order.
    """

    what: str
    verdict: str | None
    sentence: str
    numbers: tuple[tuple[str, str], ...]


def number(value: float | int | None, digits: int = 4) -> str:
    """A value as text for a summary: ``"-"`` for none, words for non-finite values."""
    if value is None:
        return "-"
    if isinstance(value, (bool, int)) and not isinstance(value, float):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "+infinity" if value > 0 else "-infinity"
    return f"{value:.{digits}g}"


def _column(values: Any) -> list[Any]:
    """A column as a list of Python values, with NaN and infinities as nulls."""
    from rnngrad.logspace import finite_or_none

    out: list[Any] = []
    for value in list(values):
        item = value.item() if hasattr(value, "item") else value  # numpy scalars
        out.append(finite_or_none(item) if isinstance(item, float) else item)
    return out


class Displayable:
    """The notebook and console face of a result (see the module's docstring)."""

    __slots__ = ()

    def _summary(self) -> Summary:
        raise NotImplementedError

    def _columns(self) -> dict[str, Any]:
        raise NotImplementedError

    def _figure(self, which: str | None = None) -> Figure:
        raise NotImplementedError

    def __repr__(self) -> str:
        summary = self._summary()
        verdict = f": {summary.verdict}" if summary.verdict else ""
        return f"<{type(self).__name__} {summary.what}{verdict}>"

    def _repr_html_(self) -> str:
        summary = self._summary()
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for name, value in summary.numbers
        )
        verdict = f"<b>{html.escape(summary.verdict)}</b>: " if summary.verdict else ""
        return (
            f"<div class='rnngrad-summary'><p><code>{html.escape(type(self).__name__)}</code> "
            f"{html.escape(summary.what)}</p><p>{verdict}{html.escape(summary.sentence)}</p>"
            f"<table>{rows}</table></div>"
        )

    def to_table(self) -> Any:
        """A tidy ``pyarrow.Table`` of the result (non-finite values as nulls)."""
        import pyarrow as pa

        return pa.table({name: _column(v) for name, v in self._columns().items()})

    def to_frame(self) -> Any:
        """The tidy table as a ``pandas.DataFrame`` (``pip install 'rnngrad[pandas]'``)."""
        from rnngrad.extras import require

        require("pandas", "pandas")
        return self.to_table().to_pandas()

    def plot(self, which: str | None = None) -> Any:
        """The result's figure as a Plotly ``Figure`` (the report's own figure)."""
        import plotly.graph_objects as go

        from rnngrad.show.figure import plotly_spec

        spec = plotly_spec(self._figure(which))
        return go.Figure(data=spec["data"], layout=spec["layout"])

    def image(self, which: str | None = None) -> Any:
        """The result's figure drawn as a PNG (a :class:`~rnngrad.show.draw.StaticImage`
        that a notebook displays and keeps in its saved outputs)."""
        from rnngrad.show.draw import static_image

        return static_image(self._figure(which))
