"""The documentation site: built from the repository, it opens from disk (``file://``),
its navigation leads to pages (not to directory listings), its mathematics is rendered,
its figures load, nothing runs off the right edge, and the tutorial's code runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_needs_no_network(site: Path) -> None:
    """Every page's scripts, styles and fonts are files of the site: no http(s) address
    is loaded (links to the web are fine)."""
    loaded = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?://[^"']+)""")
    for page in site.rglob("*.html"):
        assert not loaded.findall(page.read_text()), page.name
    assert (site / "katex" / "katex.min.js").is_file()


def test_the_home_page_is_its_own(site: Path) -> None:
    """The home page says where to start for each reader (it is not the README)."""
    home = (ROOT / "docs" / "index.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "## Where to start" in home and "## Where to start" not in readme
    assert "**A student or a teacher**" in home and "**A researcher**" in home


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it)")
def test_the_site_from_disk_in_chromium(site: Path) -> None:
    """Under file://, every link of the navigation opens a page of the site with its title
    (a folder URL would show a directory listing); the tutorial renders its mathematics
    with KaTeX, loads every figure, and fits an 800-pixel window."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})  # the sidebar shows
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((site / "index.html").as_uri())
        links = page.evaluate(
            "Array.from(document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]'))"
            ".map(a => [a.textContent.trim(), a.getAttribute('href'), a.href])"
        )
        pages = {name: (raw, href) for name, raw, href in links if not raw.startswith("#")}
        assert {"Home", "Tutorial", "API reference"} <= set(pages), pages
        for name, (raw, href) in pages.items():
            assert href.startswith("file://") and href.split("#")[0].endswith(".html"), href
            page.goto((site / "index.html").as_uri())
            page.locator(f'nav.md-nav--primary a.md-nav__link[href="{raw}"]:visible').first.click()
            page.wait_for_load_state()
            assert page.url.split("#")[0] == href.split("#")[0]
            assert "Index of" not in page.content()
            assert page.locator("article h1").count() >= 1, name
        page.goto((site / "tutorial.html").as_uri())
        page.wait_for_function("document.querySelectorAll('.katex').length > 20")
        _check_rendered(page)
        page.set_viewport_size({"width": 800, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
        browser.close()
    assert errors == []


def _check_rendered(page: Any) -> None:
    text = page.evaluate("document.querySelector('article').innerText")
    assert not [mark for mark in ("\\(", "\\[", "$$", "\\frac") if mark in text], text[:300]
    images = page.evaluate(
        "Array.from(document.querySelectorAll('article img')).map(i => [i.src, i.naturalWidth])"
    )
    assert len(images) >= 8 and all(width > 0 for _, width in images), images


def test_the_tutorials_code_runs(tmp_path: Path) -> None:
    """The tutorial's Python blocks, run in order in one namespace, run without an error
    (their comments state the numbers they print; the asserts in them check some)."""
    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 5
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "tutorial.md", "exec"), namespace)
    assert namespace["chain"].verdict.label == "vanishing"
    assert round(float(namespace["sheared"].transient.max_growth)) == 26
    assert round(float(namespace["spectrum"].transient.max_growth)) == 3322
