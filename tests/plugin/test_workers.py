"""``qeframe.plugin.workers``: a component's own pool uses all cores on its own and one process
inside a dataset build's workers (which already occupy every core)."""

from __future__ import annotations

import os

from qeframe.data.build import GenerationContext, make_executor
from qeframe.plugin import workers


def test_component_workers_outside_a_build(monkeypatch):
    monkeypatch.setattr(workers, "_IN_BUILD_WORKER", False)
    assert workers.component_workers(None) == len(os.sched_getaffinity(0))
    assert workers.component_workers(3) == 3 and workers.component_workers(0) == 1


def test_component_workers_inside_a_build_worker(monkeypatch):
    monkeypatch.setattr(workers, "_IN_BUILD_WORKER", False)
    workers.mark_build_worker()
    assert workers.in_build_worker() and workers.component_workers(None) == 1
    assert workers.component_workers(4) == 4  # an explicit request is honoured


def test_build_pool_marks_its_workers_not_the_parent():
    ctx = GenerationContext(families=[], labeler=None, n_qubits=2, seed=0, keys=[])  # type: ignore[arg-type]
    pool = make_executor(ctx, 2)
    try:
        assert pool.submit(workers.in_build_worker).result() is True
        assert pool.submit(workers.component_workers, None).result() == 1
    finally:
        pool.shutdown()
    assert workers.in_build_worker() is False


def _allocator_probe() -> tuple[bool, bool]:
    """In a build worker: whether tune_allocator succeeds now (the initialiser already called it)."""
    return workers.tune_allocator(), workers.in_build_worker()


def test_build_workers_tune_the_allocator(monkeypatch):
    """glibc's mallopt accepts both thresholds (Linux CI); the opt-out variable turns it off."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        assert workers.tune_allocator() is False
        return
    ctx = GenerationContext(families=[], labeler=None, n_qubits=2, seed=0, keys=[])  # type: ignore[arg-type]
    pool = make_executor(ctx, 2)
    try:
        assert pool.submit(_allocator_probe).result() == (True, True)
    finally:
        pool.shutdown()
    monkeypatch.setenv("QEFRAME_MALLOC_TUNING", "0")
    assert workers.tune_allocator() is False
