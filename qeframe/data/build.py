"""Deterministic, parallel generation of a dataset's rows: family blocks -> labeler -> ordered pieces.

A dataset is the concatenation, in ``registry.toml`` order, of its family entries; entry ``e`` holds
exactly ``count_e`` labelled states. They are produced in **blocks**:

* Block ``b`` of entry ``e`` draws ``block_rows(count_e, b, B)`` states with
  ``family.generate(size, rng, n_qubits, drop)`` (which applies ``local_randomize``; ``drop`` is
  the labeler's :class:`~qeframe.plugin.interfaces.DropRule`, with which a family may skip the work
  on samples the labeler provably drops, without changing what it keeps) from the generator
  ``np.random.default_rng(SeedSequence(seed, spawn_key=(e, b)))`` — the same seed sequence as
  ``SeedSequence(seed).spawn(E)[e].spawn(b + 1)[b]`` — and then labels them with the labeler, which
  may drop samples (:attr:`~qeframe.plugin.interfaces.LabelBatch.keep`).
* The planned blocks ``b < P_e`` (:func:`planned_block_count`: ``ceil(count_e / B)``, but at least
  ``min(8, ceil(count_e / 256))``) split ``count_e`` into near-equal sizes; when the labeler dropped
  samples, further blocks of ``B`` states follow until ``count_e`` states are kept.
  The kept states of blocks ``0, 1, 2, ...`` are concatenated and truncated to ``count_e``.

Every block's content depends only on ``(seed, e, b, size)`` and the sizes only on the spec and
``B`` (:func:`block_size_for`), so the rows — and the store's content hash — are the same for any
number of worker processes and any shard size. Workers compute blocks; the parent consumes them in
order (:func:`iter_pieces`), so only a few blocks are ever held in memory.

For builds split across machines, :mod:`qeframe.data.plan` divides the blocks among ``N`` shards;
:mod:`qeframe.data.shards` stores them and :mod:`qeframe.data.merge` merges them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.interfaces import STANDARD_META, Labeler, StateFamily
from qeframe.plugin.labels import PROVENANCE
from qeframe.plugin.workers import mark_build_worker
from qeframe.quantum.cuts import n_cuts as count_cuts

#: Largest generation block (states). Smaller for many qubits so that a block's ``rho`` stays ~2 MiB.
MAX_BLOCK_ROWS = 2048
_BLOCK_BYTES = 2**21

#: Row arrays of a dataset, in the order the content hash covers them: name -> (dtype, per-row shape
#: as a function of ``(d, n_cuts)``). Little-endian dtypes so that stores are portable.
ARRAY_DTYPES: dict[str, np.dtype] = {
    "rho": np.dtype("<c16"),
    "labels": np.dtype("i1"),
    "provenance": np.dtype("u1"),
    "evidence": np.dtype("<f8"),
    "ground_truth": np.dtype("i1"),
    "ground_truth_provenance": np.dtype("u1"),
    "entry": np.dtype("<u2"),
    **{f"meta.{key}": np.dtype(dtype).newbyteorder("<") for key, dtype in STANDARD_META.items()},
}


def row_shapes(n_qubits: int) -> dict[str, tuple[int, ...]]:
    """Per-row shape of every array in :data:`ARRAY_DTYPES` for ``n_qubits`` qubits."""
    d, c = 2**n_qubits, count_cuts(n_qubits)
    shapes: dict[str, tuple[int, ...]] = {
        "rho": (d, d),
        "labels": (c,),
        "provenance": (c,),
        "evidence": (c,),
        "ground_truth": (c,),
        "ground_truth_provenance": (c,),
        "entry": (),
    }
    shapes.update({f"meta.{key}": () for key in STANDARD_META})
    return shapes


def block_size_for(n_qubits: int) -> int:
    """The generation block size ``B`` for ``n_qubits``: ``min(2048, 2 MiB / (16 * 4**n))``, at least 1.

    2048 for up to 3 qubits, 512 for 4, 128 for 5. A constant of the format (recorded in every
    manifest): changing it changes the content of a dataset.
    """
    return max(1, min(MAX_BLOCK_ROWS, _BLOCK_BYTES // (16 * 4**n_qubits)))


#: Every entry of at least ``MIN_PLANNED_BLOCKS * MIN_PLANNED_ROWS`` states has at least this many
#: planned blocks, so that the extra blocks of a heavily dropping entry spread over as many shards.
MIN_PLANNED_BLOCKS = 8
#: Smallest planned block of an entry split into more blocks than ``ceil(count / B)``.
MIN_PLANNED_ROWS = 256


def planned_block_count(count: int, block_size: int) -> int:
    """``P``: the number of planned blocks of an entry of ``count`` states and block size ``B``.

    ``max(ceil(count / B), min(MIN_PLANNED_BLOCKS, ceil(count / MIN_PLANNED_ROWS)))``: an entry of
    2 000 three-qubit states has 8 planned blocks of 250 rather than one of 2 000, so that a shard
    plan (:class:`qeframe.data.plan.ShardPlan`) can spread its extra blocks over up to 8 shards. Depends on the spec
    and ``B`` only (a constant of the store format).
    """
    return max(-(-count // block_size), min(MIN_PLANNED_BLOCKS, -(-count // MIN_PLANNED_ROWS)))


def block_rows(count: int, block: int, block_size: int) -> int:
    """Number of states block ``block`` of an entry with ``count`` wanted states generates.

    The ``P`` planned blocks (:func:`planned_block_count`) cover ``count`` exactly, in near-equal
    sizes (``count // P``, the first ``count % P`` one state more); later blocks, needed only when the
    labeler drops samples, have ``block_size`` states.
    """
    planned = planned_block_count(count, block_size)
    if block < planned:
        return count // planned + (block < count % planned)
    return block_size


def block_seed(seed: int, entry: int, block: int) -> np.random.SeedSequence:
    """The seed sequence of block ``block`` of family entry ``entry``: spawn key ``(entry, block)``.

    Identical to ``SeedSequence(seed).spawn(entry + 1)[entry].spawn(block + 1)[block]``.
    """
    return np.random.SeedSequence(seed, spawn_key=(entry, block))


# --------------------------------------------------------------------------------------------------
# One block (runs in a worker process)


@dataclass
class GenerationContext:
    """What a worker needs to compute any block: the components and the spec's frame.

    ``keys`` are the ``registry.toml`` locations of the family entries (for error messages).
    """

    families: list[StateFamily]
    labeler: Labeler
    n_qubits: int
    seed: int
    keys: list[str]


@dataclass
class Block:
    """The kept, labelled states of one block: ``arrays`` as in :data:`ARRAY_DTYPES`, ``K`` rows each."""

    entry: int
    block: int
    generated: int
    arrays: dict[str, np.ndarray]
    has_evidence: bool

    def __len__(self) -> int:
        return int(self.arrays["rho"].shape[0])


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise QeframeError(message)


def compute_block(ctx: GenerationContext, entry: int, block: int, size: int) -> Block:
    """Generate and label block ``block`` (``size`` states) of entry ``entry``; see the module docstring."""
    family = ctx.families[entry]
    where = f"family {family.name!r} ({ctx.keys[entry]})"
    d, c = 2**ctx.n_qubits, count_cuts(ctx.n_qubits)
    rng = np.random.default_rng(block_seed(ctx.seed, entry, block))
    batch = family.generate(size, rng, ctx.n_qubits, drop=ctx.labeler.drop_rule())
    _check(
        batch.rho.shape == (size, d, d),
        f"{where} returned rho of shape {batch.rho.shape}, expected {(size, d, d)}",
    )
    _check(
        batch.ground_truth.shape == (size, c),
        f"{where} returned ground_truth of shape {batch.ground_truth.shape}",
    )
    missing = [key for key in STANDARD_META if key not in batch.meta]
    _check(not missing, f"{where} returned no standard meta {', '.join(map(repr, missing))}")
    result = ctx.labeler.label(batch)
    who = f"labeler {ctx.labeler.name!r} on {where}"
    keep = np.asarray(result.keep, dtype=bool)
    _check(keep.shape == (size,), f"{who} returned keep of shape {keep.shape}, expected {(size,)}")
    kept = int(np.count_nonzero(keep))
    _check(result.labels.shape == (kept, c), f"{who} returned labels of shape {result.labels.shape}")
    if kept < size:
        batch = batch.take(keep)
    arrays = {
        "rho": batch.rho,
        "labels": result.labels,
        "provenance": result.provenance,
        "evidence": np.full((kept, c), np.nan) if result.evidence is None else result.evidence,
        "ground_truth": batch.ground_truth,
        "ground_truth_provenance": batch.ground_truth_provenance,
        "entry": np.full(kept, entry),
        **{f"meta.{key}": batch.meta[key] for key in STANDARD_META},
    }
    out: dict[str, np.ndarray] = {}
    for name, dtype in ARRAY_DTYPES.items():
        array = np.ascontiguousarray(arrays[name], dtype=dtype)
        _check(array.shape[0] == kept, f"{where}: {name} has {array.shape[0]} rows, expected {kept}")
        out[name] = array
    for name in ("labels", "ground_truth"):
        _check(bool(np.isin(out[name], (-1, 0, 1)).all()), f"{who}: {name} outside 1/0/-1")
    for name in ("provenance", "ground_truth_provenance"):
        _check(
            bool((out[name] < len(PROVENANCE)).all()), f"{who}: {name} code outside qeframe.plugin.labels.PROVENANCE"
        )
    return Block(entry, block, size, out, result.evidence is not None)


_WORKER_CONTEXT: GenerationContext | None = None


def _watch_parent(parent: int) -> None:
    """Exit this worker when its parent is gone (e.g. killed with SIGKILL): a forked worker holds
    the pool's pipes itself and would otherwise wait for work forever."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _init_worker(ctx: GenerationContext, parent: int, close_fds: tuple[int, ...]) -> None:
    import signal
    import threading

    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx
    mark_build_worker()  # components (e.g. the certified labeler's SDPs) then start no pool of their own
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it shuts the pool down
    for fd in close_fds:  # e.g. the store lock: only the parent may hold it
        try:
            os.close(fd)
        except OSError:
            pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _noop() -> int:
    return os.getpid()


def worker_block(entry: int, block: int, size: int) -> Block:
    """:func:`compute_block` with the context of this worker (:func:`make_executor`): the task every
    executor of a build receives, ``(entry, block, size)``."""
    assert _WORKER_CONTEXT is not None, "worker not initialised"
    return compute_block(_WORKER_CONTEXT, entry, block, size)


class _InlineExecutor(Executor):
    """Runs each task at submission, in this process (``workers == 1``): same code path, no pool."""

    def __init__(self, ctx: GenerationContext):
        self.ctx = ctx

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(compute_block(self.ctx, *args))
        except BaseException as exc:  # noqa: BLE001 - delivered by future.result(), as a pool would
            future.set_exception(exc)
        return future


def make_executor(ctx: GenerationContext, workers: int, *, close_fds: tuple[int, ...] = ()) -> Executor:
    """A started process pool of ``workers`` with every worker holding ``ctx``; an inline executor
    for ``workers <= 1``.

    Workers are forked where the platform allows, so the components are inherited rather than
    pickled; ``close_fds`` are closed in every worker. The processes are started before this returns,
    so that no thread of the caller (e.g. a progress bar) exists when they fork.
    """
    if workers <= 1:
        return _InlineExecutor(ctx)
    methods = multiprocessing.get_all_start_methods()
    mp_context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(
        workers, mp_context=mp_context, initializer=_init_worker, initargs=(ctx, os.getpid(), close_fds)
    )
    for fut in [pool.submit(_noop) for _ in range(workers)]:
        fut.result()
    return pool


# --------------------------------------------------------------------------------------------------
# Ordered consumption


@dataclass(frozen=True)
class Cursor:
    """Where generation resumes: every entry before ``entry`` is finished, entry ``entry`` has ``rows``
    states already, and its next state is kept row ``skip`` of block ``block``."""

    entry: int = 0
    block: int = 0
    skip: int = 0
    rows: int = 0


@dataclass
class Piece:
    """Consecutive dataset rows taken from one block: kept rows ``start .. start+len`` of the block."""

    entry: int
    block: int
    start: int
    block_generated: int
    block_kept: int
    arrays: dict[str, np.ndarray]
    has_evidence: bool

    def __len__(self) -> int:
        return int(self.arrays["rho"].shape[0])


@dataclass
class _Entry:
    count: int
    rows: int = 0  # rows consumed so far
    next_submit: int = 0
    next_consume: int = 0
    skip: int = 0
    seen_generated: int = 0  # for the keep-rate estimate
    seen_kept: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # submitted block -> size

    def rate(self) -> float:
        return self.seen_kept / self.seen_generated if self.seen_generated else 1.0


#: Give up on an entry whose labeler keeps almost nothing (generated > this * count + 4 blocks).
MAX_OVERSAMPLING = 100


def iter_pieces(
    ctx: GenerationContext,
    counts: list[int],
    executor: Executor,
    *,
    block_size: int,
    cursor: Cursor = Cursor(),
    max_in_flight: int = 4,
    dataset: str = "",
) -> Iterator[Piece]:
    """Yield the dataset's rows after ``cursor`` as :class:`Piece` objects, in order.

    Blocks are submitted to ``executor`` ahead of consumption (at most ``max_in_flight`` at a
    time): for the current entry and the ones after it, while the expected number of kept rows
    (kept rows of finished blocks plus ``size * keep rate`` of running ones) is short of ``count``.
    Results are consumed strictly in (entry, block) order, so the output does not depend on timing.
    """
    entries = [_Entry(count) for count in counts]
    start = entries[cursor.entry] if cursor.entry < len(entries) else None
    for e in entries[: cursor.entry]:
        e.rows = e.count
    if start is not None:
        start.rows, start.next_submit, start.next_consume, start.skip = (
            cursor.rows,
            cursor.block,
            cursor.block,
            cursor.skip,
        )
    pending: dict[tuple[int, int], Future] = {}

    def expected(index: int) -> float:
        st = entries[index]
        total = st.rows - st.skip
        for b in range(st.next_consume, st.next_submit):
            fut = pending.get((index, b))
            if fut is not None and fut.done() and fut.exception() is None:
                total += len(fut.result())
            else:
                total += st.sizes[b] * st.rate()
        return total

    def submit(index: int) -> None:
        st = entries[index]
        b = st.next_submit
        st.sizes[b] = block_rows(st.count, b, block_size)
        pending[(index, b)] = executor.submit(worker_block, index, b, st.sizes[b])
        st.next_submit += 1

    def fill(current: int) -> None:
        index = current
        while len(pending) < max_in_flight and index < len(entries):
            if entries[index].rows < entries[index].count and expected(index) < entries[index].count:
                submit(index)
            else:
                index += 1

    current = cursor.entry
    try:
        while current < len(entries):
            st = entries[current]
            if st.rows >= st.count:
                for key in [k for k in pending if k[0] == current]:
                    pending.pop(key).cancel()
                current += 1
                continue
            fill(current)
            if st.next_submit == st.next_consume:
                submit(current)
            block: Block = pending.pop((current, st.next_consume)).result()
            st.seen_generated += block.generated
            st.seen_kept += len(block)
            take = min(len(block) - st.skip, st.count - st.rows)
            if take > 0:
                sl = slice(st.skip, st.skip + take)
                yield Piece(
                    current,
                    block.block,
                    st.skip,
                    block.generated,
                    len(block),
                    {k: v[sl] for k, v in block.arrays.items()},
                    block.has_evidence,
                )
                st.rows += take
            st.skip = 0
            st.next_consume += 1
            if st.rows < st.count and st.seen_generated > MAX_OVERSAMPLING * st.count + 4 * block_size:
                raise SpecError(
                    f"{ctx.keys[current]}: labeler {ctx.labeler.name!r} kept {st.seen_kept} of "
                    f"{st.seen_generated} states of family {ctx.families[current].name!r}; cannot reach "
                    f"count = {st.count}" + (f" for dataset {dataset!r}" if dataset else "")
                )
    finally:
        for fut in pending.values():
            fut.cancel()


def default_workers() -> int:
    """Worker processes used when none are given: ``os.cpu_count()``."""
    return os.cpu_count() or 1


def planned_blocks(counts: list[int], block_size: int) -> int:
    """Number of blocks when the labeler keeps every sample (used to cap the pool size)."""
    return sum(planned_block_count(c, block_size) for c in counts)
