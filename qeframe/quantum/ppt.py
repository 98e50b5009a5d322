"""Per-cut partial-transpose spectra: smallest eigenvalue, negativity and a fast NPT test.

For a cut with side A, ``rho^{T_A}`` is the partial transpose on the qubits of A (transposing
either side gives the same spectrum). A cut is **NPT** when the smallest eigenvalue of
``rho^{T_A}`` is below ``-tol``; NPT implies entangled. PPT does *not* imply separable.

Negativity: ``N(rho) = (||rho^{T_A}||_1 - 1) / 2 = sum of |negative eigenvalues of rho^{T_A}|``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .cuts import bipartitions
from .ops import num_qubits

#: Default threshold: a cut is NPT when lambda_min(rho^{T_A}) < -PPT_TOL (matrices of trace 1).
PPT_TOL = 1e-10

_CHUNK = 4096


def partial_transposes(rho: np.ndarray) -> np.ndarray:
    """``rho^{T_A}`` for every cut, cut axis second: ``(N, d, d)`` -> ``(N, n_cuts, d, d)``."""
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    out = np.empty((n_batch, len(bipartitions(n)), d, d), dtype=rho.dtype)
    for cut in bipartitions(n):  # loop over the (few) cuts, never over matrices
        axes = list(range(1 + 2 * n))
        for q in cut.side_a:
            axes[1 + q], axes[1 + n + q] = axes[1 + n + q], axes[1 + q]
        out[:, cut.index] = t.transpose(axes).reshape(n_batch, d, d)
    return out


def pt_eigenvalues(rho: np.ndarray) -> np.ndarray:
    """All eigenvalues (ascending) of every cut's partial transpose: ``(N, n_cuts, d)`` float64."""
    return np.linalg.eigvalsh(partial_transposes(rho))


def pt_min_eigenvalues(rho: np.ndarray) -> np.ndarray:
    """Smallest eigenvalue of the partial transpose per cut: ``(N, n_cuts)`` float64."""
    return pt_eigenvalues(rho)[..., 0]


def negativities(rho: np.ndarray) -> np.ndarray:
    """Negativity per cut, ``sum |negative eigenvalues of rho^{T_A}|``: ``(N, n_cuts)`` float64."""
    ev = pt_eigenvalues(rho)
    return -np.minimum(ev, 0.0).sum(axis=-1)


def _not_positive_definite(a: np.ndarray, shift: float) -> np.ndarray:
    """For Hermitian ``a`` ``(M, d, d)``: True where ``a + shift*I`` is not positive definite.

    A batched, unpivoted Cholesky (outer-product form) with the batch axis last so that every step
    is one vectorised operation over all M matrices; a matrix fails at the first non-positive pivot.
    Cholesky is backward stable, so the answer equals ``lambda_min(a) < -shift`` except within
    about ``1e-15 * ||a||`` of the threshold.
    """
    m, d = a.shape[0], a.shape[1]
    w = np.ascontiguousarray(a.transpose(1, 2, 0))  # (d, d, M)
    idx = np.arange(d)
    w[idx, idx] += shift
    bad = np.zeros(m, dtype=bool)
    for k in range(d):
        pivot = w[k, k].real
        bad |= ~(pivot > 0)
        if k + 1 == d:
            break
        inv = np.where(pivot > 0, 1.0 / np.where(pivot > 0, pivot, 1.0), 0.0)
        col = w[k + 1 :, k] * inv  # (d-k-1, M)
        w[k + 1 :, k + 1 :] -= col[:, None, :] * w[k, k + 1 :][None, :, :]
    return bad


def npt_mask(rho: np.ndarray, tol: float = PPT_TOL, workers: int | None = None) -> np.ndarray:
    """Fast per-cut NPT test: ``(N, d, d)`` -> ``(N, n_cuts)`` bool, True where
    ``lambda_min(rho^{T_A}) < -tol``.

    Uses a batched Cholesky test of ``rho^{T_A} + tol*I`` instead of eigenvalues, in chunks spread
    over ``workers`` threads (numpy releases the GIL in its array loops; default: all cores).
    Agrees with ``pt_min_eigenvalues(rho) < -tol`` up to rounding at the threshold itself.
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n_batch = rho.shape[0]
    n = num_qubits(rho.shape[1])
    out = np.empty((n_batch, len(bipartitions(n))), dtype=bool)
    starts = range(0, n_batch, _CHUNK)

    def work(start: int) -> None:
        chunk = partial_transposes(rho[start : start + _CHUNK])
        b, c, d, _ = chunk.shape
        out[start : start + b] = _not_positive_definite(chunk.reshape(b * c, d, d), tol).reshape(b, c)

    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or n_batch <= _CHUNK:
        for s in starts:
            work(s)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, starts))
    return out
