"""The README's screenshots of the report, and the tutorial's figures: the first screen of
the built-in page and of the page about a model (the example classifier, a 2-layer
bidirectional LSTM), the built-in page in Korean, a rate network's page, a Mamba model's
page, and the built-in page's PNG figures.

Run: ``make screenshot`` (or ``.venv/bin/python benchmarks/screenshot.py docs``); needs
Chromium (Debian's package) and Playwright (a test dependency). Writes
``report.png``, ``report-model.png``, ``report-ko.png``, ``report-rate.png`` (a rate
network's page) and (with the ssm extra) ``report-mamba.png`` into the folder, and the
figures the tutorial shows into its ``figures/``.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from rnngrad.rate import RateRNN
from rnngrad.report.build import build_sections
from rnngrad.report.page import page_title, write_report

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: The built-in page's figures that docs/tutorial.md shows.
TUTORIAL_FIGURES = (
    "scalar_chain_rule", "tanh_and_derivative", "eigenvalues", "transient_growth",
    "gradient_profile", "gradient_at_initialisation", "lyapunov_spectrum", "lab_learning_curves",
)  # fmt: skip


def _classifier() -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("classifier", EXAMPLES / "classifier.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model: torch.nn.Module = module.Classifier(vocab=100).eval()
    return model


def _forecaster() -> tuple[torch.nn.Module, torch.Tensor]:
    """The example Mamba forecaster (seeded) and a batch of series ``(8, 60, 3)``."""
    spec = importlib.util.spec_from_file_location("forecaster", EXAMPLES / "mamba_forecaster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    series = torch.cumsum(torch.randn(8, 60, 3, generator=torch.Generator().manual_seed(1)), 1)
    model: torch.nn.Module = module.Forecaster()
    return model, series / series.std()


def _photograph(page_path: Path, target: Path, chromium: str, section: str | None = None) -> None:
    """The first screen of the page, or of ``section`` (its id) scrolled to the top."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1100})
        page.goto(page_path.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4")
        page.wait_for_function("document.querySelectorAll('.katex').length > 0")
        if section is not None:
            page.evaluate(f"document.getElementById({section!r}).scrollIntoView()")
        page.screenshot(path=str(target))
        browser.close()
    print(f"wrote {target}")


def main(folder: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is not installed")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tokens = (torch.arange(8 * 30).reshape(8, 30) * 7) % 100
    labels = tokens[:, 0] % 4  # the classifier's cross-entropy, as the README runs it

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, labels)

    pages = {
        "report.png": (build_sections(), page_title(None)),
        "report-ko.png": (build_sections(quick=True, lang="ko"), page_title(None, "ko")),
        "report-model.png": (
            build_sections(module=_classifier(), name="examples/classifier.py:Classifier",
                           inputs=tokens, loss=loss, quick=True),
            "rnngrad report: examples/classifier.py:Classifier",
        ),
    }  # fmt: skip
    torch.manual_seed(0)
    rate = RateRNN(3, 64, delta=0.2)  # as `--model rate:input=3,hidden=64,delta=0.2` builds it
    pages["report-rate.png"] = (
        build_sections(module=rate, name="rate:input=3,hidden=64,delta=0.2", quick=True),
        "rnngrad report: rate:input=3,hidden=64,delta=0.2",
    )
    if importlib.util.find_spec("mambapy") is not None:  # the ssm extra
        forecaster, series = _forecaster()
        name = "examples/mamba_forecaster.py:Forecaster"
        pages["report-mamba.png"] = (
            build_sections(module=forecaster, name=name, inputs=series, quick=True),
            f"rnngrad report: {name}",
        )
    with tempfile.TemporaryDirectory() as scratch:
        for name, (sections, title) in pages.items():
            lang = "ko" if name.endswith("-ko.png") else "en"
            folder_of_page = Path(scratch) / name.removesuffix(".png")
            page_path = write_report(sections, folder_of_page, title, lang=lang)
            # a rate network's page is shown where it differs: its state Jacobian's section
            section = "spectrum" if name == "report-rate.png" else None
            _photograph(page_path, out / name, chromium, section)
            if name == "report.png":  # the built-in page's figures, for the tutorial
                (out / "figures").mkdir(exist_ok=True)
                for figure in TUTORIAL_FIGURES:
                    shutil.copyfile(folder_of_page / "figures" / f"{figure}.png",
                                    out / "figures" / f"{figure}.png")  # fmt: skip
                print(f"wrote {len(TUTORIAL_FIGURES)} figures into {out / 'figures'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
