"""``negativity`` labeler: the paper's "negativity labeled" strategy.

Per cut: NPT (smallest eigenvalue of the partial transpose ``< -tol``, decided by
:func:`qeframe.quantum.ppt.npt_mask` like every other labeler) -> entangled (provenance ``npt``);
PPT -> separable. For a pure state PPT across a cut means product across it, which is
exact (provenance ``pure-ppt``); for a mixed state it is a guess (``ppt-assumed-separable``), since
PPT entangled states exist. No sample is dropped. Evidence: ``lambda_min(rho^{T_A})`` of every cut
(``eigvalsh``).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import LabelBatch, Labeler, Params, StateBatch
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, provenance_code
from qeframe.quantum.ops import PURE_TOL, purity
from qeframe.quantum.ppt import PPT_TOL, npt_mask, pt_min_eigenvalues


class NegativityParams(Params):
    tol: float = Field(default=PPT_TOL, gt=0, description="NPT when lambda_min(rho^T_A) < -tol.")


class NegativityLabeler(Labeler):
    """NPT -> entangled, PPT -> separable (exact for pure states, assumed for mixed ones)."""

    name = "negativity"
    description = "NPT cut -> entangled, PPT cut -> separable (the paper's negativity labels)"
    Params = NegativityParams

    def label(self, batch: StateBatch) -> LabelBatch:
        npt = npt_mask(batch.rho, tol=self.params.tol)
        lam = pt_min_eigenvalues(batch.rho, workers=None)  # eigvalsh on all cores
        pure = purity(batch.rho) > 1.0 - PURE_TOL
        labels = np.where(npt, ENTANGLED, SEPARABLE).astype(np.int8)
        ppt_code = np.where(
            pure[:, None], provenance_code("pure-ppt"), provenance_code("ppt-assumed-separable")
        )
        provenance = np.where(npt, provenance_code("npt"), ppt_code).astype(np.uint8)
        return LabelBatch(keep=np.ones(len(batch), bool), labels=labels, provenance=provenance, evidence=lam)


@hookimpl
def qeframe_register_labelers(register):
    register(NegativityLabeler)
