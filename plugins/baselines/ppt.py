"""``ppt`` baseline: the Peres–Horodecki criterion per cut.

For a cut ``A|B``, ``rho^{T_A}`` is the partial transpose on the qubits of ``A``. If ``rho`` is
separable across the cut, ``rho^{T_A} ⪰ 0`` (Peres, PRL 77, 1413 (1996)); hence

    lambda_min(rho^{T_A}) < -tol   =>   entangled across A|B   (prediction 1),

and otherwise the criterion does not detect entanglement (prediction 0). For ``2 x 2`` and
``2 x 3`` systems PPT is also sufficient (Horodecki, Horodecki, Horodecki, PLA 223, 1 (1996)); for
larger cuts PPT entangled states exist (e.g. the Horodecki 2x4 states), which this baseline calls 0.

Batched through :func:`qeframe.quantum.ppt.npt_mask` (a Cholesky test of ``rho^{T_A} + tol I``,
no eigenvalues), ``(N, 2**n, 2**n)`` -> ``(N, n_cuts)`` int8 in
:func:`~qeframe.quantum.cuts.bipartitions` order.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.baselines.ppt import PptBaseline
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> PptBaseline().predict(np.stack([np.outer(ghz, ghz), np.eye(8) / 8])).tolist()
    [[1, 1, 1], [0, 0, 0]]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import Baseline, Params
from qeframe.quantum.ppt import PPT_TOL, npt_mask


class PptParams(Params):
    tol: float = Field(default=PPT_TOL, gt=0, description="Entangled when lambda_min(rho^T_A) < -tol.")


class PptBaseline(Baseline):
    """NPT cut -> 1 (entangled), PPT cut -> 0 (not detected)."""

    name = "ppt"
    description = "Peres-Horodecki: NPT cut -> entangled, PPT cut -> not detected"
    Params = PptParams

    def predict(self, rho: np.ndarray) -> np.ndarray:
        return npt_mask(np.asarray(rho), tol=self.params.tol).astype(np.int8)


@hookimpl
def qeframe_register_baselines(register):
    register(PptBaseline)
