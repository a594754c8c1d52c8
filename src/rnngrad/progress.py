"""Progress bars for long work called from Python: rich in a terminal, a widget in Jupyter.

Long-running functions take ``progress``: ``True`` (the default) draws a bar
where someone can see it (a terminal, or a Jupyter notebook through rich's
widget support, ``pip install 'rnngrad[notebook]'``) and nothing in a pipe or a
log file; ``False`` or ``None`` draws nothing; a callable ``progress(done,
total)`` receives the counts instead (the CLI and programs that draw their own).
The bar is transient: it disappears when the work is done. Inside another live
display (a bar already drawn by the caller) no second bar is started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["ProgressSpec", "progress_callback"]

#: ``True``, ``False``/``None``, or a callable ``progress(done, total)``.
ProgressSpec = bool | None | Callable[[int, int], None]


@contextmanager
def progress_callback(
    progress: ProgressSpec, description: str, total: int
) -> Iterator[Callable[[int, int], None] | None]:
    """The callable that reports ``(done, total)``, or ``None`` for no report."""
    if progress is None or progress is False:
        yield None
        return
    if callable(progress):
        yield progress
        return
    from rich.console import Console
    from rich.errors import LiveError
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not (console.is_terminal or console.is_jupyter):
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=True,
    )  # fmt: skip
    task = bar.add_task(description, total=total)
    try:
        bar.start()
    except LiveError:  # the caller already draws a live display
        yield None
        return

    def advance(done: int, of: int) -> None:
        bar.update(task, completed=done, total=of)

    try:
        yield advance
    finally:
        bar.stop()
