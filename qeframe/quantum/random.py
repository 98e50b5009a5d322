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


def haar_state(dim: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` Haar-random pure states ``(size, dim)`` complex128 (normalised complex Gaussians)."""
    z = rng.standard_normal((size, dim)) + 1j * rng.standard_normal((size, dim))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


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
