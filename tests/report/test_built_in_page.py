"""The built-in page at its full budget (what ``make demo`` writes): the remedy solves what
the tanh RNN cannot, and its figures read cleanly in Chromium (tick labels, one colour
per model)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from rnngrad.report.build import build_sections
from rnngrad.report.page import page_title, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The models of the page and of its sweep, and how their traces are named.
MODELS = {
    "tanh RNN": r"^tanh RNN($|[,:]| \(\d+ seeds\))",
    "LSTM (chrono:50)": r"^LSTM \(chrono:50\)($|[,:]| \(\d+ seeds\))",
    "LSTM": r"^LSTM($| \(\d+ seeds\))",
    "GRU": r"^GRU($| \(\d+ seeds\))",
}
#: The figures whose x axis counts steps or indices.
WHOLE_NUMBER_AXES = ("gradient_profile", "gradient_at_initialisation", "singular_values",
                     "transient_growth", "lyapunov_spectrum", "lab_learning_curves",
                     "lab_spectral_radius")  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built-in") / "page"
    write_report(build_sections(), out, page_title(None))
    return out


def _results(page: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((page / "results.json").read_text())
    return results


def test_the_remedy_solves_what_the_tanh_rnn_cannot(page: Path) -> None:
    """On the same task and seeds, the chrono LSTM or the GRU solves the adding problem at
    T = 50 (its held-out loss reaches the rule's 0.01) and the tanh RNN does not; the table
    beside the curves gives each trained model's carried-gradient verdict, the LSTM's path
    through its cell state; the share of solved seeds is drawn on a 0..1 axis."""
    results = _results(page)
    lab = results["sections"]["lab"]
    assert lab["verdict"] == "solved" and "T = 50" in lab["sentence"]
    assert "400 training steps" in lab["sentence"]
    rows = {row[0]: row for row in lab["table"][1:]}
    assert rows["tanh RNN"][1] == "0 of 2"
    solved = [name for name in ("LSTM (chrono:50)", "GRU") if not rows[name][1].startswith("0")]
    assert solved, rows
    for name in solved:  # the curve reaches the solved rule
        losses = [v for v in lab["numbers"]["curves"][name]["median_loss"] if v is not None]
        assert min(losses) <= 0.01
    tanh_losses = lab["numbers"]["curves"]["tanh RNN"]["median_loss"]
    assert min(v for v in tanh_losses if v is not None) > 0.01
    trained = lab["numbers"]["trained"]
    assert trained["tanh RNN"]["verdict"] == "vanishing"
    assert trained["LSTM (chrono:50)"]["carried_by"] == "c"
    share = results["figures"]["remedies"]
    assert share["layout"]["yaxis"]["range"] == [0.0, 1.0]
    # The page's models are the sweep's, named without a step count that reads as T.
    profile = results["sections"]["profile"]
    assert set(profile["numbers"]["at_initialisation"]) == {"tanh RNN", "LSTM (chrono:50)"}
    assert not [name for name in profile["numbers"] if "steps)" in name]
    start = results["figures"]["gradient_at_initialisation"]
    assert [trace["name"] for trace in start["data"]] == [
        "tanh RNN: ||dL/dh_t||", "LSTM (chrono:50): ||dL/dh_t||", "LSTM (chrono:50): ||dL/dc_t||",
    ]  # fmt: skip


def test_transient_curves_cover_every_power_and_the_mean_field_is_one_marker(page: Path) -> None:
    """||W^k|| is drawn for k = 1..200 for every matrix, the decay after the peak included;
    the mean-field prediction is lambda_1's alone: one marker at i = 1."""
    figures = _results(page)["figures"]
    for trace in figures["transient_growth"]["data"]:
        assert trace["x"] == list(range(1, 201)), trace["name"]
    contracting = figures["transient_growth"]["data"][0]["y"]
    assert contracting[-1] < 1e-10 < contracting[0]
    mean_field = [t for t in figures["lyapunov_spectrum"]["data"] if "mean-field" in t["name"]]
    assert len(mean_field) == 1 and mean_field[0]["x"] == [1] and mean_field[0]["mode"] == "markers"


def _power_of_ten(label: str) -> bool:
    label = label.replace("\u200b", "")  # Plotly's zero-width spaces around the exponent
    return label in ("1", "10") or re.fullmatch(r"10[\u2212-]?\d+", label) is not None


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it)")
def test_the_figures_read_cleanly_in_chromium(page: Path, tmp_path: Path) -> None:
    """As drawn: log axes label powers of ten only, from a power at or below the lowest
    point; step axes label whole numbers only; each model keeps one colour in every figure
    of the page, and different models have different colours; the remedies section says
    who solved the task and shows the verdicts after training."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        view = browser.new_page(viewport={"width": 1100, "height": 900})
        view.goto((page / "index.html").as_uri())
        view.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 12")
        drawn = view.evaluate(
            """Array.from(document.querySelectorAll('.plot.js-plotly-plot')).map(d => ({
                 id: d.id.slice(4), log: d.layout.yaxis.type === 'log',
                 range: d._fullLayout.yaxis.range,
                 yticks: Array.from(d.querySelectorAll('.ytick text')).map(t => t.textContent),
                 xticks: Array.from(d.querySelectorAll('.xtick text')).map(t => t.textContent),
                 traces: d.data.map(t => ({name: t.name, y: t.y,
                   color: (t.line && t.line.color) || (t.marker && t.marker.color)}))}))"""
        )
        # The remedies section, as the reader sees it: the sentence names who solved the
        # task, and the table beside the curves gives the verdicts after training.
        remedies = view.locator("section#lab > p.verdict").inner_text()
        table = view.evaluate(
            """Array.from(document.querySelectorAll('section#lab table tbody tr')).map(
                 r => Array.from(r.cells).map(c => c.textContent))"""
        )
        view.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert "solved it in at least one seed" in remedies and "tanh RNN" in remedies
    by_name = {row[0]: row for row in table}
    assert (
        by_name["tanh RNN"][1] == "0 of 2" and by_name["LSTM (chrono:50)"][5] == "the cell state c"
    )
    logs = [figure for figure in drawn if figure["log"]]
    assert len(logs) >= 5
    for figure in logs:
        labels = [label for label in figure["yticks"] if label]
        assert len(labels) >= 2 and all(_power_of_ten(label) for label in labels), figure
        lowest = min(v for t in figure["traces"] for v in (t["y"] or []) if v and v > 0)
        assert figure["range"][0] <= math.log10(lowest) + 1e-9, figure["id"]
        assert float(figure["range"][0]).is_integer(), figure["id"]
    for figure in drawn:
        if figure["id"] in WHOLE_NUMBER_AXES:
            assert all(re.fullmatch(r"[\u2212-]?\d+", label) for label in figure["xticks"] if label)
    colours: dict[str, set[str]] = {name: set() for name in MODELS}
    for figure in drawn:
        for trace in figure["traces"]:
            for name, pattern in MODELS.items():
                if re.match(pattern, trace["name"] or ""):
                    colours[name].add(trace["color"])
                    break
    assert all(len(found) == 1 for found in colours.values()), colours
    assert len({next(iter(found)) for found in colours.values()}) == len(MODELS)
