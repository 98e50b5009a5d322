"""Cut order and names, cut re-indexing under qubit permutations, and the random module."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from qeframe.quantum.cuts import bipartitions, cut_index_map, cut_index_maps, cut_names, n_cuts
from qeframe.quantum.ops import permute_qubits
from qeframe.quantum.random import haar_state, haar_unitary, random_permutations

EXPECTED_NAMES = {
    2: ["1|2"],
    3: ["1|23", "2|13", "3|12"],
    4: ["1|234", "2|134", "3|124", "4|123", "12|34", "13|24", "14|23"],
    5: [
        "1|2345", "2|1345", "3|1245", "4|1235", "5|1234",
        "12|345", "13|245", "14|235", "15|234", "23|145", "24|135", "25|134", "34|125", "35|124", "45|123",
    ],
}  # fmt: skip


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_bipartition_order_and_names(n):
    cuts = bipartitions(n)
    assert len(cuts) == n_cuts(n) == 2 ** (n - 1) - 1
    assert cut_names(n) == EXPECTED_NAMES[n]
    for i, cut in enumerate(cuts):
        assert cut.index == i
        assert sorted(cut.side_a + cut.side_b) == list(range(n))
        assert len(cut.side_a) <= len(cut.side_b)
        assert list(cut.side_a) == sorted(cut.side_a) and list(cut.side_b) == sorted(cut.side_b)
        if 2 * len(cut.side_a) == n:
            assert 0 in cut.side_a  # equal halves: the side holding qubit 1 is named first


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_every_bipartition_appears_once(n):
    seen = {frozenset(c.side_a) for c in bipartitions(n)} | {frozenset(c.side_b) for c in bipartitions(n)}
    # every nonempty proper subset is one side of exactly one cut
    assert len(seen) == 2**n - 2
    sizes = [len(c.side_a) for c in bipartitions(n)]
    assert sizes == sorted(sizes)
    for k in range(1, n // 2 + 1):
        expected = comb(n, k) // (2 if 2 * k == n else 1)
        assert sizes.count(k) == expected


def test_names_with_ten_or_more_qubits_use_commas():
    assert cut_names(10)[0] == "1|2,3,4,5,6,7,8,9,10"
    assert cut_names(9)[0] == "1|23456789"


def test_bipartitions_rejects_one_qubit():
    with pytest.raises(ValueError):
        bipartitions(1)


def test_cut_index_map_examples():
    np.testing.assert_array_equal(cut_index_map((0, 1, 2)), [0, 1, 2])
    # new qubit 0 = old qubit 1: the old 1|23 is now 2|13 and vice versa
    np.testing.assert_array_equal(cut_index_map((1, 0, 2)), [1, 0, 2])
    # cyclic: new qubits (old 2, old 0, old 1): old qubit 0 sits at new position 1
    np.testing.assert_array_equal(cut_index_map((2, 0, 1)), [1, 2, 0])
    # n=4, swap qubits 2 and 3 (0-based 1, 2): 2|134 <-> 3|124, 12|34 <-> 13|24, 14|23 fixed
    np.testing.assert_array_equal(cut_index_map((0, 2, 1, 3)), [0, 2, 1, 3, 5, 4, 6])
    assert cut_index_map(np.array([1, 0])).dtype == np.int64
    with pytest.raises(ValueError):
        cut_index_map((0, 0, 1))


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_cut_index_map_moves_sides_by_brute_force(n):
    cuts = bipartitions(n)
    for perm in itertools.permutations(range(n)):
        m = cut_index_map(perm)
        assert sorted(m.tolist()) == list(range(len(cuts)))  # a permutation of the cuts
        new_position = {old: new for new, old in enumerate(perm)}
        for j, cut in enumerate(cuts):
            moved = frozenset(new_position[q] for q in cut.side_a)
            target = cuts[m[j]]
            assert moved in (frozenset(target.side_a), frozenset(target.side_b))


def test_cut_index_map_composes_like_permute_qubits():
    # permuting by p then by q is permuting by p[q]; the cut maps compose in the same way
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.permutation(4), rng.permutation(4)
        rho = rng.standard_normal((16, 16))
        np.testing.assert_array_equal(permute_qubits(permute_qubits(rho, p), q), permute_qubits(rho, p[q]))
        np.testing.assert_array_equal(cut_index_map(q)[cut_index_map(p)], cut_index_map(p[q]))


def test_cut_index_maps_batched():
    rng = np.random.default_rng(1)
    perms = random_permutations(200, 4, rng)
    maps = cut_index_maps(perms)
    assert maps.shape == (200, 7) and maps.dtype == np.int64
    for perm, m in zip(perms, maps):
        np.testing.assert_array_equal(m, cut_index_map(perm))


def test_random_permutations_are_uniform():
    rng = np.random.default_rng(2)
    perms = random_permutations(60000, 3, rng)
    assert perms.shape == (60000, 3)
    assert all(sorted(p) == [0, 1, 2] for p in perms[:100])
    _, counts = np.unique(perms, axis=0, return_counts=True)
    assert len(counts) == 6
    # each of 6 permutations has probability 1/6: binomial sd ~ 91, allow 6 sd
    assert np.all(np.abs(counts - 10000) < 550)


@pytest.mark.parametrize("dim", [2, 4, 8])
def test_haar_unitaries_are_unitary(dim):
    rng = np.random.default_rng(dim)
    u = haar_unitary(dim, 500, rng)
    assert u.shape == (500, dim, dim) and u.dtype == np.complex128
    eye = np.broadcast_to(np.eye(dim), u.shape)
    np.testing.assert_allclose(u @ u.conj().transpose(0, 2, 1), eye, atol=1e-12)
    np.testing.assert_allclose(u.conj().transpose(0, 2, 1) @ u, eye, atol=1e-12)


@pytest.mark.parametrize("dim", [2, 4])
def test_haar_unitaries_have_haar_moments(dim):
    """Haar moments: E[U_ij] = 0, E|U_ij|^2 = 1/d, E|U_ij|^4 = 2/(d(d+1)), E|tr U|^2 = 1,
    E|tr U|^4 = 2 (d >= 2), and E[tr U^2] = 0. The uncorrected QR recipe fails several of these
    (its first column is biased towards a positive real first entry)."""
    rng = np.random.default_rng(10 + dim)
    count = 20000
    u = haar_unitary(dim, count, rng)
    se = 6 / np.sqrt(count)  # every statistic below has variance <= ~1 per sample
    assert np.abs(u.mean(axis=0)).max() < se
    np.testing.assert_allclose((np.abs(u) ** 2).mean(axis=0), 1 / dim, atol=se)
    np.testing.assert_allclose((np.abs(u) ** 4).mean(axis=0), 2 / (dim * (dim + 1)), atol=se)
    tr = np.trace(u, axis1=1, axis2=2)
    assert abs(np.mean(np.abs(tr) ** 2) - 1) < 3 * se
    assert abs(np.mean(np.abs(tr) ** 4) - 2) < 10 * se
    assert abs(np.mean(np.trace(u @ u, axis1=1, axis2=2))) < 3 * se
    # phases of the eigenvalues are uniform on the circle: E[lambda] = 0
    assert abs(np.linalg.eigvals(u).mean()) < se


def test_haar_states_are_normalised_with_haar_moments():
    rng = np.random.default_rng(3)
    d = 8
    psi = haar_state(d, 20000, rng)
    np.testing.assert_allclose(np.linalg.norm(psi, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose((np.abs(psi) ** 2).mean(axis=0), 1 / d, atol=0.005)
    np.testing.assert_allclose((np.abs(psi) ** 4).mean(axis=0), 2 / (d * (d + 1)), atol=0.003)


def test_random_functions_are_reproducible():
    a = haar_unitary(4, 3, np.random.default_rng(9))
    b = haar_unitary(4, 3, np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
