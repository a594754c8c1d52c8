"""The self-contained HTML page, its figures and results.json, written atomically.

The page inlines plotly.js, so it opens with no network. The explorer of
section 1 recomputes ``log10 |dy/dh_k|`` and its bound in the browser with the
same log-space recursion as :func:`rnngrad.scalar_chain_rule`, on the inputs
stored in the page. The page's own style and scripts (the explorers, the block
selector) are files in ``assets/``, inlined as they are. The whole folder is
built in a temporary folder beside ``DIR`` and moved into place (an earlier
report is moved aside first and removed last), so an interrupted run leaves no
half-written page, and the staging folders of a killed run are removed by the
next one.
"""

from __future__ import annotations

import errno
import html
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from rnngrad.atomic import disk_full_error
from rnngrad.report.explorers import explorer_text, matrix_explorer_html, scalar_explorer_html
from rnngrad.report.folder import STAGING, prepare_folder, swap_into_place, write_manifest
from rnngrad.report.math import RENDER_MATH, asset, katex_head
from rnngrad.report.section import Section
from rnngrad.show.draw import hangul_fonts, save_static
from rnngrad.show.figure import assign_colours, plotly_spec
from rnngrad.show.i18n import current_language, language, t

# About what a report takes on disk (plotly.js inlined, PNG and SVG figures).
_REPORT_BYTES = 12_000_000

__all__ = ["page_title", "prepare_folder", "write_report"]


@cache
def _asset(name: str) -> str:
    """One of the page's own style sheets or scripts in ``assets/`` (the scalar explorer,
    the matrix explorer, the block selector)."""
    return asset(name).decode("utf-8")


def _footer() -> str:
    return t(
        "Made by rnngrad. Every number on this page is in results.json; figures/ holds a PNG "
        "and an SVG of each figure."
    )


def _table(rows: list[list[str]]) -> str:
    """A section's table: the header row, then the rows (text, escaped)."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows[1:]
    )
    return f'<table class="numbers"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page_title(model: str | None, lang: str = "en") -> str:
    """The page's title: the built-in examples, or the model's name (spec or file:class)."""
    with language(lang):
        if model is None:
            return t("rnngrad report: built-in examples")
        return t("rnngrad report: {model}", model=model)


def write_report(sections: list[Section], out: Path, title: str, lang: str = "en") -> Path:
    """Write ``index.html``, ``results.json`` and ``figures/`` into ``out``; return the page.
    ``lang`` is the language of the page's own words (the sections come translated)."""
    with language(lang):
        return _write_report(sections, out, title)


def _write_report(sections: list[Section], out: Path, title: str) -> Path:
    import plotly.offline

    parent = out.resolve().parent
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=parent))
    target = parent / out.name
    try:
        (staging / "figures").mkdir()
        specs: dict[str, Any] = {}
        body = []
        if current_language() == "ko" and not hangul_fonts():
            import warnings

            warnings.warn(
                "no font with Hangul is installed, so the PNG and SVG files in figures/ show "
                "boxes for Korean text (install one, e.g. apt install fonts-nanum); the page "
                "itself uses the browser's fonts",
                stacklevel=2,
            )
        # One colour per model (or series) in every figure of the page.
        assign_colours([figure for section in sections for figure in section.figures])
        for section in sections:
            verdict = section.verdict or "none"
            body.append(f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>')
            body.append(
                f'<p class="verdict {html.escape(verdict)}">{html.escape(section.sentence)}</p>'
            )
            if section.explanation:
                body.append(f'<div class="explanation">{section.explanation}</div>')
            if section.table:
                body.append(_table(section.table))
            if section.key == "scalar":
                body.append(scalar_explorer_html())
            if section.key == "spectrum" and "matrix_explorer_inputs" in section.numbers:
                body.append(matrix_explorer_html())
            choices = [t.name for f in section.figures if f.selectable for t in f.traces
                       if not t.fixed]  # fmt: skip
            if choices:
                options = "".join(
                    f'<option value="{html.escape(name)}">{html.escape(name)}</option>'
                    for name in dict.fromkeys(choices)
                )
                first = next(i for i, f in enumerate(section.figures) if f.selectable)
            label = section.selector if section.selector is not None else t("W_hh block:")
            for index, figure in enumerate(section.figures):
                if choices and index == first:
                    body.append(
                        f'<p class="selector"><label>{html.escape(label)} '
                        f'<select class="block-selector" '
                        f'data-section="{section.key}">{options}</select></label></p>'
                    )
                save_static(figure, staging / "figures")
                if not figure.on_page:
                    continue
                specs[figure.id] = plotly_spec(figure)
                selectable = ' data-selectable="1"' if figure.selectable else ""
                body.append(f'<div class="figure plot" id="fig-{figure.id}"{selectable}></div>')
            body.append("</section>")
        results = {
            "title": title,
            "sections": {
                s.key: {
                    "title": s.title,
                    "sentence": s.sentence,
                    "verdict": s.verdict,
                    "numbers": s.numbers,
                    "explanation": s.explanation,
                    **({"table": s.table} if s.table else {}),
                }
                for s in sections
            },
            "figures": specs,
        }
        payload = json.dumps(results, allow_nan=False).replace("</", "<\\/")
        nav = " ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
        page = (
            f"<!DOCTYPE html><html lang='{current_language()}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_asset('page.css')}</style>{katex_head()}"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>{''.join(body)}"
            f"<footer>{html.escape(_footer())}</footer>"
            f"<script>const REPORT = {payload};\nconst TEXT = {explorer_text()};\n"
            "for (const [id, spec] of Object.entries(REPORT.figures)) {"
            " Plotly.newPlot('fig-' + id, spec.data, spec.layout, {responsive: true}); }\n"
            f"{_asset('selector.js')}\n"
            "REPORT.explorer_inputs = REPORT.sections.scalar.numbers.explorer_inputs;\n"
            f"{_asset('explorer.js')}\n"
            + (
                _asset("matrix_explorer.js")
                if any("matrix_explorer_inputs" in s.numbers for s in sections)
                else ""
            )
            + f"\n{RENDER_MATH}</script>"
            "</body></html>"
        )
        (staging / "index.html").write_text(page)
        (staging / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False))
        write_manifest(staging)
        os.chmod(staging, 0o755)
        swap_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(target, _REPORT_BYTES) from None
        raise
    return out / "index.html"
