"""Korean figures get Hangul glyphs, also on the first run after a font was installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# A font list cache written before the Hangul fonts were installed: the same list
# without them.
_STALE_CACHE = """
from pathlib import Path
import matplotlib
from matplotlib import font_manager
manager = font_manager.fontManager
manager.ttflist = [f for f in manager.ttflist
                   if f.name not in __import__("rnngrad.show.draw").show.draw.HANGUL_FONTS]
path = Path(matplotlib.get_cachedir(), f"fontlist-v{font_manager.FontManager.__version__}.json")
font_manager.json_dump(manager, path)
"""

# What a Korean report does: pick the Hangul fonts, then draw a figure with Agg (PNG)
# and SVG; any glyph drawn as the missing-glyph box is a warning from Matplotlib.
_DRAW = """
import warnings
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rnngrad.show.draw import hangul_fonts
fonts = hangul_fonts()
assert fonts, "no Hangul font found"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with matplotlib.rc_context({"font.family": ["DejaVu Sans", *fonts]}):
        figure, axis = plt.subplots()
        axis.set_title("기울기 소실과 폭주")
        figure.savefig("figure.png")
        figure.savefig("figure.svg")
missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
assert not missing, missing[:3]
print("ok", fonts)
"""


def _has_hangul_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listing = subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True)
    return bool(listing.stdout.strip())


@pytest.mark.skipif(not _has_hangul_font(), reason="no font with Hangul is installed")
def test_the_first_korean_figures_after_a_font_install_have_hangul(tmp_path: Path) -> None:
    """Regression: Matplotlib's cached font list predates the Hangul font; rebuilding the
    font manager left the Agg backend with the old one, so every Hangul glyph of the first
    run's PNG and SVG figures was a box. Now the first process draws them."""
    environment = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    for script in (_STALE_CACHE, _DRAW, _DRAW):  # the first run, and the one after it
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=environment,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
