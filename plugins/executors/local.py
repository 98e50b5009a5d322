"""``local`` executor: run tasks in a pool of worker processes on this machine (the default).

``map(fn, tasks)`` starts ``min(workers, len(tasks))`` processes (forked where the platform allows,
so a test-only plugin registry of the parent is inherited; spawned elsewhere, where workers load the
installed plugins), submits every task at once and yields the results in task order. With one
worker — or one task — the tasks run one after the other in this process, without a pool.

An exception raised by ``fn`` is re-raised unchanged by the iterator (``concurrent.futures``
pickles it back), and the tasks not yet started are cancelled.

Example::

    >>> from qeframe_plugins.executors.local import LocalExecutor
    >>> list(LocalExecutor(LocalExecutor.Params(workers=1)).map(abs, [-2, 3]))
    [2, 3]
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import Executor, Params

T = TypeVar("T")
R = TypeVar("R")


class LocalParams(Params):
    workers: int | None = Field(
        default=None, ge=1, description="Worker processes (default: os.cpu_count(), at most one per task)."
    )


class LocalExecutor(Executor):
    """Tasks in worker processes of this machine; results in task order."""

    name = "local"
    description = "a pool of worker processes on this machine (default)"
    Params = LocalParams

    def workers_for(self, n_tasks: int) -> int:
        """Processes :meth:`map` starts for ``n_tasks`` tasks."""
        wanted = self.params.workers or os.cpu_count() or 1  # type: ignore[attr-defined]
        return max(1, min(wanted, n_tasks))

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        tasks = list(tasks)
        workers = self.workers_for(len(tasks))
        if workers == 1:
            for task in tasks:
                yield fn(task)
            return
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(fn, task) for task in tasks]
            try:
                for future in futures:
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()


@hookimpl
def qeframe_register_executors(register):
    register(LocalExecutor)
