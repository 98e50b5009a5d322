"""Mixed-precision NPT sign test: a rigorous float32 screen, float64 only near the threshold.

:func:`~qeframe.quantum.ppt.npt_mask` decides ``lambda_min(rho^{T_A}) < -tol`` by an unpivoted
``L D L^†`` (Cholesky) factorisation of ``rho^{T_A} + tol I``. Its cost is the elimination: a
batch-last pass over all matrices per column and step. In float32 (``complex64``) that pass moves
half the bytes and numpy's SIMD loops do twice the elements per instruction, so it is about 1.7
times faster per matrix (``docs/performance.md``). This module makes the float32 factorisation
*prove* its verdicts, so that the float64 factorisation is only needed for the few matrices whose
``lambda_min`` lies within a small band around ``-tol`` (or whose factor is ill-conditioned).

Error bound. Let ``A`` be the Hermitian matrix whose lower triangle the test reads (the partial
transpose of one state, a permutation of its entries), ``u = 2**-24`` the unit roundoff of float32
and ``gamma_k = k u / (1 - k u)``. The float32 test factorises ``Â = fl32(A) + s I``
(``fl32``: rounding every real and imaginary part; ``s`` a shift). Its error sources:

1. rounding the input: ``|fl32(A) - A| <= u |A|`` entrywise, so ``||fl32(A) - A||_2 <= u ||A||_F``;
   for any input ``||A||_F <= sqrt(2) ||rho||_F`` (the lower triangle holds each entry of ``rho``
   at most once; the upper one is its mirror);
2. adding the shift in float32: at most ``2 u (max_i |a_ii| + |s|)`` in operator norm (a diagonal
   perturbation);
3. the factorisation, with ``g = gamma_{4(d+1)}`` (Higham's ``gamma_{d+1}`` with the constant of
   complex arithmetic: a complex multiply-subtract commits relative errors of at most
   ``sqrt(2) gamma_2 + u < 4 u``, Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd
   ed., SIAM 2002, Lemma 3.5). If the elimination **completes** with positive pivots, then
   ``Â + dA = L D L^†`` with ``|dA| <= g |L| D |L^†|`` entrywise (Higham 2002, Thm. 10.3); since
   ``|L| D |L^†|`` is positive semidefinite with trace ``tr(Â + dA)``,
   ``||dA||_2 <= g tr(Â) / (1 - d g) <= d g max_i |â_ii| / (1 - d g)``, so
   ``lambda_min(Â) >= -d g max_i |â_ii| / (1 - d g)``. If it **fails** (a pivot
   ``<= 0``), then ``lambda_min(Â) <= d g max_i â_ii / (1 - d g)``: by Demmel's theorem (Higham
   2002, Thm. 10.7) the factorisation of a positive definite ``Â = D H D``, ``D = diag(Â)^{1/2}``,
   succeeds whenever ``lambda_min(H) > d g / (1 - d g)``, and ``lambda_min(Â) <= lambda_min(H)
   max_i â_ii`` (Rayleigh quotient of ``D^{-1} x``, ``x`` an eigenvector of ``H``); a matrix that
   is not positive definite has ``lambda_min(Â) <= 0`` anyway.

Summed, for one state with ``m = max_i |Re rho_ii|`` (the diagonal is the same for every cut) and
``nu = sqrt(2) ||rho||_F``, a shift ``|s| <= s_max``, and a floor for gradual underflow
(``d**2 2**-149``, far below every other term), both directions are within

    ``err = d g (m + s_max) / (1 - d g) + u nu + 2 u (m + s_max) + d**2 2**-149``

(:func:`margin`; ``s_max = tol + 1e-2 (m + nu)`` holds for every ``d <= 64``, larger matrices
are not screened). With the margin ``eta = 2 err``, :func:`screen` factorises ``fl32(A) + (tol +
eta) I`` once per matrix:

* it **fails** at a finite pivot ``<= 0`` -> ``lambda_min(A) <= -tol - eta + err < -tol``: NPT, proved;
* it **completes** with pivots ``D > 0`` and unit lower triangular ``L``: then
  ``A + tol I = L D L^† - dA - E - eta I`` (``||dA + E||_2 <= err``) and
  ``lambda_min(L D L^†) >= min(D) / ||L^{-1}||_2^2``, so
  ``min(D) / K > 1.5 eta`` with ``K >= ||L^{-1}||_2^2`` (:func:`inverse_norm_bound`, two
  triangular solves with non-negative numbers) proves ``lambda_min(A) > -tol + 1.5 eta - eta - err
  = -tol``: PPT, proved;
* anything else is *undecided*: a completed factorisation whose bound is too weak (``|lambda_min(A)
  + tol|`` within a few ``eta``, or an ill-conditioned ``L``), a pivot that is NaN or infinite, an
  overflow, a state with ``nu`` outside ``[2**-60, 2**60]``. The caller decides those with the
  float64 test.

For ``d = 8`` and a mixed state of trace 1, ``eta`` is about ``1e-5`` (``4e-5`` times its largest
diagonal entry). Of the 300 000 states of
``benchmarks/bench_ppt.py`` (half of them noisy states placed near their PPT threshold on purpose)
about 1 in 1 700 cuts is undecided (``docs/performance.md``). The verdicts the screen proves are
exact for the matrix as given (not just up to float64 rounding); the undecided ones get the
float64 test's answer, so the backend as a whole agrees with ``numpy`` outside
:func:`~qeframe.quantum.ppt.npt_rounding_bound`.
"""

from __future__ import annotations

import numpy as np

from qeframe.quantum.cuts import packed_offsets

#: Unit roundoff of float32.
U32 = float(np.finfo(np.float32).eps) / 2
#: Largest matrix size the screen is used for (``s_max`` above needs ``2 err <= 1e-2 (m + nu)``).
MAX_DIM = 64
#: States whose scale ``nu`` is outside ``[2**-60, 2**60]`` go to the float64 test.
_SCALE_RANGE = (2.0**-60, 2.0**60)
_INF32 = np.float32(np.inf)


def _gamma(k: int, u: float) -> float:
    return k * u / (1 - k * u)


def margin(flat: np.ndarray, d: int, tol: float) -> np.ndarray:
    """Per state: the screen's margin ``eta = 2 err`` (float64, module docstring), 0 for the states
    the screen must not decide (scale not finite or outside ``[2**-60, 2**60]``).

    ``flat`` ``(d*d, b)`` complex64: the states rounded to float32, batch last (row ``i d + j``
    holds entry ``(i, j)``). ``nu`` and ``m`` are computed from the rounded entries in float32
    and enlarged to bound the exact ones: a float32 sum of ``K`` non-negative terms is within
    ``gamma_K`` of the exact sum, and each rounded entry within ``u`` of the exact one.
    """
    x = flat.view(np.float32)  # (d*d, 2b): real and imaginary parts side by side
    sq = np.einsum("ij,ij->j", x, x)  # float32 sums of squares, (2b,)
    fro2 = (sq[0::2] + sq[1::2]).astype(np.float64)  # |fl32(rho)|_F^2 up to float32 summation
    m = np.abs(flat[:: d + 1].real).max(axis=0).astype(np.float64)  # max |Re rho_ii|, exact in float32
    # enlarge the float32 sums to bounds on the exact sums over the exact (unrounded) entries
    nu = np.sqrt(fro2 * (2 * (1 + _gamma(2 * d * d, U32)) / (1 - U32) ** 2))
    m /= 1 - U32
    # err = d g (m + s_max) / (1 - d g) + u nu + 2 u (m + s_max) + d^2 2^-149 with
    # s_max = tol + 1e-2 (m + nu), collected by m, nu and 1
    g = _gamma(4 * (d + 1), U32)
    dg = d * g / (1 - d * g)
    c_m = (dg + 2 * U32) * (1 + 1e-2)
    c_nu = (dg + 2 * U32) * 1e-2 + U32
    c_one = abs(tol) * (dg + 2 * U32) + d * d * 2.0**-149
    usable = (nu >= _SCALE_RANGE[0]) & (nu <= _SCALE_RANGE[1])  # False for NaN and inf too
    eta = 2.0 * (c_m * m + c_nu * nu + c_one)
    eta[~usable] = 0.0
    return eta


def _classify(pivots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pivots`` ``(k, M)``: per matrix, whether some pivot is outside ``(0, inf)``, and whether
    the first such pivot is a finite value ``<= 0`` (row by row along the contiguous batch axis;
    faster here than an ``argmin`` across rows, measured)."""
    stopped = np.zeros(pivots.shape[1], dtype=bool)
    nonpositive = np.zeros(pivots.shape[1], dtype=bool)
    for p in pivots:
        first = (p > 0) & (p < _INF32)
        if first.all():
            continue
        np.logical_not(first, out=first)
        first &= ~stopped
        nonpositive |= first & (p <= 0) & (p > -_INF32)
        stopped |= first
    return stopped, nonpositive


def eliminate(a: np.ndarray, d: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``L D L^†`` elimination of packed lower triangles (``a`` is overwritten).

    ``a`` ``(d(d+1)/2, M)`` complex64, C-contiguous: lower triangles packed column by column as in
    :func:`~qeframe.quantum.ppt._packed_not_positive_definite` (batch axis last). ``shift``
    ``(M,)`` float32, added to the diagonals first.

    Returns ``(nonpositive, odd)``, ``(M,)`` bool: the first pivot outside ``(0, inf)`` is a finite
    value ``<= 0`` (the matrix is proved not positive definite up to the error bound of the
    module docstring), or is NaN or infinite (nothing is proved). Matrices with neither completed
    with positive finite pivots. Every matrix runs every step (a failed matrix computes garbage
    that is never read; dropping failed matrices from the working set at steps 2-4 cost more than
    it saved, measured); the pivots are classified once at the end, from the diagonal entries,
    which no later step overwrites.
    """
    m = a.shape[1]
    offsets = packed_offsets(d)
    a.real[offsets[:-1]] += shift
    inv = np.empty((m, 2), dtype=np.float32)  # (1/p, -1/p) per matrix
    conj = np.empty((d, m), dtype=np.complex64)  # conj(column k below the diagonal) / p
    tmp = np.empty((d, m), dtype=np.complex64)
    with np.errstate(all="ignore"):  # failed matrices may divide by 0 or overflow; never read
        for k in range(d - 1):
            r = d - k - 1
            col = a[offsets[k] + 1 : offsets[k + 1]]  # rows k+1..d-1 of column k, (r, M)
            np.divide(np.float32(1), a[offsets[k]].real, out=inv[:, 0])
            np.negative(inv[:, 0], out=inv[:, 1])
            # conj(x) / p in one real multiply: (re, im) * (1/p, -1/p)
            np.multiply(col.view(np.float32), inv.reshape(-1), out=conj[:r].view(np.float32))
            for j in range(k + 1, d):
                h = d - j  # rows j..d-1 of column j: A[i, j] -= A[i, k] conj(A[j, k]) / p
                np.multiply(col[j - k - 1 :], conj[j - k - 1], out=tmp[:h])
                a[offsets[j] : offsets[j + 1]] -= tmp[:h]
        stopped, nonpositive = _classify(a.real[offsets[:-1]])
    return nonpositive, stopped & ~nonpositive


def inverse_norm_bound(a: np.ndarray, d: int) -> np.ndarray:
    """Upper bound on ``||L^{-1}||_2^2`` for the unit lower triangular factor of every completed
    factorisation in ``a`` (:func:`eliminate`'s output): ``(M,)`` float64.

    ``L[i, j] = a_ij / p_j`` (column ``j`` below the diagonal, divided by its pivot). With the
    comparison matrix ``C(L)`` (unit diagonal, ``-|l_ij|`` below), ``|L^{-1}| <= C(L)^{-1}``
    entrywise (Higham 2002, Thm. 8.12), so ``||L^{-1}||_inf <= ||y||_inf`` with ``C(L) y = e`` and
    ``||L^{-1}||_1 <= ||z||_inf`` with ``C(L)^T z = e`` (``e`` all ones; both solves add
    non-negative numbers only), and ``||L^{-1}||_2^2 <= ||L^{-1}||_1 ||L^{-1}||_inf`` (Higham 2002,
    Eq. (6.22)). The two solves run in float32 on the rounded ``|l_ij|``; every computed sum is
    within ``gamma_{d(d+4)}`` of the exact one, which the returned bound includes. Matrices whose
    factorisation failed give garbage (or inf, or NaN) that the caller never uses.
    """
    m = a.shape[1]
    offsets = packed_offsets(d)
    mag = np.abs(a)  # float32 (P, M); column j below the diagonal becomes |l_.j| below
    with np.errstate(all="ignore"):
        for j in range(d - 1):
            mag[offsets[j] + 1 : offsets[j + 1]] /= mag[offsets[j]]
        y = np.ones((d, m), dtype=np.float32)  # C(L) y = e: forward substitution by columns
        z = np.ones((d, m), dtype=np.float32)  # C(L)^T z = e: z_i = 1 + sum_k>i |l_ki| z_k
        tmp = np.empty((d, m), dtype=np.float32)
        for j in range(d - 1):
            r = d - j - 1
            np.multiply(mag[offsets[j] + 1 : offsets[j + 1]], y[j], out=tmp[:r])  # |l_ij| y_j
            y[j + 1 :] += tmp[:r]
            i = d - 2 - j
            np.multiply(mag[offsets[i] + 1 : offsets[i + 1]], z[i + 1 :], out=tmp[: j + 1])
            z[i] += tmp[: j + 1].sum(axis=0)
        bound = y.max(axis=0).astype(np.float64) * z.max(axis=0).astype(np.float64)
    return bound * (1 + 3 * _gamma(d * (d + 4), U32))


def screen(flat: np.ndarray, src: np.ndarray, tol: float, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 screen of every cut of a chunk of ``b`` states (module docstring).

    ``flat`` ``(d*d, b)`` complex64: the states rounded to float32, batch last; ``src``
    ``(P, n_cuts)``: the packed partial-transpose plan (:func:`~qeframe.quantum.cuts.packed_pt_plan`);
    ``eta`` ``(b,)``: :func:`margin`. Returns ``(npt, undecided)``, ``(n_cuts * b,)`` bool, matrix
    ``c * b + i`` being cut ``c`` of state ``i``: ``npt`` is proved wherever ``undecided`` is False.

    One factorisation per matrix, of ``fl32(rho^{T_A}) + (tol + eta) I``: a failure proves NPT; a
    completion proves PPT when ``min(D) / inverse_norm_bound > 1.5 eta`` (module docstring).
    """
    d2, b = flat.shape
    d = round(d2**0.5)
    n_c = src.shape[1]
    m = n_c * b
    eta = np.tile(eta, n_c)
    a = flat[src].reshape(-1, m)  # every cut's lower triangle, batch last
    nonpositive, odd = eliminate(a, d, (tol + eta).astype(np.float32))
    undecided = odd | (eta <= 0)
    npt = nonpositive & ~undecided
    done = np.flatnonzero(~nonpositive & ~undecided)  # completed: PPT if the pivots are safely large
    if done.size:
        sub = np.compress(~nonpositive & ~undecided, a, axis=1) if done.size < m else a
        offsets = packed_offsets(d)
        smallest = sub.real[offsets[:-1]].min(axis=0).astype(np.float64)
        with np.errstate(all="ignore"):
            proved = smallest > 1.5 * eta[done] * inverse_norm_bound(sub, d)
        undecided[done[~proved]] = True
    return npt, undecided
