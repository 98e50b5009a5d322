"""The one progress-bar style of qeframe (rich, on stderr, so ``--json`` output stays clean)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(enabled: bool = True, *, rate_unit: str | None = None, transient: bool = False) -> Progress:
    """Description, bar, done/total, an optional rate column, elapsed and remaining time.

    With ``rate_unit`` (e.g. ``"states/s"``) tasks carry a ``rate`` field that the caller updates
    (``bar.update(task, rate="1,234")``). ``enabled=False`` gives a bar that draws nothing.
    """
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if rate_unit:
        columns.append(TextColumn("{task.fields[rate]} " + rate_unit))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), transient=transient, disable=not enabled)
