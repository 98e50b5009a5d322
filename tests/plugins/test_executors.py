"""Executor plugins: the ``executor`` kind, the built-in ``local`` and ``ray`` executors.

The Ray test starts a local Ray instance (``ray.init(num_cpus=2, include_dashboard=False)``) and is
marked slow; it is skipped when Ray is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest
from qeframe_plugins.executors import local as local_plugin
from qeframe_plugins.executors import ray as ray_plugin
from qeframe_plugins.executors.local import LocalExecutor
from qeframe_plugins.executors.ray import RayExecutor

from qeframe import hookimpl
from qeframe.config.specs import DatasetSpec
from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.interfaces import KINDS, Executor
from qeframe.plugin.registry import Registry, get_registry

HAS_RAY = importlib.util.find_spec("ray") is not None


def square(x: int) -> int:
    return x * x


def pid_of(_: int) -> int:
    return os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise SpecError("three is not allowed")
    return x


def test_executor_is_a_plugin_kind():
    assert KINDS["executor"] is Executor
    reg = get_registry()
    assert {"local", "ray"} <= set(reg.names("executor"))
    assert reg.info("executor", "local").distribution == "qeframe"
    assert isinstance(reg.create("executor", "local", {"workers": 2}), LocalExecutor)
    with pytest.raises(SpecError, match="workers"):
        reg.create("executor", "local", {"workers": 0})


def test_a_third_party_executor_registers_through_the_hook():
    class Serial(Executor):
        name = "serial"

        def map(self, fn, tasks):
            return (fn(t) for t in tasks)

    class Plugin:
        @hookimpl
        def qeframe_register_executors(self, register):
            register(Serial)

    reg = Registry.load(entry_points=False, plugins=[("serial", Plugin()), ("local", local_plugin)])
    assert reg.names("executor") == ["local", "serial"]
    assert list(reg.create("executor", "serial").map(square, [1, 2])) == [1, 4]


@pytest.mark.parametrize("workers", [1, 2])
def test_local_executor_keeps_task_order(workers):
    ex = LocalExecutor(LocalExecutor.Params(workers=workers))
    assert list(ex.map(square, range(7))) == [x * x for x in range(7)]
    assert list(ex.map(square, [])) == []
    pids = set(ex.map(pid_of, range(4)))
    assert (pids == {os.getpid()}) == (workers == 1)  # one worker: in this process, no pool
    assert ex.workers_for(1) == 1 and ex.workers_for(10) == workers


@pytest.mark.parametrize("workers", [1, 2])
def test_local_executor_reraises_the_task_error(workers):
    ex = LocalExecutor(LocalExecutor.Params(workers=workers))
    results = ex.map(fail_on_three, [1, 2, 3, 4])
    assert next(results) == 1 and next(results) == 2
    with pytest.raises(SpecError, match="three is not allowed"):
        next(results)


def test_ray_executor_without_ray_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    reg = Registry.load(entry_points=False, plugins=[("ray", ray_plugin)])
    ex = reg.create("executor", "ray")  # registers and constructs without Ray
    with pytest.raises(QeframeError) as info:
        list(ex.map(square, [1]))
    assert str(info.value) == "the ray executor needs Ray: pip install 'qeframe[ray]'"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'qeframe[ray]')")
def test_ray_executor_on_a_local_instance(tmp_path):
    """Task order and error propagation, then a sharded build through Ray equal to a single build."""
    import ray

    from qeframe.data.merge import build_sharded
    from qeframe.data.shards import parse_shard
    from qeframe.data.store import build_dataset

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ex = RayExecutor()
        # Ray workers import functions by module: use importable ones, not this test module's
        assert list(ex.map(abs, [0, -1, 2, -3, 4])) == [0, 1, 2, 3, 4]
        with pytest.raises(QeframeError, match="invalid shard 3/2") as info:
            list(ex.map(parse_shard, ["0/1", "3/2"]))
        assert type(info.value) is QeframeError and "\n" not in str(info.value)  # the original error
        assert ray.is_initialized()  # a session the executor did not start is left running

        spec = DatasetSpec.model_validate(
            {
                "n_qubits": 3,
                "seed": 5,
                "labeler": "negativity",
                "families": [
                    {"family": "circuit", "count": 2500, "params": {"kind": "separable"}},
                    {"family": "haar", "count": 700, "params": {"kind": "entangled"}},
                ],
            }
        )
        single = build_dataset("ref", spec, data_dir=tmp_path, workers=1, progress=False)
        ds = build_sharded("x", spec, 3, ex, data_dir=tmp_path, progress=False)
        assert ds.content_hash == single.content_hash
        assert np.array_equal(ds.rho, single.rho) and np.array_equal(ds.labels, single.labels)
        tasks = ds.manifest["build"]["shard_tasks"]
        assert ds.manifest["build"]["executor"] == "ray" and [t["shard"] for t in tasks] == [
            "0/3",
            "1/3",
            "2/3",
        ]
        assert os.getpid() not in {t["pid"] for t in tasks}  # the shards ran in Ray workers
    finally:
        ray.shutdown()
