"""Random unitaries, states and local randomisation, drawn from an explicit ``numpy.random.Generator``."""

from __future__ import annotations

import numpy as np

from qeframe.quantum.cuts import cut_index_maps
from qeframe.quantum.ops import apply_local_unitaries, permute_qubits_batch


def haar_unitary(dim: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` Haar-random unitaries ``(size, dim, dim)`` complex128 (Mezzadri's QR recipe).

    QR of a complex Ginibre matrix, with the phases of R's diagonal moved into Q so that the
    distribution is exactly Haar.
    """
    z = (rng.standard_normal((size, dim, dim)) + 1j * rng.standard_normal((size, dim, dim))) / np.sqrt(2.0)
    q, r = np.linalg.qr(z)
    diag = np.diagonal(r, axis1=1, axis2=2)
    phases = diag / np.abs(diag)
    return q * phases[:, None, :]


#: Elements per pass of :func:`unit_complex`: its temporaries stay in the core's cache.
UNIT_COMPLEX_CHUNK = 4096


def unit_complex(x: np.ndarray) -> np.ndarray:
    """``e^{ix}`` for float32 angles ``x``: complex128 of the same shape.

    ``cos x`` and ``sin x`` are taken in float32 (numpy's vectorised kernels, error ~1 ulp, several
    times cheaper than float64 ``sin``/``cos``) and the pair is renormalised in float64, so
    ``|e^{ix}| = 1`` to float64 rounding and ``arg`` differs from ``x`` by less than ``4e-7``.
    Computed in chunks of :data:`UNIT_COMPLEX_CHUNK` elements (the result does not depend on it), so
    that the temporaries stay in the cache: on 400 000 angles 15 ns per angle against 46 ns for
    whole-array passes (load about 9). Dataset builds draw smaller batches and gain little
    (``docs/performance.md``, same-run reference).
    """
    x = np.asarray(x, dtype=np.float32)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.complex128)
    size = min(UNIT_COMPLEX_CHUNK, flat.size)
    c, s, inv = np.empty(size), np.empty(size), np.empty(size)
    for start in range(0, flat.size, UNIT_COMPLEX_CHUNK):
        xs = flat[start : start + UNIT_COMPLEX_CHUNK]
        m = xs.size
        cc, ss, ii = c[:m], s[:m], inv[:m]
        np.cos(xs, out=cc, dtype=np.float32)  # float32 kernel, widened on output
        np.sin(xs, out=ss, dtype=np.float32)
        np.multiply(cc, cc, out=ii)
        ii += ss * ss
        np.sqrt(ii, out=ii)
        np.divide(1.0, ii, out=ii)
        o = out[start : start + m]
        np.multiply(cc, ii, out=o.real)
        np.multiply(ss, ii, out=o.imag)
    return out.reshape(x.shape)


def random_phases(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``e^{iγ}`` with ``γ`` uniform in ``[0, 2π)``: complex128 ``shape`` (see :func:`unit_complex`).

    ``γ = 2π x`` with ``x`` uniform on the float32 grid of :meth:`numpy.random.Generator.random`
    (``2**-24``). The generator is advanced by ``2 * prod(shape)`` float32 draws and the second half
    is used: that is the stream the Haar states of store formats 1-4 were drawn with (the phases
    were the second parameter of a two-parameter gate draw), so the rows of the paper's families
    stay what they were. The first half costs one uniform draw per phase and no trigonometry.
    """
    x = rng.random((2, *shape), dtype=np.float32)[1]
    x *= np.float32(2.0 * np.pi)
    return unit_complex(x)


def haar_state(dim: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` Haar-random pure states ``(size, dim)`` complex128: the paper's Eq. A3 recipe.

    ``x_i`` uniform in ``(0, 1]``, ``y_i = -log x_i``, ``γ_i`` uniform in ``[0, 2π)``
    (:func:`random_phases`), ``ψ_i = sqrt(y_i / Σ_j y_j) e^{iγ_i}`` (arXiv 2210.07410, Appendix,
    Eq. A3; qiskit's ``random_statevector`` draws the same way).

    **Why this is the Haar measure.** The unitarily invariant (Fubini-Study) measure on pure states
    of ``C^d`` is the law of ``g / |g|`` for a standard complex Gaussian vector ``g``, because the
    Gaussian law is invariant under every unitary. Write ``g_i = r_i e^{iγ_i}``: the phases ``γ_i``
    are i.i.d. uniform and independent of the moduli, and ``r_i^2`` are i.i.d. exponential. So
    ``g / |g|`` has moduli ``sqrt(E_i / Σ_j E_j)`` with ``E_i`` i.i.d. exponential — uniform
    ``(|ψ_1|^2, ..., |ψ_d|^2)`` on the probability simplex — and independent uniform phases, which is
    exactly the recipe above with ``E_i = -log x_i`` (Życzkowski & Sommers, J. Phys. A 34, 7111
    (2001); Bengtsson & Życzkowski, *Geometry of Quantum States*, CUP (2017), Sec. 7.6). The only
    departure from the exact law is the float32 grid of the phases (``2π·2**-24``) and their
    renormalised float32 trigonometry (``|arg error| < 4e-7``); ``tests/quantum/test_random.py``
    checks the moments ``E|ψ_i|^4 = 2/(d(d+1))`` and uniform phases.

    **Why this recipe and not normalised Gaussians** (the other sampler the package had until store
    format 4): both are exactly Haar, but this is the paper's recipe, and keeping it keeps every
    stored row of the ``haar``, ``product``, ``reduced`` and ``embedded`` families (the paper's
    training and test sets) unchanged. Speed per state is the same within the noise
    (``benchmarks/bench_haar.py``, one run: 0.95-0.99 of the Gaussians' time for ``d = 4 ... 64``,
    1.4 for ``d = 2``; this draws ``d`` uniforms, ``d`` logarithms and ``d`` float32 phases, the
    Gaussians ``2d`` normal draws and a norm).
    """
    x = 1.0 - rng.random((size, dim))  # uniform in (0, 1]
    y = -np.log(x)
    return np.sqrt(y / y.sum(axis=1, keepdims=True)) * random_phases(rng, (size, dim))


def random_permutations(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` uniformly random permutations of ``0..n-1``: ``(size, n)`` int64."""
    return np.argsort(rng.random((size, n)), axis=1)


def random_local_filters(size: int, n: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """``size`` x ``n`` random invertible single-qubit filters ``(size, n, 2, 2)`` complex128.

    ``F = U diag(1, s) V`` with ``U, V`` Haar-random and ``s`` log-uniform in ``[1/kappa, 1]``, so
    every filter has spectral norm 1 and condition number ``<= kappa`` (``kappa = 1``: unitaries).
    Used as SLOCC operations ``rho -> F rho F^† / tr(.)`` with ``F = F_1 ⊗ ... ⊗ F_n``
    (see :func:`apply_local_filters`).
    """
    if kappa < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    u = haar_unitary(2, size * n, rng)
    v = haar_unitary(2, size * n, rng)
    s = np.exp(rng.uniform(-np.log(kappa), 0.0, size * n))
    f = (u * np.stack([np.ones_like(s), s], axis=-1)[:, None, :]) @ v
    return f.reshape(size, n, 2, 2)


def apply_local_filters(rho: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """``F rho F^† / tr(F rho F^†)`` with ``F = filters[:, 0] ⊗ ... ⊗ filters[:, n-1]``, per sample.

    ``rho`` ``(N, 2**n, 2**n)``, ``filters`` ``(N, n, 2, 2)`` invertible. For every cut ``A|B``,
    ``F = F_A ⊗ F_B`` is local, so the map preserves separability and entanglement across the cut
    (it and its inverse map product decompositions to product decompositions), and
    ``(F rho F^†)^{T_A} = (F_A^* ⊗ F_B) rho^{T_A} (F_A^* ⊗ F_B)^†`` is a congruence of ``rho^{T_A}``:
    by Sylvester's law of inertia the numbers of positive, zero and negative eigenvalues of every
    partial transpose — hence PPT/NPT and all ranks — are unchanged (Dür, Vidal, Cirac, PRA 62,
    062314 (2000) for SLOCC; Horn & Johnson, *Matrix Analysis*, Thm. 4.5.8). Hermitian, trace 1.
    """
    out = apply_local_unitaries(rho, filters)
    out = 0.5 * (out + out.conj().transpose(0, 2, 1))
    tr = np.einsum("nii->n", out).real
    return out / tr[:, None, None]


def locally_randomize(
    rho: np.ndarray, ground_truth: np.ndarray, provenance: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random local unitaries on every qubit, then a random qubit permutation, per sample.

    ``rho`` ``(N, 2**n, 2**n)`` complex128 (big-endian qubit order); ``ground_truth`` and
    ``provenance`` ``(N, n_cuts)`` int8 per cut in :func:`~qeframe.quantum.cuts.bipartitions` order.
    Entanglement across each cut is unchanged by the local unitaries; the permutation moves cut
    ``j`` to cut ``m[j]`` (:func:`~qeframe.quantum.cuts.cut_index_map`), so the per-cut ground truth
    and provenance are re-indexed the same way. Returns new ``(rho, ground_truth, provenance)``.
    (:meth:`qeframe.plugin.interfaces.StateFamily.generate` applies it to a ``StateBatch``.)
    """
    n_batch = rho.shape[0]
    n = int(rho.shape[-1]).bit_length() - 1
    us = haar_unitary(2, n_batch * n, rng).reshape(n_batch, n, 2, 2)
    rho = apply_local_unitaries(rho, us)
    perms = random_permutations(n_batch, n, rng)
    rho = permute_qubits_batch(rho, perms)
    maps = cut_index_maps(perms)  # (N, n_cuts)
    rows = np.arange(n_batch)[:, None]
    truth = np.empty_like(ground_truth)
    prov = np.empty_like(provenance)
    truth[rows, maps] = ground_truth
    prov[rows, maps] = provenance
    return rho, truth, prov
