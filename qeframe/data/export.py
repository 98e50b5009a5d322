"""``qeframe data export``: a dataset store as one uncompressed ``.npz`` file, written shard by shard."""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from qeframe.data.build import ARRAY_DTYPES, row_shapes
from qeframe.data.reader import Dataset
from qeframe.data.writer import write_npy_header
from qeframe.errors import StoreError
from qeframe.plugin.interfaces import STANDARD_META
from qeframe.plugin.labels import PROVENANCE, provenance_names


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
                    write_npy_header(f, dtype, (n, *shapes[stored]))  # type: ignore[arg-type]
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
