"""Building a dataset store ``data/<name>/`` on one machine: :func:`build_dataset`, :func:`ensure_dataset`.

The rows are a pure function of the spec (:mod:`qeframe.data.build`); they are written through the
one store writer (:class:`qeframe.data.writer.StoreWriter`: files renamed into place when complete,
the manifest written last, an interrupted build resumed from its whole files, anything of another
identity wiped first) and read through :func:`qeframe.data.reader.open_dataset`, which checks the
files against the manifest's hashes. The on-disk format is :mod:`qeframe.data.format`.

Sharded builds (:mod:`qeframe.data.shards`, :mod:`qeframe.data.merge`) write shard stores
``data/<name>.shard-i-of-N/``; their merge writes ``data/<name>/`` through :func:`write_dataset` with
stored blocks in place of computed ones, so it equals a single build.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor as FuturesExecutor
from pathlib import Path
from typing import Any

import numpy as np

from qeframe import __version__
from qeframe.config.specs import NAME_PATTERN, DatasetSpec, RegistryFile, validate_dataset_plugins
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
from qeframe.data.format import (
    Summary,
    balance,
    component,
    components,
    identity,
    is_complete,
    migration_blocker,
    old_format,
    old_format_advice,
    provenance_table,
    read_manifest,
    same_identity,
)
from qeframe.data.reader import Dataset, corrupt_advice, open_dataset, store_status
from qeframe.data.verify import hash_data
from qeframe.data.writer import StoreWriter, rewrite_manifest, store_lock
from qeframe.errors import QeframeError, StoreError
from qeframe.plugin.progress import progress_bar
from qeframe.plugin.registry import Registry, get_registry
from qeframe.quantum.cuts import cut_names


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


def check_build_args(name: str, shard_size: int, workers: int | None) -> None:
    """One-line :class:`QeframeError` for a bad dataset name, shard size or worker count."""
    if not re.match(NAME_PATTERN, name):
        raise QeframeError(f"invalid dataset name {name!r}: use letters, digits, '_', '.', '-'")
    if shard_size < 1:
        raise QeframeError(f"shard size must be at least 1, got {shard_size}")
    if workers is not None and workers < 1:
        raise QeframeError(f"workers must be at least 1, got {workers}")


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

    * A complete store of the same identity (:func:`qeframe.data.format.same_identity`) is checked
      against its hashes and returned as it is, unless ``force``; when only the free text of the spec
      changed (``description``, tags) its manifest is refreshed in place, the arrays untouched.
    * A complete store of an older format whose arrays are those of this format
      (:func:`qeframe.data.format.migration_blocker`) and of the same spec is migrated
      (:func:`migrate_store`) instead of rebuilt.
    * An interrupted build of the same identity is resumed from its complete files.
    * Anything else in the folder that a build wrote (another spec, another format) is removed first.

    Every family and the labeler are validated (:func:`qeframe.config.specs.validate_dataset_plugins`)
    before anything is generated or written. Blocks are generated on ``workers`` processes
    (default ``os.cpu_count()``); ``shard_size`` rows go into each file. Neither changes the content.

    Raises:
        SpecError / UnknownComponentError: a bad spec or plugin name (the message names the key).
        StoreError: the folder cannot be written (permissions, full disk, ...) or is being built by
            another process, or the up-to-date store is corrupt; no store is left claiming completeness.
    """
    check_build_args(name, shard_size, workers)
    registry = registry if registry is not None else get_registry()
    ctx = generation_context(name, spec, registry)
    store = Path(data_dir) / name
    try:
        store.mkdir(parents=True, exist_ok=True)
        with store_lock(store, name) as lock_fd:
            manifest = read_manifest(store)
            if not force and migratable(manifest, spec):
                assert manifest is not None
                migrate_store(name, store, manifest)
                manifest = read_manifest(store)
            if not force and is_complete(manifest) and same_identity(manifest, spec):
                assert manifest is not None
                open_dataset(name, data_dir=data_dir)  # checks the hashes
                refresh_free_text(store, manifest, spec)
                return open_dataset(name, data_dir=data_dir)
            write_dataset(name, spec, store, ctx, registry, workers, shard_size, progress, force, lock_fd)
    except OSError as exc:
        raise StoreError(f"cannot write dataset store {store}: {exc.strerror or exc}") from None
    return open_dataset(name, data_dir=data_dir)


def write_dataset(
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
    """Write the store (the caller holds its lock, ``lock_fd``). ``executor_factory(n_workers)``, when
    given, supplies the blocks instead of a process pool (the merge of :mod:`qeframe.data.merge`
    serves stored blocks so); ``build_info()`` adds keys to the manifest's ``build`` record."""
    t0 = time.perf_counter()
    block_size = block_size_for(spec.n_qubits)
    counts = [e.count for e in spec.families]
    total = sum(counts)
    # What a resumed build must share with the interrupted one: the identity, and the versions of the
    # code that made the rows (so that no store mixes rows of two plugin versions).
    state = {
        **identity(spec),
        "qeframe_version": __version__,
        "components": components(registry, spec),
        "spec": spec.canonical(),
    }
    writer = StoreWriter(store, state, spec.n_qubits)
    cursor = Cursor()

    def accept(infos: list[dict[str, Any]]) -> bool:
        nonlocal cursor
        found = _resume_cursor(infos, counts)
        cursor = found if found is not None else Cursor()
        return found is not None

    infos = writer.start(force=force, counts=counts, accept=accept)
    summary = Summary(spec.n_qubits, len(counts))
    for info in infos:  # re-read the reused files for the content hash and the counts
        arrays = writer.reused(info)
        offset = 0
        for s in info["sources"]:
            part = {n: a[offset : offset + s["rows"]] for n, a in arrays.items()}
            summary.add(part, s["entry"], s["block"], s["generated"], s["evidence"])
            offset += s["rows"]
    resumed = summary.rows

    n_workers = workers or default_workers()
    n_workers = max(1, min(n_workers, planned_blocks(counts, block_size)))
    if resumed >= total:
        executor = None
    elif executor_factory is not None:
        executor = executor_factory(n_workers)
    else:
        executor = make_executor(ctx, n_workers, close_fds=() if lock_fd is None else (lock_fd,))
    bar = progress_bar(rate_unit="states/s") if progress else None
    file = None
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
                if file is None:
                    file = writer.new_file(min(shard_size, total - row))
                take = min(len(piece) - offset, file.remaining)
                file.append(
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
                if file.remaining == 0:
                    writer.commit(file)
                    file = None
            if bar is not None:
                elapsed = time.perf_counter() - t0
                bar.update(task, completed=row, rate=f"{(row - resumed) / max(elapsed, 1e-9):,.0f}")
    finally:
        if file is not None:
            file.abort()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.stop()
    if summary.rows != total:  # pragma: no cover - a bug, not a user error
        raise RuntimeError(f"dataset {name!r}: wrote {summary.rows} rows, expected {total}")

    seconds = time.perf_counter() - t0
    manifest = dataset_manifest(name, spec, registry, summary, writer.files)
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
    writer.finish(manifest)


def _resume_cursor(infos: list[dict[str, Any]], counts: list[int]) -> Cursor | None:
    """Where to continue after the files ``infos``; ``None`` if they do not form a valid prefix."""
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


def _free_text(spec: DatasetSpec) -> dict[str, Any]:
    """The manifest keys that hold the spec's free text (and the full spec and its hash)."""
    return {"description": spec.description, "spec": spec.canonical(), "spec_hash": spec.spec_hash()}


def dataset_manifest(
    name: str,
    spec: DatasetSpec,
    registry: Registry,
    summary: Summary,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a dataset store of ``spec`` whose rows ``summary`` accounted for, written to
    the data files ``files`` (``name``, ``rows``, ``hashes``); without ``build`` and ``complete``."""
    total = summary.rows
    cuts = cut_names(spec.n_qubits)
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
            "label_balance": balance(summary.labels[i], cuts),
            "ground_truth_balance": balance(summary.truth[i], cuts),
            "component": component(registry, "family", e.family),
        }
        for i, e in enumerate(spec.families)
    ]
    return {
        **identity(spec),
        "name": name,
        **_free_text(spec),
        "split": spec.split,
        "seed": spec.seed,
        "n_qubits": spec.n_qubits,
        "cuts": cuts,
        "n_samples": total,
        "qeframe_version": __version__,
        "plugins": registry.plugin_versions(),
        "labeler": component(registry, "labeler", spec.labeler.name),
        "families": families,
        "label_balance": balance(summary.labels.sum(axis=0), cuts),
        "ground_truth_balance": balance(summary.truth.sum(axis=0), cuts),
        "provenance_counts": provenance_table(summary.provenance, cuts),
        "ground_truth_provenance_counts": provenance_table(summary.truth_provenance, cuts),
        "has_evidence": summary.has_evidence,
        "arrays": {n: {"dtype": ARRAY_DTYPES[n].str, "shape": [total, *shapes[n]]} for n in ARRAY_DTYPES},
        "shards": files,
        "array_hashes": summary.array_digests(),
        "content_hash": summary.content_hash(),
    }


def refresh_free_text(store: Path, manifest: dict[str, Any], spec: DatasetSpec) -> bool:
    """Bring the free text recorded in the complete manifest of ``store`` (same identity as ``spec``)
    up to ``spec``: ``description``, ``spec``, ``spec_hash`` and each family's ``tag`` and ``label``.
    Rewrites only the manifest, atomically, and only when something differs; returns whether it did."""
    updated = {**manifest, **_free_text(spec)}
    updated["families"] = [
        {**f, "tag": e.tag, "label": e.label} for f, e in zip(manifest["families"], spec.families)
    ]
    if updated == manifest:
        return False
    rewrite_manifest(store, updated)
    return True


def ensure_dataset(
    name: str,
    registry_file: RegistryFile,
    *,
    data_dir: Path = Path("data"),
    registry: Registry | None = None,
    progress: bool = True,
) -> Dataset:
    """The store of dataset ``name`` declared in ``registry_file``, checked against its hashes; built
    (or finished, or migrated) first when it is missing, incomplete, of an older format or was built
    from another spec, and its manifest's free text refreshed when only that changed."""
    spec = registry_file.dataset(name)
    if store_status(name, spec, data_dir=data_dir) == "built":
        ds = open_dataset(name, data_dir=data_dir)
        if ds.manifest.get("spec_hash") == spec.spec_hash():
            return ds
    return build_dataset(name, spec, data_dir=data_dir, registry=registry, progress=progress)


# --------------------------------------------------------------------------------------------------
# Migration from the previous store format (the arrays are unchanged: only the manifest is rewritten)


def migratable(manifest: dict[str, Any] | None, spec: DatasetSpec | None = None) -> bool:
    """Whether ``manifest`` is a complete dataset store of an older format whose arrays are those of
    this format (:func:`qeframe.data.format.migration_blocker`) and, with ``spec``, built from that
    very spec."""
    if manifest is None or manifest.get("kind") is not None or old_format(manifest) is None:
        return False
    if migration_blocker(manifest) is not None:
        return False
    return spec is None or (
        manifest.get("spec_hash") == spec.spec_hash()
        and manifest.get("block_size") == block_size_for(spec.n_qubits)
    )


def migrate_store(name: str, store: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the manifest of the older-format store ``store`` (the caller holds its lock) in format
    :data:`~qeframe.data.format.STORE_FORMAT`; the data files are not touched. Returns the new manifest.

    The old manifest records one sha256 per array over all rows. Every file is read once: its bytes
    feed both that array's stream, compared with the old manifest (so a corrupt store is never
    migrated), and the per-file hashes formats 3 and later record; the identity is computed from the recorded
    spec. Cost: one read of the store (hashing runs at the speed of :mod:`qeframe.data.verify`).

    Raises:
        StoreError: the arrays do not match the old manifest, or its spec no longer validates.
    """
    try:
        spec = DatasetSpec.model_validate(manifest["spec"])
    except (KeyError, ValueError) as exc:
        raise StoreError(
            f"dataset {name!r} in {store} cannot be migrated ({type(exc).__name__}: its recorded spec); "
            f"rebuild it with `qeframe data build {name} --force`"
        ) from None
    streams = {n: hashlib.sha256() for n in ARRAY_DTYPES}
    files = []
    for record in manifest["shards"]:
        hashes = {}
        for n in ARRAY_DTYPES:
            path = store / record["name"] / f"{n}.npy"
            h = hashlib.sha256()
            try:
                hash_data(path, h, streams[n])
            except (OSError, ValueError) as exc:
                raise StoreError(
                    f"dataset {name!r} in {store} cannot be migrated: {path} is unreadable ({exc}); "
                    f"{corrupt_advice(name)}"
                ) from None
            hashes[n] = h.hexdigest()
        files.append({"name": record["name"], "rows": int(record["rows"]), "hashes": hashes})
    for n, stream in streams.items():
        expected = manifest.get("array_hashes", {}).get(n)
        if stream.hexdigest() != expected:
            raise StoreError(
                f"dataset {name!r} is corrupt: the {n} rows in {store} have sha256 {stream.hexdigest()}, "
                f"its manifest says {expected}; {corrupt_advice(name)}"
            )
    updated = {
        **manifest,
        **identity(spec),
        "shards": files,
        "migrated": {
            "from_format": manifest.get("format"),
            "on": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "qeframe_version": __version__,
        },
    }
    rewrite_manifest(store, updated)
    return updated


def migrate(name: str, *, data_dir: Path = Path("data")) -> str:
    """``qeframe data migrate NAME``: migrate the store ``data_dir/name`` to this store format when it
    has the previous one (:func:`migrate_store`). Returns ``"migrated"`` or ``"up to date"``.

    Raises:
        StoreError: no complete store, a format that cannot be migrated (rebuild), or corrupt arrays.
    """
    store = Path(data_dir) / name
    manifest = read_manifest(store)
    if is_complete(manifest) and manifest.get("kind") is None:  # type: ignore[union-attr]
        return "up to date"
    if not migratable(manifest):
        fmt = old_format(manifest)
        if fmt is not None and manifest.get("kind") is None:  # type: ignore[union-attr]
            raise StoreError(old_format_advice(name, store, manifest))  # type: ignore[arg-type]
        open_dataset(name, data_dir=data_dir, verify=False)  # raises the fitting one-line error
        raise StoreError(f"{store} is not a dataset store that can be migrated")  # pragma: no cover
    assert manifest is not None
    try:
        with store_lock(store, name):
            migrate_store(name, store, manifest)
    except OSError as exc:
        raise StoreError(f"cannot write dataset store {store}: {exc.strerror or exc}") from None
    return "migrated"
