"""The self-contained HTML page, its figures and results.json, written atomically.

The page inlines plotly.js, so it opens with no network. The explorer of
section 1 recomputes ``log10 |dy/dh_k|`` and its bound in the browser with the
same log-space recursion as :func:`rnngrad.scalar_chain_rule`, on the inputs
stored in the page. The whole folder is built in a temporary folder beside
``DIR`` and moved into place (an earlier report is moved aside first and
removed last), so an interrupted run leaves no half-written page, and the
staging folders of a killed run are removed by the next one.
"""

from __future__ import annotations

import errno
import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rnngrad.atomic import disk_full_error
from rnngrad.errors import InvalidInputError
from rnngrad.report.build import Section
from rnngrad.report.figures import hangul_fonts, plotly_spec, save_static
from rnngrad.report.i18n import current_language, language, t
from rnngrad.report.math import RENDER_MATH, katex_head

# About what a report takes on disk (plotly.js inlined, PNG and SVG figures).
_REPORT_BYTES = 12_000_000

__all__ = ["page_title", "prepare_folder", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em;
       color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.verdict { font-size: 1.05em; background: #f5f7fa; border-left: 4px solid #4a7; padding: 0.6em 0.9em; }
p.verdict.vanishing { border-color: #36c; } p.verdict.exploding { border-color: #c33; }
p.verdict.chaotic { border-color: #c33; } p.verdict.mixed { border-color: #c90; }
.figure { margin: 0.5em 0 1.5em 0; }
.controls { display: grid; grid-template-columns: repeat(5, 1fr); gap: 0.6em; margin: 0.5em 0; }
.controls label { font-size: 0.9em; }
.controls input { width: 100%; }
.controls.matrix { grid-template-columns: repeat(4, 1fr); }
.pair { display: grid; grid-template-columns: 1fr 1.4fr; gap: 0.5em; }
nav a { margin-right: 1em; }
footer { margin-top: 3em; font-size: 0.85em; color: #666; }
.explanation { margin: 0.8em 0; } .explanation .katex-display { margin: 0.6em 0; }
"""

_EXPLORER = """
(function () {
  const X = REPORT.explorer_inputs;
  const LN10 = Math.log(10);
  function logSech2(z) { const a = Math.abs(z); return 2 * (Math.log(2) - a - Math.log1p(Math.exp(-2 * a))); }
  function compute(p) {
    const T = p.T; let h = 0; const z = [];
    for (let t = 0; t < T; t++) { const v = p.a * h + (p.b * X[t] + p.c); z.push(v); h = Math.tanh(v); }
    const logA = Math.log10(Math.abs(p.a)); const logD = Math.log10(Math.abs(p.d));
    const factors = []; for (let t = 1; t < T; t++) factors.push(logA + logSech2(z[t]) / LN10);
    const grad = new Array(T); let tail = 0; grad[T - 1] = logD;
    for (let k = T - 2; k >= 0; k--) { tail += factors[k]; grad[k] = logD + tail; }
    const bound = []; for (let k = 0; k < T; k++) bound.push(logD + (T - 1 - k) * logA);
    const ks = []; for (let k = 1; k <= T; k++) ks.push(k);
    return { k: ks, grad: grad, bound: bound };
  }
  function params() {
    const get = id => parseFloat(document.getElementById(id).value);
    return { a: get('ex-a'), b: get('ex-b'), c: get('ex-c'), d: get('ex-d'), T: Math.round(get('ex-T')) };
  }
  function draw() {
    const p = params();
    for (const key of ['a', 'b', 'c', 'd', 'T']) document.getElementById('ex-' + key + '-value').textContent = p[key];
    const r = compute(p);
    const data = [
      { type: 'scatter', mode: 'lines+markers', name: TEXT.gradient, x: r.k, y: r.grad },
      { type: 'scatter', mode: 'lines', name: TEXT.bound, x: r.k, y: r.bound, line: { dash: 'dash' } }
    ];
    Plotly.react('explorer', data, { title: { text: TEXT.explorer_title },
      xaxis: { title: { text: 'k' } }, yaxis: { title: { text: 'log10' } }, height: 360,
      margin: { l: 60, r: 20, t: 40, b: 50 } });
  }
  for (const key of ['a', 'b', 'c', 'd', 'T']) document.getElementById('ex-' + key).addEventListener('input', draw);
  window.rnngradExplorer = { compute: compute, draw: draw };
  draw();
})();
"""


# The selector shows one block's traces at a time in a section's selectable figures
# (traces marked fixed, such as the unit circle, stay).
_SELECTOR = """
for (const select of document.querySelectorAll('select.block-selector')) {
  const section = document.getElementById(select.dataset.section);
  function show() {
    for (const div of section.querySelectorAll('div[data-selectable]')) {
      Plotly.restyle(div, { visible: div.data.map(t => t.meta === 'fixed' || t.name === select.value) });
    }
  }
  select.addEventListener('change', show);
  show();
}
"""


# The matrix explorer: W = V (s R(theta)) V^-1, V = [[1, k], [0, 1]], from three sliders
# (eigenvalues s e^(+-i theta), non-normal for k != 0); in the page
# its eigenvalues on the unit circle, its singular values, log10 ||W^j|| and the
# log10 ||dh_T/dh_j||_2 of the linear and the tanh network h_t = phi(W h_{t-1} + u_t)
# along the stored inputs: the recursions of rnngrad.spectrum and rnngrad.jacobians
# (derivatives as log sech^2, products renormalised, scales kept as logarithms).
_MATRIX_EXPLORER = """
(function () {
  const U = REPORT.sections.spectrum.numbers.matrix_explorer_inputs;
  const LN10 = Math.log(10);
  function logSech2(z) { const a = Math.abs(z); return 2 * (Math.log(2) - a - Math.log1p(Math.exp(-2 * a))); }
  function matrix(p) {  // V (s R(theta)) V^-1 with V = [[1, k], [0, 1]]
    const c = Math.cos(p.theta), s = Math.sin(p.theta);
    return [[p.s * (c + p.k * s), -p.s * s * (1 + p.k * p.k)], [p.s * s, p.s * (c - p.k * s)]];
  }
  function mul(A, B) {
    return [[A[0][0] * B[0][0] + A[0][1] * B[1][0], A[0][0] * B[0][1] + A[0][1] * B[1][1]],
            [A[1][0] * B[0][0] + A[1][1] * B[1][0], A[1][0] * B[0][1] + A[1][1] * B[1][1]]];
  }
  function singular(A) {
    const S = A[0][0] ** 2 + A[0][1] ** 2 + A[1][0] ** 2 + A[1][1] ** 2;
    const det = Math.abs(A[0][0] * A[1][1] - A[0][1] * A[1][0]);
    const top = Math.sqrt((S + Math.sqrt(Math.max(S * S - 4 * det * det, 0))) / 2);
    return [top, top > 0 ? det / top : 0];
  }
  function eigen(A) {
    const half = (A[0][0] + A[1][1]) / 2, det = A[0][0] * A[1][1] - A[0][1] * A[1][0];
    const disc = half * half - det;
    if (disc >= 0) { const r = Math.sqrt(disc); return [[half + r, 0], [half - r, 0]]; }
    const i = Math.sqrt(-disc); return [[half, i], [half, -i]];
  }
  function normalised(A) {  // A / ||A||_F and log10 ||A||_F
    const f = Math.hypot(A[0][0], A[0][1], A[1][0], A[1][1]);
    if (f === 0) return [A, -Infinity];
    return [[[A[0][0] / f, A[0][1] / f], [A[1][0] / f, A[1][1] / f]], Math.log10(f)];
  }
  function powers(W, T) {  // log10 ||W^j||_2, j = 1..T
    let P = [[1, 0], [0, 1]], scale = 0; const out = [];
    for (let j = 1; j <= T; j++) {
      const [Q, s] = normalised(mul(W, P)); P = Q; scale += s;
      out.push(scale + Math.log10(singular(P)[0]));
    }
    return out;
  }
  function products(W, T, tanh) {  // log10 ||dh_T/dh_k||_2, k = 1..T (0 at k = T)
    let h = [0, 0]; const logd = [];
    for (let t = 0; t < T; t++) {
      const z = [W[0][0] * h[0] + W[0][1] * h[1] + U[t][0], W[1][0] * h[0] + W[1][1] * h[1] + U[t][1]];
      logd.push(tanh ? [logSech2(z[0]), logSech2(z[1])] : [0, 0]);
      h = tanh ? [Math.tanh(z[0]), Math.tanh(z[1])] : z;
    }
    const out = new Array(T); out[T - 1] = 0;
    let P = [[1, 0], [0, 1]], scale = 0;
    for (let t = T - 1; t >= 1; t--) {  // P <- P J_{t+1}, J = diag(phi'(z)) W
      const m = Math.max(logd[t][0], logd[t][1]);
      const J = [[Math.exp(logd[t][0] - m) * W[0][0], Math.exp(logd[t][0] - m) * W[0][1]],
                 [Math.exp(logd[t][1] - m) * W[1][0], Math.exp(logd[t][1] - m) * W[1][1]]];
      const [Q, s] = normalised(mul(P, J)); P = Q; scale += s + m / LN10;
      out[t - 1] = scale + Math.log10(singular(P)[0]);
    }
    return out;
  }
  function params() {
    const get = id => parseFloat(document.getElementById(id).value);
    return { theta: get('mx-theta'), s: get('mx-s'), k: get('mx-k'), T: Math.round(get('mx-T')) };
  }
  function compute(p) {
    const W = matrix(p);
    return { W: W, eigenvalues: eigen(W), singular: singular(W), powers: powers(W, p.T),
             linear: products(W, p.T, false), tanh: products(W, p.T, true) };
  }
  function draw() {
    const p = params(), r = compute(p);
    for (const key of ['theta', 's', 'k', 'T']) document.getElementById('mx-' + key + '-value').textContent = p[key];
    const rho = Math.max(...r.eigenvalues.map(e => Math.hypot(e[0], e[1])));
    const peak = Math.max(...r.powers);
    document.getElementById('mx-numbers').textContent =
      TEXT.eigenvalues + ' ' + r.eigenvalues.map(e => e[0].toFixed(3) + (e[1] >= 0 ? '+' : '') + e[1].toFixed(3) + 'i').join(', ') +
      '; rho = ' + rho.toFixed(3) + '; ' + TEXT.singular_values + ' ' + r.singular.map(v => v.toFixed(3)).join(', ') +
      '; ' + TEXT.largest_power + ' = 10^' + peak.toFixed(2);
    const angle = []; for (let i = 0; i <= 180; i++) angle.push(2 * Math.PI * i / 180);
    Plotly.react('mx-eigen', [
      { type: 'scatter', mode: 'lines', name: TEXT.unit_circle, x: angle.map(Math.cos), y: angle.map(Math.sin), line: { dash: 'dash' } },
      { type: 'scatter', mode: 'markers', name: TEXT.eigenvalues, x: r.eigenvalues.map(e => e[0]), y: r.eigenvalues.map(e => e[1]), marker: { size: 10 } }
    ], { title: { text: TEXT.eigenvalues_of_w }, xaxis: { title: { text: 'Re' } }, yaxis: { title: { text: 'Im' }, scaleanchor: 'x' },
         height: 340, margin: { l: 50, r: 20, t: 40, b: 40 }, showlegend: false });
    const steps = []; for (let j = 1; j <= p.T; j++) steps.push(j);
    const back = steps.map(j => p.T - j);
    Plotly.react('mx-growth', [
      { type: 'scatter', mode: 'lines', name: '||W^j||', x: steps, y: r.powers },
      { type: 'scatter', mode: 'lines', name: TEXT.linear, x: back, y: r.linear, line: { dash: 'dash' } },
      { type: 'scatter', mode: 'lines', name: TEXT.tanh, x: back, y: r.tanh }
    ], { title: { text: TEXT.norms_title }, xaxis: { title: { text: TEXT.steps_axis } },
         yaxis: { title: { text: 'log10' } }, height: 340, margin: { l: 60, r: 20, t: 40, b: 40 } });
  }
  for (const key of ['theta', 's', 'k', 'T']) document.getElementById('mx-' + key).addEventListener('input', draw);
  window.rnngradMatrixExplorer = { compute: compute, draw: draw };
  draw();
})();
"""


def _footer() -> str:
    return t(
        "Made by rnngrad. Every number on this page is in results.json; figures/ holds a PNG "
        "and an SVG of each figure."
    )


def _explorer_text() -> str:
    """The explorers' words in the page's language, as a JSON object for their scripts."""
    text = {
        "gradient": t("log10 |dy/dh_k|"), "bound": t("log10 bound"),
        "explorer_title": t("explorer: log10 |dy/dh_k| and its bound"),
        "eigenvalues": t("eigenvalues"), "singular_values": t("singular values"),
        "largest_power": t("largest ||W^j||"), "unit_circle": t("unit circle"),
        "eigenvalues_of_w": t("eigenvalues of W"), "linear": t("linear ||dh_T/dh_k||"),
        "tanh": t("tanh ||dh_T/dh_k||"),
        "norms_title": t("log10 of the norms against the number of steps"),
        "steps_axis": t("j = T - k (steps)"),
    }  # fmt: skip
    return json.dumps(text, ensure_ascii=False).replace("</", "<\\/")


def _matrix_controls() -> str:
    sliders = [("theta", 0, 3.14, 0.01, 0.3), ("s", 0.5, 1.5, 0.01, 0.95),
               ("k", 0, 10, 0.1, 4.0), ("T", 2, 100, 1, 60)]  # fmt: skip
    names = {"theta": t("rotation θ"), "s": t("scale s"), "k": t("shear k"), "T": "T"}
    parts = [
        f'<label>{names[key]} = <span id="mx-{key}-value">{value}</span>'
        f'<input type="range" id="mx-{key}" min="{low}" max="{high}" step="{step}" '
        f'value="{value}"></label>'
        for key, low, high, step, value in sliders
    ]
    return (
        "<h3>"
        + t("Explorer: a 2 x 2 matrix W = V (s R(θ)) V<sup>-1</sup>, V = [[1, k], [0, 1]]")
        + "</h3><p>"
        + t(
            "Its eigenvalues are s e<sup>±iθ</sup> whatever the shear k; k tilts the "
            "eigenvectors towards each other. With s below 1 the eigenvalues say the gradient "
            "vanishes; raise k and watch ||W<sup>j</sup>|| grow for a while first."
        )
        + "</p>"
        '<div class="controls matrix">' + "".join(parts) + '</div><p id="mx-numbers"></p>'
        '<div class="pair"><div class="figure" id="mx-eigen"></div>'
        '<div class="figure" id="mx-growth"></div></div>'
    )


def _controls() -> str:
    sliders = [("a", -2, 2, 0.01, 0.5), ("b", -2, 2, 0.01, 1.0), ("c", -2, 2, 0.01, 0.0),
               ("d", -2, 2, 0.01, 1.0), ("T", 2, 100, 1, 3)]  # fmt: skip
    parts = []
    for key, low, high, step, value in sliders:
        parts.append(
            f'<label>{key} = <span id="ex-{key}-value">{value}</span>'
            f'<input type="range" id="ex-{key}" min="{low}" max="{high}" step="{step}" value="{value}">'
            "</label>"
        )
    return '<div class="controls">' + "".join(parts) + "</div>"


_STAGING = ".rnngrad-report-"
_RETIRED = ".rnngrad-old-"


def _is_report(folder: Path) -> bool:
    """A folder that an earlier ``rnngrad report`` wrote (its page and its numbers)."""
    return (folder / "index.html").is_file() and (folder / "results.json").is_file()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_leftovers(parent: Path) -> None:
    """Remove staging folders that a killed run left beside ``out`` (their owner is dead)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        for prefix in (_STAGING, _RETIRED):
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                owner = entry.name.removeprefix(prefix).split("-", 1)[0]
                if owner.isdigit() and not _alive(int(owner)):
                    shutil.rmtree(entry, ignore_errors=True)


def prepare_folder(out: Path, force: bool) -> None:
    """Check ``out`` before any work: what may be replaced, and that it can be written.

    ``--force`` replaces only a folder that holds an earlier report, and never the
    working directory, one of its parents, the home folder or a symbolic link
    (which is refused rather than followed: the report would land elsewhere).
    Staging folders left by a killed run beside ``out`` are removed.

    Raises:
        InvalidInputError: ``out`` is a non-empty folder (without ``force``), a
            file, a symbolic link, the working directory or one of its parents,
            a folder that is not a report (with ``force``), or its parent
            cannot be written.
    """
    if out.is_symlink():
        raise InvalidInputError(
            f"{out} is a symbolic link; give the folder itself as --out ({os.path.realpath(out)})"
        )
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    protected = {cwd, *cwd.parents, Path.home().resolve(), Path(resolved.anchor)}
    if resolved in protected:
        raise InvalidInputError(
            f"--out {out} is the working directory, one of its parents or the home folder; "
            "give the report a folder of its own, such as --out rnngrad-report"
        )
    if out.exists():
        if not out.is_dir():
            raise InvalidInputError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not force:
                raise InvalidInputError(
                    f"{out} exists and is not empty; pass --force to replace it"
                )
            if not _is_report(out):
                raise InvalidInputError(
                    f"{out} holds files that are not an rnngrad report; --force replaces only "
                    "an earlier report: choose another --out"
                )
    parent = resolved.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".rnngrad-", dir=parent)
        os.rmdir(probe)
    except OSError as error:
        raise InvalidInputError(f"{out}: cannot be written ({error.strerror or error})") from None
    _clean_leftovers(parent)


def _swap_into_place(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out``; an earlier report is moved aside first and removed last,
    so that at every moment one whole report (old or new) exists."""
    retired = None
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f"{_RETIRED}{os.getpid()}-", dir=out.parent))
        os.rmdir(retired)
        os.replace(out, retired)
    try:
        os.replace(staging, out)
    except BaseException:
        if retired is not None:
            os.replace(retired, out)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


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
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{os.getpid()}-", dir=parent))
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
        for section in sections:
            verdict = section.verdict or "none"
            body.append(f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>')
            body.append(
                f'<p class="verdict {html.escape(verdict)}">{html.escape(section.sentence)}</p>'
            )
            if section.explanation:
                body.append(f'<div class="explanation">{section.explanation}</div>')
            if section.key == "scalar":
                body.append(_controls() + '<div class="figure" id="explorer"></div>')
            if section.key == "spectrum" and "matrix_explorer_inputs" in section.numbers:
                body.append(_matrix_controls())
            choices = [t.name for f in section.figures if f.selectable for t in f.traces
                       if not t.fixed]  # fmt: skip
            if choices:
                options = "".join(
                    f'<option value="{html.escape(name)}">{html.escape(name)}</option>'
                    for name in dict.fromkeys(choices)
                )
                first = next(i for i, f in enumerate(section.figures) if f.selectable)
            for index, figure in enumerate(section.figures):
                if choices and index == first:
                    body.append(
                        f'<p class="selector"><label>{html.escape(t("W_hh block:"))} '
                        f'<select class="block-selector" '
                        f'data-section="{section.key}">{options}</select></label></p>'
                    )
                specs[figure.id] = plotly_spec(figure)
                save_static(figure, staging / "figures")
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
                }
                for s in sections
            },
            "figures": specs,
        }
        payload = json.dumps(results, allow_nan=False).replace("</", "<\\/")
        nav = " ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
        page = (
            f"<!DOCTYPE html><html lang='{current_language()}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>{katex_head()}"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>{''.join(body)}"
            f"<footer>{html.escape(_footer())}</footer>"
            f"<script>const REPORT = {payload};\nconst TEXT = {_explorer_text()};\n"
            "for (const [id, spec] of Object.entries(REPORT.figures)) {"
            " Plotly.newPlot('fig-' + id, spec.data, spec.layout, {responsive: true}); }\n"
            f"{_SELECTOR}\n"
            f"REPORT.explorer_inputs = REPORT.sections.scalar.numbers.explorer_inputs;\n{_EXPLORER}\n"
            + (
                _MATRIX_EXPLORER
                if any("matrix_explorer_inputs" in s.numbers for s in sections)
                else ""
            )
            + f"\n{RENDER_MATH}</script>"
            "</body></html>"
        )
        (staging / "index.html").write_text(page)
        (staging / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False))
        os.chmod(staging, 0o755)
        _swap_into_place(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(target, _REPORT_BYTES) from None
        raise
    return out / "index.html"
