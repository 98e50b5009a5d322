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

Batched: for each cut, one ``reshape``/``transpose`` of ``(N, 2, ..., 2)`` into
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
from qeframe.interfaces import Baseline, Params
from qeframe.quantum.cuts import Cut, bipartitions
from qeframe.quantum.ops import num_qubits

#: Default slack on the bound ``||R||_1 <= 1`` (float64 singular values are accurate to ~1e-15).
CCNR_TOL = 1e-9


def realign(rho: np.ndarray, cut: Cut) -> np.ndarray:
    """The realigned matrix of every state across ``cut``: ``(N, d, d)`` -> ``(N, d_A^2, d_B^2)``.

    Row index ``(a_row, a_col)`` over the qubits of ``cut.side_a`` (ascending), column index
    ``(b_row, b_col)`` over ``cut.side_b``.
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    a, b = list(cut.side_a), list(cut.side_b)
    axes = [0] + [1 + q for q in a] + [1 + n + q for q in a] + [1 + q for q in b] + [1 + n + q for q in b]
    return t.transpose(axes).reshape(n_batch, 4 ** len(a), 4 ** len(b))


def realign_bipartite(rho: np.ndarray, d_a: int, d_b: int) -> np.ndarray:
    """Realignment of operators on ``C^{d_a} ⊗ C^{d_b}`` (any local dimensions, A leftmost):
    ``(N, d_a d_b, d_a d_b)`` -> ``(N, d_a^2, d_b^2)`` with ``R[(i k), (j l)] = rho[(i j), (k l)]``."""
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    if rho.shape[-1] != d_a * d_b or rho.shape[-2] != d_a * d_b:
        raise ValueError(f"expected ({d_a * d_b}, {d_a * d_b}) matrices, got {rho.shape[1:]}")
    t = rho.reshape(rho.shape[0], d_a, d_b, d_a, d_b)
    return t.transpose(0, 1, 3, 2, 4).reshape(rho.shape[0], d_a * d_a, d_b * d_b)


def realignment_norms(rho: np.ndarray) -> np.ndarray:
    """``||R(rho)||_1`` (sum of singular values) per state and cut: ``(N, d, d)`` -> ``(N, n_cuts)``."""
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    cuts = bipartitions(num_qubits(rho.shape[-1]))
    out = np.empty((rho.shape[0], len(cuts)))
    for cut in cuts:  # loop over cuts; each is one batched SVD
        out[:, cut.index] = np.linalg.svd(realign(rho, cut), compute_uv=False).sum(axis=-1)
    return out


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
