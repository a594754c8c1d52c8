"""Figures as plain data, drawn twice: Plotly specs for the page, Matplotlib PNG and SVG files.

A :class:`Figure` holds traces of numbers; :func:`plotly_spec` turns it into the
JSON that ``Plotly.newPlot`` takes, and :func:`save_static` draws the same
traces with Matplotlib for papers and slides. Non-finite values become gaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Trace", "plotly_spec", "save_static", "wrap_title"]


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


def _clean(values: Sequence[Any]) -> list[float | None]:
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
        return {"type": "bar", "name": trace.name, "x": list(trace.x), "y": _clean(trace.y)}
    spec: dict[str, Any] = {
        "type": "scatter",
        "name": trace.name,
        "x": _clean(trace.x),
        "y": _clean(trace.y),
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


#: Fonts with Hangul that Matplotlib falls back to for a Korean page's static figures.
HANGUL_FONTS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR",
                "Malgun Gothic", "AppleGothic", "UnDotum")  # fmt: skip


def _needs_hangul(figure: Figure) -> bool:
    texts = [figure.title, figure.x_label, figure.y_label, *(t.name for t in figure.traces)]
    return any("\uac00" <= c <= "\ud7a3" for text in texts for c in text)


@lru_cache(maxsize=1)
def hangul_fonts() -> list[str]:
    """The installed fonts of :data:`HANGUL_FONTS` (Matplotlib's font list is rebuilt once
    when its cache knows none: a font installed after the cache was written)."""
    from matplotlib import font_manager

    def found() -> list[str]:
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
        return [name for name in HANGUL_FONTS if name in installed]

    if not found():
        font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)  # type: ignore[attr-defined]
    return found()


def save_static(figure: Figure, folder: Path) -> None:
    """``folder/<id>.png`` and ``folder/<id>.svg`` drawn with Matplotlib (Korean text in
    the first installed font of :data:`HANGUL_FONTS`)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = ["DejaVu Sans", *hangul_fonts()] if _needs_hangul(figure) else ["DejaVu Sans"]
    with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings():
        # Without a Hangul font the page says so once (page.py); no warning per glyph.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        _draw(figure, folder, plt)


def _draw(figure: Figure, folder: Path, plt: Any) -> None:
    drawing, axis = plt.subplots(figsize=(6.4, 3.8))
    previous: tuple[list[float], list[float]] | None = None
    for trace in figure.traces:
        if trace.kind == "bar":
            heights = [math.nan if v is None else float(v) for v in _clean(trace.y)]
            axis.bar([str(v) for v in trace.x], heights, label=trace.name)
            axis.tick_params(axis="x", labelrotation=30, labelsize=7)
            continue
        x = [math.nan if v is None else float(v) for v in _clean(trace.x)]
        y = [math.nan if v is None else float(v) for v in _clean(trace.y)]
        if trace.fill == "edge":
            previous = (x, y)
            continue
        if trace.fill == "band":
            if previous is not None and previous[0] == x:
                axis.fill_between(x, previous[1], y, color="gray", alpha=0.18, linewidth=0)
            continue
        marker = "o" if "markers" in trace.mode else None
        line = ("--" if trace.dash else "-") if "lines" in trace.mode else "none"
        axis.plot(x, y, marker=marker, linestyle=line, ms=3, lw=1.2, label=trace.name)
    if figure.log_y:
        axis.set_yscale("log")
    if figure.equal_axes:
        axis.set_aspect("equal", adjustable="datalim")
    axis.set_title(wrap_title(figure.title).replace("<br>", "\n"), fontsize=10)
    axis.set_xlabel(figure.x_label)
    axis.set_ylabel(figure.y_label)
    if len(figure.traces) > 1:
        axis.legend(fontsize=7)
    drawing.tight_layout()
    for suffix in ("png", "svg"):
        drawing.savefig(folder / f"{figure.id}.{suffix}", dpi=110)
    plt.close(drawing)


def heat_map_rgb(
    values: Any, row_names: list[str], color_range: tuple[float, float], title: str
) -> Any:
    """An RGB ``uint8`` array ``(H, W, 3)``: ``values`` ``(rows, T)`` as a labelled heat map
    (rows named, time steps ``1..T`` across) on the fixed scale ``color_range`` with a
    colour bar; values beyond the scale take its end colours, non-finite ones are grey.
    Drawn with Matplotlib's object interface (no pyplot state), for TensorBoard and W&B."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure as MatplotlibFigure

    data = np.ma.masked_invalid(np.asarray(values, dtype=np.float64))
    rows, steps = data.shape
    drawing = MatplotlibFigure(figsize=(6.4, 1.4 + 0.32 * rows), dpi=100)
    canvas = FigureCanvasAgg(drawing)
    axis = drawing.add_subplot()
    colours = matplotlib.colormaps["viridis"].with_extremes(bad="0.6")
    low, high = color_range
    extent = (0.5, steps + 0.5, rows - 0.5, -0.5)
    image = axis.imshow(data, aspect="auto", cmap=colours, norm=Normalize(low, high),
                        interpolation="nearest", extent=extent)  # fmt: skip
    axis.set_yticks(range(rows), row_names, fontsize=8)
    axis.set_xlabel("time step t", fontsize=9)
    axis.set_title(title, fontsize=9)
    bar = drawing.colorbar(image, ax=axis, extend="both", pad=0.02)
    bar.set_label("log10 ||dL/dh_t||", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    drawing.tight_layout()
    canvas.draw()  # type: ignore[no-untyped-call]
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    return np.ascontiguousarray(rgba[..., :3])
