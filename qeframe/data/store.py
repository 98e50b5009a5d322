"""The dataset store: ``data/<name>/`` holds one built dataset as a manifest and ``.npy`` shards.

Layout::

    data/<name>/
      manifest.json          # written LAST, atomically, with "complete": true
      build.json             # while a build is under way: spec, spec hash, block size (for resuming)
      shard-00000/           # rows [0, r0): one .npy per array + shard.json (row range, source blocks)
        rho.npy labels.npy provenance.npy evidence.npy ground_truth.npy
        ground_truth_provenance.npy entry.npy meta.pure.npy meta.fully_separable.npy meta.pptes.npy
        shard.json
      shard-00001/ ...
      .lock                  # flock held by the building process

Arrays (``N`` states, ``d = 2**n``, ``c = n_cuts``): ``rho`` ``(N, d, d)`` complex128; ``labels``
``(N, c)`` int8 (1 entangled, 0 separable, -1 unknown); ``provenance`` ``(N, c)`` uint8 codes into
:data:`qeframe.plugin.labels.PROVENANCE`; ``evidence`` ``(N, c)`` float64 (NaN when the labeler gives none);
``ground_truth`` / ``ground_truth_provenance`` as the family's construction knows it; ``entry``
``(N,)`` uint16, the index of the family entry in the spec; ``meta.<key>`` the standard meta of
:data:`qeframe.plugin.interfaces.STANDARD_META`.

Safety. A shard is written under a temporary name and renamed with :func:`os.replace` once its files
are complete and synced; the manifest is written the same way after every shard, so a store that
has a manifest with ``"complete": true`` is complete, and a killed build leaves only whole shards
(``kill -9`` at any moment included). Building again reuses those shards — the rows are a pure
function of the spec (:mod:`qeframe.data.build`) — and ends with the same content hash as a clean build.
A store built from another spec (another spec hash or block size) is wiped before anything is
written, never mixed.

Content hash: for each array in :data:`qeframe.data.build.ARRAY_DTYPES` order, the sha256 of the
concatenated little-endian bytes of all its rows; the content hash is the sha256 of the lines
``name:dtype:row_shape:digest``. It does not depend on the shard layout or the number of workers.

Sharded builds (:mod:`qeframe.data.shards`) write shard stores ``data/<name>.shard-i-of-N/`` with the
same file layout and a manifest of ``"kind": "shard"``; :func:`open_dataset` refuses them and
:func:`store_status` does not count them as built. Their merge writes ``data/<name>/`` through
:func:`_build` with stored blocks in place of computed ones, so it equals a single build.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Executor as FuturesExecutor
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from qeframe import __version__
from qeframe.data.build import (
    ARRAY_DTYPES,
    Cursor,
    GenerationContext,
    block_size_for,
    default_workers,
    iter_pieces,
    make_executor,
    planned_blocks,
    row_shapes,
)
from qeframe.errors import QeframeError, StoreError
from qeframe.plugin.interfaces import STANDARD_META
from qeframe.plugin.labels import PROVENANCE, provenance_names
from qeframe.plugin.progress import progress_bar
from qeframe.quantum.cuts import cut_names
from qeframe.plugin.registry import Registry, get_registry
from qeframe.config.specs import NAME_PATTERN, DatasetSpec, RegistryFile, validate_dataset_plugins

#: Version of the on-disk layout and of the random streams behind the rows; a store of another
#: format is rebuilt. History: 1 — first layout; 2 — trig-free gate and phase sampling in the
#: circuit and Haar generators (``qeframe_plugins.families._common.random_gate_params``): the same
#: specification and seed draw other (statistically equivalent) states.
STORE_FORMAT = 2
#: Why a store of an older format cannot be read, per format (for the error message).
_FORMAT_CHANGES = {1: "format 2 draws the circuit and Haar states with other random streams"}
MANIFEST = "manifest.json"
#: ``manifest["kind"]`` of a shard store (:mod:`qeframe.data.shards`); a dataset's manifest has no ``kind``.
SHARD_KIND = "shard"
BUILD_STATE = "build.json"
SHARD_INFO = "shard.json"
_SHARD_RE = re.compile(r"^shard-(\d{5,})$")
_LABEL_NAMES = ("entangled", "separable", "unknown")  # label values 1, 0, -1


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


# --------------------------------------------------------------------------------------------------
# Reading


class Dataset:
    """A read-only view of a complete store ``data/<name>/``.

    Row arrays are loaded on first access: memory-mapped (``mmap_mode="r"``) when the store has one
    shard, concatenated into memory otherwise; either way read-only. Cuts are in
    :func:`qeframe.quantum.cuts.bipartitions` order.

    Attributes:
        name: dataset name; ``path``: the store folder; ``manifest``: ``manifest.json`` as a dict.
        n_qubits: qubits per state; ``cuts``: cut names.
        rho: ``(N, 2**n, 2**n)`` complex128.
        labels: ``(N, n_cuts)`` int8, 1 entangled / 0 separable / -1 unknown (the labeler's).
        provenance: ``(N, n_cuts)`` uint8 codes into :data:`qeframe.plugin.labels.PROVENANCE`.
        evidence: ``(N, n_cuts)`` float64 if the labeler gave evidence, else ``None``.
        ground_truth, ground_truth_provenance: the same, as known by the family's construction.
        family: ``(N,)`` str, the entry's label (its ``tag``, else the family name).
        entry: ``(N,)`` uint16, index of the family entry in the spec.
        meta: the standard meta arrays ``pure`` (bool), ``fully_separable`` (int8), ``pptes`` (bool).
    """

    def __init__(self, name: str, path: Path, manifest: dict[str, Any]):
        self.name = name
        self.path = path
        self.manifest = manifest
        self.n_qubits: int = int(manifest["n_qubits"])
        self.cuts: list[str] = list(manifest["cuts"])

    def __len__(self) -> int:
        return int(self.manifest["n_samples"])

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, n={len(self)}, n_qubits={self.n_qubits}, path={str(self.path)!r})"

    @property
    def spec(self) -> DatasetSpec:
        """The spec the store was built from."""
        return DatasetSpec.model_validate(self.manifest["spec"])

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    @property
    def shard_paths(self) -> list[Path]:
        return [self.path / s["name"] for s in self.manifest["shards"]]

    def array(self, name: str) -> np.ndarray:
        """The stored array ``name`` (a key of :data:`qeframe.data.build.ARRAY_DTYPES`), read-only."""
        if name not in ARRAY_DTYPES:
            raise KeyError(f"unknown array {name!r}; stored: {', '.join(ARRAY_DTYPES)}")
        parts = [np.load(p / f"{name}.npy", mmap_mode="r") for p in self.shard_paths]
        if len(parts) == 1:
            return parts[0]
        out = np.concatenate(parts)
        out.flags.writeable = False
        return out

    def iter_shards(self, names: tuple[str, ...] = tuple(ARRAY_DTYPES)) -> Iterator[dict[str, np.ndarray]]:
        """Per shard, in row order, the memory-mapped arrays ``names`` (for streaming large stores)."""
        for p in self.shard_paths:
            yield {name: np.load(p / f"{name}.npy", mmap_mode="r") for name in names}

    @cached_property
    def rho(self) -> np.ndarray:
        return self.array("rho")

    @cached_property
    def labels(self) -> np.ndarray:
        return self.array("labels")

    @cached_property
    def provenance(self) -> np.ndarray:
        return self.array("provenance")

    @cached_property
    def evidence(self) -> np.ndarray | None:
        return self.array("evidence") if self.manifest["has_evidence"] else None

    @cached_property
    def ground_truth(self) -> np.ndarray:
        return self.array("ground_truth")

    @cached_property
    def ground_truth_provenance(self) -> np.ndarray:
        return self.array("ground_truth_provenance")

    @cached_property
    def entry(self) -> np.ndarray:
        return self.array("entry")

    @cached_property
    def family(self) -> np.ndarray:
        labels = np.asarray([f["label"] for f in self.manifest["families"]], dtype=str)
        return labels[self.entry]

    @cached_property
    def meta(self) -> dict[str, np.ndarray]:
        return {key: self.array(f"meta.{key}") for key in STANDARD_META}

    def verify(self) -> bool:
        """Recompute the content hash from the shards and compare it with the manifest's."""
        summary = _Summary(self.n_qubits, len(self.manifest["families"]))
        for arrays in self.iter_shards():
            summary.hash(arrays)
        return summary.content_hash() == self.content_hash


def read_manifest(path: Path) -> dict[str, Any] | None:
    """``path/manifest.json`` as a dict, or ``None`` when absent or unreadable."""
    try:
        with open(path / MANIFEST, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _old_format(manifest: dict[str, Any] | None) -> int | None:
    """The format of a complete store written by another store format, else ``None``."""
    if not manifest or manifest.get("complete") is not True or manifest.get("format") == STORE_FORMAT:
        return None
    fmt = manifest.get("format")
    return fmt if isinstance(fmt, int) else -1


def _is_complete(manifest: dict[str, Any] | None) -> bool:
    return bool(manifest) and manifest.get("complete") is True and manifest.get("format") == STORE_FORMAT


def open_dataset(name: str, *, data_dir: Path = Path("data")) -> Dataset:
    """Open the complete store ``data_dir/name``; :class:`StoreError` if it is missing or incomplete."""
    path = Path(data_dir) / name
    manifest = read_manifest(path)
    old = _old_format(manifest)
    if old is not None:
        raise StoreError(
            f"dataset {name!r} in {path} was built with store format {old}, this qeframe reads format "
            f"{STORE_FORMAT} ({_FORMAT_CHANGES.get(old, 'another layout')}); rebuild it with "
            f"`qeframe data build {name}`"
        )
    if not _is_complete(manifest):
        if manifest is None and not path.is_dir():
            raise StoreError(f"dataset {name!r} is not built (no {path}); run `qeframe data build {name}`")
        raise StoreError(
            f"dataset {name!r} in {path} is incomplete (an interrupted build?); "
            f"run `qeframe data build {name}` to finish it"
        )
    assert manifest is not None
    if manifest.get("kind") == SHARD_KIND:
        of = manifest.get("shard", {})
        raise StoreError(
            f"{path} is shard {of.get('index')}/{of.get('count')} of dataset {manifest.get('dataset')!r}, "
            f"not a dataset; merge the shards with `qeframe data merge {manifest.get('dataset')}`"
        )
    for shard in manifest["shards"]:
        if not (path / shard["name"] / "rho.npy").is_file():
            raise StoreError(f"dataset {name!r} in {path} is damaged: {shard['name']} is missing; rebuild it")
    return Dataset(name, path, manifest)


def store_status(name: str, spec: DatasetSpec | None, *, data_dir: Path = Path("data")) -> str:
    """One word about ``data_dir/name`` compared with ``spec``.

    ``built`` (complete, same spec), ``stale`` (complete, other spec or older store format),
    ``partial`` (an interrupted
    build of this spec that ``build`` will resume), ``missing`` (nothing usable). With ``spec=None``:
    ``built`` for any complete store.
    """
    path = Path(data_dir) / name
    manifest = read_manifest(path)
    if _is_complete(manifest) and manifest.get("kind") != SHARD_KIND:  # type: ignore[union-attr]
        assert manifest is not None
        if spec is None or _same_build(manifest, spec):
            return "built"
        return "stale"
    if _old_format(manifest) is not None and manifest.get("kind") != SHARD_KIND:  # type: ignore[union-attr]
        return "stale"
    state = _read_json(path / BUILD_STATE)
    if (
        spec is not None
        and state is not None
        and _same_build(state, spec)
        and (path / _shard_name(0)).is_dir()
    ):
        return "partial"
    return "missing"


def _same_build(record: dict[str, Any], spec: DatasetSpec) -> bool:
    return (
        record.get("format") == STORE_FORMAT
        and record.get("spec_hash") == spec.spec_hash()
        and record.get("block_size") == block_size_for(spec.n_qubits)
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------------------
# Summaries: content hash and label statistics, accumulated row block by row block


class _Summary:
    """Streaming content hash and counts over consecutive rows (see the module docstring)."""

    def __init__(self, n_qubits: int, n_entries: int):
        self.n_qubits = n_qubits
        c = len(cut_names(n_qubits))
        self.hashers = {name: hashlib.sha256() for name in ARRAY_DTYPES}
        self.labels = np.zeros((n_entries, c, 3), np.int64)  # per entry, cut: entangled/separable/unknown
        self.truth = np.zeros((n_entries, c, 3), np.int64)
        self.provenance = np.zeros((c, len(PROVENANCE)), np.int64)
        self.truth_provenance = np.zeros((c, len(PROVENANCE)), np.int64)
        self.generated: dict[tuple[int, int], int] = {}
        self.has_evidence = False
        self.rows = 0

    def hash(self, arrays: dict[str, np.ndarray]) -> None:
        for name, hasher in self.hashers.items():
            hasher.update(np.ascontiguousarray(arrays[name]).data)

    def add(
        self, arrays: dict[str, np.ndarray], entry: int, block: int, generated: int, evidence: bool
    ) -> None:
        """Account for consecutive rows that all come from block ``block`` of entry ``entry``."""
        self.hash(arrays)
        for counts, name in ((self.labels, "labels"), (self.truth, "ground_truth")):
            values = np.asarray(arrays[name])
            for k, v in enumerate((1, 0, -1)):
                counts[entry, :, k] += np.count_nonzero(values == v, axis=0)
        for counts, name in (
            (self.provenance, "provenance"),
            (self.truth_provenance, "ground_truth_provenance"),
        ):
            codes = np.asarray(arrays[name])
            for cut in range(codes.shape[1]):
                counts[cut] += np.bincount(codes[:, cut], minlength=len(PROVENANCE))[: len(PROVENANCE)]
        self.generated[(entry, block)] = generated
        self.has_evidence |= evidence
        self.rows += int(arrays["rho"].shape[0])

    def array_digests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self.hashers.items()}

    def content_hash(self) -> str:
        shapes = row_shapes(self.n_qubits)
        lines = "".join(
            f"{name}:{ARRAY_DTYPES[name].str}:{list(shapes[name])}:{digest}\n"
            for name, digest in self.array_digests().items()
        )
        return hashlib.sha256(lines.encode()).hexdigest()


def _balance(counts: np.ndarray, cuts: list[str]) -> dict[str, dict[str, int]]:
    return {cut: dict(zip(_LABEL_NAMES, map(int, counts[j]))) for j, cut in enumerate(cuts)}


def _provenance_table(counts: np.ndarray, cuts: list[str]) -> dict[str, dict[str, int]]:
    return {cut: {PROVENANCE[p]: int(n) for p, n in enumerate(counts[j]) if n} for j, cut in enumerate(cuts)}


# --------------------------------------------------------------------------------------------------
# Writing


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _write_npy_header(f: BinaryIO, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_2_0(f, header)


class _ShardWriter:
    """Streams ``rows`` rows into ``.npy`` files of a temporary folder; :meth:`commit` renames it."""

    def __init__(self, store: Path, index: int, start: int, rows: int, n_qubits: int):
        self.store, self.index, self.start, self.rows = store, index, start, rows
        self.tmp = store / f".{_shard_name(index)}.tmp-{os.getpid()}"
        self.written = 0
        self.sources: list[dict[str, Any]] = []
        self.files: dict[str, BinaryIO] = {}
        self.tmp.mkdir()
        shapes = row_shapes(n_qubits)
        for name, dtype in ARRAY_DTYPES.items():
            f = open(self.tmp / f"{name}.npy", "wb")  # noqa: SIM115 - closed by commit() or abort()
            self.files[name] = f
            _write_npy_header(f, dtype, (rows, *shapes[name]))

    @property
    def remaining(self) -> int:
        return self.rows - self.written

    def append(self, arrays: dict[str, np.ndarray], source: dict[str, Any]) -> None:
        for name, f in self.files.items():
            f.write(np.ascontiguousarray(arrays[name], dtype=ARRAY_DTYPES[name]).data)
        self.written += int(arrays["rho"].shape[0])
        self.sources.append(source)

    def commit(self) -> str:
        """Sync, close and rename to ``shard-NNNNN``; returns the final name."""
        assert self.written == self.rows, "shard not full"
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        self.files.clear()
        info = {"index": self.index, "start": self.start, "rows": self.rows, "sources": self.sources}
        with open(self.tmp / SHARD_INFO, "w", encoding="utf-8") as f:
            json.dump(info, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.tmp)
        final = self.store / _shard_name(self.index)
        os.replace(self.tmp, final)
        _fsync_dir(self.store)
        return final.name

    def abort(self) -> None:
        for f in self.files.values():
            with contextlib.suppress(OSError):
                f.close()
        self.files.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def _store_lock(store: Path, name: str) -> Iterator[int | None]:
    """Hold an exclusive ``flock`` on ``store/.lock`` (released by the kernel if the process dies)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    fd = os.open(store / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"dataset {name!r} is being built by another process (lock {store / '.lock'})"
            ) from None
        yield fd
    finally:
        os.close(fd)


def _wipe(store: Path) -> None:
    """Remove everything a build wrote, the manifest first (so the store never looks complete)."""
    with contextlib.suppress(FileNotFoundError):
        (store / MANIFEST).unlink()
        _fsync_dir(store)
    for child in sorted(store.iterdir()):
        if _SHARD_RE.match(child.name) or child.name.startswith(
            (".shard-", f".{MANIFEST}.tmp", f".{BUILD_STATE}.tmp")
        ):
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    with contextlib.suppress(FileNotFoundError):
        (store / BUILD_STATE).unlink()


def _complete_shards(store: Path, counts: list[int] | None, n_qubits: int) -> list[dict[str, Any]]:
    """The ``shard.json`` of the consistent prefix ``shard-00000, shard-00001, ...``; later shards and
    leftover temporary folders are removed. With ``counts``, a prefix holding more rows of an entry
    than its count ends there (a shard store of :mod:`qeframe.data.shards` passes ``None``)."""
    shapes = row_shapes(n_qubits)
    infos: list[dict[str, Any]] = []
    start = 0
    per_entry: dict[int, int] = {}
    while True:
        path = store / _shard_name(len(infos))
        info = _read_json(path / SHARD_INFO)
        if info is None or info.get("index") != len(infos) or info.get("start") != start:
            break
        try:
            rows = int(info["rows"])
            ok = (rows > 0 or counts is None) and sum(int(s["rows"]) for s in info["sources"]) == rows
            for s in info["sources"]:
                e = int(s["entry"])
                per_entry[e] = per_entry.get(e, 0) + int(s["rows"])
            if counts is not None:
                ok = ok and all(0 <= e < len(counts) and r <= counts[e] for e, r in per_entry.items())
            for name in ARRAY_DTYPES:
                array = np.load(path / f"{name}.npy", mmap_mode="r")
                ok = ok and array.shape == (rows, *shapes[name]) and array.dtype == ARRAY_DTYPES[name]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            break
        infos.append(info)
        start += rows
    for child in store.iterdir():
        match = _SHARD_RE.match(child.name)
        if (match and int(match.group(1)) >= len(infos)) or child.name.startswith(".shard-"):
            shutil.rmtree(child, ignore_errors=True)
    return infos


def _resume_cursor(infos: list[dict[str, Any]], counts: list[int]) -> Cursor | None:
    """Where to continue after the shards ``infos``; ``None`` if they do not form a valid prefix."""
    sources = [s for info in infos for s in info["sources"]]
    if not sources:
        return Cursor()
    per_entry = [0] * len(counts)
    for s in sources:
        per_entry[s["entry"]] += s["rows"]
    last = sources[-1]
    e = int(last["entry"])
    if any(per_entry[i] != counts[i] for i in range(e)) or any(
        per_entry[i] for i in range(e + 1, len(counts))
    ):
        return None
    if per_entry[e] == counts[e]:
        return Cursor(entry=e + 1)
    end = int(last["start"]) + int(last["rows"])
    if end >= int(last["kept"]):
        return Cursor(entry=e, block=int(last["block"]) + 1, rows=per_entry[e])
    return Cursor(entry=e, block=int(last["block"]), skip=end, rows=per_entry[e])


def _progress_bar(enabled: bool) -> Any:
    """The build's progress bar (states/s), or ``None`` when progress is off."""
    return progress_bar(rate_unit="states/s") if enabled else None


def generation_context(name: str, spec: DatasetSpec, registry: Registry) -> GenerationContext:
    """Validate ``spec``'s families and labeler (:func:`qeframe.config.specs.validate_dataset_plugins`) and
    construct them: what any process needs to compute any block of dataset ``name``."""
    validate_dataset_plugins(name, spec, registry)
    keys = [f"datasets.{name}.families[{i}]" for i in range(len(spec.families))]
    if len(spec.families) > np.iinfo(np.uint16).max:
        raise QeframeError(f"datasets.{name}.families: at most {np.iinfo(np.uint16).max} entries")
    return GenerationContext(
        families=[
            registry.create("family", e.family, e.params, key=f"{k}.params")  # type: ignore[misc]
            for e, k in zip(spec.families, keys)
        ],
        labeler=registry.create("labeler", spec.labeler.name, spec.labeler.params),  # type: ignore[arg-type]
        n_qubits=spec.n_qubits,
        seed=spec.seed,
        keys=keys,
    )


def build_dataset(
    name: str,
    spec: DatasetSpec,
    *,
    data_dir: Path = Path("data"),
    registry: Registry | None = None,
    workers: int | None = None,
    shard_size: int = 16384,
    progress: bool = True,
    force: bool = False,
) -> Dataset:
    """Build (or finish, or reuse) the store ``data_dir/name`` for ``spec`` and return it.

    * A complete store of the same spec is returned as it is, unless ``force``.
    * An interrupted build of the same spec is resumed from its complete shards.
    * Anything else in the folder that a build wrote (another spec, another format) is removed first.

    Every family and the labeler are validated (:func:`qeframe.config.specs.validate_dataset_plugins`)
    before anything is generated or written. Blocks are generated on ``workers`` processes
    (default ``os.cpu_count()``); ``shard_size`` rows go into each shard. Neither changes the content.

    Raises:
        SpecError / UnknownComponentError: a bad spec or plugin name (the message names the key).
        StoreError: the folder cannot be written (permissions, full disk, ...) or is being built by
            another process; no store is left claiming completeness.
    """
    if not re.match(NAME_PATTERN, name):
        raise QeframeError(f"invalid dataset name {name!r}: use letters, digits, '_', '.', '-'")
    if shard_size < 1:
        raise QeframeError(f"shard size must be at least 1, got {shard_size}")
    if workers is not None and workers < 1:
        raise QeframeError(f"workers must be at least 1, got {workers}")
    registry = registry if registry is not None else get_registry()
    ctx = generation_context(name, spec, registry)
    store = Path(data_dir) / name
    try:
        store.mkdir(parents=True, exist_ok=True)
        with _store_lock(store, name) as lock_fd:
            if not force and _is_complete(manifest := read_manifest(store)) and _same_build(manifest, spec):  # type: ignore[arg-type]
                return open_dataset(name, data_dir=data_dir)
            _build(name, spec, store, ctx, registry, workers, shard_size, progress, force, lock_fd)
    except OSError as exc:
        raise StoreError(f"cannot write dataset store {store}: {exc.strerror or exc}") from None
    return open_dataset(name, data_dir=data_dir)


def _build(
    name: str,
    spec: DatasetSpec,
    store: Path,
    ctx: GenerationContext,
    registry: Registry,
    workers: int | None,
    shard_size: int,
    progress: bool,
    force: bool,
    lock_fd: int | None,
    *,
    executor_factory: Callable[[int], FuturesExecutor] | None = None,
    build_info: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Write the store. ``executor_factory(n_workers)``, when given, supplies the blocks instead of a
    process pool (the merge of :mod:`qeframe.data.shards` serves stored blocks so); ``build_info()`` adds
    keys to the manifest's ``build`` record."""
    t0 = time.perf_counter()
    block_size = block_size_for(spec.n_qubits)
    counts = [e.count for e in spec.families]
    total = sum(counts)
    cuts = cut_names(spec.n_qubits)
    # What a resumed build must share with the interrupted one: the spec, the block size, and the
    # versions of the code that made the rows (so that no store mixes rows of two plugin versions).
    state = {
        "format": STORE_FORMAT,
        "spec_hash": spec.spec_hash(),
        "block_size": block_size,
        "qeframe_version": __version__,
        "components": _components(registry, spec),
        "spec": spec.canonical(),
    }

    previous = _read_json(store / BUILD_STATE)
    resumable = (
        not force
        and previous is not None
        and _same_build(previous, spec)
        and all(previous.get(k) == state[k] for k in ("qeframe_version", "components"))
        and read_manifest(store) is None
    )
    infos = _complete_shards(store, counts, spec.n_qubits) if resumable else []
    cursor = _resume_cursor(infos, counts) if resumable else None
    if cursor is None:  # start afresh: nothing of another spec survives
        _wipe(store)
        infos = []
        cursor = Cursor()
        _atomic_write_json(store / BUILD_STATE, state)

    summary = _Summary(spec.n_qubits, len(counts))
    shards: list[dict[str, Any]] = []
    for info in infos:  # re-read the reused shards for the content hash and the counts
        path = store / _shard_name(info["index"])
        arrays = {n: np.load(path / f"{n}.npy", mmap_mode="r") for n in ARRAY_DTYPES}
        offset = 0
        for s in info["sources"]:
            part = {n: a[offset : offset + s["rows"]] for n, a in arrays.items()}
            summary.add(part, s["entry"], s["block"], s["generated"], s["evidence"])
            offset += s["rows"]
        shards.append({"name": path.name, "rows": info["rows"]})
    resumed = summary.rows

    n_workers = workers or default_workers()
    n_workers = max(1, min(n_workers, planned_blocks(counts, block_size)))
    if resumed >= total:
        executor = None
    elif executor_factory is not None:
        executor = executor_factory(n_workers)
    else:
        executor = make_executor(ctx, n_workers, close_fds=() if lock_fd is None else (lock_fd,))
    bar = _progress_bar(progress)
    writer: _ShardWriter | None = None
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task(name, total=total, completed=resumed, rate="-")
        row = resumed
        pieces = (
            iter_pieces(
                ctx,
                counts,
                executor,
                block_size=block_size,
                cursor=cursor,
                max_in_flight=2 * n_workers,
                dataset=name,
            )
            if executor is not None
            else iter(())
        )
        for piece in pieces:
            summary.add(piece.arrays, piece.entry, piece.block, piece.block_generated, piece.has_evidence)
            offset = 0
            while offset < len(piece):
                if writer is None:
                    writer = _ShardWriter(
                        store, len(shards), row, min(shard_size, total - row), spec.n_qubits
                    )
                take = min(len(piece) - offset, writer.remaining)
                writer.append(
                    {k: v[offset : offset + take] for k, v in piece.arrays.items()},
                    {
                        "entry": piece.entry,
                        "block": piece.block,
                        "start": piece.start + offset,
                        "rows": take,
                        "generated": piece.block_generated,
                        "kept": piece.block_kept,
                        "evidence": piece.has_evidence,
                    },
                )
                offset += take
                row += take
                if writer.remaining == 0:
                    shards.append({"name": writer.commit(), "rows": writer.rows})
                    writer = None
            if bar is not None:
                elapsed = time.perf_counter() - t0
                bar.update(task, completed=row, rate=f"{(row - resumed) / max(elapsed, 1e-9):,.0f}")
    finally:
        if writer is not None:
            writer.abort()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.stop()
    if summary.rows != total:  # pragma: no cover - a bug, not a user error
        raise RuntimeError(f"dataset {name!r}: wrote {summary.rows} rows, expected {total}")

    seconds = time.perf_counter() - t0
    manifest = _manifest(name, spec, registry, summary, shards, cuts, block_size)
    manifest["build"] = {
        "workers": n_workers,
        "shard_size": shard_size,
        "seconds": round(seconds, 3),
        "states_per_second": round((total - resumed) / max(seconds, 1e-9), 1),
        "resumed_rows": resumed,
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **(build_info() if build_info is not None else {}),
    }
    manifest["complete"] = True
    _atomic_write_json(store / MANIFEST, manifest)
    with contextlib.suppress(FileNotFoundError):
        (store / BUILD_STATE).unlink()


def _component(registry: Registry, kind: str, name: str) -> dict[str, str]:
    info = registry.info(kind, name)
    return {"name": name, "plugin": info.plugin, "distribution": info.distribution, "version": info.version}


def _components(registry: Registry, spec: DatasetSpec) -> dict[str, Any]:
    """The labeler and the families of ``spec`` with the plugin and distribution providing each."""
    return {
        "labeler": _component(registry, "labeler", spec.labeler.name),
        "families": {e.family: _component(registry, "family", e.family) for e in spec.families},
    }


def _manifest(
    name: str,
    spec: DatasetSpec,
    registry: Registry,
    summary: _Summary,
    shards: list[dict[str, Any]],
    cuts: list[str],
    block_size: int,
) -> dict[str, Any]:
    total = summary.rows
    shapes = row_shapes(spec.n_qubits)
    generated = [0] * len(spec.families)
    for (entry, _), g in summary.generated.items():
        generated[entry] += g
    families = [
        {
            "index": i,
            "family": e.family,
            "tag": e.tag,
            "label": e.label,
            "count": e.count,
            "generated": generated[i],
            "label_balance": _balance(summary.labels[i], cuts),
            "ground_truth_balance": _balance(summary.truth[i], cuts),
            "component": _component(registry, "family", e.family),
        }
        for i, e in enumerate(spec.families)
    ]
    return {
        "format": STORE_FORMAT,
        "name": name,
        "description": spec.description,
        "split": spec.split,
        "spec": spec.canonical(),
        "spec_hash": spec.spec_hash(),
        "seed": spec.seed,
        "block_size": block_size,
        "n_qubits": spec.n_qubits,
        "cuts": cuts,
        "n_samples": total,
        "qeframe_version": __version__,
        "plugins": registry.plugin_versions(),
        "labeler": _component(registry, "labeler", spec.labeler.name),
        "families": families,
        "label_balance": _balance(summary.labels.sum(axis=0), cuts),
        "ground_truth_balance": _balance(summary.truth.sum(axis=0), cuts),
        "provenance_counts": _provenance_table(summary.provenance, cuts),
        "ground_truth_provenance_counts": _provenance_table(summary.truth_provenance, cuts),
        "has_evidence": summary.has_evidence,
        "arrays": {n: {"dtype": ARRAY_DTYPES[n].str, "shape": [total, *shapes[n]]} for n in ARRAY_DTYPES},
        "shards": shards,
        "array_hashes": summary.array_digests(),
        "content_hash": summary.content_hash(),
    }


def ensure_dataset(
    name: str,
    registry_file: RegistryFile,
    *,
    data_dir: Path = Path("data"),
    registry: Registry | None = None,
    progress: bool = True,
) -> Dataset:
    """The store of dataset ``name`` declared in ``registry_file``, built (or finished) first when it is
    missing, incomplete or was built from another spec."""
    spec = registry_file.dataset(name)
    if store_status(name, spec, data_dir=data_dir) == "built":
        return open_dataset(name, data_dir=data_dir)
    return build_dataset(name, spec, data_dir=data_dir, registry=registry, progress=progress)


# --------------------------------------------------------------------------------------------------
# Export


def export_npz(dataset: Dataset, out: Path) -> None:
    """Write ``dataset`` to the uncompressed ``.npz`` file ``out`` (exactly that path), shard by shard.

    Keys: ``rho`` ``(N, 2**n, 2**n)`` complex128, ``labels`` ``(N, n_cuts)`` int8, ``provenance``
    ``(N, n_cuts)`` str (names from :data:`qeframe.plugin.labels.PROVENANCE`), ``ground_truth`` int8 and
    ``ground_truth_provenance`` str likewise, ``family`` ``(N,)`` str, ``cuts`` ``(n_cuts,)`` str,
    ``pure`` / ``fully_separable`` / ``pptes`` ``(N,)``, and ``evidence`` float64 when present.
    Load with ``np.load(out)``.
    """
    out = Path(out)
    n = len(dataset)
    labels = np.asarray([f["label"] for f in dataset.manifest["families"]], dtype=str)
    prov_dtype = np.asarray(PROVENANCE, dtype=str).dtype
    shapes = row_shapes(dataset.n_qubits)
    # key -> (stored array, dtype, transform of a shard's chunk)
    columns: dict[str, tuple[str, np.dtype, Any]] = {
        "rho": ("rho", ARRAY_DTYPES["rho"], None),
        "labels": ("labels", ARRAY_DTYPES["labels"], None),
        "provenance": ("provenance", prov_dtype, provenance_names),
        "ground_truth": ("ground_truth", ARRAY_DTYPES["ground_truth"], None),
        "ground_truth_provenance": ("ground_truth_provenance", prov_dtype, provenance_names),
        "family": ("entry", labels.dtype, lambda codes: labels[codes]),
        **{key: (f"meta.{key}", ARRAY_DTYPES[f"meta.{key}"], None) for key in STANDARD_META},
    }
    if dataset.evidence is not None:
        columns["evidence"] = ("evidence", ARRAY_DTYPES["evidence"], None)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, (stored, dtype, transform) in columns.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                    _write_npy_header(f, dtype, (n, *shapes[stored]))  # type: ignore[arg-type]
                    for arrays in dataset.iter_shards((stored,)):
                        chunk = arrays[stored] if transform is None else transform(arrays[stored])
                        f.write(np.ascontiguousarray(chunk, dtype=dtype).data)
            with zf.open("cuts.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(dataset.cuts, dtype=str))
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"cannot write {out}: {exc.strerror or exc}") from None
