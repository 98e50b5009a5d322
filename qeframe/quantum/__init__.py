"""Batched n-qubit numerics (numpy and torch). Big-endian qubit order throughout.

* :mod:`.cuts` — the ordered bipartitions and the cut re-indexing induced by qubit permutations.
* :mod:`.ops` — partial transpose, partial trace, qubit permutation, batched Kronecker products.
* :mod:`.random` — Haar-random unitaries and states, local randomisation of state batches.
* :mod:`.ppt` — per-cut smallest partial-transpose eigenvalue, negativity and a fast NPT test.
* :mod:`.validation` — checks that an array is a batch of density matrices.
* :mod:`.torch_ops` — the same operations on torch tensors (any device), for training.
* :mod:`.qiskit_interop` — the one place that converts to and from qiskit's little-endian objects.
"""

from qeframe.quantum.cuts import Cut, bipartitions, cut_index_map, cut_names, n_cuts
from qeframe.quantum.ops import (
    batch_kron,
    partial_trace,
    partial_transpose,
    permute_qubits,
    pure_density,
)
from qeframe.quantum.ppt import PPT_TOL, negativities, npt_mask, pt_min_eigenvalues
from qeframe.quantum.validation import DEFAULT_ATOL, validate_density_matrices

__all__ = [
    "DEFAULT_ATOL",
    "PPT_TOL",
    "Cut",
    "batch_kron",
    "bipartitions",
    "cut_index_map",
    "cut_names",
    "n_cuts",
    "negativities",
    "npt_mask",
    "partial_trace",
    "partial_transpose",
    "permute_qubits",
    "pt_min_eigenvalues",
    "pure_density",
    "validate_density_matrices",
]
