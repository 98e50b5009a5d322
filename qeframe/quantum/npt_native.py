"""The float64 NPT sign test of :func:`~qeframe.quantum.ppt.npt_mask` as a small C loop (ctypes).

:func:`~qeframe.quantum.ppt.npt_mask` decides ``lambda_min(rho^{T_A}) < -tol`` for every cut by an
unpivoted ``L D L^†`` (Cholesky) factorisation of ``rho^{T_A} + tol I``. In numpy that is a pass
over a batch-last array per elimination step (about ``d**2`` calls per chunk, each streaming the
chunk through the cache), which bounds it by memory traffic and per-call overhead; the other two
paths work around it (:mod:`~qeframe.quantum.npt_screen`: half the bytes in float32;
:mod:`~qeframe.quantum.npt_compiled`: a fused kernel, but ``torch.compile`` costs about 10 s per
process). Here the same algorithm is one C function: for eight states at a time and each cut, the
packed lower triangles of the partial transposes are gathered from ``rho`` (the plan of
:func:`~qeframe.quantum.cuts.packed_pt_plan`) into a buffer that stays in L1 and factorised there
side by side (the innermost loops run over the eight states: SIMD and instruction-level
parallelism, no memory traffic between steps), stopping once all eight have met a failing pivot.
It is compiled once per machine with the system C compiler (``$CC``, else ``cc``; 1-3 s, measured in
``benchmarks/bench_ppt.py``) into a cache directory and loaded with :mod:`ctypes`, which releases
the GIL for the call, so :func:`~qeframe.quantum.ppt.npt_mask`'s worker threads run it on all
cores.

Numerics: float64, the numpy path's algorithm step for step (shift the diagonal, then for
``k = 0..d-1``: fail on ``not p > 0`` with ``p = Re A[k, k]``, ``s_i = A[i, k] * (1/p)``,
``A[i, j] -= s_i conj(A[j, k])`` for ``i >= j > k``, in real arithmetic: ``Re -= Re s Re c + Im s
Im c``, ``Im -= Im s Re c - Re s Im c`` with ``c = A[j, k]``). The verdict of a matrix is read from
its pivots (the diagonal, which no later step overwrites) as in
:func:`~qeframe.quantum.npt_screen.eliminate`: its first pivot outside ``(0, inf)`` decides; a
finite one (``<= 0``) means not positive definite, a NaN or infinite one is flagged. It is compiled without
fast-math and with ``-ffp-contract=off``, so every operation is one IEEE float64 operation; numpy's
complex multiply may fuse multiply-adds, so the two round differently in the last bits. Both are a
backward-stable Cholesky factorisation (Higham, *Accuracy and Stability of Numerical Algorithms*,
2nd ed., SIAM 2002, Thm. 10.3 and 10.5; the bound holds for any evaluation order, with or without
fused multiply-adds): each answers ``lambda_min(rho^{T_A}) < -tol`` exactly unless
``|lambda_min + tol|`` is within :func:`~qeframe.quantum.ppt.npt_rounding_bound` (about ``1e-15``
for trace 1, ``d = 8``), where they may disagree. A matrix whose factorisation meets a pivot that
is NaN or infinite (a non-finite entry, an overflow) is flagged, and
:func:`~qeframe.quantum.ppt.npt_mask` decides its state with the numpy path instead, so those
answers are the numpy path's by construction.

Build: ``$CC -O3 -std=c99 -ffp-contract=off -fno-fast-math -fPIC -shared`` (:data:`CFLAGS`); no
``-march=native`` (the cached library may be loaded on another machine sharing the directory):
on x86-64 Linux the entry point is compiled for AVX-512, AVX2 and the baseline and the loader
picks the best the CPU has (GCC/Clang ``target_clones``; rebuilt without where the compiler
rejects it). The library is written to ``$QEFRAME_NATIVE_CACHE``, else ``$XDG_CACHE_HOME/qeframe``,
else ``~/.cache/qeframe`` (where that is not writable: a private directory in the temporary
directory), under a name that hashes the source, the flags, the compiler and the platform, through
a temporary file and an atomic rename (concurrent processes may build it at the same time; the
last rename wins, all copies are equal). Without a compiler or on any build or load error,
:func:`library` returns None, :func:`failure` says why, and
:func:`~qeframe.quantum.ppt.npt_backend` uses the mixed-precision numpy test instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from qeframe.quantum.cuts import packed_pt_plan

#: Environment variable naming the directory of the compiled library (default: the user cache).
CACHE_ENV = "QEFRAME_NATIVE_CACHE"
#: Compiler flags; part of the library's cache key.
CFLAGS = ("-O3", "-std=c99", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared")
#: Seconds a compile may take before the build is given up.
COMPILE_TIMEOUT_S = 120
#: States per call of the kernel in :func:`~qeframe.quantum.ppt.npt_mask` (a call costs a few
#: microseconds besides its states; more calls than workers balance the threads).
CHUNK_STATES = 8192

SOURCE = r"""
#include <stdint.h>

#define L 8  /* states factorised side by side (the innermost loops run over them: SIMD, ILP) */

/* One cut of L states: gather the packed lower triangles of rho^{T_A} (src: the flat entry index,
   0 .. d*d-1, of packed entry p; column j holds rows j..d-1, diagonal first), add shift to the
   diagonals, factorise them in place; every state runs every step (a failed state computes values
   that are never read). Inlined with a constant d for d = 2, 4, 8. */
static inline __attribute__((always_inline)) void
factor(const double *const *x, const int32_t *idx, const int32_t d, double shift, double *restrict re,
       double *restrict im, double *restrict sr, double *restrict si)
{
    const int32_t P = d * (d + 1) / 2;
    for (int l = 0; l < L; ++l) {
        const double *xl = x[l];
        for (int32_t p = 0; p < P; ++p) {
            re[p * L + l] = xl[2 * idx[p]];
            im[p * L + l] = xl[2 * idx[p] + 1];
        }
    }
    for (int32_t k = 0, o = 0; k < d; o += d - k, ++k)
        for (int l = 0; l < L; ++l) re[o * L + l] += shift;
    int alive[L];
    for (int l = 0; l < L; ++l) alive[l] = 1;
    for (int32_t k = 0, ok = 0; k < d - 1; ok += d - k, ++k) {
        double inv[L];
        int any = 0;
        for (int l = 0; l < L; ++l) {
            const double p = re[ok * L + l];
            alive[l] &= p > 0.0 && p - p == 0.0;
            any |= alive[l];
            inv[l] = 1.0 / p;
        }
        if (!any) return;  /* every state met its first pivot outside (0, inf): classify reads no further */
        const double *cre = re + (ok - k) * L, *cim = im + (ok - k) * L;   /* entry (i, k) at [i L] */
        for (int32_t i = k + 1; i < d; ++i)
            for (int l = 0; l < L; ++l) {
                sr[i * L + l] = cre[i * L + l] * inv[l];
                si[i * L + l] = cim[i * L + l] * inv[l];
            }
        for (int32_t j = k + 1, oj = ok + d - k; j < d; oj += d - j, ++j) {
            double *are = re + (oj - j) * L, *aim = im + (oj - j) * L;     /* entry (i, j) at [i L] */
            double cr[L], ci[L];
            for (int l = 0; l < L; ++l) { cr[l] = cre[j * L + l]; ci[l] = cim[j * L + l]; }
            for (int32_t i = j; i < d; ++i)
                for (int l = 0; l < L; ++l) {
                    are[i * L + l] -= sr[i * L + l] * cr[l] + si[i * L + l] * ci[l];
                    aim[i * L + l] -= si[i * L + l] * cr[l] - sr[i * L + l] * ci[l];
                }
        }
    }
}

/* Per state of the block: 1 not positive definite (its first pivot outside (0, inf) is <= 0),
   2 undecided (that pivot is NaN or infinite), 0 positive definite. The pivots are the diagonal
   entries, which no later step overwrites. */
static inline __attribute__((always_inline)) void
classify(const double *re, const int32_t d, int *verdict)
{
    for (int l = 0; l < L; ++l) {
        verdict[l] = 0;
        for (int32_t k = 0, ok = 0; k < d; ok += d - k, ++k) {
            const double p = re[ok * L + l];
            if (p > 0.0 && p - p == 0.0) continue;
            verdict[l] = (p - p == 0.0) ? 1 : 2;
            break;
        }
    }
}

#define QEFRAME_LOOP(D)                                                                       \
    for (int64_t s0 = 0; s0 < n_states; s0 += L) {                                            \
        const double *x[L];                                                                   \
        for (int l = 0; l < L; ++l) {                                                         \
            const int64_t s = s0 + l < n_states ? s0 + l : n_states - 1;                      \
            x[l] = rho + s * 2 * (int64_t)(D) * (D);                                          \
        }                                                                                     \
        int odd[L] = {0};                                                                     \
        for (int32_t c = 0; c < n_cuts; ++c) {                                                \
            int verdict[L];                                                                   \
            factor(x, src + (int64_t)c * ((D) * ((D) + 1) / 2), (D), shift, re, im, sr, si);  \
            classify(re, (D), verdict);                                                       \
            for (int l = 0; l < L && s0 + l < n_states; ++l) {                                \
                out[(s0 + l) * (n_cuts + 1) + c] = (uint8_t)(verdict[l] == 1);                \
                odd[l] |= verdict[l] == 2;                                                    \
            }                                                                                 \
        }                                                                                     \
        for (int l = 0; l < L && s0 + l < n_states; ++l)                                      \
            out[(s0 + l) * (n_cuts + 1) + n_cuts] = (uint8_t)odd[l];                          \
    }

/* rho: n_states x (2 d d) doubles (complex128 entries, row-major per state, re/im interleaved);
   src: n_cuts x P int32 (P = d (d+1) / 2); out: n_states x (n_cuts + 1) uint8, per cut 1 where
   rho^{T_A} + shift I is not positive definite, last column 1 where some cut is undecided (a
   pivot NaN or infinite before any failure). work: (2 P + 2 d) L doubles. */
#ifdef QEFRAME_TARGET_CLONES
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void qeframe_npt_ldl(const double *rho, int64_t n_states, int32_t d, int32_t n_cuts,
                     const int32_t *src, double shift, uint8_t *out, double *work)
{
    const int32_t P = d * (d + 1) / 2;
    double *re = work, *im = re + P * L, *sr = im + P * L, *si = sr + d * L;
    switch (d) {
    case 2: QEFRAME_LOOP(2) break;
    case 4: QEFRAME_LOOP(4) break;
    case 8: QEFRAME_LOOP(8) break;
    default: QEFRAME_LOOP(d) break;
    }
}
"""

_lock = threading.Lock()
_LANES = 8  # L in SOURCE
_state: dict[str, object] = {}  # "lib": the loaded function; "failure": why it could not be built


def cache_dir() -> Path:
    """Directory of the compiled library (``$QEFRAME_NATIVE_CACHE``, else the user cache)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "qeframe"


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return cc if shutil.which(cc.split()[0]) else None


def _private_tmp_dir() -> Path:
    """A directory in the temporary directory that only this user can write (the fallback cache)."""
    path = Path(tempfile.gettempdir()) / f"qeframe-native-{os.getuid() if hasattr(os, 'getuid') else 0}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.stat()
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        raise RuntimeError(f"{path} is not a private directory of this user")
    return path


def library_path(compiler: str) -> Path:
    """Where the library built by ``compiler`` is cached: the name hashes everything it depends on."""
    key = "\n".join([SOURCE, " ".join(CFLAGS), compiler, platform.machine(), platform.system(), sys.platform])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    suffix = ".dll" if sys.platform == "win32" else ".so"
    return cache_dir() / f"npt_native-{digest}{suffix}"


def _build(compiler: str, target: Path) -> None:
    """Compile :data:`SOURCE` into ``target`` (through a temporary file and an atomic rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clones = platform.machine().lower() in ("x86_64", "amd64") and sys.platform.startswith("linux")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".npt_native-") as tmp:
        c_file = Path(tmp) / "npt_native.c"
        c_file.write_text(SOURCE)
        out = Path(tmp) / target.name
        error = ""
        for extra in (["-DQEFRAME_TARGET_CLONES"], []) if clones else ([],):
            cmd = [*compiler.split(), *CFLAGS, *extra, "-o", str(out), str(c_file)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)
            if proc.returncode == 0 and out.exists():
                os.replace(out, target)  # atomic: a concurrent build's identical copy may win
                return
            error = (proc.stderr or proc.stdout).strip()[:300]
        raise RuntimeError(f"{compiler} failed: {error}")


def _load() -> Any:
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError(f"no C compiler ({os.environ.get('CC') or 'cc'} not found)")
    target = library_path(compiler)
    if not target.exists():
        try:
            _build(compiler, target)
        except OSError:  # the cache directory is not writable: a private temporary one
            target = _private_tmp_dir() / target.name
            if not target.exists():
                _build(compiler, target)
    try:
        lib = ctypes.CDLL(str(target))
    except OSError:  # a damaged or foreign file under our name: build it again, once
        _build(compiler, target)
        lib = ctypes.CDLL(str(target))
    fn = lib.qeframe_npt_ldl
    fn.restype = None
    fn.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_void_p,
        ctypes.c_double,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    return fn


def library(warn: bool = False) -> Any | None:
    """The kernel (built and loaded on first use; thread-safe), or None where it cannot be built
    here; :func:`failure` keeps the reason, and ``warn`` warns it (once per process)."""
    if "lib" in _state:
        return _state["lib"]  # type: ignore[return-value]
    with _lock:
        if "lib" not in _state and "failure" not in _state:
            try:
                _state["lib"] = _load()
            except Exception as exc:  # noqa: BLE001 - any build or load failure means: use numpy
                _state["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if "failure" in _state and warn and not _state.get("warned"):
            _state["warned"] = True
            warnings.warn(
                f"native NPT test unavailable ({_state['failure']}); using the numpy path",
                RuntimeWarning,
                stacklevel=3,
            )
    return _state.get("lib")  # type: ignore[return-value]


def failure() -> str | None:
    """Why the kernel could not be built or loaded in this process (None: no failure, or not tried)."""
    return _state.get("failure")  # type: ignore[return-value]


def not_positive_definite(fn: Any, block: np.ndarray, shift: float) -> np.ndarray:
    """Run the kernel on ``block`` ``(b, d, d)`` complex128, C-contiguous (``d = 2**n``):
    ``(b, n_cuts + 1)`` bool, per cut (:func:`~qeframe.quantum.cuts.bipartitions` order) True where
    ``rho^{T_A} + shift I`` is not positive definite, last column True where a pivot was NaN or
    infinite (the caller decides those states with the numpy path)."""
    b, d = block.shape[0], block.shape[1]
    plan = _plan(d.bit_length() - 1)
    n_c = plan.shape[0]
    out = np.empty((b, n_c + 1), dtype=np.uint8)
    work = np.empty((d * (d + 1) + 2 * d) * _LANES)
    fn(block.ctypes.data, b, d, n_c, plan.ctypes.data, float(shift), out.ctypes.data, work.ctypes.data)
    return out.view(bool)


@cache
def _plan(n_qubits: int) -> np.ndarray:
    """The packed partial-transpose plan of :func:`~qeframe.quantum.cuts.packed_pt_plan` as the
    kernel reads it: ``(n_cuts, P)`` int32, C-contiguous."""
    src, _ = packed_pt_plan(n_qubits)
    return np.ascontiguousarray(src.T, dtype=np.int32)
