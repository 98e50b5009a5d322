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
)

PROVENANCE_CODE: dict[str, int] = {name: i for i, name in enumerate(PROVENANCE)}


def provenance_code(name: str) -> int:
    """The ``uint8`` code of a provenance name; raises ``KeyError`` listing the vocabulary."""
    try:
        return PROVENANCE_CODE[name]
    except KeyError:
        raise KeyError(f"unknown provenance {name!r}; allowed: {', '.join(PROVENANCE)}") from None


def provenance_names(codes: np.ndarray) -> np.ndarray:
    """Map an array of provenance codes to an array of names (same shape, dtype ``str``)."""
    return np.asarray(PROVENANCE, dtype=object)[np.asarray(codes, dtype=np.intp)].astype(str)
