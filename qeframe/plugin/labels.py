"""Label codes and the provenance vocabulary shared by families, labelers, stores and tables.

Labels are ``int8`` per sample and cut: :data:`ENTANGLED` = 1, :data:`SEPARABLE` = 0,
:data:`UNKNOWN` = -1. Every label carries a provenance code (``uint8``) that says where it came
from; the codes index :data:`PROVENANCE`, which only ever grows at the end so stored datasets keep
their meaning.
"""

from __future__ import annotations

import numpy as np

ENTANGLED: int = 1
SEPARABLE: int = 0
UNKNOWN: int = -1

#: Provenance vocabulary; the position is the stored code. Append only.
PROVENANCE: tuple[str, ...] = (
    "unknown",  # 0: nothing is known
    "construction",  # 1: the family built the state so that this is true
    "npt",  # 2: negative partial transpose -> entangled (exact)
    "ppt-assumed-separable",  # 3: PPT, called separable without proof (negativity labeler)
    "pure-ppt",  # 4: a pure state that is PPT on the cut is a product across it (exact)
    "rank",  # 5: PPT and a rank criterion -> separable (Horodecki-Lewenstein-Vidal-Cirac 2000)
    "dps2",  # 6: no k=2 symmetric extension -> entangled (Doherty-Parrilo-Spedalieri)
    "analytic",  # 7: a closed-form result for this family
    "paper-convention",  # 8: the paper's convention (e.g. max-rank reduced states called entangled)
    "witness",  # 9: tr(W rho) < 0 for a verified block-positive witness W -> entangled (exact)
    "spectrum",  # 10: separable from the spectrum alone (Johnston, PRA 88, 062330 (2013), 2 x N cuts)
    "realignment",  # 11: realignment / correlation-tensor bound violated in filter normal form -> entangled
)

PROVENANCE_CODE: dict[str, int] = {name: i for i, name in enumerate(PROVENANCE)}

#: Provenances that are *not* a proof: nothing known, the negativity labeler's guess that a PPT cut
#: is separable, and the paper's convention. Every other provenance is a proof (a construction, a
#: criterion or a certificate) — the one place that defines "certified" for evaluation and
#: calibration. A new provenance must be added to exactly one of the two sets (a test checks it).
NOT_PROOF_PROVENANCE: tuple[str, ...] = ("unknown", "ppt-assumed-separable", "paper-convention")
#: Provenances whose label is proved (:data:`PROVENANCE` minus :data:`NOT_PROOF_PROVENANCE`).
PROOF_PROVENANCE: tuple[str, ...] = tuple(p for p in PROVENANCE if p not in NOT_PROOF_PROVENANCE)


def provenance_code(name: str) -> int:
    """The ``uint8`` code of a provenance name; raises ``KeyError`` listing the vocabulary."""
    try:
        return PROVENANCE_CODE[name]
    except KeyError:
        raise KeyError(f"unknown provenance {name!r}; allowed: {', '.join(PROVENANCE)}") from None


def provenance_names(codes: np.ndarray) -> np.ndarray:
    """Map an array of provenance codes to an array of names (same shape, dtype ``str``)."""
    return np.asarray(PROVENANCE, dtype=object)[np.asarray(codes, dtype=np.intp)].astype(str)


def certified_mask(labels: np.ndarray, provenance: np.ndarray | None) -> np.ndarray:
    """``(N, n_cuts)`` bool: the label is known (``!= -1``) and its provenance is a proof
    (:data:`PROOF_PROVENANCE`). All False when ``provenance`` is ``None`` (nothing says how the
    labels are known)."""
    labels = np.asarray(labels)
    if provenance is None:
        return np.zeros(labels.shape, dtype=bool)
    proof = np.isin(np.asarray(provenance), [PROVENANCE_CODE[p] for p in PROOF_PROVENANCE])
    return proof & (labels != UNKNOWN)
