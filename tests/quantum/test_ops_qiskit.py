"""Batched ops against qiskit.quantum_info as the oracle, through qeframe.quantum.qiskit_interop.

Every comparison converts with the interop module, so these tests also pin down the qubit-order
mapping: qeframe qubit k (big-endian, leftmost factor first) <-> qiskit qubit k (little-endian).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import PermutationGate
from qiskit.quantum_info import DensityMatrix, Operator, Statevector
from qiskit.quantum_info import partial_trace as qk_partial_trace

from qeframe.errors import QeframeError
from qeframe.quantum.ops import (
    apply_local_unitaries,
    apply_local_unitaries_state,
    basis_permutation,
    batch_kron,
    partial_trace,
    partial_transpose,
    permute_qubits,
    permute_qubits_batch,
    pure_density,
)
from qeframe.quantum.qiskit_interop import (
    from_qiskit,
    from_qiskit_batch,
    reverse_qubit_order,
    to_qiskit,
    to_qiskit_batch,
    to_qiskit_statevector,
)
from qeframe.quantum.random import haar_state, haar_unitary, random_permutations

NS = [2, 3, 4]
ATOL = 1e-12


def random_mixed(n: int, count: int, rng: np.random.Generator, rank: int = 3) -> np.ndarray:
    """Mixtures of ``rank`` Haar states with Dirichlet weights: ``(count, 2**n, 2**n)``."""
    d = 2**n
    psi = haar_state(d, count * rank, rng).reshape(count, rank, d)
    w = rng.dirichlet(np.ones(rank), size=count)
    return np.einsum("nk,nki,nkj->nij", w, psi, psi.conj())


# ------------------------------------------------------------------------------ interop mapping
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_x_on_qiskit_qubit_0_sets_qeframe_qubit_1(n):
    qc = QuantumCircuit(n)
    qc.x(0)
    psi = from_qiskit(qc)
    assert psi.shape == (2**n,)
    assert np.flatnonzero(np.abs(psi) > 0.5).tolist() == [1 << (n - 1)]
    # the same in the other direction: our |10...0> is qiskit's |0...01>
    ours = np.zeros(2**n)
    ours[1 << (n - 1)] = 1
    assert to_qiskit_statevector(ours).equiv(Statevector(qc))


@pytest.mark.parametrize("n", [2, 3])
def test_x_on_every_qubit_maps_to_big_endian_bit(n):
    for k in range(n):
        qc = QuantumCircuit(n)
        qc.x(k)
        rho = from_qiskit(qc, density=True)
        index = 1 << (n - 1 - k)
        expected = np.zeros((2**n, 2**n))
        expected[index, index] = 1
        np.testing.assert_allclose(rho, expected, atol=ATOL)


def test_label_order_of_qiskit_is_reversed():
    # qiskit labels are written with qubit 0 rightmost: '001' has qiskit qubit 0 in |1>
    psi = from_qiskit(Statevector.from_label("001"))
    assert np.argmax(np.abs(psi)) == 0b100
    rho = from_qiskit(DensityMatrix.from_label("01+"))
    # qeframe order: qubit 1 is |+>, qubit 2 is |1>, qubit 3 is |0>
    plus = np.full(2, 2**-0.5)
    expected_psi = np.kron(np.kron(plus, [0, 1]), [1, 0])
    np.testing.assert_allclose(rho, np.outer(expected_psi, expected_psi), atol=ATOL)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_ghz_circuit(n):
    qc = QuantumCircuit(n)
    qc.h(0)
    for k in range(n - 1):
        qc.cx(k, k + 1)
    qc.measure_all()  # final measurements are dropped before simulation
    psi = from_qiskit(qc)
    expected = np.zeros(2**n)
    expected[[0, -1]] = 2**-0.5
    np.testing.assert_allclose(psi, expected, atol=ATOL)
    np.testing.assert_allclose(from_qiskit(qc, density=True), np.outer(expected, expected), atol=ATOL)


def test_asymmetric_circuit_matches_kron_of_single_qubit_states():
    # H on qiskit qubit 0, X on qiskit qubit 2: qeframe qubit 1 = |+>, qubit 2 = |0>, qubit 3 = |1>
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.x(2)
    plus = np.full(2, 2**-0.5)
    np.testing.assert_allclose(from_qiskit(qc), np.kron(np.kron(plus, [1, 0]), [0, 1]), atol=ATOL)


def test_circuit_with_reset_needs_density():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.reset(1)
    with pytest.raises(QeframeError, match="density=True"):
        from_qiskit(qc)
    rho = from_qiskit(qc, density=True)
    # qubit 2 reset to |0>, qubit 1 left maximally mixed
    np.testing.assert_allclose(rho, np.kron(np.eye(2) / 2, np.diag([1.0, 0.0])), atol=ATOL)


@pytest.mark.parametrize("n", NS)
def test_round_trips(n):
    rng = np.random.default_rng(100 + n)
    rho = random_mixed(n, 5, rng)
    psi = haar_state(2**n, 5, rng)
    for m in rho:
        dm = to_qiskit(m)
        assert isinstance(dm, DensityMatrix) and dm.num_qubits == n
        np.testing.assert_allclose(from_qiskit(dm), m, atol=ATOL)
    for v in psi:
        sv = to_qiskit_statevector(v)
        assert isinstance(sv, Statevector) and sv.num_qubits == n
        np.testing.assert_allclose(from_qiskit(sv), v, atol=ATOL)
        np.testing.assert_allclose(from_qiskit(sv, density=True), np.outer(v, v.conj()), atol=ATOL)
    # batches
    np.testing.assert_allclose(from_qiskit_batch(to_qiskit_batch(rho)), rho, atol=ATOL)
    np.testing.assert_allclose(from_qiskit_batch(to_qiskit_batch(psi)), psi, atol=ATOL)
    mixed = from_qiskit_batch([to_qiskit(rho[0]), to_qiskit_statevector(psi[0])], density=True)
    np.testing.assert_allclose(mixed[1], pure_density(psi[:1])[0], atol=ATOL)
    # the conversion is a genuine reordering (not the identity) for n >= 2
    assert not np.allclose(to_qiskit(rho[0]).data, rho[0])


def test_reverse_qubit_order_is_an_involution_and_bit_reversal():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 3, 8, 8))
    np.testing.assert_array_equal(reverse_qubit_order(reverse_qubit_order(a, matrix=True), matrix=True), a)
    rev = [int(f"{i:03b}"[::-1], 2) for i in range(8)]
    np.testing.assert_array_equal(reverse_qubit_order(a, matrix=True), a[..., rev, :][..., :, rev])
    v = rng.standard_normal((4, 16))
    rev4 = [int(f"{i:04b}"[::-1], 2) for i in range(16)]
    np.testing.assert_array_equal(reverse_qubit_order(v, matrix=False), v[:, rev4])


def test_interop_errors():
    with pytest.raises(QeframeError, match="different shapes"):
        from_qiskit_batch([Statevector.from_label("00"), DensityMatrix.from_label("00")])
    with pytest.raises(QeframeError, match="no objects"):
        from_qiskit_batch([])
    with pytest.raises(QeframeError, match="expected DensityMatrix"):
        from_qiskit(np.eye(4))  # type: ignore[arg-type]
    with pytest.raises(QeframeError, match="qubit"):
        from_qiskit(DensityMatrix(np.eye(3) / 3))
    with pytest.raises(ValueError):
        to_qiskit(np.eye(4)[None])
    with pytest.raises(ValueError):
        to_qiskit_batch(np.zeros(4))


# ------------------------------------------------------------------------------ ops vs qiskit
def nonempty_subsets(n: int):
    for size in range(1, n + 1):
        yield from itertools.combinations(range(n), size)


@pytest.mark.parametrize("n", NS)
def test_partial_transpose_matches_qiskit(n):
    rng = np.random.default_rng(200 + n)
    rho = random_mixed(n, 3, rng)
    for qubits in nonempty_subsets(n):
        ours = partial_transpose(rho, qubits)
        assert ours.shape == rho.shape
        for m, got in zip(rho, ours):
            expected = from_qiskit(DensityMatrix(to_qiskit(m).partial_transpose(list(qubits))))
            np.testing.assert_allclose(got, expected, atol=ATOL)
        # single-matrix input is returned unbatched
        np.testing.assert_allclose(partial_transpose(rho[0], qubits), ours[0], atol=ATOL)


@pytest.mark.parametrize("n", NS)
def test_partial_trace_matches_qiskit(n):
    rng = np.random.default_rng(300 + n)
    rho = random_mixed(n, 3, rng)
    for keep in nonempty_subsets(n):
        traced = [q for q in range(n) if q not in keep]
        ours = partial_trace(rho, keep)
        assert ours.shape == (3, 2 ** len(keep), 2 ** len(keep))
        for m, got in zip(rho, ours):
            expected = to_qiskit(m) if not traced else qk_partial_trace(to_qiskit(m), traced)
            np.testing.assert_allclose(got, from_qiskit(expected), atol=ATOL)
    # kept qubits stay in ascending order whatever order they are given in
    np.testing.assert_allclose(partial_trace(rho, [n - 1, 0]), partial_trace(rho, [0, n - 1]))


def test_partial_trace_of_product_state():
    rng = np.random.default_rng(3)
    a, b, c = (random_mixed(1, 2, rng) for _ in range(3))
    rho = batch_kron(a, b, c)
    np.testing.assert_allclose(partial_trace(rho, [0]), a, atol=ATOL)
    np.testing.assert_allclose(partial_trace(rho, [1]), b, atol=ATOL)
    np.testing.assert_allclose(partial_trace(rho, [0, 2]), batch_kron(a, c), atol=ATOL)


def qiskit_permute(m: np.ndarray, perm) -> np.ndarray:
    """Oracle: new qubit k = old qubit perm[k] via qiskit's PermutationGate (pattern[k] = old qubit)."""
    return from_qiskit(to_qiskit(m).evolve(PermutationGate(list(perm))))


def qiskit_permute_by_swaps(m: np.ndarray, perm) -> np.ndarray:
    """Second oracle: the same permutation as a circuit of SWAPs built by selection sort."""
    n = len(perm)
    current = list(range(n))  # current[k] = old qubit now at position k
    qc = QuantumCircuit(n)
    for k in range(n):
        j = current.index(perm[k])
        if j != k:
            qc.swap(k, j)
            current[k], current[j] = current[j], current[k]
    return from_qiskit(to_qiskit(m).evolve(qc))


@pytest.mark.parametrize("n", NS)
def test_permute_qubits_matches_qiskit(n):
    rng = np.random.default_rng(400 + n)
    rho = random_mixed(n, 2, rng)
    for perm in itertools.permutations(range(n)):
        ours = permute_qubits(rho, perm)
        for m, got in zip(rho, ours):
            np.testing.assert_allclose(got, qiskit_permute(m, perm), atol=ATOL)
            np.testing.assert_allclose(got, qiskit_permute_by_swaps(m, perm), atol=ATOL)


def test_permute_qubits_docstring_example():
    rng = np.random.default_rng(5)
    a, b, c = (random_mixed(1, 1, rng) for _ in range(3))
    np.testing.assert_allclose(permute_qubits(batch_kron(a, b, c), (2, 0, 1)), batch_kron(c, a, b), atol=ATOL)


@pytest.mark.parametrize("n", NS)
def test_permute_qubits_batch_matches_qiskit(n):
    rng = np.random.default_rng(500 + n)
    count = 12
    rho = random_mixed(n, count, rng)
    perms = random_permutations(count, n, rng)
    ours = permute_qubits_batch(rho, perms)
    for m, perm, got in zip(rho, perms, ours):
        np.testing.assert_allclose(got, qiskit_permute(m, perm), atol=ATOL)
        np.testing.assert_allclose(got, permute_qubits(m, perm), atol=ATOL)
    index = basis_permutation(perms)[..., 0]
    np.testing.assert_array_equal(np.sort(index, axis=1), np.tile(np.arange(2**n), (count, 1)))


@pytest.mark.parametrize("n", NS)
def test_apply_local_unitaries_matches_qiskit(n):
    rng = np.random.default_rng(600 + n)
    count = 3
    rho = random_mixed(n, count, rng)
    us = haar_unitary(2, count * n, rng).reshape(count, n, 2, 2)
    ours = apply_local_unitaries(rho, us)
    for m, u, got in zip(rho, us, ours):
        dm = to_qiskit(m)
        for k in range(n):
            dm = dm.evolve(Operator(u[k]), qargs=[k])
        np.testing.assert_allclose(got, from_qiskit(dm), atol=ATOL)
    # the state-vector version agrees with the density-matrix version
    psi = haar_state(2**n, count, rng)
    np.testing.assert_allclose(
        pure_density(apply_local_unitaries_state(psi, us)),
        apply_local_unitaries(pure_density(psi), us),
        atol=ATOL,
    )


@pytest.mark.parametrize("sizes", [(1, 1), (1, 1, 1), (2, 1), (1, 2), (2, 2), (1, 1, 1, 1)])
def test_batch_kron_matches_qiskit(sizes):
    rng = np.random.default_rng(sum(sizes) * 10 + len(sizes))
    count = 3
    factors = [random_mixed(k, count, rng) for k in sizes]
    ours = batch_kron(*factors)
    for b in range(count):
        # qeframe's first factor holds qubit 1 = qiskit qubit 0; qiskit's `expand` puts the new
        # factor on the higher qubits, so expanding in order builds the same state
        dm = to_qiskit(factors[0][b])
        for f in factors[1:]:
            dm = dm.expand(to_qiskit(f[b]))
        np.testing.assert_allclose(ours[b], from_qiskit(dm), atol=ATOL)
    vecs = [haar_state(2**k, count, rng) for k in sizes]
    kv = batch_kron(*vecs)
    for b in range(count):
        sv = to_qiskit_statevector(vecs[0][b])
        for v in vecs[1:]:
            sv = sv.expand(to_qiskit_statevector(v[b]))
        np.testing.assert_allclose(kv[b], from_qiskit(sv), atol=ATOL)


def test_docstring_examples():
    import doctest

    from qeframe.quantum import qiskit_interop

    result = doctest.testmod(qiskit_interop)
    assert result.attempted > 0 and result.failed == 0
