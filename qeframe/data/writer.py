"""The one store writer: data files, resume, wipe, lock and manifest, for dataset and shard stores alike.

:class:`StoreWriter` writes a store folder (layout in :mod:`qeframe.data.format`) resumably:

1. :meth:`StoreWriter.start` either **resumes** — the folder holds the build record
   (``build.json``) of a build with the same state (identity, code versions; the free text of the
   spec may differ), no manifest, and a consistent prefix ``shard-00000, shard-00001, ...`` of
   complete data files that the caller accepts — or **starts afresh**: everything a build wrote is
   removed (the manifest first, so that the folder never looks complete) and the build record is
   written.
2. :meth:`StoreWriter.new_file` streams rows into the ``.npy`` files of a temporary folder
   (:class:`FileWriter`); :meth:`StoreWriter.commit` syncs it and renames it to its final name with
   :func:`os.replace`, so a killed build (``kill -9`` at any moment included) leaves only whole files.
3. :meth:`StoreWriter.finish` writes the manifest with ``"complete": true`` last, atomically
   (:func:`qeframe.io.atomic_write_json`), and removes the build record.

Single builds (:mod:`qeframe.data.store`), shard builds (:mod:`qeframe.data.shards`) and merges
(:mod:`qeframe.data.merge`) all write through it; they differ only in how rows are cut into files
and in what the manifest records. :func:`store_lock` is the folder's ``flock``;
:func:`rewrite_manifest` replaces only a manifest (for :func:`~qeframe.data.store.refresh_free_text`
and :func:`~qeframe.data.store.migrate_store`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from qeframe.data.build import ARRAY_DTYPES, row_shapes
from qeframe.data.format import (
    BUILD_STATE,
    LOCK,
    MANIFEST,
    SHARD_INFO,
    SHARD_RE,
    read_build_state,
    read_manifest,
    shard_name,
)
from qeframe.errors import StoreError
from qeframe.io import atomic_write_json, fsync_dir, read_json_object

#: Keys of a build record that a resumed build may differ in (free text only).
RESUME_IGNORED = ("spec",)


def write_npy_header(f: BinaryIO, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Write a ``.npy`` (version 2.0) header for a C-order array of ``dtype`` and ``shape``."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_2_0(f, header)


class FileWriter:
    """Streams ``rows`` rows into the ``.npy`` files of a temporary folder; :meth:`commit` renames it.

    The folder ``store/.shard-NNNNN.tmp-<pid>`` gets one ``<array>.npy`` per array of
    :data:`qeframe.data.build.ARRAY_DTYPES` and, on commit, ``shard.json``: ``index``, ``start`` (first
    row in the store), ``rows``, ``sources`` (per appended piece: entry, block, first kept row,
    rows, generated and kept states of the block, evidence flag) and ``hashes``, the sha256 of each
    file's data bytes (after the ``.npy`` header), computed while writing: what
    :func:`qeframe.data.verify.check_store` compares the files with.
    """

    def __init__(self, store: Path, index: int, start: int, rows: int, n_qubits: int):
        self.store, self.index, self.start, self.rows = store, index, start, rows
        self.tmp = store / f".{shard_name(index)}.tmp-{os.getpid()}"
        self.written = 0
        self.sources: list[dict[str, Any]] = []
        self.files: dict[str, BinaryIO] = {}
        self.hashers = {name: hashlib.sha256() for name in ARRAY_DTYPES}
        self.tmp.mkdir()
        shapes = row_shapes(n_qubits)
        for name, dtype in ARRAY_DTYPES.items():
            f = open(self.tmp / f"{name}.npy", "wb")  # noqa: SIM115 - closed by commit() or abort()
            self.files[name] = f
            write_npy_header(f, dtype, (rows, *shapes[name]))

    @property
    def remaining(self) -> int:
        return self.rows - self.written

    def append(self, arrays: dict[str, np.ndarray], source: dict[str, Any]) -> None:
        for name, f in self.files.items():
            data = np.ascontiguousarray(arrays[name], dtype=ARRAY_DTYPES[name]).data
            f.write(data)
            self.hashers[name].update(data)
        self.written += int(arrays["rho"].shape[0])
        self.sources.append(source)

    def hashes(self) -> dict[str, str]:
        """sha256 of the data bytes written so far, per array."""
        return {name: h.hexdigest() for name, h in self.hashers.items()}

    def commit(self) -> str:
        """Sync, close and rename to ``shard-NNNNN``; returns the final name."""
        assert self.written == self.rows, "shard not full"
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        self.files.clear()
        info = {
            "index": self.index,
            "start": self.start,
            "rows": self.rows,
            "sources": self.sources,
            "hashes": self.hashes(),
        }
        atomic_write_json(self.tmp / SHARD_INFO, info, sort_keys=False)
        final = self.store / shard_name(self.index)
        os.replace(self.tmp, final)
        fsync_dir(self.store)
        return final.name

    def abort(self) -> None:
        for f in self.files.values():
            with contextlib.suppress(OSError):
                f.close()
        self.files.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def store_lock(store: Path, name: str) -> Iterator[int | None]:
    """Hold an exclusive ``flock`` on ``store/.lock`` (released by the kernel if the process dies);
    :class:`StoreError` naming ``name`` while another process holds it. Yields the descriptor (to be
    closed in worker processes), ``None`` where ``flock`` does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    fd = os.open(store / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"dataset {name!r} is being built by another process (lock {store / LOCK})"
            ) from None
        yield fd
    finally:
        os.close(fd)


def wipe(store: Path) -> None:
    """Remove everything a build wrote, the manifest first (so the store never looks complete)."""
    with contextlib.suppress(FileNotFoundError):
        (store / MANIFEST).unlink()
        fsync_dir(store)
    for child in sorted(store.iterdir()):
        if SHARD_RE.match(child.name) or child.name.startswith(
            (".shard-", f".{MANIFEST}.", f".{BUILD_STATE}.")
        ):
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    with contextlib.suppress(FileNotFoundError):
        (store / BUILD_STATE).unlink()


def complete_files(store: Path, counts: list[int] | None, n_qubits: int) -> list[dict[str, Any]]:
    """The ``shard.json`` of the consistent prefix ``shard-00000, shard-00001, ...``; later files and
    leftover temporary folders are removed. With ``counts``, a prefix holding more rows of an entry
    than its count ends there (a shard store passes ``None``)."""
    shapes = row_shapes(n_qubits)
    infos: list[dict[str, Any]] = []
    start = 0
    per_entry: dict[int, int] = {}
    while True:
        path = store / shard_name(len(infos))
        info = read_json_object(path / SHARD_INFO)
        if info is None or info.get("index") != len(infos) or info.get("start") != start:
            break
        try:
            rows = int(info["rows"])
            ok = (rows > 0 or counts is None) and sum(int(s["rows"]) for s in info["sources"]) == rows
            ok = ok and set(info["hashes"]) == set(ARRAY_DTYPES)
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
        match = SHARD_RE.match(child.name)
        if (match and int(match.group(1)) >= len(infos)) or child.name.startswith(".shard-"):
            shutil.rmtree(child, ignore_errors=True)
    return infos


def file_record(info: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of a data file (``name``, ``rows``, ``hashes``) from its ``shard.json``."""
    return {"name": shard_name(int(info["index"])), "rows": int(info["rows"]), "hashes": dict(info["hashes"])}


def load_file(path: Path, names: tuple[str, ...] = tuple(ARRAY_DTYPES)) -> dict[str, np.ndarray]:
    """The arrays ``names`` of the data file folder ``path``, memory-mapped read-only."""
    return {n: np.load(path / f"{n}.npy", mmap_mode="r") for n in names}


class StoreWriter:
    """Writes the store folder ``path`` resumably (see the module docstring).

    ``state`` is the build record: what a resumed build must share with the interrupted one (every
    key but :data:`RESUME_IGNORED`), e.g. the identity of :func:`qeframe.data.format.identity`, the
    code versions and the spec. ``files`` lists the committed data files (``name``, ``rows``),
    ``rows`` counts their rows.
    """

    def __init__(self, path: Path, state: dict[str, Any], n_qubits: int):
        self.path, self.state, self.n_qubits = path, state, n_qubits
        self.files: list[dict[str, Any]] = []
        self.rows = 0

    def _resumable(self, force: bool) -> bool:
        previous = read_build_state(self.path)
        return (
            not force
            and previous is not None
            and all(previous.get(k) == v for k, v in self.state.items() if k not in RESUME_IGNORED)
            and read_manifest(self.path) is None
        )

    def start(
        self,
        *,
        force: bool,
        counts: list[int] | None,
        accept: Callable[[list[dict[str, Any]]], bool],
    ) -> list[dict[str, Any]]:
        """Resume or start afresh; returns the ``shard.json`` records of the reused files (in order).

        Resumes when not ``force``, the build record matches, and ``accept(infos)`` approves the
        complete files (:func:`complete_files` with ``counts``); otherwise wipes the folder and writes
        the build record. Reused files count in :attr:`files` and :attr:`rows`.
        """
        infos = complete_files(self.path, counts, self.n_qubits) if self._resumable(force) else None
        if infos is None or not accept(infos):
            wipe(self.path)
            atomic_write_json(self.path / BUILD_STATE, self.state, sort_keys=False)
            infos = []
        for info in infos:
            self.files.append(file_record(info))
            self.rows += int(info["rows"])
        return infos

    def reused(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        """The memory-mapped arrays of the reused file described by ``info``."""
        return load_file(self.path / shard_name(int(info["index"])))

    def new_file(self, rows: int) -> FileWriter:
        """A writer for the next data file, of ``rows`` rows (commit it with :meth:`commit`)."""
        return FileWriter(self.path, len(self.files), self.rows, rows, self.n_qubits)

    def commit(self, writer: FileWriter) -> str:
        """Commit a full file of :meth:`new_file`; aborts it (and re-raises) when that fails."""
        try:
            name = writer.commit()
        except BaseException:
            writer.abort()
            raise
        self.files.append({"name": name, "rows": writer.rows, "hashes": writer.hashes()})
        self.rows += writer.rows
        return name

    def finish(self, manifest: dict[str, Any]) -> None:
        """Write ``manifest`` (with ``"complete": true``) atomically, then drop the build record."""
        assert manifest.get("complete") is True
        atomic_write_json(self.path / MANIFEST, manifest, sort_keys=False)
        with contextlib.suppress(FileNotFoundError):
            (self.path / BUILD_STATE).unlink()


def rewrite_manifest(store: Path, manifest: dict[str, Any]) -> None:
    """Replace the complete manifest of ``store`` atomically (the arrays are left as they are)."""
    atomic_write_json(store / MANIFEST, manifest, sort_keys=False)
