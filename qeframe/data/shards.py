"""Shard stores: one shard of a sharded dataset build, built anywhere (``data build NAME --shard i/N``).

A dataset's rows are a pure function of its spec, computed in generation blocks (:mod:`qeframe.data.build`).
:class:`qeframe.data.plan.ShardPlan` divides those blocks among ``N`` shards (numbered ``0 .. N-1``):
planned blocks round robin over the whole dataset, the extra blocks a dropping labeler needs to the
shards that own the entry, each shard deciding from its own blocks how many extras to compute.

:func:`build_shard` builds shard ``i`` of ``N`` into ``data/<name>.shard-i-of-N/`` through the one
store writer (:class:`qeframe.data.writer.StoreWriter`): whole blocks in ``.npy`` files, a
``shard.json`` per file listing its blocks, and a manifest (``"kind": "shard"``: identity, spec and
spec hash, shard index and count, block list, per-array and per-file hashes, code versions,
``"complete": true`` written last). It resumes after an interruption and holds the folder's lock while
it writes, like a dataset build. :func:`open_shard` and :func:`find_shards` read shard stores;
:mod:`qeframe.data.merge` merges them.
"""

from __future__ import annotations

import datetime as _dt
import re
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qeframe import __version__
from qeframe.config.specs import DatasetSpec
from qeframe.data.build import ARRAY_DTYPES, Block, default_workers, make_executor, row_shapes
from qeframe.data.format import (
    BUILD_STATE,
    MANIFEST,
    SHARD_KIND,
    Summary,
    components,
    identity,
    is_complete,
    read_build_state,
    read_manifest,
    shard_name,
)
from qeframe.data.plan import ShardPlan, ShardSchedule, iter_shard_blocks
from qeframe.data.store import check_build_args, generation_context
from qeframe.data.verify import check_store
from qeframe.data.writer import StoreWriter, load_file, store_lock
from qeframe.errors import QeframeError, StoreError
from qeframe.plugin.progress import progress_bar
from qeframe.plugin.registry import Registry, get_registry

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


def shard_state(name: str, spec: DatasetSpec, index: int, count: int, registry: Registry) -> dict[str, Any]:
    """What identifies a shard build: the keys a resumed build and a merge must agree on (:data:`SHARD_IDENTITY`)."""
    return {
        **identity(spec),
        "kind": SHARD_KIND,
        "dataset": name,
        "shard": {"index": index, "count": count},
        "qeframe_version": __version__,
        "components": components(registry, spec),
        "spec": spec.canonical(),
    }


#: Keys of :func:`shard_state` that a complete shard store must match to be reused.
SHARD_IDENTITY = ("format", "identity_hash", "block_size", "kind", "shard", "qeframe_version", "components")


def _same_shard(record: dict[str, Any] | None, state: dict[str, Any]) -> bool:
    return record is not None and all(record.get(k) == state[k] for k in SHARD_IDENTITY)


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
    :class:`qeframe.data.plan.ShardPlan` gives the shard, in the shard's order, whole (a block is never
    split between files): a data file is written once ``shard_size`` rows or :data:`FLUSH_BYTES`
    are buffered. A complete shard store of the same identity, shard layout and code versions is
    returned as it is unless ``force``; an interrupted one is resumed from its complete files.
    ``workers`` processes (default ``os.cpu_count()``) compute the blocks.

    Raises:
        QeframeError: a bad name, shard index/count, shard size or worker count.
        SpecError / UnknownComponentError: a bad spec or plugin name.
        StoreError: the folder cannot be written or is being built by another process.
    """
    check_build_args(name, shard_size, workers)
    check_shard(index, count)
    registry = registry if registry is not None else get_registry()
    ctx = generation_context(name, spec, registry)
    state = shard_state(name, spec, index, count, registry)
    path = Path(data_dir) / shard_dir_name(name, index, count)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with store_lock(path, shard_dir_name(name, index, count)) as lock_fd:
            manifest = read_manifest(path)
            if not force and is_complete(manifest) and _same_shard(manifest, state):
                assert manifest is not None
                return manifest
            return _write_shard(
                spec, path, ctx, registry, state, workers, shard_size, progress, force, lock_fd
            )
    except OSError as exc:
        raise StoreError(f"cannot write shard store {path}: {exc.strerror or exc}") from None


def _write_shard(
    spec: DatasetSpec,
    path: Path,
    ctx: Any,
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
    schedule = ShardSchedule(plan, index)

    def accept(infos: list[dict[str, Any]]) -> bool:
        """Replay the stored blocks through a fresh schedule; refuse files that do not continue it."""
        nonlocal schedule
        schedule = ShardSchedule(plan, index)
        try:
            for info in infos:
                for s in info["sources"]:
                    if int(s["start"]) != 0 or int(s["rows"]) != int(s["kept"]):
                        raise ValueError("not a whole block")
                    schedule.observe(int(s["entry"]), int(s["block"]), int(s["generated"]), int(s["kept"]))
        except (ValueError, KeyError, TypeError):
            schedule = ShardSchedule(plan, index)
            return False
        return True

    writer = StoreWriter(path, state, spec.n_qubits)
    infos = writer.start(force=force, counts=None, accept=accept)
    summary = Summary(spec.n_qubits, len(spec.families))
    blocks: list[dict[str, Any]] = []
    row = 0
    for info in infos:  # reused files: hash them again, list their blocks
        summary.hash(writer.reused(info))
        for s in info["sources"]:
            blocks.append(_block_record(s, row, shard_name(int(info["index"]))))
            row += int(s["rows"])
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
        file = writer.new_file(sum(len(b) for b in buffer))
        records, start = [], row
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
                file.append(b.arrays, source)
                records.append(_block_record(source, start, shard_name(len(writer.files))))
                start += len(b)
        except BaseException:
            file.abort()
            raise
        writer.commit(file)
        blocks.extend(records)
        for b in buffer:
            summary.hash(b.arrays)
        row = start
        buffer.clear()

    bar = progress_bar(rate_unit="states/s") if progress else None
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
        if buffer or not writer.files:
            flush()  # the rest, or an empty file for a shard whose blocks all kept nothing
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.stop()

    seconds = time.perf_counter() - t0
    shapes = row_shapes(spec.n_qubits)
    manifest: dict[str, Any] = {
        **{k: state[k] for k in ("format", "identity_hash", "kind")},
        "name": path.name,
        **{k: state[k] for k in ("dataset", "shard", "spec")},
        "spec_hash": spec.spec_hash(),
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
        "shards": writer.files,
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
    writer.finish(manifest)
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
            yield load_file(self.path / f["name"])

    def verify(self) -> bool:
        """Rehash the files and compare them with the manifest's per-file hashes
        (:func:`qeframe.data.verify.check_store`)."""
        return not check_store(self.path, self.manifest)


def _describe(path: Path) -> tuple[str, str]:
    """``(dataset, "i/N")`` from a shard folder's name or build record, for error messages."""
    match = SHARD_DIR_RE.match(path.name)
    if match:
        return match.group("name"), f"{int(match.group('index'))}/{int(match.group('count'))}"
    state = read_build_state(path) or {}
    shard = state.get("shard") or {}
    return str(state.get("dataset", "?")), f"{shard.get('index', '?')}/{shard.get('count', '?')}"


def open_shard(path: Path) -> ShardStore:
    """The complete shard store in ``path``; :class:`StoreError` if it is not one or is incomplete."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is not None and manifest.get("kind") != SHARD_KIND and is_complete(manifest):
        raise StoreError(f"{path} is a dataset store, not a shard store")
    if not is_complete(manifest):
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


def shard_status(path: Path) -> str | None:
    """``"shard i/N of NAME"`` (with ``", incomplete"`` when unfinished) for a shard folder, else ``None``."""
    manifest = read_manifest(path)
    if manifest is not None and manifest.get("kind") == SHARD_KIND:
        shard = manifest.get("shard", {})
        done = "" if is_complete(manifest) else ", incomplete"
        return f"shard {shard.get('index')}/{shard.get('count')} of {manifest.get('dataset')}{done}"
    state = read_build_state(path)
    if state is not None and state.get("kind") == SHARD_KIND:
        dataset, label = _describe(path)
        return f"shard {label} of {dataset}, incomplete"
    return None
