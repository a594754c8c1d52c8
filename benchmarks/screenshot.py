"""The README's screenshots of the report: the first screen of the built-in page and of
the page about a model (the example classifier, a 2-layer bidirectional LSTM), and the
built-in page in Korean.

Run: ``make screenshot`` (or ``.venv/bin/python benchmarks/screenshot.py docs``); needs
Chromium (Debian's package) and Playwright (a test dependency). Writes
``report.png``, ``report-model.png`` and ``report-ko.png`` into the folder.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from rnngrad.report.build import build_sections
from rnngrad.report.page import page_title, write_report

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _classifier() -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("classifier", EXAMPLES / "classifier.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model: torch.nn.Module = module.Classifier(vocab=100).eval()
    return model


def _photograph(page_path: Path, target: Path, chromium: str) -> None:
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
        "report.png": (build_sections(quick=True), page_title(None)),
        "report-ko.png": (build_sections(quick=True, lang="ko"), page_title(None, "ko")),
        "report-model.png": (
            build_sections(module=_classifier(), name="examples/classifier.py:Classifier",
                           inputs=tokens, loss=loss, quick=True),
            "rnngrad report: examples/classifier.py:Classifier",
        ),
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        for name, (sections, title) in pages.items():
            lang = "ko" if name.endswith("-ko.png") else "en"
            folder_of_page = Path(scratch) / name.removesuffix(".png")
            page_path = write_report(sections, folder_of_page, title, lang=lang)
            _photograph(page_path, out / name, chromium)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
