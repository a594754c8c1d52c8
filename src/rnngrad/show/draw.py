"""Figures drawn with Matplotlib: PNG and SVG files beside the page, and the monitor's
heat map as an RGB array.

Matplotlib is imported inside each function, so that nothing that merely builds a
:class:`~rnngrad.show.figure.Figure` pays for it.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from rnngrad.show.figure import Figure, clean, wrap_title

__all__ = ["HANGUL_FONTS", "hangul_fonts", "heat_map_rgb", "save_static"]


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
            heights = [math.nan if v is None else float(v) for v in clean(trace.y)]
            axis.bar([str(v) for v in trace.x], heights, label=trace.name)
            axis.tick_params(axis="x", labelrotation=30, labelsize=7)
            continue
        x = [math.nan if v is None else float(v) for v in clean(trace.x)]
        y = [math.nan if v is None else float(v) for v in clean(trace.y)]
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
