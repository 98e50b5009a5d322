"""Property tests (hypothesis) of the batched numerics, plus closed forms of negativity and PPT.

Hypothesis draws the structure (n, qubit subsets, permutations, noise levels) and a seed; the
matrices themselves come from ``numpy.random.default_rng(seed)`` through qeframe.quantum.random.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qeframe.quantum.cuts import bipartitions, cut_index_map, n_cuts
from qeframe.quantum.ops import (
    apply_local_unitaries,
    batch_kron,
    partial_trace,
    partial_transpose,
    permute_qubits,
    permute_qubits_batch,
    pure_density,
)
from qeframe.quantum.ppt import PPT_TOL, negativities, npt_mask, pt_min_eigenvalues
from qeframe.quantum.random import haar_state, haar_unitary, random_permutations

PROPERTY = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
qubit_counts = st.sampled_from([2, 3, 4])


def random_states(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Mixtures of 1..4 Haar states (pure ones included) with Dirichlet weights."""
    d = 2**n
    rank = int(rng.integers(1, 5))
    psi = haar_state(d, count * rank, rng).reshape(count, rank, d)
    w = rng.dirichlet(np.ones(rank), size=count)
    return np.einsum("nk,nki,nkj->nij", w, psi, psi.conj())


def assert_trace_one_hermitian(a: np.ndarray) -> None:
    np.testing.assert_allclose(np.trace(a, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(a, np.conj(np.swapaxes(a, -1, -2)), atol=1e-12)


@st.composite
def n_and_subset(draw, min_size: int = 0):
    n = draw(qubit_counts)
    subset = draw(st.lists(st.integers(0, n - 1), min_size=min_size, max_size=n, unique=True))
    return n, subset


@PROPERTY
@given(n_and_subset(), seeds)
def test_partial_transpose_preserves_trace_hermiticity_and_is_involution(ns, seed):
    n, qubits = ns
    rho = random_states(n, 8, np.random.default_rng(seed))
    pt = partial_transpose(rho, qubits)
    assert_trace_one_hermitian(pt)
    np.testing.assert_array_equal(partial_transpose(pt, qubits), rho)
    # transposing the complement gives the full transpose of the partial transpose
    rest = [q for q in range(n) if q not in qubits]
    np.testing.assert_array_equal(partial_transpose(rho, rest), pt.transpose(0, 2, 1))


@PROPERTY
@given(n_and_subset(min_size=1), seeds)
def test_partial_trace_preserves_trace_hermiticity_positivity(ns, seed):
    n, keep = ns
    rho = random_states(n, 8, np.random.default_rng(seed))
    red = partial_trace(rho, keep)
    assert red.shape == (8, 2 ** len(keep), 2 ** len(keep))
    assert_trace_one_hermitian(red)
    assert np.linalg.eigvalsh(red)[:, 0].min() > -1e-12
    # tracing in two steps equals tracing at once
    if len(keep) > 1:
        first = sorted(keep)[1:]
        inner = [sorted(keep).index(q) for q in first]
        np.testing.assert_allclose(partial_trace(red, inner), partial_trace(rho, first), atol=1e-12)


@PROPERTY
@given(qubit_counts.flatmap(lambda n: st.tuples(st.just(n), st.permutations(range(n)))), seeds)
def test_permutation_preserves_trace_hermiticity_spectrum(np_, seed):
    n, perm = np_
    rho = random_states(n, 8, np.random.default_rng(seed))
    out = permute_qubits(rho, perm)
    assert_trace_one_hermitian(out)
    np.testing.assert_allclose(np.linalg.eigvalsh(out), np.linalg.eigvalsh(rho), atol=1e-12)
    inverse = np.argsort(perm)
    np.testing.assert_array_equal(permute_qubits(out, inverse), rho)


@PROPERTY
@given(qubit_counts, seeds)
def test_negativity_invariant_under_local_unitaries(n, seed):
    rng = np.random.default_rng(seed)
    rho = random_states(n, 16, rng)
    us = haar_unitary(2, 16 * n, rng).reshape(16, n, 2, 2)
    moved = apply_local_unitaries(rho, us)
    assert_trace_one_hermitian(moved)
    np.testing.assert_allclose(negativities(moved), negativities(rho), atol=1e-10)
    np.testing.assert_array_equal(npt_mask(moved), npt_mask(rho))  # these states are far from tol


@PROPERTY
@given(qubit_counts, seeds)
def test_permutation_moves_negativities_as_cut_index_map_says(n, seed):
    rng = np.random.default_rng(seed)
    count = 16
    rho = random_states(n, count, rng)
    perms = random_permutations(count, n, rng)
    neg_old = negativities(rho)
    neg_new = negativities(permute_qubits_batch(rho, perms))
    mask_old, mask_new = npt_mask(rho), npt_mask(permute_qubits_batch(rho, perms))
    for b in range(count):
        m = cut_index_map(perms[b])
        np.testing.assert_allclose(neg_new[b, m], neg_old[b], atol=1e-10)  # neg_new[m[j]] == neg_old[j]
        np.testing.assert_array_equal(mask_new[b, m], mask_old[b])


@PROPERTY
@given(qubit_counts, seeds, st.floats(0.5, 1.5))
def test_npt_mask_agrees_with_min_eigenvalue_away_from_threshold(n, seed, scale):
    """States with white noise near each state's critical noise level (scale 1 = at the threshold of
    its most negative cut); the Cholesky test must equal ``lambda_min < -tol`` wherever
    ``|lambda_min + tol| > 1e-12``."""
    rng = np.random.default_rng(seed)
    d = 2**n
    rho = random_states(n, 32, rng)
    lam = pt_min_eigenvalues(rho).min(axis=1)
    p = np.clip(scale * rng.uniform(0.95, 1.05, 32) * np.maximum(-lam, 0) * d / (1 - lam * d), 0, 1)
    rho = (1 - p)[:, None, None] * rho + p[:, None, None] * np.eye(d) / d
    lam_cut = pt_min_eigenvalues(rho)
    ok = np.abs(lam_cut + PPT_TOL) > 1e-12
    np.testing.assert_array_equal(npt_mask(rho)[ok], (lam_cut < -PPT_TOL)[ok])


# ------------------------------------------------------------------------------ closed forms
def ghz(n: int) -> np.ndarray:
    psi = np.zeros(2**n)
    psi[[0, -1]] = 2**-0.5
    return np.outer(psi, psi)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_bell_and_ghz_negativity_is_one_half_on_every_cut(n):
    rng = np.random.default_rng(n)
    rho = np.broadcast_to(ghz(n), (4, 2**n, 2**n)).astype(complex)
    rho = apply_local_unitaries(rho, haar_unitary(2, 4 * n, rng).reshape(4, n, 2, 2))
    np.testing.assert_allclose(negativities(rho), 0.5, atol=1e-10)
    assert npt_mask(rho).all()


@pytest.mark.parametrize("n", [2, 3, 4])
def test_product_states_have_zero_negativity(n):
    rng = np.random.default_rng(n)
    factors = [random_states(1, 10, rng) for _ in range(n)]
    rho = batch_kron(*factors)
    np.testing.assert_allclose(negativities(rho), 0.0, atol=1e-12)
    assert not npt_mask(rho).any()
    pure = pure_density(batch_kron(*[haar_state(2, 10, rng) for _ in range(n)]))
    np.testing.assert_allclose(negativities(pure), 0.0, atol=1e-12)
    assert not npt_mask(pure).any()


def test_bell_pair_with_product_qubit_is_entangled_on_the_right_cuts():
    """|Phi+>_{12} (x) |0>_3: cuts 1|23 and 2|13 have negativity 1/2, cut 3|12 has 0."""
    bell = np.zeros((4, 4))
    bell[np.ix_([0, 3], [0, 3])] = 0.5
    rho = np.kron(bell, np.diag([1.0, 0.0]))[None]
    np.testing.assert_allclose(negativities(rho), [[0.5, 0.5, 0.0]], atol=1e-12)
    assert npt_mask(rho).tolist() == [[True, True, False]]
    # after moving the product qubit to the front the entangled cuts move with cut_index_map
    perm = (2, 0, 1)
    moved = permute_qubits(rho, perm)
    m = cut_index_map(perm)
    expected = np.empty(3)
    expected[m] = [0.5, 0.5, 0.0]
    np.testing.assert_allclose(negativities(moved)[0], expected, atol=1e-12)
    assert expected.tolist() == [0.0, 0.5, 0.5]  # 1|23 is now the product cut


@given(st.floats(0.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_two_qubit_werner_state(p):
    """rho = p|Psi-><Psi-| + (1-p) I/4: lambda_min(rho^T_B) = (1-3p)/4, negativity max(0, (3p-1)/4),
    entangled iff p > 1/3."""
    psi = np.array([0, 1, -1, 0]) / np.sqrt(2)
    rho = (p * np.outer(psi, psi) + (1 - p) * np.eye(4) / 4)[None]
    assert pt_min_eigenvalues(rho)[0, 0] == pytest.approx((1 - 3 * p) / 4, abs=1e-12)
    assert negativities(rho)[0, 0] == pytest.approx(max(0.0, (3 * p - 1) / 4), abs=1e-12)
    if abs(p - 1 / 3) > 1e-9:
        assert npt_mask(rho)[0, 0] == (p > 1 / 3)


@pytest.mark.parametrize("n", [3, 4])
def test_noisy_ghz_threshold(n):
    """rho = p GHZ + (1-p) I/d: every cut has lambda_min(PT) = (1-p)/d - p/2, so it is NPT on every
    cut iff p > 1/(1 + d/2) (1/5 for three qubits)."""
    d = 2**n
    p_crit = 1 / (1 + d / 2)
    ps = np.array([0.0, p_crit - 1e-6, p_crit + 1e-6, 0.5, 1.0])
    rho = ps[:, None, None] * ghz(n) + (1 - ps)[:, None, None] * np.eye(d) / d
    np.testing.assert_allclose(
        pt_min_eigenvalues(rho), ((1 - ps) / d - ps / 2)[:, None] * np.ones(n_cuts(n)), atol=1e-12
    )
    np.testing.assert_array_equal(npt_mask(rho), np.repeat((ps > p_crit)[:, None], n_cuts(n), axis=1))
    assert len(bipartitions(n)) == n_cuts(n)
