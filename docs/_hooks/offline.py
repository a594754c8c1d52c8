"""The site works offline, also opened from disk (``file://``).

- KaTeX: the files the report bundles (``rnngrad/report/assets/katex``) are added to the
  site at build time, so the two never drift apart.
- Search: Material's ``offline`` plugin loads a small Web Worker shim for ``file://``
  from unpkg.com; the site loads the copy in ``assets/iframe-worker`` (iframe-worker
  1.0.4, MIT, by the theme's author) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ASSETS = Path(__file__).resolve().parents[2] / "src" / "rnngrad" / "report" / "assets"
SHIM = "https://unpkg.com/iframe-worker/shim"


def on_files(files: Files, config: Any) -> Files:
    for path in sorted((ASSETS / "katex").rglob("*")):
        if path.is_file() and path.suffix in {".js", ".css", ".woff2"}:
            files.append(
                File(
                    path.relative_to(ASSETS).as_posix(),
                    str(ASSETS),
                    config["site_dir"],
                    config["use_directory_urls"],
                )
            )
    return files


def on_post_page(output: str, page: Any, config: Any) -> str:
    depth = page.file.dest_uri.count("/")
    return output.replace(SHIM, "../" * depth + "assets/iframe-worker/shim.js")


def on_post_build(config: Any) -> None:
    missing = Path(config["site_dir"]) / "404.html"  # a template, not a page
    if missing.is_file():
        missing.write_text(missing.read_text().replace(SHIM, "assets/iframe-worker/shim.js"))
