"""Figures as plain data, and the Plotly specs of the page.

A :class:`Figure` holds traces of numbers; :func:`plotly_spec` turns it into the
JSON that ``Plotly.newPlot`` takes, and :func:`rnngrad.show.draw.save_static`
draws the same traces with Matplotlib for papers and slides. Non-finite values
become gaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "Trace", "clean", "plotly_spec", "wrap_title"]


@dataclass
class Trace:
    """One line or set of markers."""

    name: str
    x: Sequence[Any]  # numbers, or category names for bars
    y: Sequence[float | None]
    mode: str = "lines"  # "lines", "markers" or "lines+markers"
    dash: bool = False
    fixed: bool = False  # shown whatever the page's selector picks (a unit circle)
    kind: str = "scatter"  # "scatter" or "bar"
    #: A band (over seeds, say) is two traces: its lower ``"edge"`` and then its upper
    #: edge ``"band"``, shaded down to the edge; neither has a line or a legend entry.
    fill: str = ""


@dataclass
class Figure:
    """A figure: an id (also its file name), titles, axes and traces."""

    id: str
    title: str
    x_label: str
    y_label: str
    traces: list[Trace] = field(default_factory=list)
    log_y: bool = False
    equal_axes: bool = False
    #: The page shows one trace name at a time, chosen by the section's selector.
    selectable: bool = False


def clean(values: Sequence[Any]) -> list[float | None]:
    """The values as floats, with ``None`` for gaps (non-finite values included)."""
    out: list[float | None] = []
    for value in values:
        number = None if value is None else float(value)
        out.append(number if number is not None and math.isfinite(number) else None)
    return out


#: The longest title line, in characters, before it wraps onto the next line.
TITLE_WIDTH = 60


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """``title`` broken into lines of at most ``width`` characters at spaces (``<br>``
    between them, which Plotly draws as line breaks)."""
    import textwrap

    return "<br>".join(textwrap.wrap(title, width)) or title


def _plotly_trace(trace: Trace) -> dict[str, Any]:
    if trace.kind == "bar":
        return {"type": "bar", "name": trace.name, "x": list(trace.x), "y": clean(trace.y)}
    spec: dict[str, Any] = {
        "type": "scatter",
        "name": trace.name,
        "x": clean(trace.x),
        "y": clean(trace.y),
        "mode": trace.mode,
        "line": {"dash": "dash"} if trace.dash else {},
    }
    if trace.fixed:
        spec["meta"] = "fixed"
    if trace.fill:
        spec.update(line={"width": 0}, showlegend=False, hoverinfo="skip")
    if trace.fill == "band":
        spec.update(fill="tonexty", fillcolor="rgba(100, 110, 130, 0.18)")
    return spec


def plotly_spec(figure: Figure) -> dict[str, Any]:
    """``{"data": [...], "layout": {...}}`` for ``Plotly.newPlot``."""
    data = [_plotly_trace(trace) for trace in figure.traces]
    yaxis: dict[str, Any] = {"title": {"text": figure.y_label}}
    if figure.log_y:
        # Powers of ten (10^-6), never SI prefixes (1µ): a gradient is not a length.
        yaxis.update(type="log", exponentformat="power", showexponent="all")
    layout: dict[str, Any] = {
        "title": {"text": wrap_title(figure.title), "font": {"size": 14}},
        "xaxis": {"title": {"text": figure.x_label}},
        "yaxis": yaxis,
        "margin": {"l": 70, "r": 20, "t": 60, "b": 50},
        "height": 380,
        "legend": {"font": {"size": 10}},
    }
    if figure.equal_axes:
        layout["yaxis"]["scaleanchor"] = "x"
    spec: dict[str, Any] = {"data": data, "layout": layout}
    if figure.selectable:
        spec["selectable"] = True
    return spec
