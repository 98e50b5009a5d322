"""Per-cut partial-transpose spectra, negativities and the fast NPT test (npt_mask).

Oracles: ``qiskit.quantum_info.negativity`` (through the interop module), single-cut
``ops.partial_transpose`` + ``numpy.linalg.eigvalsh``, and closed forms near the PPT threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from ppt_states import mixtures, near_boundary
from qiskit.quantum_info import negativity as qk_negativity

from qeframe.quantum import ppt
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.ops import apply_local_unitaries, partial_transpose
from qeframe.quantum.ppt import (
    PPT_TOL,
    _not_positive_definite,
    negativities,
    npt_chunk_size,
    npt_mask,
    partial_transposes,
    pt_eigenvalues,
    pt_min_eigenvalues,
)
from qeframe.quantum.qiskit_interop import to_qiskit
from qeframe.quantum.random import haar_unitary


def away_from_threshold(lam: np.ndarray, tol: float, margin: float = 1e-12) -> np.ndarray:
    return np.abs(lam + tol) > margin


@pytest.fixture
def small_chunks(monkeypatch):
    """Force many chunks (and several threads' worth of work) on small batches."""
    monkeypatch.setattr(ppt, "_NPT_CHUNK_BYTES", 1)
    monkeypatch.setattr(ppt, "_NPT_MIXED_CHUNK_BYTES", 1)
    monkeypatch.setattr(ppt, "_NPT_MIN_MATRICES", 20)
    monkeypatch.setattr(ppt, "_EIG_CHUNK_BYTES", 1)  # one state per eigvalsh chunk


# ------------------------------------------------------------------------------ partial transposes
@pytest.mark.parametrize("n", [2, 3, 4])
def test_partial_transposes_match_single_cut_op(n):
    rng = np.random.default_rng(n)
    rho = mixtures(n, 5, rng)
    pts = partial_transposes(rho)
    assert pts.shape == (5, n_cuts(n), 2**n, 2**n) and pts.dtype == rho.dtype
    for cut in bipartitions(n):
        np.testing.assert_array_equal(pts[:, cut.index], partial_transpose(rho, cut.side_a))
    # a single matrix is treated as a batch of one
    np.testing.assert_array_equal(partial_transposes(rho[0]), pts[:1])


@pytest.mark.parametrize("n", [2, 3, 4])
def test_negativities_match_qiskit(n):
    rng = np.random.default_rng(10 + n)
    rho = np.concatenate([mixtures(n, 4, rng), mixtures(n, 2, rng, rank=1)])
    neg = negativities(rho)
    assert neg.shape == (6, n_cuts(n)) and neg.dtype == np.float64
    for b in range(len(rho)):
        dm = to_qiskit(rho[b])
        for cut in bipartitions(n):  # qeframe qubit k = qiskit qubit k
            assert neg[b, cut.index] == pytest.approx(qk_negativity(dm, list(cut.side_a)), abs=1e-10)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_pt_eigenvalues_match_eigvalsh(n, small_chunks):
    rng = np.random.default_rng(20 + n)
    rho = mixtures(n, 30, rng)
    ev = pt_eigenvalues(rho, workers=2)
    assert ev.shape == (30, n_cuts(n), 2**n)
    for cut in bipartitions(n):
        np.testing.assert_allclose(
            ev[:, cut.index], np.linalg.eigvalsh(partial_transpose(rho, cut.side_a)), atol=1e-12
        )
    np.testing.assert_array_equal(pt_eigenvalues(rho, workers=1), ev)
    np.testing.assert_array_equal(pt_min_eigenvalues(rho), ev[..., 0])
    np.testing.assert_allclose(negativities(rho), -np.minimum(ev, 0).sum(-1))


# ------------------------------------------------------------------------------ npt_mask
@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("workers", [1, 2])
def test_npt_mask_agrees_with_eigvalsh(n, workers):
    rng = np.random.default_rng(30 + n)
    count = {2: 4000, 3: 3000, 4: 400}[n]
    rho = np.concatenate([mixtures(n, count // 4, rng), near_boundary(n, count - count // 4, rng)])
    lam = pt_min_eigenvalues(rho)
    expected = lam < -PPT_TOL
    assert 0.2 < expected.mean() < 0.9  # both answers are well represented
    got = npt_mask(rho, workers=workers)
    assert got.shape == lam.shape and got.dtype == bool
    ok = away_from_threshold(lam, PPT_TOL)
    assert ok.mean() > 0.99
    np.testing.assert_array_equal(got[ok], expected[ok])


@pytest.mark.parametrize("n", [2, 3, 4])
def test_npt_mask_many_chunks_and_threads(n, small_chunks):
    rng = np.random.default_rng(40 + n)
    rho = near_boundary(n, 101, rng)  # not a multiple of the chunk size
    assert npt_chunk_size(n) < 101
    lam = pt_min_eigenvalues(rho)
    ok = away_from_threshold(lam, PPT_TOL)
    for workers in (1, 2, 3):
        got = npt_mask(rho, workers=workers)
        np.testing.assert_array_equal(got[ok], (lam < -PPT_TOL)[ok])


def test_npt_mask_single_matrix_real_input_and_no_mutation():
    bell = np.zeros((4, 4))
    bell[np.ix_([0, 3], [0, 3])] = 0.5  # real dtype
    before = bell.copy()
    assert npt_mask(bell).tolist() == [[True]]
    np.testing.assert_array_equal(bell, before)
    assert npt_mask(np.eye(4) / 4).tolist() == [[False]]
    rho = mixtures(3, 50, np.random.default_rng(0))
    before = rho.copy()
    npt_mask(rho)
    np.testing.assert_array_equal(rho, before)


def test_npt_mask_all_npt_batch_exits_early():
    # every cut of every GHZ-like state fails at an early pivot; the result is still complete
    rng = np.random.default_rng(1)
    ghz = np.zeros(8)
    ghz[[0, 7]] = 2**-0.5
    rho = np.broadcast_to(np.outer(ghz, ghz), (500, 8, 8)).astype(complex)
    us = haar_unitary(2, 500 * 3, rng).reshape(500, 3, 2, 2)
    rho = apply_local_unitaries(rho, us)
    assert npt_mask(rho).all()


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("side", [-1, 1])
def test_npt_mask_resolves_the_threshold_to_1e_13(n, side):
    """Noisy Bell (n=2) / GHZ (n=3) states with lambda_min(PT) = -tol + side*1e-13 exactly:
    lambda_min = (1-p)/d - p/2 for every cut, so p = (1/d - lam) / (1/d + 1/2)."""
    d = 2**n
    rng = np.random.default_rng(n)
    lam = -PPT_TOL + side * 1e-13
    p = (1 / d - lam) / (1 / d + 0.5)
    ghz = np.zeros(d)
    ghz[[0, -1]] = 2**-0.5
    rho = p * np.outer(ghz, ghz) + (1 - p) * np.eye(d) / d
    rho = np.broadcast_to(rho, (50, d, d)).astype(complex)
    rho = apply_local_unitaries(rho, haar_unitary(2, 50 * n, rng).reshape(50, n, 2, 2))
    np.testing.assert_allclose(pt_min_eigenvalues(rho), lam, atol=1e-14)
    assert (npt_mask(rho) == (side < 0)).all()


@pytest.mark.parametrize("tol", [1e-3, 1e-6])
def test_npt_mask_tol(tol):
    rng = np.random.default_rng(5)
    rho = near_boundary(3, 500, rng)
    lam = pt_min_eigenvalues(rho)
    ok = away_from_threshold(lam, tol)
    np.testing.assert_array_equal(npt_mask(rho, tol=tol)[ok], (lam < -tol)[ok])


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 9])
def test_not_positive_definite_generic(d):
    """The packed Cholesky kernel on arbitrary Hermitian matrices (any d) against eigvalsh."""
    rng = np.random.default_rng(d)
    m = 2000
    g = rng.standard_normal((m, d, d)) + 1j * rng.standard_normal((m, d, d))
    a = g @ g.conj().transpose(0, 2, 1) / d
    shift = rng.uniform(-0.3, 0.3, m) * np.linalg.eigvalsh(a)[:, -1]
    a = a - shift[:, None, None] * np.eye(d)  # many indefinite ones
    lam = np.linalg.eigvalsh(a)[:, 0]
    for s in (0.0, 0.01):
        ok = np.abs(lam + s) > 1e-9
        got = _not_positive_definite(a, s)
        np.testing.assert_array_equal(got[ok], (lam < -s)[ok])
    # upper triangle is ignored (like eigvalsh's default UPLO='L')
    garbage = a + np.triu(rng.standard_normal((d, d)), 1)
    np.testing.assert_array_equal(_not_positive_definite(garbage, 0.0), _not_positive_definite(a, 0.0))


def test_npt_chunk_size_fits_budget():
    for n in (2, 3, 4, 5, 6):
        c = npt_chunk_size(n)
        d = 2**n
        assert c >= 1
        assert (
            c * n_cuts(n) >= ppt._NPT_MIN_MATRICES or c * n_cuts(n) * d * (d + 1) * 8 <= ppt._NPT_CHUNK_BYTES
        )


def test_docstring_examples():
    import doctest

    assert doctest.testmod(ppt).failed == 0


@pytest.mark.parametrize("workers", [1, 2, None])
def test_pt_min_eigenvalues_where_matches_the_full_spectra(small_chunks, workers):
    """The labelers' evidence: lambda_min of the flagged cuts only, bitwise the values of
    pt_min_eigenvalues (the same matrices, each decomposed on its own), NaN elsewhere."""
    rng = np.random.default_rng(11)
    rho = near_boundary(3, 40, rng)
    mask = npt_mask(rho)
    mask[0] = False  # a state with no flagged cut
    got = ppt.pt_min_eigenvalues_where(rho, mask, workers=workers)
    np.testing.assert_array_equal(got[mask], pt_min_eigenvalues(rho)[mask])
    assert np.isnan(got[~mask]).all()
    assert np.isnan(ppt.pt_min_eigenvalues_where(rho, np.zeros_like(mask))).all()
