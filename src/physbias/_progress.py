"""Progress bars (Rich) that stay quiet when stderr is not a terminal."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True):
    """Yield ``advance(n, **fields)``; draws a bar only on an interactive terminal."""
    console = Console(stderr=True)
    if not (enabled and console.is_terminal and sys.stderr.isatty()):
        yield lambda n=1, **fields: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields):
            bar.update(task, advance=n, status=" ".join(f"{k}={v}" for k, v in fields.items()))

        yield advance
