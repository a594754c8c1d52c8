"""The example notebook runs from top to bottom, and its two forms agree."""

from __future__ import annotations

import pytest

from tests.examples_loader import EXAMPLES


def test_the_derivation_notebook_executes() -> None:
    """examples/derivation.ipynb runs in a fresh kernel without an error (its cells
    assert that the hand-computed chain factors equal rnngrad's)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(EXAMPLES / "derivation.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )  # fmt: skip
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("ScalarChainRule" in page for page in html)  # the notebook summary shows


def test_the_notebook_is_the_script() -> None:
    """The .ipynb is the jupytext pairing of the .py (regenerate with jupytext --sync)."""
    jupytext = pytest.importorskip("jupytext")
    script = jupytext.read(EXAMPLES / "derivation.py")
    notebook = jupytext.read(EXAMPLES / "derivation.ipynb")
    assert [c.source for c in script.cells] == [c.source for c in notebook.cells]


def test_the_saved_notebook_shows_its_results_without_a_kernel() -> None:
    """Regression: the notebook was saved without outputs and with Plotly figures only, so
    it showed nothing where it is read without a kernel. Every code cell but the imports
    now keeps its output, the figures have PNGs beside them, and no output is an error
    or an unreadable numpy repr (``np.float64(...)``)."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(EXAMPLES / "derivation.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code[1:]), [c.source[:40] for c in code if not c.outputs]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    plots = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= len(plots) >= 3
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "np.float64" not in text and "carried by c" in text
