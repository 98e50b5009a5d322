"""The progress displays of qeframe (rich, on stderr, so ``--json`` output stays clean).

:func:`progress_bar` is the one bar style of dataset builds, baselines and plugins;
:class:`TrainingProgress` draws :meth:`qeframe.learn.train.Trainer.fit`'s epochs (a bar over the
batches and one summary line per epoch). Both live here, below every other layer but
:mod:`qeframe.errors`, so that the data, learning and experiment layers can draw them without
importing the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

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


class TrainingProgress:
    """A :class:`~qeframe.learn.train.TrainProgress`: a transient bar over the batches of each epoch
    and one summary line per epoch (loss terms, train and validation accuracy, samples/s), on stderr.

    Use as a context manager; ``enabled=False`` draws nothing. :meth:`log` prints a line above the bar.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def log(self, message: str) -> None:
        """Print ``message`` (plain text, no markup) above the bar."""
        self.progress.console.print(message, markup=False, highlight=False)

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("train", total=n_batches, epoch=epoch, epochs=epochs)
        else:
            self.progress.reset(self.task, total=n_batches, epoch=epoch, epochs=epochs)

    def batch_end(self) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def epoch_end(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        loss = record["loss"]
        terms = ", ".join(f"{k} {v:.4f}" for k, v in loss.items() if v is not None)
        val = record.get("validation_mean")
        train_acc = record.get("train_accuracy")
        self.log(
            f"epoch {record['epoch']}: loss {terms}"
            + (f"; train acc {100 * train_acc:.2f}%" if train_acc is not None else "")
            + (f"; val acc {100 * val:.2f}%" if val is not None else "")
            + (f"; {record['samples_per_s']:.0f} samples/s" if record.get("samples_per_s") else "")
        )
