"""Merging shard stores into a dataset store, and sharded builds through an executor plugin.

* :func:`merge_shards` (``qeframe data merge NAME``) checks that all ``N`` shards exist, are
  complete, come from this spec (identity, block size, code versions) and the same ``N``, hold
  exactly the blocks the plan (:class:`qeframe.data.plan.ShardPlan`) gives them, cover every planned
  block and still match their hashes; then it writes ``data/<name>/`` through the same code path as a
  single build (:func:`qeframe.data.store.write_dataset`), serving stored blocks instead of computing
  them. Blocks are consumed in ``(entry, block)`` order and each entry truncated at its count exactly
  as a single build does; only extra blocks that no shard holds are computed (when the shards'
  estimates of a dropping labeler's keep rate fell short). The result has the same arrays, order,
  manifest (but for its ``build`` record) and content hash as ``qeframe data build NAME`` on one
  machine. Nothing is written before every check has passed.
* :func:`build_sharded` (``qeframe data build NAME --executor E --shards N``) runs the ``N`` shard
  builds (:func:`qeframe.data.shards.build_shard`) through an
  :class:`qeframe.plugin.interfaces.Executor` plugin and merges them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor as FuturesExecutor
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qeframe import __version__
from qeframe.config.specs import DatasetSpec
from qeframe.data.build import Block, block_size_for, make_executor
from qeframe.data.format import STORE_FORMAT, components
from qeframe.data.plan import ShardPlan
from qeframe.data.reader import Dataset, open_dataset, store_status
from qeframe.data.shards import ShardStore, build_shard, find_shards, open_shard, shard_dir_name
from qeframe.data.store import check_build_args, generation_context, write_dataset
from qeframe.data.verify import check_store
from qeframe.data.writer import load_file, store_lock, wipe
from qeframe.errors import QeframeError, StoreError
from qeframe.plugin.interfaces import Executor
from qeframe.plugin.registry import Registry, get_registry


@dataclass(frozen=True)
class _StoredBlock:
    shard: ShardStore
    file: str
    offset: int  # first row in the file
    generated: int
    kept: int
    evidence: bool


class _StoredBlocks(FuturesExecutor):
    """Serves blocks stored in shard stores as finished futures; computes the others with
    ``fallback()`` (created on first need)."""

    def __init__(
        self,
        entry_block: dict[tuple[int, int], _StoredBlock],
        fallback: Callable[[], FuturesExecutor],
        pool: FuturesExecutor | None = None,
    ):
        self.stored = entry_block
        self._fallback_factory = fallback
        self.fallback = pool
        self.generated_blocks = 0
        self.generated_states = 0
        self._files: dict[tuple[Path, str], dict[str, np.ndarray]] = {}

    def _arrays(self, src: _StoredBlock) -> dict[str, np.ndarray]:
        key = (src.shard.path, src.file)
        if key not in self._files:
            folder = src.shard.path / src.file
            self._files[key] = load_file(folder)
        return self._files[key]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        entry, block, size = args
        src = self.stored.get((entry, block))
        if src is None:
            if self.fallback is None:
                self.fallback = self._fallback_factory()
            self.generated_blocks += 1
            self.generated_states += size
            return self.fallback.submit(fn, *args, **kwargs)
        future: Future = Future()
        try:
            if src.generated != size:
                raise StoreError(
                    f"shard {src.shard.path} holds block {block} of entry {entry} with {src.generated} "
                    f"states; the spec makes it {size}; rebuild the shard"
                )
            sl = slice(src.offset, src.offset + src.kept)
            arrays = {n: a[sl] for n, a in self._arrays(src).items()}
            future.set_result(Block(entry, block, src.generated, arrays, src.evidence))
        except BaseException as exc:  # noqa: BLE001 - delivered by future.result()
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self.fallback is not None:
            self.fallback.shutdown(wait=wait, cancel_futures=cancel_futures)
        self._files.clear()


@contextlib.contextmanager
def _lock_if_writable(path: Path) -> Iterator[int | None]:
    """The lock of a shard folder (:class:`StoreError` while a build holds it); none for a folder
    that cannot be written (a read-only copy, which nothing can rebuild meanwhile)."""
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(store_lock(path, path.name))
        except OSError:
            fd = None
        yield fd


def _check_shards(
    name: str, spec: DatasetSpec, shards: list[ShardStore], registry: Registry, where: str
) -> tuple[ShardPlan, dict[tuple[int, int], _StoredBlock]]:
    """Every consistency check of a merge; the plan and the stored blocks by ``(entry, block)``."""
    identity_hash, spec_hash, block_size = (
        spec.identity_hash(),
        spec.spec_hash(),
        block_size_for(spec.n_qubits),
    )
    code = components(registry, spec)
    for s in shards:
        m = s.manifest
        if m.get("identity_hash") != identity_hash:
            raise StoreError(
                f"shard {s.label} in {s.path} was built from another spec (spec hash "
                f"{str(m.get('spec_hash'))[:16]}, datasets.{name} has {spec_hash[:16]}); rebuild it "
                f"with `qeframe data build {name} --shard {s.label} --force`"
            )
        if m.get("block_size") != block_size or m.get("format") != STORE_FORMAT:
            raise StoreError(
                f"shard {s.label} in {s.path} has another store format or block size; rebuild it"
            )
        if m.get("qeframe_version") != __version__ or m.get("components") != code:
            raise StoreError(
                f"shard {s.label} in {s.path} was built with other code (qeframe {m.get('qeframe_version')}, "
                f"plugins {_versions(m.get('components'))}; here qeframe {__version__}, plugins "
                f"{_versions(code)}); rebuild it"
            )
    counts = sorted({s.count for s in shards})
    if len(counts) > 1:
        raise StoreError(
            f"the shards of dataset {name!r} come from different layouts ("
            + ", ".join(f"{s.label} in {s.path}" for s in shards)
            + "); merge shards of one --shards N only"
        )
    n = counts[0]
    by_index: dict[int, ShardStore] = {}
    for s in shards:
        if s.index in by_index:
            raise StoreError(
                f"shard {s.label} of dataset {name!r} was found twice: {by_index[s.index].path} and {s.path}"
            )
        by_index[s.index] = s
    missing = [i for i in range(n) if i not in by_index]
    if missing:
        raise StoreError(
            f"dataset {name!r}: shard{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"{i}/{n}" for i in missing)
            + f" missing (looked in {where}); build with `qeframe data build {name} --shard {missing[0]}/{n}`"
        )
    plan = ShardPlan(tuple(e.count for e in spec.families), block_size, n)
    stored: dict[tuple[int, int], _StoredBlock] = {}
    for s in sorted(shards, key=lambda s: s.index):
        try:
            _index_blocks(s, plan, stored)
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"shard {s.label} in {s.path} has a damaged manifest; rebuild it") from None
    for e in range(len(plan.counts)):
        for b in range(plan.planned(e)):
            if (e, b) not in stored:
                owner = plan.owner(e, b)
                raise StoreError(
                    f"shard {owner}/{n} in {by_index[owner].path} lacks block {b} of entry {e} "
                    f"(datasets.{name}.families[{e}]); rebuild it with `qeframe data build {name} --shard {owner}/{n} --force`"
                )
    return plan, stored


def _index_blocks(s: ShardStore, plan: ShardPlan, stored: dict[tuple[int, int], _StoredBlock]) -> None:
    """Add the blocks of shard ``s`` to ``stored``; :class:`StoreError` for a block that is not its own."""
    starts: dict[str, int] = {}
    row = 0
    for f in s.manifest["shards"]:
        starts[f["name"]] = row
        row += int(f["rows"])
    for rec in s.manifest["blocks"]:
        e, b = int(rec["entry"]), int(rec["block"])
        if not 0 <= e < len(plan.counts) or b < 0 or plan.owner(e, b) != s.index or (e, b) in stored:
            raise StoreError(
                f"shard {s.label} in {s.path} holds block {b} of entry {e}, which is not its block; rebuild it"
            )
        stored[(e, b)] = _StoredBlock(
            s,
            rec["file"],
            int(rec["row"]) - starts[rec["file"]],
            int(rec["generated"]),
            int(rec["kept"]),
            bool(rec["evidence"]),
        )


def _versions(components: Any) -> str:
    try:
        parts = [components["labeler"], *components["families"].values()]
        return ", ".join(sorted({f"{p['distribution']} {p['version']}" for p in parts}))
    except (KeyError, TypeError, AttributeError):
        return "?"


def _needs_generation(plan: ShardPlan, stored: dict[tuple[int, int], _StoredBlock]) -> bool:
    """Whether some entry's stored blocks ``0, 1, ...`` run out before the entry has its count."""
    for e, wanted in enumerate(plan.counts):
        kept, b = 0, 0
        while kept < wanted:
            src = stored.get((e, b))
            if src is None:
                return True
            kept += src.kept
            b += 1
    return False


def merge_shards(
    name: str,
    spec: DatasetSpec,
    *,
    data_dir: Path = Path("data"),
    sources: Sequence[Path] | None = None,
    registry: Registry | None = None,
    workers: int | None = None,
    shard_size: int = 16384,
    progress: bool = True,
    verify: bool = True,
    build_info: dict[str, Any] | None = None,
) -> Dataset:
    """Merge the shard stores of dataset ``name`` into the store ``data_dir/name`` and return it.

    Shards are looked up by :func:`find_shards`. Before anything is written: all ``N`` shards must
    exist and be complete, come from ``spec`` (spec hash, block size) and this code (qeframe and
    plugin versions), share one ``N``, hold only their own blocks and cover every planned block; with
    ``verify`` every shard's per-array hashes are recomputed from its files. Then the store is
    written as :func:`qeframe.data.store.build_dataset` writes it, stored blocks standing in for computed
    ones; missing extra blocks (see :class:`qeframe.data.plan.ShardPlan`) are computed on ``workers``
    processes. Finally the written store's content hash is recomputed from its files.

    The merged store equals a single build of ``spec``: same arrays, order and content hash, the same
    manifest but for ``build`` (which records ``merged_from`` and the blocks the merge computed).

    Raises:
        StoreError: missing, incomplete, foreign, inconsistent or damaged shards (no store is written),
            or an unwritable ``data_dir``.
    """
    check_build_args(name, shard_size, workers)
    registry = registry if registry is not None else get_registry()
    ctx = generation_context(name, spec, registry)
    paths = find_shards(name, data_dir=data_dir, sources=sources)
    where = ", ".join(str(p) for p in sources) if sources else str(data_dir)
    if not paths:
        raise StoreError(
            f"no shards of dataset {name!r} in {where}; build them with `qeframe data build {name} --shard i/N`"
        )
    store = Path(data_dir) / name
    holder: dict[str, _StoredBlocks] = {}
    fds: list[int] = []  # the locks held below; closed in any worker process the merge starts
    generate = False
    shards: list[ShardStore] = []

    def executor_factory(n_workers: int) -> FuturesExecutor:
        pool = make_executor(ctx, n_workers, close_fds=tuple(fds)) if generate and n_workers > 1 else None
        holder["x"] = _StoredBlocks(stored, lambda: make_executor(ctx, 1), pool)
        return holder["x"]

    def info() -> dict[str, Any]:
        x = holder.get("x")
        return {
            "merged_from": [
                {"shard": s.label, "path": str(s.path.resolve()), "content_hash": s.manifest["content_hash"]}
                for s in sorted(shards, key=lambda s: s.index)
            ],
            "merge_generated_blocks": x.generated_blocks if x else 0,
            "merge_generated_states": x.generated_states if x else 0,
            **(build_info or {}),
        }

    try:
        with contextlib.ExitStack() as locks:
            for p in paths:  # no shard may be (re)built while it is being merged
                fd = locks.enter_context(_lock_if_writable(p))
                if fd is not None:
                    fds.append(fd)
            shards = [open_shard(p) for p in paths]
            plan, stored = _check_shards(name, spec, shards, registry, where)
            if verify:
                for s in shards:
                    damage = check_store(s.path, s.manifest)
                    if damage:
                        raise StoreError(
                            damage[0].message(
                                f"shard {s.label} of dataset {name!r}",
                                f"rebuild it with `qeframe data build {name} --shard {s.label} --force`",
                            )
                        )
            generate = _needs_generation(plan, stored)
            # every check passed: only now is anything written
            store.mkdir(parents=True, exist_ok=True)
            lock_fd = locks.enter_context(store_lock(store, name))
            if lock_fd is not None:
                fds.append(lock_fd)
            write_dataset(
                name,
                spec,
                store,
                ctx,
                registry,
                workers if generate else 1,
                shard_size,
                progress,
                True,
                lock_fd,
                executor_factory=executor_factory,
                build_info=info,
            )
    except OSError as exc:
        raise StoreError(f"cannot write dataset store {store}: {exc.strerror or exc}") from None
    try:
        return open_dataset(name, data_dir=data_dir, verify=verify)  # rereads the files it wrote
    except StoreError as exc:  # pragma: no cover - a bug or a failing disk
        wipe(store)
        raise StoreError(f"the merged store {store} was removed: {exc}") from None


# --------------------------------------------------------------------------------------------------
# All shards through an executor


@dataclass(frozen=True)
class ShardTask:
    """One shard build, as an :class:`~qeframe.plugin.interfaces.Executor` task (plain, picklable data)."""

    name: str
    spec: DatasetSpec
    index: int
    count: int
    data_dir: str
    workers: int = 1
    shard_size: int = 16384
    force: bool = False


#: The registry shard tasks use in a forked worker (set by :func:`build_sharded`); elsewhere ``None``
#: and a worker loads the installed plugins.
_TASK_REGISTRY: Registry | None = None


def run_shard_task(task: ShardTask) -> dict[str, Any]:
    """Build the shard of ``task`` (:func:`build_shard`, no progress bar); a JSON-able summary."""
    t0 = time.perf_counter()
    manifest = build_shard(
        task.name,
        task.spec,
        task.index,
        task.count,
        data_dir=Path(task.data_dir),
        registry=_TASK_REGISTRY,
        workers=task.workers,
        shard_size=task.shard_size,
        progress=False,
        force=task.force,
    )
    return {
        "shard": f"{task.index}/{task.count}",
        "path": str(Path(task.data_dir) / manifest["name"]),
        "rows": manifest["n_rows"],
        "blocks": len(manifest["blocks"]),
        "generated": manifest["generated"],
        "seconds": round(time.perf_counter() - t0, 3),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def build_sharded(
    name: str,
    spec: DatasetSpec,
    n_shards: int,
    executor: Executor | None = None,
    *,
    data_dir: Path = Path("data"),
    registry: Registry | None = None,
    workers: int = 1,
    shard_size: int = 16384,
    progress: bool = True,
    force: bool = False,
    clean: bool = False,
) -> Dataset:
    """Build the ``n_shards`` shards of dataset ``name`` through ``executor`` and merge them.

    ``executor`` defaults to the registry's ``local`` executor; each task builds one shard with
    ``workers`` processes. A complete store of the same spec is returned as it is (unless ``force``);
    complete shard stores of this spec are reused (unless ``force``), so a failed run continues where
    it stopped. ``clean`` removes the shard stores after a successful merge. The data folder must be
    reachable from wherever the executor runs the tasks.
    """
    global _TASK_REGISTRY
    check_build_args(name, shard_size, workers)
    if n_shards < 1:
        raise QeframeError(f"--shards must be at least 1, got {n_shards}")
    registry = registry if registry is not None else get_registry()
    generation_context(name, spec, registry)  # a bad spec fails here, before any task starts
    if not force and store_status(name, spec, data_dir=data_dir) == "built":
        return open_dataset(name, data_dir=data_dir)
    if executor is None:
        executor = registry.create("executor", "local")  # type: ignore[assignment]
    assert executor is not None
    root = Path(data_dir).resolve()
    tasks = [
        ShardTask(name, spec, i, n_shards, str(root), workers, shard_size, force) for i in range(n_shards)
    ]
    console = None
    if progress:
        from rich.console import Console

        console = Console(stderr=True)
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    previous, _TASK_REGISTRY = _TASK_REGISTRY, registry
    try:
        for result in executor.map(run_shard_task, tasks):
            results.append(result)
            if console is not None:
                console.print(
                    f"{name}: shard {result['shard']} done — {result['rows']} states "
                    f"({result['generated']} generated) in {result['seconds']} s on {result['host']}",
                    highlight=False,
                )
    finally:
        _TASK_REGISTRY = previous
    shard_seconds = time.perf_counter() - t0
    ds = merge_shards(
        name,
        spec,
        data_dir=data_dir,
        sources=[root / shard_dir_name(name, i, n_shards) for i in range(n_shards)],
        registry=registry,
        shard_size=shard_size,
        progress=progress,
        build_info={
            "executor": executor.name,
            "n_shards": n_shards,
            "shard_seconds": round(shard_seconds, 3),
            "shard_tasks": results,
        },
    )
    if clean:
        for i in range(n_shards):
            shutil.rmtree(root / shard_dir_name(name, i, n_shards), ignore_errors=True)
    return ds
