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
