"""The on-disk format of a dataset store: file names, format version, identity, content hash.

A store folder (``data/<name>/`` for a dataset, ``data/<name>.shard-i-of-N/`` for one shard of a
sharded build, :mod:`qeframe.data.shards`) holds::

    manifest.json          # written LAST, atomically, with "complete": true
    build.json             # while a build is under way: its identity (for resuming)
    shard-00000/           # rows [0, r0): one .npy per array of ARRAY_DTYPES + shard.json
    shard-00001/ ...       #   (shard.json: index, first row, rows, the generation blocks they come from)
    .lock                  # flock held by the writing process

**Identity.** Whether a store holds the rows of a spec is decided by its *identity*
(:func:`identity`): the store format, ``DatasetSpec.identity_hash()`` (the spec without its free
text, :data:`qeframe.config.specs.FREE_TEXT`) and the generation block size. The free text (the
``description``, the ``tag`` of each family entry) is recorded in the manifest but never forces a
rebuild: a store whose identity matches gets its manifest's free text refreshed in place
(:func:`qeframe.data.store.refresh_free_text`).

**Content hash.** For each array in :data:`qeframe.data.build.ARRAY_DTYPES` order, the sha256 of the
concatenated little-endian bytes of all its rows (``array_hashes``); the content hash is the sha256
of the lines ``name:dtype:row_shape:digest``. It depends neither on the shard layout nor on the
number of workers. :class:`Summary` accumulates it, with the label statistics, block by block.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.data.build import ARRAY_DTYPES, block_size_for, row_shapes
from qeframe.io import read_json_object
from qeframe.plugin.labels import PROVENANCE
from qeframe.quantum.cuts import cut_names

if TYPE_CHECKING:
    from pathlib import Path

    from qeframe.config.specs import DatasetSpec
    from qeframe.plugin.registry import Registry

#: Version of the on-disk layout and of the random streams behind the rows; a store of another
#: format is not read. History: 1 — first layout; 2 — trig-free gate and phase sampling in the
#: circuit and Haar generators (``qeframe_plugins.families._circuits.random_gate_params``): the same
#: specification and seed draw other (statistically equivalent) states; 3 — the identity leaves out
#: the spec's free text (``description``, family ``tag``): the arrays of a format-2 store are those of
#: format 3, so ``qeframe data migrate`` (or ``data build``) rewrites only its manifest; 4 — one Haar
#: sampler (:func:`qeframe.quantum.random.haar_state`, the paper's Eq. A3 recipe, which the paper's
#: families already used): the families that drew normalised complex Gaussians
#: (:data:`CHANGED_FAMILIES`) draw other, statistically equivalent states
#: (``tests/data/test_recipe_statistics.py``); every other built-in family's rows are bit-identical,
#: so a format-2 or -3 store without those families is migrated by a manifest rewrite.
STORE_FORMAT = 4
#: Formats whose arrays may be those of :data:`STORE_FORMAT` (only the manifest differs): migratable
#: unless the store holds a family whose rows changed since (:func:`migration_blocker`).
MIGRATABLE_FORMATS = (2, 3)
#: Built-in families whose rows a format changed (against the format before it).
CHANGED_FAMILIES: dict[int, frozenset[str]] = {
    4: frozenset(
        {
            "boundary-separable",
            "cut-separable",
            "product-lowrank",
            "witnessed-horodecki",
            "cut-filtered-horodecki",
        }
    ),
}
#: Samplers of the core that a format changed: a family of another distribution may call them, so
#: its rows may have changed too.
CHANGED_SAMPLERS: dict[int, str] = {4: "qeframe.quantum.random.haar_state"}
#: The distribution that provides the built-in plugins (as a manifest's family entries record it).
BUILTIN_DISTRIBUTION = "qeframe"
#: What changed since each older format (for error messages).
FORMAT_CHANGES = {
    1: "format 2 draws the circuit and Haar states with other random streams",
    2: "format 3 leaves the free-text description and tags out of the store's identity",
    3: "format 4 draws the Haar states of some families with the one Eq. A3 sampler",
}
MANIFEST = "manifest.json"
#: ``manifest["kind"]`` of a shard store (:mod:`qeframe.data.shards`); a dataset's manifest has no ``kind``.
SHARD_KIND = "shard"
BUILD_STATE = "build.json"
SHARD_INFO = "shard.json"
LOCK = ".lock"
SHARD_RE = re.compile(r"^shard-(\d{5,})$")
LABEL_NAMES = ("entangled", "separable", "unknown")  # label values 1, 0, -1
#: Manifest keys that identify a build: a resumed build must match them all.
IDENTITY_KEYS = ("format", "identity_hash", "block_size")


def shard_name(index: int) -> str:
    """Folder name of data file ``index`` of a store: ``shard-00000``, ``shard-00001``, ..."""
    return f"shard-{index:05d}"


def read_manifest(path: Path) -> dict[str, Any] | None:
    """``path/manifest.json`` as a dict, or ``None`` when absent or unreadable."""
    return read_json_object(path / MANIFEST)


def read_build_state(path: Path) -> dict[str, Any] | None:
    """``path/build.json`` (the record of a build under way) as a dict, or ``None``."""
    return read_json_object(path / BUILD_STATE)


def identity(spec: DatasetSpec) -> dict[str, Any]:
    """What a store must record to hold the rows of ``spec``: the keys of :data:`IDENTITY_KEYS`."""
    return {
        "format": STORE_FORMAT,
        "identity_hash": spec.identity_hash(),
        "block_size": block_size_for(spec.n_qubits),
    }


def same_identity(record: dict[str, Any] | None, spec: DatasetSpec) -> bool:
    """Whether ``record`` (a manifest or build state) holds the rows of ``spec``."""
    return record is not None and all(record.get(k) == v for k, v in identity(spec).items())


def is_complete(manifest: dict[str, Any] | None) -> bool:
    """A complete store of this format (dataset or shard)."""
    return bool(manifest) and manifest.get("complete") is True and manifest.get("format") == STORE_FORMAT  # type: ignore[union-attr]


def old_format(manifest: dict[str, Any] | None) -> int | None:
    """The format of a complete store written by another store format, else ``None`` (``-1``: unknown)."""
    if not manifest or manifest.get("complete") is not True or manifest.get("format") == STORE_FORMAT:
        return None
    fmt = manifest.get("format")
    return fmt if isinstance(fmt, int) else -1


def migration_blocker(manifest: dict[str, Any]) -> str | None:
    """Why the complete older-format dataset store of ``manifest`` cannot be migrated (its arrays are
    not those this format draws), or ``None`` when a manifest rewrite suffices.

    Migratable: a format of :data:`MIGRATABLE_FORMATS` whose recorded families include none that a
    later format changed (:data:`CHANGED_FAMILIES`) and, when a later format changed a core sampler
    (:data:`CHANGED_SAMPLERS`), only built-in families (another distribution's family may call it).
    """
    fmt = old_format(manifest)
    if fmt not in MIGRATABLE_FORMATS:
        return FORMAT_CHANGES.get(fmt, "another layout") if fmt is not None else "it is not an older store"
    later = range(fmt + 1, STORE_FORMAT + 1)
    entries = manifest.get("families")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "family" in e for e in entries):
        return "its manifest does not record its families"
    families = {e["family"]: e.get("component") for e in entries}
    unrecorded = sorted(name for name, c in families.items() if not isinstance(c, dict))
    if unrecorded:
        return f"its manifest does not record which plugin provided family {unrecorded[0]!r}"
    changed = sorted({name for f in later for name in CHANGED_FAMILIES.get(f, ()) if name in families})
    if changed:
        return f"format {STORE_FORMAT} draws other states for {', '.join(changed)}"
    samplers = [CHANGED_SAMPLERS[f] for f in later if f in CHANGED_SAMPLERS]
    foreign = sorted(name for name, c in families.items() if c.get("distribution") != BUILTIN_DISTRIBUTION)
    if samplers and foreign:
        return (
            f"family {foreign[0]!r} comes from another distribution and may draw with "
            f"{', '.join(samplers)}, which format {STORE_FORMAT} changed"
        )
    return None


def old_format_advice(name: str, path: Path, manifest: dict[str, Any]) -> str:
    """One line: the store ``path`` of dataset ``name`` has an older format; what to do."""
    fmt = old_format(manifest)
    why = FORMAT_CHANGES.get(fmt, "another layout")  # type: ignore[arg-type]
    blocker = migration_blocker(manifest)
    if blocker is None:
        todo = (
            f"its arrays are still valid: run `qeframe data migrate {name}` (checks the arrays, rewrites "
            f"only the manifest) or `qeframe data build {name}`"
        )
    elif fmt in MIGRATABLE_FORMATS:
        todo = f"rebuild it with `qeframe data build {name}` ({blocker})"
    else:
        todo = f"rebuild it with `qeframe data build {name}`"
    return (
        f"dataset {name!r} in {path} was built with store format {fmt}, this qeframe reads format "
        f"{STORE_FORMAT} ({why}); {todo}"
    )


def component(registry: Registry, kind: str, name: str) -> dict[str, str]:
    """The plugin and distribution (with version) that provide component ``kind``/``name``."""
    info = registry.info(kind, name)
    return {"name": name, "plugin": info.plugin, "distribution": info.distribution, "version": info.version}


def components(registry: Registry, spec: DatasetSpec) -> dict[str, Any]:
    """The labeler and the families of ``spec`` with the plugin and distribution providing each."""
    return {
        "labeler": component(registry, "labeler", spec.labeler.name),
        "families": {e.family: component(registry, "family", e.family) for e in spec.families},
    }


# --------------------------------------------------------------------------------------------------
# Summaries: content hash and label statistics, accumulated row block by row block


class Summary:
    """Streaming content hash and counts over consecutive rows (see the module docstring).

    ``n_entries`` family entries, ``n_cuts(n_qubits)`` cuts. :meth:`hash` adds rows to the array
    hashes only; :meth:`add` also counts labels, provenance and generated states.
    """

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
        return content_hash(self.n_qubits, self.array_digests())


def content_hash(n_qubits: int, digests: dict[str, str]) -> str:
    """The content hash of a store of ``n_qubits`` from its per-array sha256 ``digests``."""
    shapes = row_shapes(n_qubits)
    lines = "".join(
        f"{name}:{ARRAY_DTYPES[name].str}:{list(shapes[name])}:{digests[name]}\n" for name in ARRAY_DTYPES
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def balance(counts: np.ndarray, cuts: list[str]) -> dict[str, dict[str, int]]:
    """``(n_cuts, 3)`` counts of entangled/separable/unknown -> ``{cut: {name: count}}``."""
    return {cut: dict(zip(LABEL_NAMES, map(int, counts[j]))) for j, cut in enumerate(cuts)}


def provenance_table(counts: np.ndarray, cuts: list[str]) -> dict[str, dict[str, int]]:
    """``(n_cuts, len(PROVENANCE))`` counts -> ``{cut: {provenance name: count}}`` (zeros left out)."""
    return {cut: {PROVENANCE[p]: int(n) for p, n in enumerate(counts[j]) if n} for j, cut in enumerate(cuts)}
