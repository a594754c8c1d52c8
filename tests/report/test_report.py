"""The report: its files, its numbers, and the page in a real (headless) Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnngrad import scalar_chain_rule
from rnngrad.logspace import format_signed_log10
from rnngrad.report.build import build_sections
from rnngrad.report.folder import prepare_folder
from rnngrad.report.page import write_report
from rnngrad.report.sections.textbook import explorer_inputs
from rnngrad.report.sections.textbook import explorer_matrix as explorer_matrix_of
from tests.cli.test_cli import run, strict_json

SECTIONS = ["scalar", "activations", "spectrum", "profile", "lyapunov", "lab"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "page"
    write_report(build_sections(quick=True), out, "test report")
    return out


def test_files_and_numbers(report: Path) -> None:
    assert (report / "index.html").stat().st_size > 1_000_000  # plotly.js is inlined
    results = json.loads((report / "results.json").read_text())
    assert list(results["sections"]) == SECTIONS
    for key in SECTIONS:
        assert results["sections"][key]["sentence"]
    figures = results["figures"]
    for name in figures:
        assert (report / "figures" / f"{name}.png").stat().st_size > 0
        assert (report / "figures" / f"{name}.svg").stat().st_size > 0
    # The explorer draws the scalar curve live; the static chart is a file, not a repeat.
    assert "scalar_chain_rule" not in figures
    assert (report / "figures" / "scalar_chain_rule.png").stat().st_size > 0
    textbook = results["sections"]["scalar"]["numbers"]["textbook"]
    np.testing.assert_allclose(textbook["dy_dh"], scalar_chain_rule().dy_dh)
    assert (
        "http" not in (report / "index.html").read_text().split("<script>")[0]
    )  # no remote assets


def test_an_existing_folder_is_refused_and_nothing_half_written(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    from rnngrad.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--force"):
        prepare_folder(tmp_path / "busy", force=False)
    done = run("report", "--out", str(tmp_path / "busy"), "--quick")
    assert done.returncode == 2 and "--force" in done.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rnngrad")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "lstm:input=2,hidden=3", "--state-dict", "/no/file.pt"], "no such file"),
        (["--out", "/proc/forbidden/report"], "cannot be written"),
        (["--state-dict", "x.pt"], "needs --model"),
        (["--model", "examples/classifier.py:Classifier"], "needs its input"),
        (["--lab", "/no/sweep"], "results.parquet"),
    ],
)
def test_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    extra = [] if "--out" in args else ["--out", str(tmp_path / "r")]
    done = run("report", "--quick", *args, *extra)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_report_of_a_model(tmp_path: Path) -> None:
    done = run(
        "report",
        "--model",
        "gru:input=3,hidden=8,layers=2",
        "--quick",
        "--out",
        str(tmp_path / "r"),
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    spectrum = results["sections"]["spectrum"]["numbers"]
    assert "W_hh block layer 1, gate z" in spectrum
    assert spectrum["all layers"]["verdict"] == results["sections"]["spectrum"]["verdict"]
    assert "page:" in done.stdout


def test_report_of_a_model_of_ones_own(tmp_path: Path) -> None:
    """The classifier from its file, token ids, labels and cross-entropy on its head: the
    profile section holds the model's own numbers, each direction in its own order."""
    import numpy as np

    from rnngrad import gradient_profile
    from tests.examples_loader import EXAMPLES, load_example

    np.save(tmp_path / "tokens.npy", np.arange(60, dtype=np.int64).reshape(3, 20) % 17)
    np.save(tmp_path / "labels.npy", np.array([0, 1, 3], dtype=np.int64))
    args = '{"vocab": 17, "embed": 4, "hidden": 5}'
    done = run(
        "report", "--model", f"{EXAMPLES / 'classifier.py'}:Classifier", "--model-args", args,
        "--input", str(tmp_path / "tokens.npy"), "--target", str(tmp_path / "labels.npy"),
        "--loss", "cross-entropy", "--quick", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    sections = results["sections"]
    # The reader's model first, the textbook example last, as an appendix.
    assert list(sections) == ["profile", "spectrum", "lyapunov", "activations", "lab", "scalar"]
    assert sections["profile"]["title"] == "1. The gradient profile"
    assert sections["scalar"]["title"].startswith("Appendix: the scalar chain rule")
    numbers = sections["profile"]["numbers"]
    spectra = sections["lyapunov"]["numbers"]
    measured = [key for key in spectra if "layer" in key]
    assert sorted(measured) == ["layer 0", "layer 0 reverse", "layer 1", "layer 1 reverse"]
    # The verdict is the model's own: chaotic only if one of its directions has lambda_1 > 0,
    # whatever the random reference network does.
    largest = max(spectra[key]["lambda1"] for key in measured)
    assert sections["lyapunov"]["verdict"] == ("chaotic" if largest > 0 else "contracting")
    # Legends name layers and directions; the model's file and class are in the header only.
    for spec in results["figures"].values():
        for trace in spec["data"]:
            assert "classifier.py" not in trace["name"] and len(trace["name"]) <= 45, trace["name"]
        if spec["layout"]["yaxis"].get("type") == "log":
            assert spec["layout"]["yaxis"]["exponentformat"] == "power"
    assert "classifier.py:Classifier" in results["title"]
    import torch

    torch.manual_seed(0)
    model = load_example("classifier").Classifier(vocab=17, embed=4, hidden=5).eval()
    labels = torch.tensor([0, 1, 3])
    expected = gradient_profile(
        model,
        torch.from_numpy(np.load(tmp_path / "tokens.npy")),
        loss=lambda logits: torch.nn.functional.cross_entropy(logits, labels),
    )
    entry = next(v for k, v in numbers.items() if k.endswith("layer 1 reverse"))
    assert entry["summary_order"].startswith("t = 1..T")
    assert entry["verdict"] == expected.layer(1, 1).verdict.label
    np.testing.assert_allclose(entry["grad_norm"], expected.layer(1, 1).mean_grad_norm, rtol=1e-5)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _open_page(
    playwright: Any, folder: Path, width: int, errors: list[str], *, console_errors: bool = False
) -> tuple[Any, Any]:
    """Chromium (headless, offline) on ``folder/index.html`` at ``width`` x 900 pixels; the
    page's uncaught errors (and, with ``console_errors``, its console errors) go to ``errors``."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )  # fmt: skip
    page = browser.new_page(viewport={"width": width, "height": 900})
    if console_errors:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((folder / "index.html").as_uri())
    return browser, page


def _set_sliders(page: Any, prefix: str, values: dict[str, float]) -> None:
    page.evaluate(
        """([prefix, values]) => { for (const [key, value] of Object.entries(values)) {
             const slider = document.getElementById(prefix + '-' + key);
             slider.value = value; slider.dispatchEvent(new Event('input')); } }""",
        [prefix, values],
    )


def _explorer_readout(page: Any) -> dict[str, Any]:
    """What the scalar explorer shows now: its verdict, sentence, formula and table."""
    result: dict[str, Any] = page.evaluate(
        """() => ({label: document.getElementById('ex-verdict').dataset.label,
                   sentence: document.getElementById('ex-verdict').textContent,
                   formula: document.getElementById('ex-formula').innerText,
                   rows: Array.from(document.querySelectorAll('#ex-table tbody tr')).map(
                     r => Array.from(r.cells).map(c => c.textContent))})"""
    )
    return result


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it)")
def test_page_renders_in_chromium_and_the_explorer_matches_python(
    report: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, report, 1100, errors, console_errors=True)
        # the figures, the scalar explorer and the matrix explorer's two plots
        figure_count = len(json.loads((report / "results.json").read_text())["figures"]) + 3
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot').length >= {figure_count}", timeout=30000
        )
        for key in SECTIONS:
            assert page.locator(f"section#{key} > p.verdict").inner_text().strip()
        plotted = page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.data.length)"
        )
        assert len(plotted) == figure_count and all(n > 0 for n in plotted)
        values = {"a": 1.3, "b": 0.7, "c": -0.2, "d": 1.5, "T": 40}
        page.evaluate(
            """values => { for (const [key, value] of Object.entries(values)) {
                 const slider = document.getElementById('ex-' + key);
                 slider.value = value; slider.dispatchEvent(new Event('input')); } }""",
            values,
        )
        live = _explorer_readout(page)
        widths = page.evaluate(
            """Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => {
                 const legend = d.querySelector('g.legend');
                 return [legend ? legend.getBBox().width : 0, d.getBoundingClientRect().width];
               })"""
        )
        assert all(legend <= plot / 3 for legend, plot in widths), widths
        # The saturation note's claim: a = 1.5 vanishes with the inputs, explodes without.
        saturation = {}
        for b in (1.0, 0.0):
            _set_sliders(page, "ex", {"a": 1.5, "b": b, "c": 0.0, "d": 1.0, "T": 30})
            saturation[b] = _explorer_readout(page)["label"]
        _set_sliders(page, "ex", values)
        # Every formula rendered by KaTeX, no TeX left as text.
        assert page.evaluate("document.querySelectorAll('.katex').length") >= 20
        text = page.evaluate("document.body.innerText")
        assert not [m for m in ("\\(", "\\[", "\\frac", "\\prod") if m in text], text[:300]
        matrix_values = {"theta": 0.7, "s": 0.97, "m": 6.0, "T": 80}
        page.evaluate(
            """values => { for (const [key, value] of Object.entries(values)) {
                 const slider = document.getElementById('mx-' + key);
                 slider.value = value; slider.dispatchEvent(new Event('input')); } }""",
            matrix_values,
        )
        plotted_eigen = page.evaluate("document.getElementById('mx-eigen').data[1]")
        growth = page.evaluate("document.getElementById('mx-growth').data.map(d => d.y)")
        shown = page.evaluate("document.getElementById('mx-numbers').textContent")
        # theta = 0: W = sI whatever the shear, as the explorer's text says.
        identity = page.evaluate(
            "window.rnngradMatrixExplorer.compute({theta: 0, s: 0.9, m: 8, T: 5})"
        )
        curve = page.evaluate("document.getElementById('explorer').data[0].y")
        bound = page.evaluate("document.getElementById('explorer').data[1].y")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()
    x = explorer_inputs()[:40]
    expected = scalar_chain_rule(x, a=1.3, b=0.7, c=-0.2, d=1.5)
    np.testing.assert_allclose(curve, expected.log10_abs_dy_dh, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(bound, expected.log10_bound, rtol=1e-9, atol=1e-9)
    # The live verdict, sentence, formula and table are rnngrad's for the sliders' values.
    assert live["label"] == expected.verdict.label
    assert live["sentence"] == expected.verdict.sentence
    factors = [float(row[4]) for row in live["rows"][1:]]
    np.testing.assert_allclose(factors, 10.0**expected.log10_abs_factors, atol=5e-5)
    gradients = [float(row[5]) for row in live["rows"]]
    np.testing.assert_allclose(np.log10(gradients), expected.log10_abs_dy_dh, atol=1e-3)
    assert len(live["rows"]) == 40 and "\\frac" not in live["formula"]
    assert format_signed_log10(1.0, float(expected.log10_abs_dy_dh[0])) == live["rows"][0][5]
    for b, label in saturation.items():
        assert label == scalar_chain_rule(explorer_inputs()[:30], a=1.5, b=b).verdict.label
    assert saturation == {1.0: "vanishing", 0.0: "exploding"}
    np.testing.assert_allclose(identity["W"], 0.9 * np.eye(2), atol=1e-12)
    np.testing.assert_allclose(identity["singular"], [0.9, 0.9], atol=1e-12)
    np.testing.assert_allclose(explorer_matrix_of(0.0, 0.9, 8.0), 0.9 * np.eye(2), atol=1e-12)
    # The matrix explorer against rnngrad: eigenvalues, ||W^j|| and ||dh_T/dh_k|| of the
    # linear and the tanh network on the page's inputs.
    from rnngrad.report.sections.textbook import explorer_matrix, matrix_explorer_inputs
    from rnngrad.theory.jacobians import elman_jacobian_products
    from rnngrad.theory.spectrum import recurrent_spectrum, transient_growth

    W = explorer_matrix(0.7, 0.97, 6.0)
    eigenvalues = recurrent_spectrum(W).eigenvalues
    assert abs(abs(eigenvalues[0]) - 0.97) < 1e-12  # s e^(+-i theta) whatever the shear
    order = lambda z: (z.real, z.imag)  # noqa: E731
    page_eigen = sorted(
        (complex(x, y) for x, y in zip(plotted_eigen["x"], plotted_eigen["y"], strict=True)),
        key=order,
    )
    np.testing.assert_allclose(page_eigen, sorted(eigenvalues, key=order), atol=1e-9)
    powers = transient_growth(W, max_steps=80).log10_norms
    np.testing.assert_allclose(growth[0][: powers.size], powers[:80], atol=1e-9)
    direct = [np.log10(np.linalg.norm(np.linalg.matrix_power(W, j), 2)) for j in range(1, 81)]
    np.testing.assert_allclose(growth[0], direct, atol=1e-9)
    inputs = np.array(matrix_explorer_inputs())[:80]
    for index, activation in ((1, "identity"), (2, "tanh")):
        reference = elman_jacobian_products(W, inputs, activation=activation).log10_norm
        np.testing.assert_allclose(growth[index], reference, atol=1e-9)
    assert "rho = 0.970" in shown
    assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_a_model_whose_exponents_are_not_numbers_gets_no_borrowed_verdict() -> None:
    """A relu RNN whose state is exactly zero has exponents -inf: the Lyapunov section says
    it gives no verdict instead of taking the random reference network's."""
    import torch

    rnn = torch.nn.RNN(2, 3, nonlinearity="relu")
    with torch.no_grad():
        for parameter in rnn.parameters():
            parameter.zero_()
        rnn.bias_ih_l0.fill_(-1.0)
    sections = {s.key: s for s in build_sections(module=rnn, quick=True)}
    lyapunov = sections["lyapunov"]
    assert lyapunov.verdict is None and "no verdict" in lyapunov.sentence
    assert lyapunov.numbers["the recurrence"]["lambda1"] is None
    reference = next(v for k, v in lyapunov.numbers.items() if k.startswith("random"))
    assert reference["lambda1"] is not None


def test_long_titles_wrap_and_log_axes_use_powers_of_ten() -> None:
    from rnngrad.show.figure import Figure, plotly_spec, wrap_title

    title = "per-time-step gradient ||dL/dh_t|| of every layer and direction of the model"
    lines = wrap_title(title, 30).split("<br>")
    assert len(lines) > 1 and all(len(line) <= 30 for line in lines)
    assert " ".join(lines) == title
    layout = plotly_spec(Figure("f", title, "t", "g", log_y=True))["layout"]
    assert layout["yaxis"]["type"] == "log" and layout["yaxis"]["exponentformat"] == "power"
    assert "<br>" in layout["title"]["text"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it)")
def test_the_page_of_a_bidirectional_classifier_in_chromium(tmp_path: Path) -> None:
    """The model page of a 2-layer bidirectional LSTM classifier: the state Jacobian's
    singular values per layer and direction head the spectrum section, its verdict is
    theirs, the W_hh selector shows one gate block at a time (and the unit circle), and no
    log axis reads with an SI prefix."""
    from playwright.sync_api import sync_playwright

    from tests.examples_loader import load_example

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = load_example("classifier").Classifier(vocab=17, embed=4, hidden=5).eval()
    tokens = torch.arange(60).reshape(3, 20) % 17
    out = tmp_path / "page"
    sections = build_sections(module=model, name="Classifier", inputs=tokens, quick=True)
    write_report(sections, out, "rnngrad report: Classifier")
    spectrum = next(s for s in sections if s.key == "spectrum")
    systems = ["layer 0", "layer 0 reverse", "layer 1", "layer 1 reverse"]
    assert [t.name for t in spectrum.figures[0].traces] == systems
    verdicts = {spectrum.numbers[name]["verdict"] for name in systems}
    assert spectrum.verdict == (verdicts.pop() if len(verdicts) == 1 else "mixed")
    for name in systems:  # the growth rule applied to the stored number, by hand
        log10 = spectrum.numbers[name]["log10_sigma1_full_span"]
        rate = 10 ** (log10 / 59)
        expected = "vanishing" if rate < 1 / 1.01 else "exploding" if rate > 1.01 else "neither"
        assert spectrum.numbers[name]["verdict"] == expected
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, out, 1280, errors)
        count = len(json.loads((out / "results.json").read_text())["figures"])
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot').length >= {count}", timeout=30000
        )
        shown = "Array.from(document.querySelectorAll('div[data-selectable]')).map(d => " \
                "d.data.filter(t => t.visible !== false).map(t => t.name))"  # fmt: skip
        assert page.evaluate(shown)[0] == ["unit circle", "layer 0, gate i"]
        page.select_option("select.block-selector", "layer 1 reverse, gate f")
        page.wait_for_timeout(200)
        assert page.evaluate(shown) == [["unit circle", "layer 1 reverse, gate f"],
                                        ["layer 1 reverse, gate f"],
                                        ["layer 1 reverse, gate f"]]  # fmt: skip
        ticks = page.evaluate(
            "Array.from(document.querySelectorAll('.ytick text')).map(t => t.textContent)"
        )
        assert ticks and not [t for t in ticks if any(c in t for c in "µnpfam")], ticks
        # Nothing runs off a 1280 px page; every legend is at most a third of its plot.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        widths = page.evaluate(
            """Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => {
                 const legend = d.querySelector('g.legend');
                 return [legend ? legend.getBBox().width : 0, d.getBoundingClientRect().width];
               })"""
        )
        assert any(legend > 50 for legend, _ in widths), widths  # legends are measured
        assert all(legend <= plot / 3 for legend, plot in widths), widths
        headings = page.evaluate(
            "Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)"
        )
        assert headings[0] == "1. The gradient profile" and headings[-1].startswith("Appendix")
        browser.close()
    assert errors == []


def _tiny_sweep(folder: Path, lengths: list[int]) -> Path:
    from rnngrad.lab.config import TrainConfig
    from rnngrad.lab.grid import Sweep
    from rnngrad.lab.sweep import run_sweep

    configs = tuple(
        TrainConfig(task="adding", seq_len=length, cell=cell, init=init, hidden=4, batch=8,
                    steps=steps, eval_every=5, eval_batch=16, profile_every=100, seed=seed)
        for length in lengths
        for cell, init, steps in (("rnn", "default", 15), ("relu", "identity", 10))
        for seed in (0, 1, 2)
    )  # fmt: skip
    run_sweep(Sweep(("seq_len", "cell", "seed"), configs, "test"), folder, workers=2)
    return folder


def _run_of(folder: Path, cell: str, seed: int) -> Path:
    """The run folder of ``cell`` at ``seed`` in the sweep ``folder``."""
    for folder_of_run in (folder / "runs").iterdir():
        summary = json.loads((folder_of_run / "summary.json").read_text())
        if summary["cell"] == cell and summary["seed"] == seed:
            return folder_of_run
    raise AssertionError(f"no run of {cell} at seed {seed}")


def _mark_solved(folder: Path, cell: str, seed: int) -> None:
    """Record one run of ``folder`` as solved at its last step (summary and results)."""
    from rnngrad.lab.records import read_table_rows, write_json, write_table

    rows = read_table_rows(folder / "results.parquet")
    for row in rows:
        if row["cell"] == cell and row["seed"] == seed:
            row["solved"], row["solved_at"] = True, row["steps"]
    write_table(rows, folder / "results")
    run = _run_of(folder, cell, seed)
    summary = json.loads((run / "summary.json").read_text())
    summary["solved"], summary["solved_at"] = True, summary["steps"]
    write_json(summary, run / "summary.json")


def test_the_remedies_section_draws_median_curves_bands_and_shares(tmp_path: Path) -> None:
    """Learning curves at the longest T are the median over seeds of each run's held-out
    loss (read here from the runs' CSV records), the range shaded; one T gives bars of the
    solved share on a 0..1 axis, several T give lines against T, and no configuration solved
    gives no share at all but a sentence saying so; the spectral radius over training too."""
    import csv

    from rnngrad.report.sections.lab import _Run, _series, lab_section

    folder = _tiny_sweep(tmp_path / "one", [6])
    section = lab_section(folder)
    assert section.verdict == "unsolved" and "no share of solved seeds" in section.sentence
    curves, radius = section.figures
    names = [t.name for t in curves.traces if not t.fill]
    assert names == ["tanh RNN (3 seeds)", "ReLU RNN (identity) (3 seeds)"]
    assert [t.fill for t in curves.traces[:3]] == ["edge", "band", ""]
    assert {t.group for t in curves.traces[:3]} == {"tanh RNN"}
    losses: dict[str, list[list[float]]] = {"rnn": [], "relu": []}
    for run_folder in sorted((folder / "runs").iterdir()):
        summary = json.loads((run_folder / "summary.json").read_text())
        with open(run_folder / "evaluations.csv", newline="") as handle:
            losses[summary["cell"]].append([float(r["loss"]) for r in csv.DictReader(handle)])
    rnn = np.array(losses["rnn"])  # 15 steps, evaluated at 5, 10, 15
    np.testing.assert_allclose(curves.traces[2].y, np.median(rnn, axis=0), rtol=1e-12)
    np.testing.assert_allclose(curves.traces[0].y, rnn.min(axis=0), rtol=1e-12)
    np.testing.assert_allclose(curves.traces[1].y, rnn.max(axis=0), rtol=1e-12)
    relu = np.array(losses["relu"])
    np.testing.assert_allclose(curves.traces[5].y, np.median(relu, axis=0), rtol=1e-12)
    # A seed that stopped early (solved) keeps its last loss in the median.
    early = _Run(folder, {}, [{"step": 5, "loss": 1.0}])
    late = _Run(folder, {}, [{"step": 5, "loss": 3.0}, {"step": 10, "loss": 2.0}])
    steps, table = _series([early, late], "loss")
    assert steps == [5, 10] and table.tolist() == [[1.0, 1.0], [3.0, 2.0]]
    assert [t.name for t in radius.traces] == ["tanh RNN", "ReLU RNN (identity)"]
    assert all(r is not None and r > 0 for r in section.numbers["curves"]["tanh RNN"]
               ["median_spectral_radius"])  # fmt: skip
    _mark_solved(folder, "rnn", 1)
    solved = lab_section(folder)
    assert solved.verdict == "solved" and solved.sentence.count("tanh RNN") == 1
    share = solved.figures[1]
    assert [t.kind for t in share.traces] == ["bar", "bar"] and share.y_range == (0.0, 1.0)
    bars = {t.x[0]: t.y[0] for t in share.traces}
    assert bars == {"tanh RNN": pytest.approx(1 / 3), "ReLU RNN (identity)": 0.0}
    several = lab_section(_tiny_sweep(tmp_path / "two", [4, 6]))
    assert [f.id for f in several.figures] == ["lab_learning_curves", "lab_spectral_radius"]
    _mark_solved(tmp_path / "two", "relu", 0)
    lines = lab_section(tmp_path / "two").figures[1]
    assert [t.kind for t in lines.traces] == ["scatter", "scatter"]
    assert [list(t.x) for t in lines.traces] == [[4, 6], [4, 6]]
    assert "T = 6" in several.figures[0].title


def test_the_remedies_table_reads_each_configurations_trained_model(tmp_path: Path) -> None:
    """Each configuration's row gives the verdict, decay and horizon of the gradient carried
    back through its first seed's trained model: the same numbers as a profile of the
    checkpoint's weights loaded here by hand into a fresh model, on the same batch."""
    from rnngrad import gradient_profile
    from rnngrad.lab.models import LabModel
    from rnngrad.lab.tasks import make_task
    from rnngrad.report.sections.lab import lab_section

    folder = _tiny_sweep(tmp_path / "sweep", [6])
    section = lab_section(folder)
    header, *rows = section.table
    assert header[0] == "configuration" and [row[0] for row in rows] == [
        "tanh RNN", "ReLU RNN (identity)"]  # fmt: skip
    assert [row[1] for row in rows] == ["0 of 3", "0 of 3"]
    task = make_task("adding", 6)
    for cell, name in (("rnn", "tanh RNN"), ("relu", "ReLU RNN (identity)")):
        state = torch.load(_run_of(folder, cell, 0) / "checkpoint.pt", weights_only=True)
        init = "identity" if cell == "relu" else "default"
        model = LabModel(cell, 2, 4, 1, per_step=False, init=init, max_length=6)
        model.load_state_dict(state["model"])
        batch = task.sample(16, torch.Generator().manual_seed(7))
        layer = gradient_profile(
            model, batch.inputs, loss=lambda out, b=batch: task.loss(out, b.targets)
        ).layers[0]
        entry = section.numbers["trained"][name]
        assert entry["verdict"] == layer.verdict.label and entry["horizon"] == layer.horizon
        assert entry["decay_rate"] == pytest.approx(layer.decay_rate, rel=1e-9)
        assert entry["carried_by"] == "h"


def test_the_built_in_page_runs_its_own_labelled_sweep(report: Path) -> None:
    results = json.loads((report / "results.json").read_text())
    lab = results["sections"]["lab"]
    assert lab["verdict"] in ("solved", "unsolved") and "own sweep" in lab["sentence"]
    assert len(lab["numbers"]["curves"]) == 4
    assert {"lab_learning_curves", "lab_spectral_radius"} <= set(results["figures"])


def test_the_derivation_carries_the_examples_own_numbers(report: Path) -> None:
    """The scalar section's displayed equation substitutes tanh'(z_t) = 1 - tanh(z_t)^2 of
    the textbook example, recomputed here by hand, and its product dy/dh_1."""
    import math

    from rnngrad.theory.scalar import TEXTBOOK_EXAMPLE

    results = json.loads((report / "results.json").read_text())
    text = results["sections"]["scalar"]["explanation"]
    a, b, c, d = (float(TEXTBOOK_EXAMPLE[k]) for k in "abcd")  # type: ignore[arg-type]
    h, derivatives = 0.0, []
    for x in TEXTBOOK_EXAMPLE["x"]:  # type: ignore[union-attr]
        h = math.tanh(a * h + b * x + c)
        derivatives.append(1 - h * h)
    for value in derivatives[1:]:
        assert f"({a:.4f} \\times {value:.4f})" in text
    assert f"= {d * math.prod(a * v for v in derivatives[1:]):.4f}," in text
    for key in ("activations", "spectrum", "profile", "lyapunov", "lab"):
        assert "\\[" in results["sections"][key]["explanation"] or key in ("activations", "lab")


@pytest.fixture(scope="module")
def korean_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnngrad.report.page import page_title

    out = tmp_path_factory.mktemp("report-ko") / "page"
    write_report(build_sections(quick=True, lang="ko"), out, page_title(None, "ko"), lang="ko")
    return out


def test_the_korean_page_has_the_same_numbers(report: Path, korean_report: Path) -> None:
    """--lang ko changes the words, never the numbers: every section's numbers equal the
    English page's."""
    english = json.loads((report / "results.json").read_text())["sections"]
    korean = json.loads((korean_report / "results.json").read_text(encoding="utf-8"))["sections"]
    assert list(korean) == list(english)
    for key in english:
        assert korean[key]["numbers"] == english[key]["numbers"], key
        assert korean[key]["verdict"] == english[key]["verdict"]
        assert korean[key]["title"] != english[key]["title"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it)")
def test_the_korean_page_in_chromium(korean_report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, korean_report, 1100, errors)
        page.wait_for_function("document.querySelectorAll('.katex').length > 20", timeout=30000)
        assert page.evaluate("document.documentElement.lang") == "ko"
        headings = page.evaluate(
            "Array.from(document.querySelectorAll('h1, h2, h3')).map(h => h.textContent)"
        )
        hangul = [h for h in headings if any("\uac00" <= c <= "\ud7a3" for c in h)]
        assert len(hangul) == len(headings), headings
        text = page.evaluate("document.body.innerText")
        for english in ("The scalar chain rule", "The gradient profile", "unit circle",
                        "Backpropagation through time", "W_hh block:"):  # fmt: skip
            assert english not in text
        legend = page.evaluate("document.getElementById('mx-eigen').data[0].name")
        assert legend == "단위원"
        page.screenshot(path=str(tmp_path / "ko.png"))
        browser.close()
    assert errors == []


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("non-normal (rho 0.9)", ["nonnormal", "--radius", "0.9"]),
        ("contracting (random, rho 0.8)", ["random", "--radius", "0.8"]),
    ],
)
def test_the_pages_spectrum_numbers_are_those_of_spectrum_json(
    report: Path, name: str, example: list[str]
) -> None:
    """One JSON contract: the built-in page's spectrum section keeps the fields of
    ``rnngrad spectrum --json`` for the same matrix, equal to the last bit."""
    from rnngrad.report.sections.spectrum import SPECTRUM_FIELDS

    page = json.loads((report / "results.json").read_text())["sections"]["spectrum"]["numbers"]
    done = run("spectrum", "--example", *example, "--hidden", "64", "--seed", "0", "--json")
    assert done.returncode == 0, done.stderr
    cli = strict_json(done.stdout)
    assert {key: page[name][key] for key in SPECTRUM_FIELDS} == {
        key: cli[key] for key in SPECTRUM_FIELDS
    }
    assert page[name]["verdict"] == cli["verdict"]["label"]


def test_a_models_page_keeps_the_numbers_of_profile_and_lyapunov_json(tmp_path: Path) -> None:
    """The page about a model of one's own and ``rnngrad profile --json`` / ``rnngrad
    lyapunov --json`` with the same weights, input and seed give the same numbers."""
    import torch

    from rnngrad.report.sections.profile import PROFILE_FIELDS

    torch.manual_seed(3)
    module = torch.nn.GRU(3, 6, num_layers=2)
    torch.save(module.state_dict(), tmp_path / "gru.pt")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((30, 4, 3)))
    model = ["--model", "gru:input=3,hidden=6,layers=2", "--state-dict", str(tmp_path / "gru.pt")]
    given = [*model, "--input", str(tmp_path / "x.npy")]
    done = run("report", *given, "--quick", "--out", str(tmp_path / "page"))
    assert done.returncode == 0, done.stderr
    page = json.loads((tmp_path / "page" / "results.json").read_text())["sections"]
    done = run("profile", *given, "--json")
    assert done.returncode == 0, done.stderr
    profile = strict_json(done.stdout)
    for layer in profile["layers"]:
        numbers = page["profile"]["numbers"][f"layer {layer['layer']}"]
        assert {key: numbers[key] for key in PROFILE_FIELDS} == {
            key: layer[key] for key in PROFILE_FIELDS
        }
        assert numbers["verdict"] == layer["verdict"]["label"]
    assert profile["layers"] and len(page["profile"]["numbers"]) == len(profile["layers"])
    quick = ["--steps", "150", "--warmup", "100", "--batch", "2", "--seed", "0"]
    done = run("lyapunov", *model, *quick, "--input", "random", "--json")
    assert done.returncode == 0, done.stderr
    lyapunov = strict_json(done.stdout)
    numbers = page["lyapunov"]["numbers"]["the recurrence"]
    assert numbers["exponents"] == lyapunov["exponents"]
    assert numbers["kaplan_yorke_dim"] == lyapunov["kaplan_yorke_dim"]
