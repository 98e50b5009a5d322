"""The authors' UPB test state is a valid one, and it is our ``upb`` state up to local unitaries.

The paper's "UPB PPTES" test set (Pawłowski & Krawczyk, arXiv 2210.07410, section "Training data
generation", last paragraph) comes from ``PPTESGenerator._generate_single_Bennet_bound_entangled_state``
in ``commons/data/pptes_generator.py`` of github.com/Maticraft/quantum_correlations: the four
vectors below, ``rho = I - sum_i |v_i><v_i|`` as a qiskit ``DensityMatrix``, then random local
unitaries and a division by the trace (``generate_3qbits_pptes`` with ``randomization=True``).
The vectors are data here, copied as numbers, in qiskit's little-endian order (qiskit qubit 0 is
the rightmost Kronecker factor); :func:`~qeframe.quantum.qiskit_interop.from_qiskit` turns the
state into our big-endian order.

What is checked, by one function (:func:`check_authors_upb`) so that the negative tests exercise
exactly the checks the positive one passes:

* the four vectors are orthonormal product vectors (Schmidt rank 1 across every cut);
* the state is a valid density matrix (:func:`~qeframe.quantum.validation.validate_density_matrices`);
* PPT on every cut (:func:`~qeframe.quantum.ppt.npt_mask` and the partial-transpose spectrum);
* rank 4 (eigenvalues 0 x4 and 1/4 x4);
* it equals ``U upb_state() U^dagger`` with ``U = (XH) ⊗ (XH) ⊗ (XH)``: the Shifts state of
  Bennett, DiVincenzo, Mor, Shor, Smolin & Terhal, Phys. Rev. Lett. 82, 5385 (1999) up to a
  fixed local unitary, so the two locally randomised test sets have the same distribution.

A state built from a non-orthonormal set (the premise of an earlier, wrong claim in our docs:
"the vectors are not orthogonal, the matrix has a negative eigenvalue and is NPT on every cut"),
an unnormalised one, or one read in the wrong qubit order must fail the check.
"""

from __future__ import annotations

import numpy as np
import pytest
from qeframe_plugins.families.upb import upb_state
from qiskit.quantum_info import DensityMatrix

from qeframe.errors import InvalidDensityMatrixError
from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import permute_qubits
from qeframe.quantum.ppt import npt_mask, pt_eigenvalues
from qeframe.quantum.qiskit_interop import from_qiskit, reverse_qubit_order
from qeframe.quantum.validation import validate_density_matrices

#: ``v1..v4`` of ``_generate_single_Bennet_bound_entangled_state`` (authors' repository,
#: commons/data/pptes_generator.py), qiskit little-endian basis order, as written there.
AUTHORS_BENNET_VECTORS = np.array(
    [
        [1, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, -0.5, -0.5, 0.5, 0.5],
        [0, 0, -0.5, 0.5, 0, 0, -0.5, 0.5],
        [0, -0.5, 0, -0.5, 0, 0.5, 0, 0.5],
    ]
)

_X = np.array([[0.0, 1.0], [1.0, 0.0]])
_H = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)
#: the fixed local unitary that maps our Shifts state onto the authors' state: (XH)^{⊗3}
XH3 = np.kron(np.kron(_X @ _H, _X @ _H), _X @ _H)

TOL = 1e-12


def authors_state(vectors: np.ndarray, normalise: bool = True) -> np.ndarray:
    """``I - sum_i |v_i><v_i|`` from little-endian ``vectors`` ``(4, 8)``, as the authors build it
    (a qiskit ``DensityMatrix``), divided by its trace as their generator does after the local
    unitaries (``normalise``), returned big-endian ``(8, 8)`` complex128."""
    v = np.asarray(vectors, dtype=np.complex128)
    rho = np.eye(8) - v.T @ v.conj()
    if normalise:
        rho = rho / np.trace(rho)
    return from_qiskit(DensityMatrix(rho))


def schmidt_rank(psi: np.ndarray, side_a: tuple[int, ...]) -> int:
    """Schmidt rank of a 3-qubit big-endian vector ``(8,)`` across ``side_a | rest`` (0-based qubits)."""
    rest = tuple(q for q in range(3) if q not in side_a)
    t = psi.reshape(2, 2, 2).transpose(side_a + rest).reshape(2 ** len(side_a), -1)
    return int((np.linalg.svd(t, compute_uv=False) > 1e-12).sum())


def check_authors_upb(vectors: np.ndarray, rho: np.ndarray) -> None:
    """Every claim of the module docstring for ``vectors`` (little-endian rows) and ``rho`` (ours,
    big-endian); raises ``AssertionError`` (or the validation error, re-raised as one) on the first
    that fails."""
    big = reverse_qubit_order(np.asarray(vectors, dtype=np.complex128), matrix=False)
    gram = big.conj() @ big.T
    assert np.abs(gram - np.eye(4)).max() < TOL, f"vectors not orthonormal: Gram matrix\n{gram.round(3)}"
    for v in big:
        for cut in bipartitions(3):
            assert schmidt_rank(v, cut.side_a) == 1, f"{v.real.round(3)} is not a product vector"
    try:
        validate_density_matrices(rho, n_qubits=3, atol=TOL)
    except InvalidDensityMatrixError as exc:
        raise AssertionError(f"not a valid density matrix: {exc}") from None
    assert not npt_mask(rho[None], tol=TOL).any(), "NPT on some cut"
    assert pt_eigenvalues(rho[None]).min() > -TOL
    w = np.linalg.eigvalsh(rho)
    assert int((w > TOL).sum()) == 4, f"rank {(w > TOL).sum()}, expected 4"
    np.testing.assert_allclose(w, [0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25], atol=TOL)
    assert np.abs(XH3 @ upb_state() @ XH3.conj().T - rho).max() < TOL, "not (XH)^3 of the Shifts state"


def test_authors_upb_state_is_valid_ppt_rank4_and_local_unitary_of_shifts():
    check_authors_upb(AUTHORS_BENNET_VECTORS, authors_state(AUTHORS_BENNET_VECTORS))


def test_authors_upb_state_unnormalised_is_a_projector():
    """Before the division by the trace: eigenvalues 0 (x4) and 1 (x4) -- no negative one."""
    rho = authors_state(AUTHORS_BENNET_VECTORS, normalise=False)
    np.testing.assert_allclose(np.linalg.eigvalsh(rho), [0, 0, 0, 0, 1, 1, 1, 1], atol=TOL)
    np.testing.assert_allclose(rho @ rho, rho, atol=TOL)


def test_locally_randomised_sets_have_the_same_orbit():
    """The paper randomises with local unitaries and qubit permutations; ``(XH)^{⊗3}`` commutes
    with qubit permutations, so a permuted authors' state is ``(XH)^{⊗3}`` of the permuted Shifts
    state: both test sets are samples of one orbit under local unitaries and permutations."""
    rho = authors_state(AUTHORS_BENNET_VECTORS)
    for perm in [(1, 2, 0), (2, 0, 1), (0, 2, 1)]:
        mine = XH3 @ permute_qubits(upb_state(), perm) @ XH3.conj().T
        np.testing.assert_allclose(permute_qubits(rho, perm), mine, atol=TOL)


def _overlapping() -> np.ndarray:
    """v4 replaced by ``-v3/2 + (sqrt(3)/2) v4``: a unit vector with overlap -1/2 with v3."""
    v = AUTHORS_BENNET_VECTORS.copy()
    v[3] = -0.5 * v[2] + np.sqrt(3.0) / 2.0 * v[3]
    return v


def _sign_flipped() -> np.ndarray:
    v = AUTHORS_BENNET_VECTORS.copy()
    v[2, 2] = 0.5  # [0, 0, .5, .5, 0, 0, -.5, .5]: still orthonormal, but no longer a product vector
    return v


def _perturbed() -> np.ndarray:
    v = AUTHORS_BENNET_VECTORS.copy()
    v[1] = (v[1] + 0.1 * v[0]) / np.linalg.norm(v[1] + 0.1 * v[0])
    return v


@pytest.mark.parametrize(
    ("vectors", "normalise", "big_endian"),
    [
        pytest.param(_overlapping(), True, False, id="non-orthogonal-vectors"),
        pytest.param(_sign_flipped(), True, False, id="one-sign-flipped"),
        pytest.param(_perturbed(), True, False, id="perturbed-vector"),
        pytest.param(AUTHORS_BENNET_VECTORS, False, False, id="not-divided-by-trace"),
        pytest.param(AUTHORS_BENNET_VECTORS, True, True, id="read-big-endian"),
    ],
)
def test_check_fails_on_broken_states(vectors, normalise, big_endian):
    if big_endian:  # the vectors taken as if they were in our order: a different state
        v = np.asarray(vectors, dtype=np.complex128)
        rho = (np.eye(8) - v.T @ v.conj()) / 4.0
    else:
        rho = authors_state(vectors, normalise=normalise)
    with pytest.raises(AssertionError):
        check_authors_upb(vectors if not big_endian else reverse_qubit_order(vectors, matrix=False), rho)


def test_non_orthogonal_set_gives_an_invalid_state():
    """The premise "non-orthogonal vectors, negative eigenvalue" describes a different matrix:
    with an overlap the operator I - sum |v><v| has a negative eigenvalue, and our validation
    rejects it (the authors' vectors give none, see above)."""
    rho = authors_state(_overlapping())
    assert np.linalg.eigvalsh(rho).min() < -1e-3
    with pytest.raises(InvalidDensityMatrixError):
        validate_density_matrices(rho)
