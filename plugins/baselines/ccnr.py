"""``ccnr`` baseline: the computable cross-norm / realignment criterion per cut.

Write an operator on ``A ⊗ B`` as ``rho = sum rho_{(i j),(k l)} |i><k| ⊗ |j><l|`` (``i, k`` on A,
``j, l`` on B). Its *realignment* is the ``d_A^2 x d_B^2`` matrix

    R(rho)_{(i k),(j l)} = rho_{(i j),(k l)},

i.e. ``vec`` of each ``A`` block laid out against ``vec`` of each ``B`` block: for a product
``a ⊗ b``, ``R = vec(a) vec(b)^T`` with trace norm ``||a||_2 ||b||_2 <= 1``. By convexity every
separable state has ``||R(rho)||_1 <= 1``, so

    ||R(rho)||_1 > 1 + tol   =>   entangled across A|B   (prediction 1),

else 0 (not detected). (Rudolph, quant-ph/0202121, Quantum Inf. Process. 4, 219 (2005); Chen and
Wu, Quantum Inf. Comput. 3, 193 (2003).) The criterion is independent of PPT: it detects some PPT
entangled states (e.g. the 3x3 "Tiles" UPB state, ``||R||_1 ≈ 1.087``) and misses some NPT ones.
A state that is separable across a cut (e.g. the 3-qubit "Shifts" UPB state, separable across
every cut although entangled) is never detected.

The helpers live in :mod:`qeframe.quantum.realignment` (re-exported here). Batched: for each cut, one ``reshape``/``transpose`` of ``(N, 2, ..., 2)`` into
``(N, d_A^2, d_B^2)`` (qubits of each side in ascending order) and one batched
``numpy.linalg.svd(compute_uv=False)``; any ``n``.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.baselines.ccnr import CcnrBaseline, realignment_norms
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> realignment_norms(np.outer(ghz, ghz)).round(6).tolist()
    [[2.0, 2.0, 2.0]]
    >>> CcnrBaseline().predict(np.eye(8)[None] / 8).tolist()
    [[0, 0, 0]]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import Baseline, Params
from qeframe.quantum.realignment import realign, realign_bipartite, realignment_norms

__all__ = ["CCNR_TOL", "CcnrBaseline", "CcnrParams", "realign", "realign_bipartite", "realignment_norms"]

#: Default slack on the bound ``||R||_1 <= 1`` (float64 singular values are accurate to ~1e-15).
CCNR_TOL = 1e-9


class CcnrParams(Params):
    tol: float = Field(default=CCNR_TOL, ge=0, description="Entangled when ||R(rho)||_1 > 1 + tol.")


class CcnrBaseline(Baseline):
    """Realignment: ``||R(rho)||_1 > 1`` across a cut -> 1 (entangled), else 0 (not detected)."""

    name = "ccnr"
    description = "Realignment (CCNR): ||R(rho)||_1 > 1 across a cut -> entangled"
    Params = CcnrParams

    def predict(self, rho: np.ndarray) -> np.ndarray:
        return (realignment_norms(rho) > 1.0 + self.params.tol).astype(np.int8)


@hookimpl
def qeframe_register_baselines(register):
    register(CcnrBaseline)
