"""Regenerate ``examples/derivation.ipynb`` from ``examples/derivation.py`` with its outputs
saved: the summaries, the printed numbers, the interactive figures and, beside each, the
same figure as a PNG, so the notebook shows its results where it is read without a
kernel (on GitHub, say).

Run: ``make notebook`` (or ``.venv/bin/python benchmarks/notebook.py``); needs the test
tools (jupytext, nbclient, ipykernel). Takes about a minute on two cores.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    import jupytext
    import nbclient
    import nbformat

    notebook = jupytext.read(EXAMPLES / "derivation.py")
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3", "language": "python", "name": "python3",
    }  # fmt: skip
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )  # fmt: skip
    client.execute()
    for cell in notebook.cells:  # outputs only: no timings or kernel ids to churn the diff
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, EXAMPLES / "derivation.ipynb")
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )  # fmt: skip
    print(f"wrote {EXAMPLES / 'derivation.ipynb'} with {images} PNG figures")


if __name__ == "__main__":
    main()
