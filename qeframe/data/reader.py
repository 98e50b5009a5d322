"""Reading a dataset store: :func:`open_dataset` (checked against its hashes), :class:`Dataset`,
:func:`store_status`.

A store is read only when its manifest says ``"complete": true`` in this store format
(:data:`qeframe.data.format.STORE_FORMAT`) and its files match the hashes the manifest records
(:mod:`qeframe.data.verify`, once per process per unchanged store). Anything else is refused with a
one-line :class:`~qeframe.errors.StoreError` that says what to do.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.data.build import ARRAY_DTYPES
from qeframe.data.format import (
    SHARD_KIND,
    Summary,
    is_complete,
    old_format,
    old_format_advice,
    read_build_state,
    read_manifest,
    same_identity,
    shard_name,
)
from qeframe.data.verify import ensure_verified
from qeframe.errors import StoreError
from qeframe.plugin.interfaces import STANDARD_META

if TYPE_CHECKING:
    from collections.abc import Iterator

    from qeframe.config.specs import DatasetSpec


class Dataset:
    """A read-only view of a complete store ``data/<name>/``.

    Row arrays are loaded on first access: memory-mapped (``mmap_mode="r"``) when the store has one
    data file, concatenated into memory otherwise; either way read-only. Cuts are in
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
        """The spec the store was built from (with the free text of its last build or refresh)."""
        from qeframe.config.specs import DatasetSpec

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
        """Per data file, in row order, the memory-mapped arrays ``names`` (for streaming large stores)."""
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
        """Recompute the content hash from the files and compare it with the manifest's (reads all)."""
        summary = Summary(self.n_qubits, len(self.manifest["families"]))
        for arrays in self.iter_shards():
            summary.hash(arrays)
        return summary.content_hash() == self.content_hash


def corrupt_advice(name: str) -> str:
    """What to do about a corrupt store of dataset ``name``."""
    return f"rebuild it with `qeframe data build {name} --force`"


def open_dataset(name: str, *, data_dir: Path = Path("data"), verify: bool = True) -> Dataset:
    """Open the complete store ``data_dir/name``.

    With ``verify`` (the default) its files are checked against the manifest's hashes first, once
    per process while they do not change (:func:`qeframe.data.verify.check_store`).

    Raises:
        StoreError: the store is missing, incomplete, of an older format, a shard store, or corrupt
            (one line naming the file and the expected and actual sha256).
    """
    path = Path(data_dir) / name
    manifest = read_manifest(path)
    old = old_format(manifest)
    if old is not None:
        raise StoreError(old_format_advice(name, path, manifest))  # type: ignore[arg-type]
    if not is_complete(manifest):
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
            raise StoreError(
                f"dataset {name!r} in {path} is damaged: {shard['name']} is missing; {corrupt_advice(name)}"
            )
    if verify:
        ensure_verified(path, manifest, f"dataset {name!r}", corrupt_advice(name))
    return Dataset(name, path, manifest)


def store_status(name: str, spec: DatasetSpec | None, *, data_dir: Path = Path("data")) -> str:
    """One word about ``data_dir/name`` compared with ``spec`` (reads only manifests).

    ``built`` (complete, same identity: :func:`qeframe.data.format.same_identity`; the free text may
    differ), ``stale`` (complete, another identity or an older store format), ``partial`` (an
    interrupted build of this spec that ``build`` will resume), ``missing`` (nothing usable). With
    ``spec=None``: ``built`` for any complete store.
    """
    path = Path(data_dir) / name
    manifest = read_manifest(path)
    if is_complete(manifest) and manifest.get("kind") != SHARD_KIND:  # type: ignore[union-attr]
        return "built" if spec is None or same_identity(manifest, spec) else "stale"
    if old_format(manifest) is not None and manifest.get("kind") != SHARD_KIND:  # type: ignore[union-attr]
        return "stale"
    state = read_build_state(path)
    if spec is not None and same_identity(state, spec) and (path / shard_name(0)).is_dir():
        return "partial"
    return "missing"
