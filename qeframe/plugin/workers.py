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

#: glibc ``mallopt`` parameters (``<malloc.h>``) and the values build workers set.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 128 * 2**20


def mark_build_worker() -> None:
    """Record that this process is a build worker (called by the build's pool initialiser)."""
    global _IN_BUILD_WORKER
    _IN_BUILD_WORKER = True


def tune_allocator() -> bool:
    """Raise glibc's ``mmap`` and trim thresholds in this process (build workers call it): whether it did.

    The generators allocate and free many temporaries of a few hundred KB per block. glibc serves
    blocks above its ``mmap`` threshold (128 KiB until a large free raises it) with fresh mappings,
    so each such temporary costs page faults on first touch and an ``munmap`` when freed. With the
    thresholds at :data:`MMAP_THRESHOLD` (32 MiB, glibc's maximum) and :data:`TRIM_THRESHOLD`
    (128 MiB) they come from the heap and are reused (``mallopt(3)``; a worker may keep up to the
    trim threshold of freed memory). ``paper-train-verified`` measured 60.7 and 59.7 worker CPU s
    against 62.7 and 62.3 without, alternating (``docs/performance.md``). Rows do not depend on it.
    Not glibc (or ``QEFRAME_MALLOC_TUNING=0``): nothing happens.
    """
    if os.environ.get("QEFRAME_MALLOC_TUNING", "1") == "0":
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


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
