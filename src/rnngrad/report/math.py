"""KaTeX for the page: its script, its auto-render script and its style with the fonts
inlined, so that the mathematics renders offline from one self-contained file.

The files are KaTeX 0.16.47 (MIT), unchanged, in ``assets/katex``. Mathematics is
written in the page between ``\\( ... \\)`` (inline) and ``\\[ ... \\]`` (display).
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from importlib import resources

__all__ = ["RENDER_MATH", "asset", "katex_head"]

#: Renders every delimited formula of the page; a formula KaTeX cannot parse is an
#: error in the console (the browser test fails on it), never silently raw TeX.
RENDER_MATH = """
renderMathInElement(document.body, {
  delimiters: [{left: '\\\\[', right: '\\\\]', display: true},
               {left: '\\\\(', right: '\\\\)', display: false}],
  throwOnError: true
});
"""


def asset(path: str) -> bytes:
    """A file of the report's ``assets/`` folder (KaTeX's under ``katex/``, the page's own
    style and scripts beside it), as packaged."""
    return resources.files("rnngrad.report").joinpath(f"assets/{path}").read_bytes()


@lru_cache(maxsize=1)
def katex_head() -> str:
    """``<style>`` and ``<script>`` elements for the page's ``<head>``: KaTeX's CSS with
    each font's woff2 as a data URI (the woff and ttf fallbacks dropped), then the
    KaTeX and auto-render scripts."""
    css = asset("katex/katex.min.css").decode()

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode(asset(f"katex/fonts/{match.group(1)}.woff2")).decode()
        return f'src:url(data:font/woff2;base64,{data}) format("woff2")'

    css = re.sub(
        r'src:url\(fonts/([\w-]+)\.woff2\) format\("woff2"\)(?:,url\([^)]*\) format\("[a-z]+"\))*',
        inline,
        css,
    )
    if "url(fonts/" in css:  # a KaTeX whose CSS names fonts another way
        raise RuntimeError("the KaTeX stylesheet refers to font files that were not inlined")
    scripts = "".join(
        f"<script>{asset(f'katex/{name}').decode()}</script>"
        for name in ("katex.min.js", "auto-render.min.js")
    )
    return f"<style>{css}</style>{scripts}"
