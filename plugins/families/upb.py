"""``upb`` family: the bound entangled three-qubit state of the "Shifts" unextendible product basis.

Definition (three qubits, big-endian, ``|+-> = (|0> +- |1>)/sqrt(2)``). The four product vectors::

    |u_1> = |0, 1, +>,   |u_2> = |1, +, 0>,   |u_3> = |+, 0, 1>,   |u_4> = |-, -, ->

are orthonormal and form an unextendible product basis (UPB): no product vector is orthogonal
to all four (Bennett et al. [1], the "Shifts" UPB). The state is the normalised projector onto
their orthogonal complement::

    rho = (I_8 - sum_k |u_k><u_k|) / 4,        rank 4.

Facts, all exact:

* **PPT on every cut.** The partial transpose on any qubit maps each ``|u_k><u_k|`` to
  ``|u_k'><u_k'|`` with ``|u_k'>`` the vector with that qubit's factor complex conjugated; the
  factors are real, so ``rho^{T_A} = rho`` is a projector / 4 (eigenvalues 0 and 1/4).
* **Not fully separable.** A fully separable state has a product vector in its range; the range
  of ``rho`` is the complement of a UPB, which contains none [1].
* **Separable across every bipartition.** Across ``k|rest`` the state lives on C^2 x C^4, is PPT
  and has rank 4 = N while its reduced state on the C^4 side has full rank; a PPT state of
  C^2 x C^N with rank N is separable (Kraus, Cirac, Karnas, Lewenstein [2]). (Equivalently: no
  UPB exists in C^2 x C^N [1], so the Shifts set is extendible across each cut.)

Ground truth: separable (0) on every cut, provenance ``analytic``; ``fully_separable = 0``,
``pptes = True`` (entangled only in the multipartite sense; the paper's convention calls every
cut of it entangled). The family is one state; the paper's "UPB PPTES" test set randomises it
with local unitaries and qubit permutations (``local_randomize = true``), which is then the
only randomness. The authors' generator (``_generate_single_Bennet_bound_entangled_state`` in
``commons/data/pptes_generator.py`` of github.com/Maticraft/quantum_correlations) writes four
orthonormal product vectors in qiskit's little-endian order; its state is
``(XH)^{⊗3} rho (XH)^{†⊗3}``, the same state in another local frame (``tests/plugins/test_upb_authors.py``).

References:
    [1] C. H. Bennett, D. P. DiVincenzo, T. Mor, P. W. Shor, J. A. Smolin, B. M. Terhal,
        "Unextendible product bases and bound entanglement", Phys. Rev. Lett. 82, 5385 (1999).
    [2] B. Kraus, J. I. Cirac, S. Karnas, M. Lewenstein, "Separability in 2xN composite quantum
        systems", Phys. Rev. A 61, 062302 (2000).

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.upb import UPBFamily, upb_state
    >>> int(np.linalg.matrix_rank(upb_state()))
    4
    >>> UPBFamily().generate(3, np.random.default_rng(0)).ground_truth.tolist()
    [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
"""

from __future__ import annotations

import numpy as np

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import SEPARABLE

_ZERO = np.array([1.0, 0.0])
_ONE = np.array([0.0, 1.0])
_PLUS = np.array([1.0, 1.0]) / np.sqrt(2.0)
_MINUS = np.array([1.0, -1.0]) / np.sqrt(2.0)

#: The single-qubit factors of the Shifts UPB, one row per product vector, qubit 1 first.
SHIFTS_FACTORS: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] = (
    (_ZERO, _ONE, _PLUS),
    (_ONE, _PLUS, _ZERO),
    (_PLUS, _ZERO, _ONE),
    (_MINUS, _MINUS, _MINUS),
)


def shifts_upb_vectors() -> np.ndarray:
    """The four Shifts UPB vectors ``|u_k>`` as rows: ``(4, 8)`` ``float64``, big-endian."""
    return np.stack([np.kron(np.kron(a, b), c) for a, b, c in SHIFTS_FACTORS])


def upb_state() -> np.ndarray:
    """``(I - sum_k |u_k><u_k|) / 4``: ``(8, 8)`` ``complex128``, trace 1, rank 4."""
    u = shifts_upb_vectors()
    return ((np.eye(8) - u.T @ u) / 4.0).astype(np.complex128)


class UPBFamily(StateFamily):
    """The Shifts-UPB bound entangled state: PPT and separable on every cut, not fully separable."""

    name = "upb"
    description = (
        "Shifts-UPB bound entangled 3-qubit state (Bennett et al. 1999): "
        "separable on every cut, not fully separable"
    )
    Params = FamilyParams

    #: Three qubits only.
    qubit_range = (3, 3)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        """``count`` copies of the state (``rng`` is not used; randomness comes from ``local_randomize``)."""
        rho = np.broadcast_to(upb_state(), (count, 8, 8))
        return StateBatch.build(rho, SEPARABLE, "analytic", pure=False, fully_separable=0, pptes=True)


@hookimpl
def qeframe_register_families(register):
    """Register :class:`UPBFamily`."""
    register(UPBFamily)
