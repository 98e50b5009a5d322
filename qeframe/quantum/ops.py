"""Batched numpy operations on density matrices of n qubits (big-endian; qubit 0 leftmost).

Every function takes a batch ``(N, 2**n, 2**n)`` (a single ``(2**n, 2**n)`` matrix is also
accepted and returned unbatched) and works with reshapes, transposes and einsum — never a Python
loop over matrices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def num_qubits(dim: int) -> int:
    """``n`` such that ``2**n == dim``; raises ``ValueError`` otherwise."""
    n = int(dim).bit_length() - 1
    if dim < 2 or 2**n != dim:
        raise ValueError(f"dimension {dim} is not a power of two >= 2")
    return n


def _batched(rho: np.ndarray) -> tuple[np.ndarray, bool]:
    rho = np.asarray(rho)
    if rho.ndim == 2:
        return rho[None], True
    if rho.ndim != 3 or rho.shape[1] != rho.shape[2]:
        raise ValueError(f"expected (N, d, d) or (d, d), got shape {rho.shape}")
    return rho, False


def _unbatch(x: np.ndarray, single: bool) -> np.ndarray:
    return x[0] if single else x


def partial_transpose(rho: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """Partial transpose on the given 0-based ``qubits``: ``(N, d, d)`` -> ``(N, d, d)``.

    ``<i_q j_q| rho^{T_q} |k_q l_q> = <k_q j_q| rho |i_q l_q>`` for each q in ``qubits``.
    """
    rho, single = _batched(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    axes = list(range(1 + 2 * n))
    for q in qubits:
        if not 0 <= q < n:
            raise ValueError(f"qubit {q} out of range for {n} qubits")
        axes[1 + q], axes[1 + n + q] = axes[1 + n + q], axes[1 + q]
    out = t.transpose(axes).reshape(n_batch, d, d)
    return _unbatch(out, single)


def permute_qubits(rho: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """Reorder qubits: new qubit ``k`` is old qubit ``perm[k]`` (like ``numpy.transpose`` axes).

    ``rho`` ``(N, d, d)`` -> ``(N, d, d)``; for a product state ``a⊗b⊗c`` and ``perm=(2, 0, 1)``
    the result is ``c⊗a⊗b``.
    """
    rho, single = _batched(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(n)):
        raise ValueError(f"not a permutation of 0..{n - 1}: {perm}")
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    axes = [0] + [1 + p for p in perm] + [1 + n + p for p in perm]
    return _unbatch(t.transpose(axes).reshape(n_batch, d, d), single)


def basis_permutation(perms: np.ndarray) -> np.ndarray:
    """Basis-index maps of qubit permutations: ``(B, n)`` -> ``(B, 2**n)`` int64.

    For ``P = basis_permutation(perms)``, ``rho_new[b, i, j] == rho_old[b, P[b, i], P[b, j]]``
    reproduces :func:`permute_qubits` with a different permutation for every sample.
    """
    perms = np.asarray(perms, dtype=np.int64)
    n = perms.shape[-1]
    d = 2**n
    bits = (np.arange(d)[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1  # (d, n): bit of qubit k
    weights = 2 ** (n - 1 - perms)  # new qubit k carries old qubit perms[k]
    return bits[None, :, :] @ weights[:, :, None]  # (B, d, 1)


def permute_qubits_batch(rho: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """:func:`permute_qubits` with one permutation per sample: ``perms`` ``(N, n)``."""
    rho = np.asarray(rho)
    index = basis_permutation(perms)[..., 0]  # (N, d)
    rows = np.take_along_axis(rho, index[:, :, None], axis=1)
    return np.take_along_axis(rows, index[:, None, :], axis=2)


def partial_trace(rho: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    """Trace out every qubit not in ``keep`` (0-based); the kept qubits stay in ascending order.

    ``(N, 2**n, 2**n)`` -> ``(N, 2**k, 2**k)`` with ``k = len(keep)``.
    """
    rho, single = _batched(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    keep = sorted(int(q) for q in keep)
    if any(not 0 <= q < n for q in keep) or len(set(keep)) != len(keep):
        raise ValueError(f"invalid qubits to keep {keep} for {n} qubits")
    traced = [q for q in range(n) if q not in keep]
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    # move kept row axes, kept column axes, then traced row/column axes to the end
    order = [0] + [1 + q for q in keep] + [1 + n + q for q in keep]
    order += [1 + q for q in traced] + [1 + n + q for q in traced]
    m = 2 ** len(traced)
    k = 2 ** len(keep)
    t = t.transpose(order).reshape(n_batch, k, k, m, m)
    out = np.trace(t, axis1=3, axis2=4)
    return _unbatch(out, single)


def batch_kron(*factors: np.ndarray) -> np.ndarray:
    """Kronecker product per sample: ``(N, a, a) ⊗ (N, b, b) ⊗ ... -> (N, a*b*..., a*b*...)``.

    Also works for state vectors ``(N, a) ⊗ (N, b) -> (N, a*b)``. The first factor is leftmost
    (holds qubit 1).
    """
    out = np.asarray(factors[0])
    for f in factors[1:]:
        f = np.asarray(f)
        n_batch = out.shape[0]
        if out.ndim == 2:
            out = (out[:, :, None] * f[:, None, :]).reshape(n_batch, -1)
        else:
            a, b = out.shape[1], f.shape[1]
            out = (out[:, :, None, :, None] * f[:, None, :, None, :]).reshape(n_batch, a * b, a * b)
    return out


def pure_density(psi: np.ndarray) -> np.ndarray:
    """``|psi><psi|`` per sample: ``(N, d)`` -> ``(N, d, d)``."""
    psi = np.asarray(psi)
    return psi[:, :, None] * psi[:, None, :].conj()


#: A state counts as pure when ``tr(rho^2) > 1 - PURE_TOL``.
PURE_TOL = 1e-9


def purity(rho: np.ndarray) -> np.ndarray:
    """``tr(rho^2)`` per sample: ``(N, d, d)`` -> ``(N,)`` float64 (1 for pure states)."""
    rho = np.asarray(rho)
    return np.einsum("nij,nji->n", rho, rho).real


def apply_local_unitaries(rho: np.ndarray, unitaries: np.ndarray) -> np.ndarray:
    """``(U_1 ⊗ ... ⊗ U_n) rho (U_1 ⊗ ... ⊗ U_n)^†`` per sample.

    ``rho`` ``(N, 2**n, 2**n)``, ``unitaries`` ``(N, n, 2, 2)`` (``unitaries[:, k]`` acts on qubit k).
    Applied one qubit at a time by tensor contraction, never forming the ``2**n`` matrix.
    """
    rho = np.asarray(rho)
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    for q in range(n):
        u = unitaries[:, q]
        t = np.moveaxis(np.einsum("nab,nb...->na...", u, np.moveaxis(t, 1 + q, 1)), 1, 1 + q)
        t = np.moveaxis(np.einsum("nab,nb...->na...", u.conj(), np.moveaxis(t, 1 + n + q, 1)), 1, 1 + n + q)
    return np.ascontiguousarray(t.reshape(n_batch, d, d))


def apply_local_unitaries_state(psi: np.ndarray, unitaries: np.ndarray) -> np.ndarray:
    """``(U_1 ⊗ ... ⊗ U_n) |psi>`` per sample: ``psi`` ``(N, 2**n)``, ``unitaries`` ``(N, n, 2, 2)``."""
    psi = np.asarray(psi)
    n_batch, d = psi.shape
    n = num_qubits(d)
    t = psi.reshape((n_batch,) + (2,) * n)
    for q in range(n):
        t = np.moveaxis(np.einsum("nab,nb...->na...", unitaries[:, q], np.moveaxis(t, 1 + q, 1)), 1, 1 + q)
    return np.ascontiguousarray(t.reshape(n_batch, d))
