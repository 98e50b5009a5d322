"""Sharded dataset builds: independent shards of a dataset, built anywhere, merged bit-identically.

A dataset's rows are a pure function of its spec, computed in generation blocks (:mod:`qeframe.data.build`).
:class:`qeframe.data.build.ShardPlan` divides those blocks among ``N`` shards (numbered ``0 .. N-1``):
planned blocks round robin over the whole dataset, the extra blocks a dropping labeler needs to the
shards that own the entry, each shard deciding from its own blocks how many extras to compute.

* :func:`build_shard` (``qeframe data build NAME --shard i/N``) builds shard ``i`` of ``N`` into
  ``data/<name>.shard-i-of-N/``: whole blocks in ``.npy`` files, a ``shard.json`` per file listing
  its blocks, and a manifest (``"kind": "shard"``: spec and spec hash, shard index and count,
  block list, per-array hashes, code versions, ``"complete": true`` written last). It resumes
  after an interruption and holds the folder's lock while it writes, like a dataset build.
* :func:`merge_shards` (``qeframe data merge NAME``) checks that all ``N`` shards exist, are
  complete, come from this spec (spec hash, block size, code versions) and the same ``N``, hold
  exactly the blocks the plan gives them, cover every planned block and still match their array
  hashes; then it writes ``data/<name>/`` through the same code path as a single build, serving
  stored blocks instead of computing them. Blocks are consumed in ``(entry, block)`` order and each
  entry truncated at its count exactly as a single build does; only extra blocks that no shard
  holds are computed (when the shards' estimates of a dropping labeler's keep rate fell short).
  The result has the same arrays, order, manifest (but for its ``build`` record) and content hash
  as ``qeframe data build NAME`` on one machine. Nothing is written before every check has passed.
* :func:`build_sharded` (``qeframe data build NAME --executor E --shards N``) runs the ``N`` shard
  builds through an :class:`qeframe.plugin.interfaces.Executor` plugin and merges them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
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
from qeframe.data.build import (
    ARRAY_DTYPES,
    Block,
    GenerationContext,
    ShardPlan,
    ShardSchedule,
    block_size_for,
    default_workers,
    iter_shard_blocks,
    make_executor,
    row_shapes,
)
from qeframe.errors import QeframeError, StoreError
from qeframe.plugin.interfaces import Executor
from qeframe.plugin.registry import Registry, get_registry
from qeframe.config.specs import NAME_PATTERN, DatasetSpec
from qeframe.data.store import (
    BUILD_STATE,
    MANIFEST,
    SHARD_KIND,
    STORE_FORMAT,
    Dataset,
    _atomic_write_json,
    _build,
    _complete_shards,
    _components,
    _is_complete,
    _progress_bar,
    _read_json,
    _shard_name,
    _ShardWriter,
    _store_lock,
    _Summary,
    _wipe,
    generation_context,
    open_dataset,
    read_manifest,
    store_status,
)

#: ``<name>.shard-<index>-of-<count>``: the folder of one shard store.
SHARD_DIR_RE = re.compile(r"^(?P<name>.+)\.shard-(?P<index>\d+)-of-(?P<count>\d+)$")
_SHARD_ARG_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
#: A shard store writes a data file when this many bytes of blocks are buffered (or ``shard_size`` rows).
FLUSH_BYTES = 64 * 2**20


def shard_dir_name(name: str, index: int, count: int) -> str:
    """Folder name of shard ``index`` of ``count`` of dataset ``name``: ``name.shard-index-of-count``."""
    return f"{name}.shard-{index}-of-{count}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; a one-line :class:`QeframeError` otherwise."""
    match = _SHARD_ARG_RE.match(text)
    if not match:
        raise QeframeError(f"invalid shard {text!r}: use INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")
    index, count = int(match.group(1)), int(match.group(2))
    check_shard(index, count)
    return index, count


def check_shard(index: int, count: int) -> None:
    """Raise a one-line :class:`QeframeError` unless ``count >= 1`` and ``0 <= index < count``."""
    if count < 1:
        raise QeframeError(f"invalid shard {index}/{count}: the number of shards must be at least 1")
    if not 0 <= index < count:
        raise QeframeError(
            f"invalid shard {index}/{count}: the index must be 0 .. {count - 1} (shards are numbered from 0)"
        )


def _check_common(name: str, shard_size: int, workers: int | None) -> None:
    if not re.match(NAME_PATTERN, name):
        raise QeframeError(f"invalid dataset name {name!r}: use letters, digits, '_', '.', '-'")
    if shard_size < 1:
        raise QeframeError(f"shard size must be at least 1, got {shard_size}")
    if workers is not None and workers < 1:
        raise QeframeError(f"workers must be at least 1, got {workers}")


def _shard_state(name: str, spec: DatasetSpec, index: int, count: int, registry: Registry) -> dict[str, Any]:
    """What identifies a shard build: the keys a resumed build and a merge must agree on."""
    return {
        "format": STORE_FORMAT,
        "kind": SHARD_KIND,
        "dataset": name,
        "shard": {"index": index, "count": count},
        "spec_hash": spec.spec_hash(),
        "block_size": block_size_for(spec.n_qubits),
        "qeframe_version": __version__,
        "components": _components(registry, spec),
        "spec": spec.canonical(),
    }


_IDENTITY = ("format", "kind", "shard", "spec_hash", "block_size", "qeframe_version", "components")


def _same_shard(record: dict[str, Any] | None, state: dict[str, Any]) -> bool:
    return record is not None and all(record.get(k) == state[k] for k in _IDENTITY)


# --------------------------------------------------------------------------------------------------
# Building one shard


def build_shard(
    name: str,
    spec: DatasetSpec,
    index: int,
    count: int,
    *,
    data_dir: Path = Path("data"),
    registry: Registry | None = None,
    workers: int | None = None,
    shard_size: int = 16384,
    progress: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Build (or finish, or reuse) shard ``index`` of ``count`` of dataset ``name``; return its manifest.

    The store is ``data_dir/<name>.shard-<index>-of-<count>/``. It holds the blocks
    :class:`qeframe.data.build.ShardPlan` gives the shard, in the shard's order, whole (a block is never
    split between files): a data file is written once ``shard_size`` rows or :data:`FLUSH_BYTES`
    are buffered. A complete shard store of the same spec, shard layout and code versions is
    returned as it is unless ``force``; an interrupted one is resumed from its complete files.
    ``workers`` processes (default ``os.cpu_count()``) compute the blocks.

    Raises:
        QeframeError: a bad name, shard index/count, shard size or worker count.
        SpecError / UnknownComponentError: a bad spec or plugin name.
        StoreError: the folder cannot be written or is being built by another process.
    """
    _check_common(name, shard_size, workers)
    check_shard(index, count)
    registry = registry if registry is not None else get_registry()
    ctx = generation_context(name, spec, registry)
    state = _shard_state(name, spec, index, count, registry)
    path = Path(data_dir) / shard_dir_name(name, index, count)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with _store_lock(path, shard_dir_name(name, index, count)) as lock_fd:
            manifest = read_manifest(path)
            if not force and _is_complete(manifest) and _same_shard(manifest, state):
                assert manifest is not None
                return manifest
            return _build_shard(
                spec, path, ctx, registry, state, workers, shard_size, progress, force, lock_fd
            )
    except OSError as exc:
        raise StoreError(f"cannot write shard store {path}: {exc.strerror or exc}") from None


def _build_shard(
    spec: DatasetSpec,
    path: Path,
    ctx: GenerationContext,
    registry: Registry,
    state: dict[str, Any],
    workers: int | None,
    shard_size: int,
    progress: bool,
    force: bool,
    lock_fd: int | None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    index, count = state["shard"]["index"], state["shard"]["count"]
    block_size = state["block_size"]
    plan = ShardPlan(tuple(e.count for e in spec.families), block_size, count)

    def fresh() -> ShardSchedule:
        _wipe(path)
        _atomic_write_json(path / BUILD_STATE, state)
        return ShardSchedule(plan, index)

    schedule = ShardSchedule(plan, index)
    infos: list[dict[str, Any]] = []
    resumable = (
        not force and _same_shard(_read_json(path / BUILD_STATE), state) and read_manifest(path) is None
    )
    if resumable:
        infos = _complete_shards(path, None, spec.n_qubits)
        try:
            for info in infos:
                for s in info["sources"]:
                    if int(s["start"]) != 0 or int(s["rows"]) != int(s["kept"]):
                        raise ValueError("not a whole block")
                    schedule.observe(int(s["entry"]), int(s["block"]), int(s["generated"]), int(s["kept"]))
        except (ValueError, KeyError, TypeError):
            resumable = False
    if not resumable:
        schedule, infos = fresh(), []

    summary = _Summary(spec.n_qubits, len(spec.families))
    blocks: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    row = 0
    for info in infos:  # reused files: hash them again, list their blocks
        file = path / _shard_name(info["index"])
        summary.hash({n: np.load(file / f"{n}.npy", mmap_mode="r") for n in ARRAY_DTYPES})
        for s in info["sources"]:
            blocks.append(_block_record(s, row, file.name))
            row += int(s["rows"])
        files.append({"name": file.name, "rows": int(info["rows"])})
    resumed_blocks = len(blocks)

    planned = sum(len(plan.planned_blocks(index, e)) for e in range(len(plan.counts)))
    n_workers = max(1, min(workers or default_workers(), max(planned, 1)))
    executor = (
        make_executor(ctx, n_workers, close_fds=() if lock_fd is None else (lock_fd,))
        if schedule.next() is not None
        else None
    )
    buffer: list[Block] = []

    def flush() -> None:
        nonlocal row
        rows = sum(len(b) for b in buffer)
        writer = _ShardWriter(path, len(files), row, rows, spec.n_qubits)
        file = _shard_name(len(files))
        try:
            for b in buffer:
                source = {
                    "entry": b.entry,
                    "block": b.block,
                    "start": 0,
                    "rows": len(b),
                    "generated": b.generated,
                    "kept": len(b),
                    "evidence": b.has_evidence,
                }
                writer.append(b.arrays, source)
                blocks.append(_block_record(source, row, file))
                summary.hash(b.arrays)
                row += len(b)
            files.append({"name": writer.commit(), "rows": rows})
        except BaseException:
            writer.abort()
            raise
        buffer.clear()

    bar = _progress_bar(progress)
    expected_rows = max(schedule.planned_rows(), 1)
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task(path.name, total=expected_rows, completed=row, rate="-")
        generated_now = 0
        for block in (
            iter_shard_blocks(ctx, schedule, executor, max_in_flight=2 * n_workers)
            if executor is not None
            else ()
        ):
            buffer.append(block)
            generated_now += block.generated
            nbytes = sum(a.nbytes for b in buffer for a in b.arrays.values())
            if sum(len(b) for b in buffer) >= shard_size or nbytes >= FLUSH_BYTES:
                flush()
            if bar is not None:
                done = row + sum(len(b) for b in buffer)
                rate = generated_now / max(time.perf_counter() - t0, 1e-9)
                bar.update(task, completed=done, total=max(expected_rows, done), rate=f"{rate:,.0f}")
        if buffer or not files:
            flush()  # the rest, or an empty file for a shard whose blocks all kept nothing
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.stop()

    seconds = time.perf_counter() - t0
    shapes = row_shapes(spec.n_qubits)
    manifest: dict[str, Any] = {
        **{k: state[k] for k in ("format", "kind")},
        "name": path.name,
        **{k: state[k] for k in ("dataset", "shard", "spec", "spec_hash")},
        "seed": spec.seed,
        "block_size": block_size,
        "n_qubits": spec.n_qubits,
        "qeframe_version": __version__,
        "components": state["components"],
        "plugins": registry.plugin_versions(),
        "n_rows": row,
        "generated": sum(int(b["generated"]) for b in blocks),
        "blocks": blocks,
        "arrays": {n: {"dtype": ARRAY_DTYPES[n].str, "shape": [row, *shapes[n]]} for n in ARRAY_DTYPES},
        "shards": files,
        "array_hashes": summary.array_digests(),
        "content_hash": summary.content_hash(),
        "build": {
            "workers": n_workers,
            "shard_size": shard_size,
            "seconds": round(seconds, 3),
            "states_generated_per_second": round(generated_now / max(seconds, 1e-9), 1),
            "resumed_blocks": resumed_blocks,
            "host": socket.gethostname(),
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
        "complete": True,
    }
    _atomic_write_json(path / MANIFEST, manifest)
    with contextlib.suppress(FileNotFoundError):
        (path / BUILD_STATE).unlink()
    return manifest


def _block_record(source: dict[str, Any], row: int, file: str) -> dict[str, Any]:
    """A block of a shard store: where it comes from, what it kept, where its rows are."""
    return {
        "entry": int(source["entry"]),
        "block": int(source["block"]),
        "generated": int(source["generated"]),
        "kept": int(source["kept"]),
        "evidence": bool(source["evidence"]),
        "row": row,
        "file": file,
    }


# --------------------------------------------------------------------------------------------------
# Reading shard stores


@dataclass
class ShardStore:
    """A complete shard store: its folder and manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def index(self) -> int:
        return int(self.manifest["shard"]["index"])

    @property
    def count(self) -> int:
        return int(self.manifest["shard"]["count"])

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def iter_files(self) -> Iterator[dict[str, np.ndarray]]:
        """Per data file, in row order, the memory-mapped arrays."""
        for f in self.manifest["shards"]:
            yield {n: np.load(self.path / f["name"] / f"{n}.npy", mmap_mode="r") for n in ARRAY_DTYPES}

    def verify(self) -> bool:
        """Recompute the per-array hashes from the files and compare them with the manifest's."""
        summary = _Summary(int(self.manifest["n_qubits"]), 1)
        try:
            for arrays in self.iter_files():
                summary.hash(arrays)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return summary.array_digests() == self.manifest["array_hashes"]


def _describe(path: Path) -> tuple[str, str]:
    """``(dataset, "i/N")`` from a shard folder's name or build record, for error messages."""
    match = SHARD_DIR_RE.match(path.name)
    if match:
        return match.group("name"), f"{int(match.group('index'))}/{int(match.group('count'))}"
    state = _read_json(path / BUILD_STATE) or {}
    shard = state.get("shard") or {}
    return str(state.get("dataset", "?")), f"{shard.get('index', '?')}/{shard.get('count', '?')}"


def open_shard(path: Path) -> ShardStore:
    """The complete shard store in ``path``; :class:`StoreError` if it is not one or is incomplete."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is not None and manifest.get("kind") != SHARD_KIND and _is_complete(manifest):
        raise StoreError(f"{path} is a dataset store, not a shard store")
    if not _is_complete(manifest):
        dataset, label = _describe(path)
        raise StoreError(
            f"shard store {path} is incomplete (an interrupted or running build?); "
            f"finish it with `qeframe data build {dataset} --shard {label}`"
        )
    assert manifest is not None
    return ShardStore(path, manifest)


def find_shards(
    name: str, *, data_dir: Path = Path("data"), sources: Sequence[Path] | None = None
) -> list[Path]:
    """Shard folders of dataset ``name``: every ``<name>.shard-i-of-N`` folder of ``data_dir`` or, when
    ``sources`` are given, each source that is itself a shard folder plus the ``<name>.shard-i-of-N``
    folders inside each other source."""
    out: list[Path] = []
    for root in [Path(p) for p in sources] if sources else [Path(data_dir)]:
        if not root.is_dir():
            if sources:
                raise StoreError(f"shard source {root} is not a folder")
            continue
        if (root / MANIFEST).is_file() or (root / BUILD_STATE).is_file() or SHARD_DIR_RE.match(root.name):
            out.append(root)
            continue
        for child in sorted(root.iterdir()):
            match = SHARD_DIR_RE.match(child.name)
            if child.is_dir() and match and match.group("name") == name:
                out.append(child)
    return out


# --------------------------------------------------------------------------------------------------
# Merging


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
            self._files[key] = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in ARRAY_DTYPES}
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
            fd = stack.enter_context(_store_lock(path, path.name))
        except OSError:
            fd = None
        yield fd


def _check_shards(
    name: str, spec: DatasetSpec, shards: list[ShardStore], registry: Registry, where: str
) -> tuple[ShardPlan, dict[tuple[int, int], _StoredBlock]]:
    """Every consistency check of a merge; the plan and the stored blocks by ``(entry, block)``."""
    spec_hash, block_size = spec.spec_hash(), block_size_for(spec.n_qubits)
    components = _components(registry, spec)
    for s in shards:
        m = s.manifest
        if m.get("spec_hash") != spec_hash:
            raise StoreError(
                f"shard {s.label} in {s.path} was built from another spec (spec hash "
                f"{str(m.get('spec_hash'))[:16]}, datasets.{name} has {spec_hash[:16]}); rebuild it "
                f"with `qeframe data build {name} --shard {s.label} --force`"
            )
        if m.get("block_size") != block_size or m.get("format") != STORE_FORMAT:
            raise StoreError(
                f"shard {s.label} in {s.path} has another store format or block size; rebuild it"
            )
        if m.get("qeframe_version") != __version__ or m.get("components") != components:
            raise StoreError(
                f"shard {s.label} in {s.path} was built with other code (qeframe {m.get('qeframe_version')}, "
                f"plugins {_versions(m.get('components'))}; here qeframe {__version__}, plugins "
                f"{_versions(components)}); rebuild it"
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
    ones; missing extra blocks (see :class:`qeframe.data.build.ShardPlan`) are computed on ``workers``
    processes. Finally the written store's content hash is recomputed from its files.

    The merged store equals a single build of ``spec``: same arrays, order and content hash, the same
    manifest but for ``build`` (which records ``merged_from`` and the blocks the merge computed).

    Raises:
        StoreError: missing, incomplete, foreign, inconsistent or damaged shards (no store is written),
            or an unwritable ``data_dir``.
    """
    _check_common(name, shard_size, workers)
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
                    if not s.verify():
                        raise StoreError(
                            f"shard {s.label} in {s.path} is damaged (its array hashes differ); rebuild it"
                        )
            generate = _needs_generation(plan, stored)
            # every check passed: only now is anything written
            store.mkdir(parents=True, exist_ok=True)
            lock_fd = locks.enter_context(_store_lock(store, name))
            if lock_fd is not None:
                fds.append(lock_fd)
            _build(
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
    ds = open_dataset(name, data_dir=data_dir)
    if verify and not ds.verify():  # pragma: no cover - a bug or a failing disk
        _wipe(store)
        raise StoreError(f"the merged store {store} does not match its own content hash; it was removed")
    return ds


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
    _check_common(name, shard_size, workers)
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


def shard_status(path: Path) -> str | None:
    """``"shard i/N of NAME"`` (with ``", incomplete"`` when unfinished) for a shard folder, else ``None``."""
    manifest = read_manifest(path)
    if manifest is not None and manifest.get("kind") == SHARD_KIND:
        shard = manifest.get("shard", {})
        done = "" if _is_complete(manifest) else ", incomplete"
        return f"shard {shard.get('index')}/{shard.get('count')} of {manifest.get('dataset')}{done}"
    state = _read_json(path / BUILD_STATE)
    if state is not None and state.get("kind") == SHARD_KIND:
        dataset, label = _describe(path)
        return f"shard {label} of {dataset}, incomplete"
    return None


__all__ = [
    "SHARD_DIR_RE",
    "ShardStore",
    "ShardTask",
    "build_shard",
    "build_sharded",
    "check_shard",
    "find_shards",
    "merge_shards",
    "open_shard",
    "parse_shard",
    "run_shard_task",
    "shard_dir_name",
    "shard_status",
]
