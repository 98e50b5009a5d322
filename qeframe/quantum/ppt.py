"""Per-cut partial-transpose spectra: smallest eigenvalue, negativity and a fast NPT test.

For a cut with side A, ``rho^{T_A}`` is the partial transpose on the qubits of A (transposing
either side gives the same spectrum). A cut is **NPT** when the smallest eigenvalue of
``rho^{T_A}`` is below ``-tol``; NPT implies entangled. PPT does *not* imply separable.

Negativity: ``N(rho) = (||rho^{T_A}||_1 - 1) / 2 = sum of |negative eigenvalues of rho^{T_A}|``.

All functions take ``(N, 2**n, 2**n)`` (or one ``(2**n, 2**n)`` matrix, treated as ``N = 1``) in
the big-endian qubit order and return arrays with the cut axis in
:func:`~qeframe.quantum.cuts.bipartitions` order. Like :func:`numpy.linalg.eigvalsh`, they read
only the lower triangle of each partial transpose (the input is assumed Hermitian).

The NPT test :func:`npt_mask` has four backends (:func:`npt_backend`, environment variable
``QEFRAME_NPT_BACKEND=auto|native|mixed|numpy|compiled``). The default, ``auto``, is ``native``
where a C compiler is found: the float64 factorisation as one small C loop
(:mod:`qeframe.quantum.npt_native`, built once per machine in about 2 s and cached, loaded
with ctypes, GIL-free), 1.7-2.6 times faster per core than ``mixed`` (``benchmarks/bench_ppt.py``,
``docs/performance.md``). Without a compiler it is ``mixed`` for ``n <= 6`` qubits: a float32
factorisation that *proves* each verdict it gives (its rounding error is bounded,
:mod:`qeframe.quantum.npt_screen`) and the float64 factorisation for the few cuts it cannot
decide; ``numpy`` is that float64 factorisation for every cut (the reference); ``compiled`` is a
torch.compile kernel for ``n <= 3`` that ``auto`` uses (without a C compiler for ``native``) only
once it is compiled in the process or for calls of ``NPT_AUTO_COMPILE_STATES`` states.

Example::

    >>> import numpy as np
    >>> from qeframe.quantum.ppt import negativities, npt_mask
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> rho = np.outer(ghz, ghz)[None]
    >>> negativities(rho).round(6)
    array([[0.5, 0.5, 0.5]])
    >>> npt_mask(rho)
    array([[ True,  True,  True]])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from qeframe.errors import QeframeError
from qeframe.quantum import npt_native, npt_screen
from qeframe.quantum.cuts import bipartitions, packed_offsets, packed_pt_plan, pt_source_index
from qeframe.quantum.ops import num_qubits

#: Default threshold: a cut is NPT when lambda_min(rho^{T_A}) < -PPT_TOL (matrices of trace 1).
#: It is the one tolerance of every NPT decision (labelers, the ``ppt`` baseline, the PPT gate of
#: :mod:`qeframe.learn.prediction`); :func:`npt_tolerance` shows it is far above the rounding error.
PPT_TOL = 1e-10
#: Safety factor of :func:`npt_tolerance` over the rounding bound of the NPT test itself: room for
#: the rounding error the matrix already carries from its construction (a few matrix products).
NPT_SAFETY = 100.0

#: Memory budget of one chunk of the eigenvalue functions (its temporary partial transposes).
_EIG_CHUNK_BYTES = 16 << 20
#: Working-set budget of one chunk of :func:`npt_mask` (the packed complex lower triangles of
#: every cut). A few MB: a chunk's columns stay in cache across the elimination
#: steps while the per-call overhead of numpy is spread over thousands of matrices.
_NPT_CHUNK_BYTES = 4 << 20
#: The same budget for the mixed backend, counted in complex128 bytes like ``_NPT_CHUNK_BYTES``
#: (its float32 working set is half of it). Chosen by measurement: see docs/performance.md.
_NPT_MIXED_CHUNK_BYTES = 8 << 20
#: Lower bound on the number of matrices (states x cuts) a chunk of :func:`npt_mask` works on.
_NPT_MIN_MATRICES = 1024


def _as_batch(rho: np.ndarray) -> np.ndarray:
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    if rho.ndim != 3 or rho.shape[1] != rho.shape[2]:
        raise ValueError(f"expected (N, d, d) or (d, d), got shape {rho.shape}")
    return rho


def _default_workers(workers: int | None) -> int:
    return workers if workers is not None else min(os.cpu_count() or 1, 8)


def _run_chunks(work: Callable[[int], None], starts: range, workers: int) -> None:
    """Call ``work(start)`` for every chunk start, on ``workers`` threads when there are several
    chunks (numpy releases the GIL inside its array loops and LAPACK calls)."""
    if workers <= 1 or len(starts) <= 1:
        for start in starts:
            work(start)
    else:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(work, starts))


# ------------------------------------------------------------------------------------ spectra
def partial_transposes(rho: np.ndarray) -> np.ndarray:
    """``rho^{T_A}`` for every cut, cut axis second: ``(N, d, d)`` -> ``(N, n_cuts, d, d)``.

    One gather (:func:`numpy.take`) with a cached index table; same dtype as ``rho``.
    """
    rho = _as_batch(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    src = pt_source_index(num_qubits(d))
    return np.take(rho.reshape(n_batch, d * d), src, axis=1)


def pt_eigenvalues(rho: np.ndarray, workers: int | None = 1) -> np.ndarray:
    """All eigenvalues (ascending) of every cut's partial transpose: ``(N, n_cuts, d)`` float64.

    Computed with :func:`numpy.linalg.eigvalsh` (LAPACK ``heevd``) in chunks of about
    ``_EIG_CHUNK_BYTES`` of temporary partial transposes, on ``workers`` threads: default 1 (these
    functions often run inside worker processes already); ``None`` means all cores, at most 8.
    """
    rho = _as_batch(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    n_c = len(bipartitions(num_qubits(d)))
    out = np.empty((n_batch, n_c, d), dtype=np.float64)
    chunk = max(1, _EIG_CHUNK_BYTES // (16 * n_c * d * d))

    def work(start: int) -> None:
        out[start : start + chunk] = np.linalg.eigvalsh(partial_transposes(rho[start : start + chunk]))

    _run_chunks(work, range(0, n_batch, chunk), _default_workers(workers))
    return out


def pt_min_eigenvalues(rho: np.ndarray, workers: int | None = 1) -> np.ndarray:
    """Smallest eigenvalue of the partial transpose per cut: ``(N, n_cuts)`` float64."""
    return pt_eigenvalues(rho, workers)[..., 0]


def pt_min_eigenvalues_where(rho: np.ndarray, mask: np.ndarray, workers: int | None = None) -> np.ndarray:
    """``lambda_min(rho^{T_A})`` where ``mask`` ``(N, n_cuts)`` is True, NaN elsewhere:
    ``(N, n_cuts)`` float64 (the labelers' evidence of their NPT cuts).

    :func:`numpy.linalg.eigvalsh` of the flagged partial transposes only, gathered per chunk of
    states that have a flagged cut (about ``_EIG_CHUNK_BYTES`` of copies), on ``workers`` threads
    (LAPACK releases the GIL; default: all cores, at most 8, like :func:`npt_mask`). The values
    are those of :func:`pt_min_eigenvalues` (the same matrices, each decomposed on its own).
    """
    rho = _as_batch(rho)
    d = rho.shape[1]
    mask = np.asarray(mask, dtype=bool)
    out = np.full(mask.shape, np.nan)
    rows_any = np.flatnonzero(mask.any(axis=1))
    chunk = max(1, _EIG_CHUNK_BYTES // (16 * mask.shape[1] * d * d))

    def work(start: int) -> None:
        rows = rows_any[start : start + chunk]
        local, cuts = np.nonzero(mask[rows])
        pts = partial_transposes(rho[rows])  # (r, n_cuts, d, d)
        out[rows[local], cuts] = np.linalg.eigvalsh(pts[local, cuts])[:, 0]

    _run_chunks(work, range(0, rows_any.size, chunk), _default_workers(workers))
    return out


def negativities(rho: np.ndarray, workers: int | None = 1) -> np.ndarray:
    """Negativity per cut, ``sum |negative eigenvalues of rho^{T_A}|``: ``(N, n_cuts)`` float64.

    0 for PPT cuts; 1/2 for every cut of a GHZ state and for a Bell pair; at most
    ``(2**min(|A|, |B|) - 1) / 2``.
    """
    ev = pt_eigenvalues(rho, workers)
    return -np.minimum(ev, 0.0).sum(axis=-1)


# ------------------------------------------------------------------------------------ NPT test
def _packed_not_positive_definite(a: np.ndarray, d: int, shift: float) -> np.ndarray:
    """Batched Cholesky test on packed lower triangles; True where ``A + shift*I`` is not
    positive definite.

    ``a`` ``(d(d+1)/2, M)`` complex128 holds the lower triangles of M Hermitian ``d x d``
    matrices, packed column by column (column ``j``: rows ``j..d-1``, diagonal first), with the
    batch axis last and contiguous. It is overwritten.

    Right-looking, unpivoted Cholesky (``A = L D L^†`` without square roots): at step ``k`` the
    pivot is ``p = Re A[k, k]``; a matrix fails at its first ``p <= 0`` (or NaN); then
    ``A[i, j] -= (A[i, k] / p) conj(A[j, k])`` for ``i >= j > k``. Only the lower triangle is
    touched: one multiply into a preallocated buffer and one in-place subtraction per column, each
    a contiguous loop over all M matrices (about ``d**2`` numpy calls per chunk). Stops early once
    every matrix has failed.

    Cholesky is backward stable: the answer equals ``lambda_min(A) < -shift`` except within about
    ``d * 1e-16 * ||A||`` of the threshold.
    """
    m = a.shape[1]
    offsets = packed_offsets(d)
    a.real[offsets[:-1]] += shift
    bad = np.zeros(m, dtype=bool)
    inv = np.empty(m)
    scaled = np.empty((d, m), dtype=np.complex128)  # column k below the diagonal, divided by p
    conj = np.empty((d, m), dtype=np.complex128)  # its conjugate
    tmp = np.empty((d, m), dtype=np.complex128)
    with np.errstate(all="ignore"):  # failed matrices may divide by 0; their values are unused
        for k in range(d):
            pivot = a[offsets[k]].real
            bad |= ~(pivot > 0)
            if k == d - 1 or bad.all():
                break
            r = d - k - 1
            col = a[offsets[k] + 1 : offsets[k + 1]]  # rows k+1..d-1 of column k, (r, M)
            np.divide(1.0, pivot, out=inv)
            np.multiply(col, inv, out=scaled[:r])
            np.conjugate(col, out=conj[:r])
            for j in range(k + 1, d):
                h = d - j  # rows j..d-1 of column j
                np.multiply(scaled[j - k - 1 : r], conj[j - k - 1], out=tmp[:h])
                a[offsets[j] : offsets[j + 1]] -= tmp[:h]
    return bad


def _not_positive_definite(a: np.ndarray, shift: float) -> np.ndarray:
    """For Hermitian ``a`` ``(M, d, d)``: True where ``a + shift*I`` is not positive definite
    (reads the lower triangle only); see :func:`_packed_not_positive_definite`. Works in chunks of
    about ``_NPT_CHUNK_BYTES``."""
    a = np.asarray(a)
    m, d = a.shape[0], a.shape[1]
    rows = np.concatenate([np.arange(j, d) for j in range(d)])
    cols = np.repeat(np.arange(d), np.arange(d, 0, -1))
    chunk = max(_NPT_MIN_MATRICES, _NPT_CHUNK_BYTES // (8 * d * (d + 1)))
    out = np.empty(m, dtype=bool)
    for start in range(0, m, chunk):
        packed = np.ascontiguousarray(a[start : start + chunk, rows, cols].T, dtype=np.complex128)  # (P, M)
        out[start : start + chunk] = _packed_not_positive_definite(packed, d, shift)
    return out


def npt_chunk_size(n_qubits: int, budget: int | None = None) -> int:
    """States per chunk of :func:`npt_mask` for ``n_qubits`` qubits: the packed complex128 lower
    triangles of a chunk's cuts fit ``budget`` bytes (default ``_NPT_CHUNK_BYTES``)."""
    d = 2**n_qubits
    n_c = len(bipartitions(n_qubits))
    per_state = 16 * (d * (d + 1) // 2) * n_c
    return max(-(-_NPT_MIN_MATRICES // n_c), (budget or _NPT_CHUNK_BYTES) // per_state)


#: Environment variable choosing the backend of :func:`npt_mask`: ``auto`` (default), ``native``,
#: ``mixed``, ``numpy`` or ``compiled`` (see :func:`npt_backend`).
NPT_BACKEND_ENV = "QEFRAME_NPT_BACKEND"
NPT_BACKENDS = ("auto", "native", "mixed", "numpy", "compiled")
#: ``auto`` compiles the fused kernel (:mod:`qeframe.quantum.npt_compiled`) for a call with at
#: least this many states: enough to repay a compile from Inductor's disk cache (10-14 CPU
#: seconds, Dynamo re-tracing the unrolled function) at its measured saving over the default
#: mixed backend, 0.15-0.23 CPU µs per state (``docs/performance.md``). Once compiled, every call
#: of the process uses it.
NPT_AUTO_COMPILE_STATES = 60_000_000


class NptBackendError(QeframeError, ValueError):
    """An unknown NPT backend (argument or ``QEFRAME_NPT_BACKEND``): a user error, one line."""


def npt_backend(n_qubits: int, n_states: int, backend: str | None = None) -> str:
    """Which implementation :func:`npt_mask` uses: ``"native"``, ``"mixed"``, ``"numpy"`` or
    ``"compiled"``.

    ``backend`` (default: the ``QEFRAME_NPT_BACKEND`` environment variable, else ``"auto"``):

    * ``"native"``: the float64 factorisation as a C loop (:mod:`qeframe.quantum.npt_native`;
      built on first use, falls back to ``mixed``/``numpy`` with one warning where it cannot be);
    * ``"mixed"``: the float32 screen of :mod:`qeframe.quantum.npt_screen`, which proves the verdict
      of almost every matrix, and the float64 factorisation for the rest (``2**n_qubits <= 64``;
      numpy beyond);
    * ``"numpy"``: the float64 batch-last numpy factorisation (:func:`_packed_not_positive_definite`)
      for every matrix: the reference;
    * ``"compiled"``: the fused kernel of :mod:`qeframe.quantum.npt_compiled` (``n_qubits <= 3``;
      compiled on first use, falls back to ``auto``'s choice where it cannot be built);
    * ``"auto"``: native where it can be built (a C compiler is found); else the compiled kernel
      when it is already compiled in this process, or when the call has at least
      ``NPT_AUTO_COMPILE_STATES`` states and torch is installed; else mixed.

    All answer ``lambda_min(rho^{T_A}) < -tol`` up to the same rounding band
    (:func:`npt_rounding_bound`): native, numpy and compiled are the same float64 factorisation
    (rounded in different orders), the mixed backend's own verdicts are exact, and the matrices it
    leaves undecided get the numpy backend's.
    """
    from qeframe.quantum import npt_compiled

    choice = backend if backend is not None else os.environ.get(NPT_BACKEND_ENV, "auto")
    if choice not in NPT_BACKENDS:
        raise NptBackendError(
            f"NPT backend must be one of {', '.join(NPT_BACKENDS)}, got {choice!r} "
            f"(argument backend= or the {NPT_BACKEND_ENV} environment variable)"
        )
    default = "mixed" if 2**n_qubits <= npt_screen.MAX_DIM else "numpy"
    if choice in ("numpy", "mixed"):
        return "numpy" if choice == "numpy" else default
    if choice in ("native", "auto") and npt_native.library(warn=choice == "native") is not None:
        return "native"
    if choice == "native":
        return default
    if n_qubits > npt_compiled.MAX_QUBITS or npt_compiled.failure(n_qubits):
        return default
    if choice == "compiled" or npt_compiled.is_compiled(n_qubits):
        return "compiled"
    big = n_states >= NPT_AUTO_COMPILE_STATES
    return "compiled" if big and npt_compiled.torch_available() else default


def _npt_block_numpy(block: np.ndarray, tol: float, n: int) -> np.ndarray:
    """The numpy NPT test of one chunk ``(b, d, d)``: ``(b, n_cuts)`` bool."""
    src, _ = packed_pt_plan(n)
    n_c, b, d = src.shape[1], block.shape[0], block.shape[1]
    # a batch-last copy of rho (one strided pass), then a row gather into (P, n_cuts * b)
    flat = np.ascontiguousarray(block.reshape(b, d * d).T, dtype=np.complex128)
    bad = _packed_not_positive_definite(flat[src].reshape(-1, n_c * b), d, tol)
    return bad.reshape(n_c, b).T


#: States per sub-block of the transposing copy in :func:`_npt_block_mixed` (its source, 256 kB
#: of complex128 for n = 3, stays in L2 while it is read column by column).
_TRANSPOSE_STATES = 256


def _npt_block_mixed(block: np.ndarray, tol: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The float32 screen of one chunk ``(b, d, d)`` (:mod:`qeframe.quantum.npt_screen`).

    Returns ``(npt, undecided)``, ``(b, n_cuts)`` bool: ``npt`` is proved where ``undecided`` is
    False; the undecided cuts (``|lambda_min + tol|`` within the screen's error margin, or a state
    not safely representable in float32) are for the float64 test.
    """
    src, _ = packed_pt_plan(n)
    n_c, b, d = src.shape[1], block.shape[0], block.shape[1]
    flat_rho = block.reshape(b, d * d)
    flat = np.empty((d * d, b), dtype=np.complex64)  # batch last, transposed in cache-sized blocks
    with np.errstate(over="ignore"):  # |entries| > 3.4e38 become inf: such states are not screened
        for s in range(0, b, _TRANSPOSE_STATES):
            flat[:, s : s + _TRANSPOSE_STATES] = flat_rho[s : s + _TRANSPOSE_STATES].T
    npt, undecided = npt_screen.screen(flat, src, tol, npt_screen.margin(flat, d, tol))
    return npt.reshape(n_c, b).T, undecided.reshape(n_c, b).T


def _npt_pairs_float64(
    rho: np.ndarray, states: np.ndarray, cuts: np.ndarray, tol: float, n: int
) -> np.ndarray:
    """The float64 NPT test of the given (state, cut) pairs of ``rho`` ``(N, d, d)``: ``(K,)`` bool."""
    src, _ = packed_pt_plan(n)
    d = rho.shape[1]
    out = np.empty(states.size, dtype=bool)
    chunk = max(1, _NPT_CHUNK_BYTES // (8 * d * (d + 1)))
    for start in range(0, states.size, chunk):
        s, c = states[start : start + chunk], cuts[start : start + chunk]
        flat = rho[s].reshape(s.size, d * d)  # copies only these states, whatever rho's strides
        exact = np.ascontiguousarray(flat[np.arange(s.size)[None, :], src[:, c]], dtype=np.complex128)
        out[start : start + chunk] = _packed_not_positive_definite(exact, d, tol)
    return out


def npt_mask(
    rho: np.ndarray, tol: float = PPT_TOL, workers: int | None = None, backend: str | None = None
) -> np.ndarray:
    """Fast per-cut NPT test: ``(N, d, d)`` -> ``(N, n_cuts)`` bool, True where
    ``lambda_min(rho^{T_A}) < -tol``.

    Instead of eigenvalues, a batched Cholesky test of ``rho^{T_A} + tol*I`` (positive definite
    exactly when ``lambda_min(rho^{T_A}) > -tol``). Four implementations (:func:`npt_backend` picks
    one; ``backend`` overrides the ``QEFRAME_NPT_BACKEND`` environment variable):

    * native (the default where a C compiler is found): per state and cut, the partial
      transpose's lower triangle gathered from ``rho`` into an L1-resident buffer and factorised in
      float64 by a C loop, eight states side by side (:mod:`qeframe.quantum.npt_native`);
    * mixed (the default for ``n <= 6`` without a C compiler): per chunk of states, the lower
      triangles of all cuts' partial transposes are gathered batch-last in float32 and factorised
      once; the factorisation
      proves NPT (it fails) or PPT (it completes with pivots safely above its error bound) for
      almost every cut, and the few it leaves open go to the float64 test
      (:mod:`qeframe.quantum.npt_screen`);
    * numpy: the same gather in float64 (one cached index table, no intermediate
      partial-transpose copy), factorised column by column: the reference;
    * compiled (``n <= 3``): one fused loop over the states, compiled by :func:`torch.compile`
      (:mod:`qeframe.quantum.npt_compiled`), reading ``rho`` in place.

    Chunks run on ``workers`` threads (numpy and both kernels release the GIL; default: all
    cores, at most 8). States whose factorisation meets a NaN or infinite pivot in a kernel are
    decided by the numpy path.

    Agrees with ``pt_min_eigenvalues(rho) < -tol`` except within about ``1e-15`` of the
    threshold (rounding, :func:`npt_rounding_bound`); the backends can disagree only there.
    """
    rho = _as_batch(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    n_c = len(bipartitions(n))
    out = np.empty((n_batch, n_c), dtype=bool)
    kernel_call: Callable[[np.ndarray], np.ndarray] | None = None
    path = npt_backend(n, n_batch, backend)
    if path == "native":
        fn = npt_native.library()

        def kernel_call(block: np.ndarray) -> np.ndarray:
            return npt_native.not_positive_definite(fn, block, tol)

        per_call, min_states = npt_native.CHUNK_STATES, 1
    elif path == "compiled":
        from qeframe.quantum import npt_compiled

        kern = npt_compiled.kernel(n)
        if kern is None:
            path = npt_backend(n, n_batch, "mixed")
        else:

            def kernel_call(block: np.ndarray) -> np.ndarray:
                return npt_compiled.not_positive_definite(kern, block, tol)

            per_call, min_states = npt_compiled.CHUNK_STATES, npt_compiled.MIN_CHUNK_STATES
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # (states, cuts) the mixed screen left open
    if path == "numpy":
        chunk = npt_chunk_size(n)

        def work(start: int) -> None:
            block = rho[start : start + chunk]
            out[start : start + block.shape[0]] = _npt_block_numpy(block, tol, n)

    elif path == "mixed":
        chunk = npt_chunk_size(n, _NPT_MIXED_CHUNK_BYTES)

        def work(start: int) -> None:
            block = rho[start : start + chunk]
            npt, undecided = _npt_block_mixed(block, tol, n)
            out[start : start + block.shape[0]] = npt
            if undecided.any():
                states, cuts = np.nonzero(undecided)
                pending.append((states + start, cuts))  # list.append is atomic

    else:
        # a native or compiled kernel: about per_call states per call, as many chunks per worker
        assert kernel_call is not None
        n_workers = _default_workers(workers)
        n_chunks = -(-max(1, -(-n_batch // per_call)) // n_workers) * n_workers
        chunk = max(min_states, -(-n_batch // n_chunks))

        def work(start: int) -> None:
            block = np.ascontiguousarray(rho[start : start + chunk], dtype=np.complex128)
            b = block.shape[0]
            if b < min_states:
                out[start : start + b] = _npt_block_numpy(block, tol, n)
                return
            res = kernel_call(block)
            out[start : start + b] = res[:, :n_c]
            odd = np.flatnonzero(res[:, n_c])  # rows with a non-finite pivot: numpy decides
            if odd.size:
                out[start + odd] = _npt_block_numpy(block[odd], tol, n)

    _run_chunks(work, range(0, n_batch, chunk), _default_workers(workers))
    if pending:  # one float64 pass over every matrix the screen did not decide
        states = np.concatenate([p[0] for p in pending])
        cuts = np.concatenate([p[1] for p in pending])
        out[states, cuts] = _npt_pairs_float64(rho, states, cuts, tol, n)
    return out


def npt_rounding_bound(d: int, trace: float = 1.0) -> float:
    """Bound on the rounding error of the NPT test of a ``d x d`` partial transpose of trace ``trace``.

    The partial transpose is a permutation of the entries (exact). The test factors
    ``M = rho^{T_A} + tol I`` by Cholesky in float64 (unit roundoff ``u = eps/2``). Cholesky is
    backward stable: if it fails, ``M + dM`` is not positive definite for some Hermitian ``dM`` with
    ``|dM| <= gamma_{d+1} |R^T| |R|`` entrywise, ``gamma_k = k u / (1 - k u)`` (Higham, *Accuracy
    and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002, Thm. 10.3 and 10.5), and
    ``|| |R^T||R| ||_2 <= ||R||_F^2 = tr M``. Hence a failure proves
    ``lambda_min(M) <= gamma_{d+1} tr M``, i.e. ``lambda_min(rho^{T_A}) < -tol + gamma_{d+1} (trace + d tol)``,
    and a success proves ``lambda_min(rho^{T_A}) > -tol - gamma_{d+1} (trace + d tol)`` (same bound
    applied to the successful factorisation, Higham Thm. 10.5). This returns
    ``gamma_{d+1} * trace`` (the ``d tol`` term is ``d * 1e-10`` times smaller).
    """
    u = np.finfo(np.float64).eps / 2
    k = (d + 1) * u
    return float(k / (1 - k) * trace)


def npt_tolerance(d: int, trace: float = 1.0) -> float:
    """The tolerance of a *proof* of NPT for ``d x d`` matrices of trace ``trace``:
    ``trace * max(PPT_TOL, NPT_SAFETY * gamma_{d+1})`` (:func:`npt_rounding_bound`).

    A cut flagged by ``npt_mask(rho, tol)`` then has ``lambda_min(rho^{T_A}) < -tol + gamma_{d+1} tr``
    ``< -(1 - 1/NPT_SAFETY) tol < 0`` for the matrix as stored, and stays negative for any matrix
    within ``(1 - 1/NPT_SAFETY) tol`` in operator norm (Weyl's inequality), which covers the
    rounding error of the state's own construction: a separable state computed in float64 is not
    flagged. For ``d <= 2**10`` (every supported size) ``NPT_SAFETY * gamma_{d+1} <= 1.2e-11``,
    so the tolerance is ``PPT_TOL * trace``: the same as the labelers' and the ``ppt`` baseline's,
    so the gate and the labels agree on which cuts are NPT.
    """
    if d < 2 or trace <= 0 or not np.isfinite(trace):
        raise ValueError(f"npt_tolerance: need d >= 2 and a positive finite trace, got d={d}, trace={trace}")
    return float(trace * max(PPT_TOL, NPT_SAFETY * npt_rounding_bound(d)))
