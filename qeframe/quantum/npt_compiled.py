"""The NPT sign test of :func:`~qeframe.quantum.ppt.npt_mask` as one fused, compiled loop.

:func:`~qeframe.quantum.ppt.npt_mask` decides ``lambda_min(rho^{T_A}) < -tol`` for every cut by an
unpivoted ``L D L^†`` (Cholesky) factorisation of ``rho^{T_A} + tol I`` (positive definite exactly
when the cut is PPT). Its numpy version runs each elimination step as a separate pass over a
batch-last array (``~d**2`` numpy calls per chunk): memory traffic and per-call overhead, not
arithmetic, bound it. Here the same algorithm is written once, unrolled, on the real and imaginary
parts of the entries of ``rho`` and compiled by :func:`torch.compile` (Inductor, C++ backend) into
one fused kernel over the batch: every matrix of every cut is read from ``rho`` in place (the
partial transpose is folded into the load indices) and factorised in one pass per chunk, with no
numpy call per step. (What Inductor makes of it: per cut one loop over the states with strided,
hence scalar, loads, realising about 29 intermediates per cut as per-state float64 buffers, then
one vectorised loop that finishes all cuts.) The C++ wrapper
(``cpp_wrapper``) releases the GIL, so :func:`~qeframe.quantum.ppt.npt_mask`'s worker threads run
it on all cores.

Numerics: the kernel is compiled without fast-math (Inductor's flags: no reassociation,
``-ffp-contract=off``), so every operation is one IEEE float64 operation in the order of the
numpy path; numpy's complex multiply may use fused multiply-adds (it does on AVX-512), so the two
paths round differently in the last bits. Both are a backward-stable Cholesky factorisation
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002, Thm. 10.3 and
10.5; the bound holds for any evaluation order and with or without fused multiply-adds), so each
answers ``lambda_min(rho^{T_A}) < -tol`` exactly unless ``|lambda_min + tol|`` is within
:func:`~qeframe.quantum.ppt.npt_rounding_bound` (about ``1e-15`` for trace 1, ``d = 8``): the two
paths can disagree only inside that band, far inside :func:`~qeframe.quantum.ppt.npt_tolerance`'s
safety margin. Rows where a pivot is not finite (a NaN or infinite entry, or an overflow) are
recomputed by the numpy path, so their answers are the numpy path's by construction.

Cost: compiling takes tens of seconds on a quiet machine (minutes under load) the first time; the
result is kept in Inductor's on-disk cache (``TORCHINDUCTOR_CACHE_DIR``, default
``/tmp/torchinductor_<user>``), so a later process only re-traces the function (about 11 CPU
seconds measured, ``benchmarks/results/ppt.json``).
:func:`~qeframe.quantum.ppt.npt_mask` therefore uses this path only when asked to
(``QEFRAME_NPT_BACKEND=compiled``) or, by default (``auto``) and only where the faster native
kernel (:mod:`~qeframe.quantum.npt_native`) cannot be built, for batches large enough to repay a
warm compile, and once the kernel is compiled in the process; see
:func:`~qeframe.quantum.ppt.npt_backend`. Without torch, a C++ compiler, or on any compile error,
it falls back to ``auto``'s choice without it, the mixed-precision numpy test (with one warning).

Only ``n <= 3`` qubits are supported: the unrolled factorisation has ``O(d**3)`` operations per
cut, so for ``n = 4`` (7 cuts of ``16 x 16``) the traced graph would be about 20 times larger
than for ``n = 3`` (not tried).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

#: Largest number of qubits the compiled kernel is built for.
MAX_QUBITS = 3
#: Largest number of states per call of the compiled kernel (:func:`~qeframe.quantum.ppt.npt_mask`
#: splits a batch into equal chunks, a multiple of its worker count). A call costs about 0.4 ms
#: besides its states (the C++ wrapper, its ~90 per-state buffers); measured CPU time per state
#: on 100 000 states: 958 ns with chunks of 1 024, 589 with 4 096, 550 with 16 384, 520 with
#: 32 768, 497 with 65 536 (numpy: 886-915, same runs, load 11-12).
CHUNK_STATES = 32768
#: Chunks shorter than this go to the numpy path (sizes 0 and 1 would make Dynamo recompile).
MIN_CHUNK_STATES = 16

_lock = threading.Lock()
_kernels: dict[int, Callable[..., Any]] = {}
_failed: dict[int, str] = {}


def _unrolled_factorisation(sources: tuple[tuple[int, ...], ...], d: int) -> Callable[..., Any]:
    """The torch function that :func:`torch.compile` turns into one loop over the batch.

    ``sources[c][p]`` is the flat index in ``rho`` of packed entry ``p`` (column-major lower
    triangle, :func:`~qeframe.quantum.cuts.packed_pt_plan`) of cut ``c``'s partial transpose. The
    function takes ``x`` ``(M, 2 d^2)`` float64 (``rho`` ``(M, d, d)`` complex128 viewed as reals:
    column ``2e`` is ``Re rho.flat[e]``, ``2e + 1`` its imaginary part) and ``shift`` ``(1,)``
    float64, and returns ``(M, n_cuts + 1)`` bool: per cut, True where ``rho^{T_A} + shift I`` is
    not positive definite; last column, True where some pivot of some cut was not finite (NaN or
    infinite: a non-finite entry in a lower triangle, or an overflow), rows that the caller
    decides with the numpy path instead.

    Why the pivots catch every non-finite input that matters: an entry of a lower triangle is
    read only as part of column ``j`` at step ``j``; before that it influences nothing, so every
    earlier pivot is the finite one of the numpy path (up to rounding). At step ``j`` an infinite
    or NaN ``A[i, j]`` makes ``s_i`` non-finite and, through ``A[i, i] -= s_i conj(A[i, j])``
    (``+inf`` times itself, or NaN), pivot ``i`` non-finite; ``1/p`` can hide a non-finite value
    only behind a pivot that is itself infinite. Entries of the upper triangles are never read,
    by either path.

    The algorithm is :func:`~qeframe.quantum.ppt._packed_not_positive_definite` step for step:
    shift the diagonal, then for ``k = 0..d-1`` fail on ``not p > 0`` (``p = Re A[k, k]``, NaN
    fails), ``s_i = A[i, k] * (1/p)`` and ``A[i, j] -= s_i conj(A[j, k])`` for ``i >= j > k``,
    in real arithmetic: ``Re -= Re s Re c + Im s Im c``, ``Im -= Im s Re c - Re s Im c``.
    """
    import torch

    inf = float("inf")

    def factorise(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        outs = []
        odd = None
        for src in sources:
            re: dict[tuple[int, int], torch.Tensor] = {}
            im: dict[tuple[int, int], torch.Tensor] = {}
            pos = 0
            for j in range(d):
                for i in range(j, d):
                    e = src[pos]
                    pos += 1
                    re[i, j] = x[:, 2 * e]
                    im[i, j] = x[:, 2 * e + 1]
            for k in range(d):
                re[k, k] = re[k, k] + shift
            bad = ~(re[0, 0] > 0)
            finite = re[0, 0].abs() < inf
            for k in range(d - 1):
                inv = 1.0 / re[k, k]
                sr = {i: re[i, k] * inv for i in range(k + 1, d)}
                si = {i: im[i, k] * inv for i in range(k + 1, d)}
                for j in range(k + 1, d):
                    cr, ci = re[j, k], im[j, k]
                    for i in range(j, d):
                        re[i, j] = re[i, j] - (sr[i] * cr + si[i] * ci)
                        if i != j:
                            im[i, j] = im[i, j] - (si[i] * cr - sr[i] * ci)
                bad = bad | ~(re[k + 1, k + 1] > 0)
                finite = finite & (re[k + 1, k + 1].abs() < inf)
            outs.append(bad)
            odd = ~finite if odd is None else odd | ~finite
        outs.append(odd)
        return torch.stack(outs, dim=1)

    return factorise


def _compile(n_qubits: int) -> Callable[..., Any]:
    import torch

    from qeframe.quantum.cuts import packed_pt_plan

    src, _ = packed_pt_plan(n_qubits)
    sources = tuple(tuple(int(v) for v in src[:, c]) for c in range(src.shape[1]))
    fn = _unrolled_factorisation(sources, 2**n_qubits)
    compiled = torch.compile(
        fn,
        dynamic=True,
        fullgraph=True,
        # one thread per call (npt_mask's worker threads are the parallelism); a C++ wrapper
        # that releases the GIL while the kernel runs
        options={"cpp_wrapper": True, "cpp.threads": 1},
    )
    d = 2**n_qubits
    probe = np.zeros((MIN_CHUNK_STATES, 2 * d * d))
    probe[:, 0] = 1.0
    compiled(torch.from_numpy(probe), torch.zeros(1, dtype=torch.float64))  # compile now
    return compiled


def kernel(n_qubits: int) -> Callable[..., Any] | None:
    """The compiled kernel for ``n_qubits`` (compiled on first use; thread-safe), or None when it
    cannot be built here (no torch, no C++ compiler, ``n_qubits > MAX_QUBITS``); the reason of a
    failure is warned once and kept in :func:`failure`."""
    if n_qubits > MAX_QUBITS or n_qubits < 1:
        return None
    fn = _kernels.get(n_qubits)
    if fn is not None or n_qubits in _failed:
        return fn
    with _lock:
        if n_qubits not in _kernels and n_qubits not in _failed:
            try:
                _kernels[n_qubits] = _compile(n_qubits)
            except Exception as exc:  # noqa: BLE001 - any compile failure means: use numpy
                _failed[n_qubits] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                warnings.warn(
                    f"compiled NPT test unavailable ({_failed[n_qubits]}); using the numpy path",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _kernels.get(n_qubits)


def is_compiled(n_qubits: int) -> bool:
    """True once the kernel for ``n_qubits`` is compiled in this process."""
    return n_qubits in _kernels


def failure(n_qubits: int) -> str | None:
    """Why the kernel for ``n_qubits`` could not be compiled in this process (None: no failure)."""
    return _failed.get(n_qubits)


@cache
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def not_positive_definite(kernel_fn: Callable[..., Any], block: np.ndarray, shift: float) -> np.ndarray:
    """Run the compiled kernel on ``block`` ``(b, d, d)`` complex128 (C-contiguous):
    ``(b, n_cuts + 1)`` bool (last column: a pivot was not finite, see
    :func:`_unrolled_factorisation`)."""
    import torch

    b = block.shape[0]
    x = torch.from_numpy(block.reshape(b, -1).view(np.float64))
    return kernel_fn(x, torch.tensor([shift], dtype=torch.float64)).numpy()
