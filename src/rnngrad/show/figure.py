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

__all__ = [
    "PALETTE",
    "Figure",
    "Trace",
    "assign_colours",
    "clean",
    "log_range",
    "plotly_spec",
    "tick_step",
    "wrap_title",
]


@dataclass
class Trace:
    """One line or set of markers."""

    name: str
    x: Sequence[Any]  # numbers, or category names for bars
    y: Sequence[float | None]
    mode: str = "lines"  # "lines", "markers" or "lines+markers"
    dash: bool = False
    fixed: bool = False  # shown whatever the page's selector picks (a unit circle)
    kind: str = "scatter"  # "scatter", "bar" or "heatmap" (``z`` over ``x`` by ``y``)
    #: A band (over seeds, say) is two traces: its lower ``"edge"`` and then its upper
    #: edge ``"band"``, shaded down to the edge; neither has a line or a legend entry.
    fill: str = ""
    #: What the trace belongs to (a model's name): every trace of one group takes one
    #: colour in every figure of a page (:func:`assign_colours`); by default its name.
    group: str = ""
    #: Its colour (``"#rrggbb"``), set by :func:`assign_colours`; ``None``: the library's.
    color: str | None = None
    #: A marker that must stand out (a prediction drawn over a measurement): ``"diamond"``.
    symbol: str = ""
    #: A heat map's values, one row per ``y`` (``None`` for a gap), and its colour bar.
    z: Sequence[Sequence[float | None]] | None = None
    z_label: str = ""

    @property
    def key(self) -> str:
        """The colour's key: the group, else the name."""
        return self.group or self.name


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
    #: The x values are whole numbers (steps, indices): ticks only at whole numbers.
    integer_x: bool = False
    #: A fixed range of the y axis (a share from 0 to 1), else one fitted to the data.
    y_range: tuple[float, float] | None = None
    #: ``False``: drawn only as files (PNG, SVG), where a page shows a live explorer of
    #: the same curve instead.
    on_page: bool = True


#: The page's colours (Okabe and Ito's palette for colour-blind readers, then Tableau's),
#: one per model or series in every figure; grey is kept for references.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B",
           "#BCBD22", "#17BECF", "#9467BD", "#1F3A93", "#F0E442")  # fmt: skip
#: Traces that are a reference, not a model (the unit circle): drawn in grey.
REFERENCE_COLOUR = "#888888"


def assign_colours(figures: Sequence[Figure]) -> dict[str, str]:
    """Give every trace of ``figures`` the colour of its group (:attr:`Trace.key`) and
    return the map. Groups drawn in several figures (the page's models) take
    :data:`PALETTE`'s first colours, in the order they appear, then the rest (cycling
    past its end); fixed traces (a reference such as the unit circle) are grey."""
    seen: dict[str, set[int]] = {}
    for index, figure in enumerate(figures):
        for trace in figure.traces:
            if not trace.fixed:
                seen.setdefault(trace.key, set()).add(index)
    order = sorted(seen, key=lambda key: (len(seen[key]) < 2, list(seen).index(key)))
    colours = {key: PALETTE[rank % len(PALETTE)] for rank, key in enumerate(order)}
    for figure in figures:
        for trace in figure.traces:
            trace.color = REFERENCE_COLOUR if trace.fixed else colours[trace.key]
    return colours


def log_range(values: Sequence[Any]) -> tuple[int, int] | None:
    """The decades ``(floor(log10 min), ceil(log10 max))`` of the positive finite values,
    at least one decade apart, so that a log axis starts and ends at a power of ten and
    labels only powers of ten; ``None`` without a positive finite value."""
    positive = [v for v in clean(values) if v is not None and v > 0]
    if not positive:
        return None
    low = math.floor(math.log10(min(positive)))
    high = math.ceil(math.log10(max(positive)))
    return low, max(high, low + 1)


def tick_step(low: float, high: float, *, ticks: int = 6, whole: bool = False) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most ``ticks`` ticks from
    ``low`` to ``high``; at least 1 when ``whole``."""
    span = max(high - low, 1e-12)
    step = 10.0 ** math.floor(math.log10(span / ticks))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= ticks:
            step *= factor
            break
    return max(step, 1.0) if whole else step


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


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _plotly_trace(trace: Trace) -> dict[str, Any]:
    spec: dict[str, Any]
    if trace.kind == "heatmap":
        rows = [clean(row) for row in (trace.z or [])]
        return {"type": "heatmap", "name": trace.name, "x": list(trace.x), "y": list(trace.y),
                "z": rows, "colorscale": "Viridis",
                "colorbar": {"title": {"text": trace.z_label}}}  # fmt: skip
    if trace.kind == "bar":
        spec = {"type": "bar", "name": trace.name, "x": list(trace.x), "y": clean(trace.y)}
        if trace.color:
            spec["marker"] = {"color": trace.color}
        return spec
    line: dict[str, Any] = {"dash": "dash"} if trace.dash else {}
    spec = {
        "type": "scatter",
        "name": trace.name,
        "x": clean(trace.x),
        "y": clean(trace.y),
        "mode": trace.mode,
        "line": line,
    }
    if trace.color:
        line["color"] = trace.color
        spec["marker"] = {"color": trace.color}
    if trace.symbol:
        spec.setdefault("marker", {}).update(symbol=trace.symbol, size=12,
                                             line={"width": 1, "color": "#000000"})  # fmt: skip
    if trace.fixed:
        spec["meta"] = "fixed"
    if trace.fill:
        spec.update(line={"width": 0}, showlegend=False, hoverinfo="skip")
    if trace.fill == "band":
        shade = _rgba(trace.color, 0.18) if trace.color else "rgba(100, 110, 130, 0.18)"
        spec.update(fill="tonexty", fillcolor=shade)
    return spec


def plotly_spec(figure: Figure) -> dict[str, Any]:
    """``{"data": [...], "layout": {...}}`` for ``Plotly.newPlot``."""
    data = [_plotly_trace(trace) for trace in figure.traces]
    yaxis: dict[str, Any] = {"title": {"text": figure.y_label}}
    xaxis: dict[str, Any] = {"title": {"text": figure.x_label}}
    decades = log_range([v for t in figure.traces for v in t.y]) if figure.log_y else None
    if figure.log_y:
        # Powers of ten (10^-6), never SI prefixes (1µ): a gradient is not a length; and
        # only powers of ten, from a decade below the lowest point to one above the highest.
        yaxis.update(type="log", exponentformat="power", showexponent="all")
    if decades is not None:
        low, high = decades
        yaxis.update(range=[low, high], dtick=tick_step(low, high, ticks=8, whole=True),
                     tick0=0, minor={"showgrid": False})  # fmt: skip
    if figure.y_range is not None:
        yaxis["range"] = list(figure.y_range)
    if figure.integer_x:
        numbers = [v for t in figure.traces for v in clean(t.x) if v is not None]
        if numbers:
            xaxis.update(tickmode="linear", tick0=0,
                         dtick=tick_step(min(numbers), max(numbers), whole=True))  # fmt: skip
    layout: dict[str, Any] = {
        "title": {"text": wrap_title(figure.title), "font": {"size": 14}},
        "xaxis": xaxis,
        "yaxis": yaxis,
        "margin": {"l": 70, "r": 20, "t": 60, "b": 50},
        "height": 380,
        "legend": {"font": {"size": 10}},
    }
    if figure.equal_axes:
        layout["yaxis"]["scaleanchor"] = "x"
    if any(trace.kind == "bar" for trace in figure.traces):
        layout["barmode"] = "overlay"  # one bar per category, whatever the trace
    spec: dict[str, Any] = {"data": data, "layout": layout}
    if figure.selectable:
        spec["selectable"] = True
    return spec
