"""How many processes a component may start: all cores on its own, one inside a build's workers.

A dataset build (:mod:`qeframe.data.build`) already runs one worker process per core and gives each
a block of states at a time. A labeler that starts its own process pool inside such a worker (the
``certified`` labeler's DPS SDPs) would put ``cores x cores`` processes on the machine, pay a pool
start-up per block and, under load, burn CPU time in contention rather than work. The build marks
its workers (:func:`mark_build_worker`); components ask :func:`component_workers`.

Example::

    >>> component_workers(None) >= 1, component_workers(3)
    (True, 3)
"""

from __future__ import annotations

import os

_IN_BUILD_WORKER = False


def mark_build_worker() -> None:
    """Record that this process is a build worker (called by the build's pool initialiser)."""
    global _IN_BUILD_WORKER
    _IN_BUILD_WORKER = True


def in_build_worker() -> bool:
    """Whether this process is a worker of a dataset build."""
    return _IN_BUILD_WORKER


def component_workers(requested: int | None) -> int:
    """Processes a component's own pool should use: ``requested`` when given, else 1 inside a build
    worker and all cores this process may use elsewhere."""
    if requested is not None:
        return max(1, int(requested))
    if _IN_BUILD_WORKER:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
