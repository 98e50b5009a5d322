"""Shared pieces of the certified PPT families: local filters, product vectors, Horodecki witnesses.

* :class:`FilterParams` — the ``kappa`` parameter of the SLOCC-filtered families and
  :func:`filter_batch`, which applies random invertible local filters
  (:func:`qeframe.quantum.random.apply_local_filters`: per-cut separability, entanglement, PPT/NPT
  and ranks are invariant; the docstring there has the proof).
* :func:`product_vectors` — Haar-random fully product pure states ``(count, 2**n)``.
* :func:`horodecki_witness` — the verified LKCH witness of P. Horodecki's ``2 x 2**(n-1)`` edge
  state ``rho_b`` for its PPT cut ``1|2..n`` (cached per ``(b, n, resolution)``).

Big-endian qubit order; batches ``(N, 2**n, 2**n)`` complex128.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from pydantic import Field

from qeframe.plugin.interfaces import FamilyParams, StateBatch
from qeframe.quantum.random import apply_local_filters, haar_state, random_local_filters
from qeframe.quantum.witness import DEFAULT_RESOLUTION, Witness, lkch_witness

from ._common import kron_states
from .horodecki import horodecki_states


class FilterParams(FamilyParams):
    """``kappa``: condition-number bound of the random local filters (1 = local unitaries only)."""

    kappa: float = Field(
        default=4.0, ge=1.0, le=1e3, description="Max condition number of each random single-qubit filter."
    )


def filter_batch(batch: StateBatch, kappa: float, rng: np.random.Generator) -> StateBatch:
    """``batch`` with every state replaced by ``F rho F^† / tr`` for random local ``F`` (truth unchanged)."""
    if len(batch) == 0:
        return batch
    filters = random_local_filters(len(batch), batch.n_qubits, kappa, rng)
    return StateBatch(
        rho=apply_local_filters(batch.rho, filters),
        ground_truth=batch.ground_truth,
        ground_truth_provenance=batch.ground_truth_provenance,
        meta=batch.meta,
    )


def product_vectors(count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` Haar-random product vectors ``|a_1> ⊗ ... ⊗ |a_n>``: ``(count, 2**n)`` complex128."""
    psi = haar_state(2, count, rng)
    for _ in range(n - 1):
        psi = kron_states(psi, haar_state(2, count, rng))
    return psi


@cache
def horodecki_witness(b: float, n_qubits: int = 3, resolution: int = DEFAULT_RESOLUTION) -> Witness:
    """The LKCH witness of ``rho_b`` (:mod:`.horodecki`) for the cut ``1|2..n``, verified block-positive.

    ``tr(W rho_b) = -eps < 0`` (``eps`` ~ 1e-3 .. 1e-2 for ``b`` in ``[0.1, 0.9]``, n = 3).
    """
    wit = lkch_witness(horodecki_states([b], n_qubits)[0], resolution=resolution)
    return Witness(matrix=wit.matrix, certificate=wit.certificate, name=f"lkch-horodecki-b{b:g}-n{n_qubits}")
