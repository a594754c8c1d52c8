"""Figures drawn: PNG and SVG files beside the page (Matplotlib), and the monitor's heat
map as an RGB array (numpy and Pillow).

The drawing libraries are imported inside each function, so that nothing that merely
builds a :class:`~rnngrad.show.figure.Figure` pays for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from rnngrad.show.figure import Figure, clean, log_range, tick_step, wrap_title

__all__ = [
    "HANGUL_FONTS",
    "VIRIDIS_ANCHORS",
    "StaticImage",
    "hangul_fonts",
    "heat_map_rgb",
    "save_static",
    "static_image",
    "viridis",
]


#: Fonts with Hangul that Matplotlib falls back to for a Korean page's static figures.
HANGUL_FONTS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR",
                "Malgun Gothic", "AppleGothic", "UnDotum")  # fmt: skip


def _needs_hangul(figure: Figure) -> bool:
    texts = [figure.title, figure.x_label, figure.y_label, *(t.name for t in figure.traces)]
    return any("\uac00" <= c <= "\ud7a3" for text in texts for c in text)


@lru_cache(maxsize=1)
def hangul_fonts() -> list[str]:
    """The installed fonts of :data:`HANGUL_FONTS`.

    Matplotlib reads its font list from a cache; a font installed after the cache was
    written is missing from it. Then the system's font files that the list does not
    know are added to the font manager in place (the drawing backends hold that very
    object, so replacing it would leave them blind to the new fonts) and the cache is
    rewritten for the next process."""
    from matplotlib import font_manager

    manager = font_manager.fontManager

    def found() -> list[str]:
        installed = {entry.name for entry in manager.ttflist}
        return [name for name in HANGUL_FONTS if name in installed]

    if not found():
        known = {entry.fname for entry in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read
                    continue
        clear = getattr(manager, "_findfont_cached", None)
        if clear is not None and hasattr(clear, "cache_clear"):
            clear.cache_clear()
        if found():
            _save_font_cache(manager)
    return found()


def _save_font_cache(manager: Any) -> None:
    """Rewrite Matplotlib's font list cache with ``manager`` (best effort)."""
    import matplotlib
    from matplotlib import font_manager

    path = Path(matplotlib.get_cachedir(), f"fontlist-v{font_manager.FontManager.__version__}.json")
    try:
        font_manager.json_dump(manager, path)
    except OSError:
        pass


def save_static(figure: Figure, folder: Path) -> None:
    """``folder/<id>.png`` and ``folder/<id>.svg`` drawn with Matplotlib (Korean text in
    the first installed font of :data:`HANGUL_FONTS`)."""
    with _drawing(figure) as drawing:
        for suffix in ("png", "svg"):
            drawing.savefig(folder / f"{figure.id}.{suffix}", dpi=110)


class StaticImage:
    """A figure drawn as a PNG, for where interactive figures do not show (a notebook read
    without a kernel, GitHub): a notebook displays it; :meth:`save` writes it."""

    def __init__(self, png: bytes) -> None:
        self.png = png

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | Path) -> None:
        """Write the PNG to ``path``."""
        Path(path).write_bytes(self.png)


def static_image(figure: Figure) -> StaticImage:
    """``figure`` drawn with Matplotlib, as the page's PNG files are."""
    import io

    buffer = io.BytesIO()
    with _drawing(figure) as drawing:
        drawing.savefig(buffer, format="png", dpi=100)
    return StaticImage(buffer.getvalue())


@contextmanager
def _drawing(figure: Figure) -> Iterator[Any]:
    """The Matplotlib figure of ``figure``, closed after the block."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = ["DejaVu Sans", *hangul_fonts()] if _needs_hangul(figure) else ["DejaVu Sans"]
    with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings():
        # Without a Hangul font the page says so once (page.py); no warning per glyph.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        drawing = _draw(figure, plt)
        try:
            yield drawing
        finally:
            plt.close(drawing)


def _axes(figure: Figure, axis: Any) -> None:
    """The page's axes in Matplotlib: a log axis from a power of ten to a power of ten,
    labelled at powers of ten only; whole-number ticks for steps; a fixed range."""
    from matplotlib import ticker

    if figure.log_y:
        axis.set_yscale("log")
        decades = log_range([v for t in figure.traces for v in t.y])
        if decades is not None:
            low, high = decades
            step = tick_step(low, high, ticks=8, whole=True)
            axis.set_ylim(10.0**low, 10.0**high)
            axis.yaxis.set_major_locator(
                ticker.FixedLocator([10.0**k for k in range(low, high + 1) if k % step == 0])
            )
            axis.yaxis.set_major_formatter(ticker.LogFormatterSciNotation())
        axis.yaxis.set_minor_formatter(ticker.NullFormatter())
    if figure.y_range is not None:
        axis.set_ylim(*figure.y_range)
    if figure.integer_x:
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def _draw(figure: Figure, plt: Any) -> Any:
    drawing, axis = plt.subplots(figsize=(6.4, 3.8))
    previous: tuple[list[float], list[float]] | None = None
    for trace in figure.traces:
        if trace.kind == "heatmap":
            import numpy as np

            values = np.array([[math.nan if v is None else v for v in clean(row)]
                               for row in (trace.z or [])], dtype=float)  # fmt: skip
            image = axis.pcolormesh(list(trace.x), list(trace.y), values, cmap="viridis",
                                    shading="nearest")  # fmt: skip
            drawing.colorbar(image, ax=axis, label=trace.z_label)
            continue
        if trace.kind == "bar":
            heights = [math.nan if v is None else float(v) for v in clean(trace.y)]
            axis.bar([str(v) for v in trace.x], heights, label=trace.name, color=trace.color)
            axis.tick_params(axis="x", labelrotation=30, labelsize=7)
            continue
        x = [math.nan if v is None else float(v) for v in clean(trace.x)]
        y = [math.nan if v is None else float(v) for v in clean(trace.y)]
        if trace.fill == "edge":
            previous = (x, y)
            continue
        if trace.fill == "band":
            if previous is not None and previous[0] == x:
                axis.fill_between(x, previous[1], y, color=trace.color or "gray", alpha=0.18,
                                  linewidth=0)  # fmt: skip
            continue
        marker = "o" if "markers" in trace.mode else None
        size, edge = 3.0, None
        if trace.symbol:  # a prediction over a measurement: large, outlined
            marker, size, edge = {"diamond": "D"}.get(trace.symbol, "o"), 8.0, "black"
        line = ("--" if trace.dash else "-") if "lines" in trace.mode else "none"
        axis.plot(x, y, marker=marker, linestyle=line, ms=size, mec=edge, lw=1.2,
                  label=trace.name, color=trace.color, zorder=3 if trace.symbol else 2)  # fmt: skip
    _axes(figure, axis)
    if figure.equal_axes:
        axis.set_aspect("equal", adjustable="datalim")
    axis.set_title(wrap_title(figure.title).replace("<br>", "\n"), fontsize=10)
    axis.set_xlabel(figure.x_label)
    axis.set_ylabel(figure.y_label)
    if len(figure.traces) > 1:
        axis.legend(fontsize=7)
    drawing.tight_layout()
    return drawing


#: Matplotlib's viridis at 17 evenly spaced points, 0..255; :func:`heat_map_rgb`
#: interpolates between them (within 6/255 of the full table everywhere, exact here).
VIRIDIS_ANCHORS = (
    (68, 1, 84), (72, 24, 106), (71, 45, 123), (66, 64, 134), (59, 82, 139), (51, 99, 141),
    (44, 114, 142), (38, 130, 142), (33, 145, 140), (31, 160, 136), (40, 174, 128),
    (63, 188, 115), (94, 201, 98), (132, 212, 75), (173, 220, 48), (216, 226, 25),
    (253, 231, 37),
)  # fmt: skip
_GREY = (153, 153, 153)  # non-finite values
_INK = (40, 40, 40)
_PLOT_WIDTH = 480
_ROW_HEIGHT = 22


def viridis(fractions: Any) -> Any:
    """``uint8`` RGB ``(..., 3)`` of viridis at ``fractions`` in ``[0, 1]`` (clipped)."""
    import numpy as np

    anchors = np.array(VIRIDIS_ANCHORS, dtype=np.float64)
    where = np.linspace(0.0, 1.0, len(VIRIDIS_ANCHORS))
    values = np.clip(np.asarray(fractions, dtype=np.float64), 0.0, 1.0)
    channels = [np.interp(values, where, anchors[:, k]) for k in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: one bitmap size
        return ImageFont.load_default()


def heat_map_rgb(
    values: Any, row_names: list[str], color_range: tuple[float, float], title: str
) -> Any:
    """An RGB ``uint8`` array ``(H, W, 3)``: ``values`` ``(rows, T)`` as a labelled heat map
    (rows named, time steps ``1..T`` across, ticks at a few steps) on the fixed scale
    ``color_range`` with a colour bar; values beyond the scale take its end colours,
    non-finite ones are grey.

    Built with numpy (the colours) and Pillow (the words), without Matplotlib: the
    monitor draws one at every profile, and a figure of Matplotlib's costs about fifteen
    times the profile itself.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    data = np.asarray(values, dtype=np.float64)
    rows, steps = data.shape
    low, high = color_range
    font, small = _font(11), _font(9)
    label_width = max(int(font.getlength(name)) for name in row_names) + 12
    left, top, bottom, bar = label_width, 26, 40, 110
    width, height = left + _PLOT_WIDTH + bar, top + rows * _ROW_HEIGHT + bottom
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    # the map: each pixel column shows the step under it (nearest), each row its layer
    columns = np.minimum((np.arange(_PLOT_WIDTH) * steps) // _PLOT_WIDTH, steps - 1)
    shown = data[:, columns]
    finite = np.isfinite(shown)
    colours = viridis(np.where(finite, (np.where(finite, shown, low) - low) / (high - low), 0.0))
    colours[~finite] = _GREY
    image[top : top + rows * _ROW_HEIGHT, left : left + _PLOT_WIDTH] = np.repeat(
        colours, _ROW_HEIGHT, axis=0
    )
    # the colour bar, high at the top
    bar_left, bar_top, bar_height = left + _PLOT_WIDTH + 10, top, max(rows * _ROW_HEIGHT, 60)
    if top + bar_height + bottom > height:
        extra = top + bar_height + bottom - height
        image = np.concatenate([image, np.full((extra, width, 3), 255, np.uint8)])
        height += extra
    gradient = viridis(np.linspace(1.0, 0.0, bar_height))
    image[bar_top : bar_top + bar_height, bar_left : bar_left + 12] = gradient[:, None, :]
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    draw.text((left, 6), title, fill=_INK, font=font)
    for row, name in enumerate(row_names):
        y = top + row * _ROW_HEIGHT + _ROW_HEIGHT // 2
        draw.text((left - 6, y), name, fill=_INK, font=font, anchor="rm")
    plot_bottom = top + rows * _ROW_HEIGHT
    for step in _ticks(1, steps):
        x = left + int((step - 0.5) * _PLOT_WIDTH / steps)
        draw.line([(x, plot_bottom), (x, plot_bottom + 3)], fill=_INK)
        draw.text((x, plot_bottom + 5), str(step), fill=_INK, font=small, anchor="mt")
    draw.text((left + _PLOT_WIDTH // 2, plot_bottom + 20), "time step t", fill=_INK, font=font,
              anchor="mt")  # fmt: skip
    for tick in _ticks(low, high, whole=False):
        y = bar_top + int((high - tick) / (high - low) * (bar_height - 1))
        draw.line([(bar_left + 12, y), (bar_left + 15, y)], fill=_INK)
        draw.text((bar_left + 18, y), f"{tick:g}", fill=_INK, font=small, anchor="lm")
    draw.text((bar_left, bar_top + bar_height + 6), "log10 ||dL/dh_t||", fill=_INK, font=small)
    return np.asarray(picture)


def _ticks(first: float, last: float, *, whole: bool = True) -> list[float]:
    """At most six round values from ``first`` to ``last`` (both ends for steps)."""
    import math

    span = max(last - first, 1e-12)
    step = 10 ** math.floor(math.log10(span / 5))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= 5:
            step *= factor
            break
    values = [step * k for k in range(math.ceil(first / step), math.floor(last / step) + 1)]
    if whole:
        values = sorted({int(first), *(int(v) for v in values if v >= first), int(last)})
    return values
