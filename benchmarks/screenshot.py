"""The README's screenshot of the report page: build a quick report, photograph it.

Run: ``make screenshot`` (or ``.venv/bin/python benchmarks/screenshot.py docs/report.png``);
needs Chromium (Debian's package) and Playwright (a test dependency).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from rnngrad.report.build import build_sections
from rnngrad.report.page import write_report


def main(target: str) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is not installed")
    with tempfile.TemporaryDirectory() as folder:
        page_path = write_report(
            build_sections(quick=True), Path(folder) / "report", "rnngrad report"
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            page.goto(page_path.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4")
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=target)
            browser.close()
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/report.png")
