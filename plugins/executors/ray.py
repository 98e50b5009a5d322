"""``ray`` executor: run tasks as Ray remote functions, on a local Ray instance or a cluster.

Needs Ray (``pip install 'qeframe[ray]'``, ``ray>=2.9``). The plugin registers without it, so that
``qeframe plugins`` lists it; using it without Ray raises a one-line
:class:`qeframe.errors.QeframeError` saying what to install.

``map(fn, tasks)``:

* connects to Ray — the session already initialised in this process if there is one, else
  ``ray.init(address=params.address)`` (``None``: ``$RAY_ADDRESS`` or a new local instance), which
  it shuts down again when it is done;
* submits one Ray task per task, reserving ``num_cpus`` CPUs each, that calls ``fn(task)``; ``fn``
  and the tasks travel by cloudpickle — a function is pickled by reference to its module, which the
  Ray worker imports, so ``fn`` must live in an installed module (every Ray worker imports qeframe
  and loads the plugins installed on its node);
* yields ``ray.get`` of each result in task order. A task that raised re-raises its original
  exception (a :class:`~qeframe.errors.QeframeError` stays one); the remaining tasks are cancelled.

For dataset shards every task writes its shard store under the task's data folder *on the node
that runs it*: on a multi-node cluster that folder must be shared (NFS, a mounted bucket), or run
``qeframe data build NAME --shard i/N`` per machine and ``qeframe data merge NAME --from ...``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pydantic import Field

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import Executor, Params

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = "the ray executor needs Ray: pip install 'qeframe[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise QeframeError(INSTALL_HINT) from None
    return ray


class RayParams(Params):
    address: str | None = Field(
        default=None,
        description="Ray cluster address for ray.init ('auto', 'ray://host:10001'); default: "
        "the running session, $RAY_ADDRESS, or a new local instance.",
    )
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs each task reserves.")


class RayExecutor(Executor):
    """Tasks as Ray remote functions; results in task order."""

    name = "ray"
    description = "Ray remote tasks on a local instance or a cluster (pip install 'qeframe[ray]')"
    Params = RayParams

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            ray.init(address=self.params.address, include_dashboard=False, log_to_driver=False)  # type: ignore[attr-defined]
            started = True
        refs: list[Any] = []
        done = 0
        try:
            remote = ray.remote(num_cpus=self.params.num_cpus, max_retries=0)(_call)  # type: ignore[attr-defined]
            refs = [remote.remote(fn, task) for task in tasks]
            for ref in refs:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
                done += 1
                yield result
        finally:
            _cancel_unfinished(ray, refs[done:])
            if started:
                ray.shutdown()


def _call(fn: Callable[[T], R], task: T) -> R:
    """What a Ray worker runs: ``fn(task)`` (any picklable callable, builtins included)."""
    return fn(task)


def _cancel_unfinished(ray: Any, refs: list[Any]) -> None:
    """Cancel the tasks of ``refs`` that have not finished (after an error or an abandoned iterator)."""
    if not refs:
        return
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=0)
    for ref in pending:
        with contextlib.suppress(Exception):  # a task that finished meanwhile cannot be cancelled
            ray.cancel(ref)


@hookimpl
def qeframe_register_executors(register):
    register(RayExecutor)
