"""Data-parallel training on several processes (one per GPU) launched by ``torchrun``.

``torchrun --nproc_per_node=K -m qeframe.cli run EXPERIMENT`` starts K copies of ``qeframe run``;
torchrun gives each the environment variables ``WORLD_SIZE`` (K), ``RANK`` (0..K-1), ``LOCAL_RANK``
(its index on this machine), ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`init_distributed` reads
them, picks the process's device (``cuda:LOCAL_RANK`` with the ``nccl`` backend, or the CPU with
``gloo``) and joins the process group; the trainer (:class:`qeframe.learn.train.Trainer`) then wraps the
model in :class:`torch.nn.parallel.DistributedDataParallel` (DDP).

How one global batch is split. Every rank holds the whole training set and the same seeded
shuffling generator, so every rank draws the same permutation ``perm`` of ``0..N-1`` in every
epoch. The permutation is cut into global batches of ``B = training.batch_size`` indices exactly as
in a single process, and rank ``r`` of ``K`` takes the contiguous part
``[lo_r, hi_r) = shard_bounds(B, K, r)`` of each global batch (the first ``B mod K`` ranks get one
sample more). Each rank scales its loss so that the sum over ranks is the single-process loss of
the global batch, and DDP averages the gradients over ranks; the update is therefore the
single-process update up to floating-point rounding (see :mod:`qeframe.learn.train` for the loss terms).

The :class:`DistContext` that the trainer and ``qeframe run`` receive says which rank this process
is and wraps the few collective operations they use; :data:`SINGLE` is the context of an ordinary
single-process run, for which every operation is a no-op.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from qeframe.errors import QeframeError

#: The environment variables torchrun sets for every worker (``MASTER_ADDR``/``MASTER_PORT`` too).
TORCHRUN_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Which process of a data-parallel group this is, and the group's collectives.

    Attributes:
        rank: global rank ``0..world_size-1``; rank 0 writes the run folder and evaluates.
        world_size: number of processes ``K``.
        local_rank: index of the process on its machine (its GPU index).
        backend: ``"nccl"``, ``"gloo"``, or ``None`` for a single process without a process group.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True inside an initialised process group (even of one process)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and prints."""
        return self.rank == 0

    def part(self, total: int) -> tuple[int, int]:
        """This rank's contiguous part ``[lo, hi)`` of ``total`` items (:func:`shard_bounds`)."""
        return shard_bounds(total, self.world_size, self.rank)

    def barrier(self) -> None:
        """Wait until every rank reaches this point (no-op for a single process)."""
        if self.enabled:
            if self.backend == "nccl":
                dist.barrier(device_ids=[torch.cuda.current_device()])
            else:
                dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place; returns it (unchanged for a single process)."""
        if self.enabled and self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank (picklable objects; ``obj`` is ignored elsewhere)."""
        if not self.enabled or self.world_size == 1:
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if not self.enabled or self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def describe(self) -> dict[str, Any] | None:
        """What ``plugins.json`` and checkpoints record (``None`` for a single process)."""
        if not self.enabled:
            return None
        return {"world_size": self.world_size, "backend": self.backend}


#: The context of an ordinary single-process run.
SINGLE = DistContext()


def shard_bounds(total: int, world_size: int, rank: int) -> tuple[int, int]:
    """The contiguous part ``[lo, hi)`` of ``range(total)`` that rank ``rank`` of ``world_size`` takes.

    Parts are in rank order, cover ``range(total)`` without overlap, and their sizes differ by at
    most one: rank ``r`` gets ``total // K + (1 if r < total % K else 0)`` items (possibly 0 when
    ``total < K``).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a group of {world_size}")
    base, extra = divmod(total, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def torchrun_env() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from the torchrun environment, or ``None`` when absent.

    Raises :class:`QeframeError` when the variables are only partly set or not integers.
    """
    values = {k: os.environ.get(k) for k in TORCHRUN_ENV}
    if all(v is None for v in values.values()):
        return None
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise QeframeError(
            f"distributed run: environment variable(s) {', '.join(missing)} missing "
            f"(torchrun sets {', '.join(TORCHRUN_ENV)})"
        )
    try:
        rank, world, local = (int(values[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))  # type: ignore[arg-type]
    except ValueError:
        raise QeframeError(
            "distributed run: " + ", ".join(f"{k}={v}" for k, v in values.items()) + " are not integers"
        ) from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise QeframeError(
            f"distributed run: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} are inconsistent"
        )
    return rank, world, local


#: The error for ``--distributed`` outside torchrun.
NOT_UNDER_TORCHRUN = (
    "--distributed: no WORLD_SIZE/RANK/LOCAL_RANK in the environment; start the run with "
    "torchrun --nproc_per_node=K -m qeframe.cli run EXPERIMENT"
)


def wants_distributed(flag: bool) -> bool:
    """Whether ``qeframe run`` trains data-parallel: with ``--distributed``, or automatically when
    torchrun started more than one process (``WORLD_SIZE > 1``) so that K workers never write K
    separate run folders."""
    if flag:
        return True
    env = torchrun_env()
    return env is not None and env[1] > 1


def distributed_device(device: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` for the ``--device`` option ``device``.

    ``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; ``cuda``: ``cuda:LOCAL_RANK``
    (a :class:`QeframeError` without CUDA or when fewer GPUs are visible); ``cpu``: the CPU.
    An explicit ``cuda:N`` is refused: each process uses the GPU of its local rank.
    """
    if device == "cpu":
        return torch.device("cpu")
    if device == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if device not in ("auto", "cuda"):
        raise QeframeError(
            f"--device {device} with a distributed run: use auto, cuda or cpu (process LOCAL_RANK uses cuda:LOCAL_RANK)"
        )
    if not torch.cuda.is_available():
        raise QeframeError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    if local_rank >= torch.cuda.device_count():
        raise QeframeError(
            f"LOCAL_RANK {local_rank} needs GPU {local_rank}, but only {torch.cuda.device_count()} are visible "
            "(use --nproc_per_node <= the number of GPUs)"
        )
    return torch.device("cuda", local_rank)


def init_distributed(
    device: str = "auto", *, timeout_s: float | None = None
) -> tuple[DistContext, torch.device]:
    """Join the process group described by the torchrun environment; returns ``(context, device)``.

    The backend is ``nccl`` when the device is a GPU, ``gloo`` on the CPU. ``MASTER_ADDR`` and
    ``MASTER_PORT`` come from the environment (``init_method="env://"``); ``timeout_s`` bounds every
    collective (torch's default when ``None``). Raises :class:`QeframeError` outside torchrun.
    """
    env = torchrun_env()
    if env is None:
        raise QeframeError(NOT_UNDER_TORCHRUN)
    rank, world, local = env
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise QeframeError(f"--distributed: environment variable {key} missing (torchrun sets it)")
    torch_device = distributed_device(device, local)
    backend = "nccl" if torch_device.type == "cuda" else "gloo"
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {
            "backend": backend,
            "init_method": "env://",
            "rank": rank,
            "world_size": world,
        }
        if timeout_s is not None:
            kwargs["timeout"] = _dt.timedelta(seconds=timeout_s)
        if torch_device.type == "cuda":
            kwargs["device_id"] = torch_device
        dist.init_process_group(**kwargs)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend), torch_device


def barrier(ctx: DistContext) -> None:
    """Wait until every rank has reached this point (no-op for a single process).

    Called by every rank right after training, before rank 0 goes on alone to evaluate: no
    collective operation is then still in flight on any rank when the other ranks leave the
    process group. Without it, a rank that returned straight after its last collective and tore
    down the group while a peer's last exchange was still being answered was seen to abort in gloo
    ("terminate called without an active exception", SIGABRT) about once in five CI runs.
    """
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process or when it is already gone).

    The ranks leave together (a barrier first): a rank that tears gloo down while another still
    talks to the group can abort ("terminate called without an active exception", seen on a loaded
    2-core machine when rank 0 was still writing the run folder). The barrier is bounded by the
    group's timeout (``init_distributed(timeout_s=...)``)."""
    if ctx.enabled and dist.is_initialized():
        with contextlib.suppress(RuntimeError):  # a rank already gone: leave anyway
            dist.barrier()
        dist.destroy_process_group()


def prepare_model(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """The module to train before DDP wrapping: on CUDA with several ranks, BatchNorm layers become
    :class:`torch.nn.SyncBatchNorm` (batch statistics over the global batch, as in one process).

    SyncBatchNorm has no CPU implementation, so on the CPU (gloo) BatchNorm layers keep per-rank
    batch statistics; the weights then differ from a single-process run by more than rounding.
    The state-dict keys are the same either way, so checkpoints do not depend on the world size.
    """
    if ctx.enabled and ctx.world_size > 1 and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap_model(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` inside a process group, else ``model`` itself.

    DDP broadcasts rank 0's parameters and buffers when it is built and averages gradients over
    ranks in ``backward``; buffers are re-broadcast from rank 0 before every forward.
    """
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank, in place.

    After the last training step each rank's buffers hold its own part's statistics; inference
    (validation shards) must use the same ones as the checkpoint that rank 0 writes.
    """
    if not ctx.enabled or ctx.world_size == 1:
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src=src)
