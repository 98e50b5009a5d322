"""The mixed-precision NPT backend (qeframe.quantum.npt_screen): proved float32 verdicts, float64
for the rest.

Oracles: ``numpy.linalg.eigvalsh`` of every cut's partial transpose, the float64 ``numpy``
backend, and the screen's own proof obligations: a cut it proves NPT has
``lambda_min(rho^{T_A}) < -tol - eta/2``, a cut it proves PPT has ``lambda_min > -tol``, both for
the matrix as given, so the tests check them at distances that are multiples of the margin
``eta`` and for 3-6 qubits on every cut.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ppt_states import assert_labelers_match_numpy, mixtures, near_boundary

from qeframe.quantum import npt_native, npt_screen, ppt
from qeframe.quantum.cuts import n_cuts, packed_pt_plan
from qeframe.quantum.ppt import PPT_TOL, npt_backend, npt_mask, pt_min_eigenvalues
from qeframe.quantum.random import haar_state

#: Cuts closer than this (times the trace) to the threshold may differ from eigvalsh: the float64
#: test's rounding band plus eigvalsh's own error.
BAND = 1e-13


def shifted_to(rho: np.ndarray, cut: int, target: np.ndarray) -> np.ndarray:
    """``rho`` plus a multiple of the identity that puts cut ``cut``'s ``lambda_min`` at ``target``
    (the identity shifts every partial-transpose spectrum alike)."""
    lam = pt_min_eigenvalues(rho)[:, cut]
    return rho + (target - lam)[:, None, None] * np.eye(rho.shape[-1])


def screen_verdicts(rho: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The screen alone on ``rho``: ``(npt, undecided, eta)`` with ``(N, n_cuts)`` masks."""
    n = int(np.log2(rho.shape[-1]))
    npt, undecided = ppt._npt_block_mixed(rho, tol, n)
    flat = np.ascontiguousarray(rho.reshape(len(rho), -1).T, dtype=np.complex64)
    return npt, undecided, npt_screen.margin(flat, rho.shape[-1], tol)


def assert_exact(rho: np.ndarray, tol: float = PPT_TOL, scale: float = 1.0) -> np.ndarray:
    """mixed == eigvalsh outside the band, == numpy outside the band; returns the mixed mask."""
    lam = pt_min_eigenvalues(rho)
    away = np.abs(lam + tol) > BAND * scale
    mixed = npt_mask(rho, tol=tol, backend="mixed")
    np.testing.assert_array_equal(mixed[away], (lam < -tol)[away])
    np.testing.assert_array_equal(mixed[away], npt_mask(rho, tol=tol, backend="numpy")[away])
    return mixed


# ------------------------------------------------------------------------------ the default
def test_mixed_is_the_default_without_a_c_compiler(monkeypatch):
    monkeypatch.delenv(ppt.NPT_BACKEND_ENV, raising=False)
    monkeypatch.setattr(npt_native, "_state", {"failure": "RuntimeError: no C compiler"})
    for n in (2, 3, 4, 5, 6):
        assert npt_backend(n, 1000) == "mixed"
    assert npt_backend(7, 1000) == "numpy"  # d = 128 > MAX_DIM: not screened
    assert npt_backend(7, 1000, "mixed") == "numpy"
    assert npt_backend(3, 1000, "numpy") == "numpy"
    monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "mixed")
    assert npt_backend(3, 10**9) == "mixed"


# ------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_agrees_with_eigvalsh_on_every_cut(n):
    rng = np.random.default_rng(n)
    count = {3: 3000, 4: 800, 5: 200, 6: 40}[n]
    rho = np.concatenate([mixtures(n, count, rng, rank=2), near_boundary(n, count, rng)])
    assert_exact(rho)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([3, 4, 5, 6]),
    rank=st.integers(1, 8),
    multiple=st.floats(0.0, 8.0),
    side=st.sampled_from([-1.0, 1.0]),
    tol=st.sampled_from([PPT_TOL, 1e-6, 0.0]),
    scale=st.sampled_from([1.0, 1e-3, 7.5]),
)
def test_proofs_at_multiples_of_the_margin(seed, n, rank, multiple, side, tol, scale):
    """One cut's ``lambda_min`` placed at ``-tol + side * multiple * eta`` (``eta``: the screen's
    margin for that state), on every cut in turn: the screen never proves a wrong verdict or one
    it has no right to (NPT needs ``lambda_min < -tol - eta/2``, PPT ``lambda_min > -tol``), and
    the backend as a whole is exact outside the float64 band."""
    rng = np.random.default_rng(seed)
    d = 2**n
    count = max(4, 256 // d)
    rho = mixtures(n, count, rng, rank=rank) * scale
    cut = int(rng.integers(n_cuts(n)))
    flat = np.ascontiguousarray(rho.reshape(count, -1).T, dtype=np.complex64)
    eta = npt_screen.margin(flat, d, tol)
    rho = shifted_to(rho, cut, -tol + side * multiple * eta)
    lam = pt_min_eigenvalues(rho)
    npt, undecided, eta = screen_verdicts(rho, tol)
    slack = 1e-14 * scale  # eigvalsh's own error
    proved_npt = npt & ~undecided
    proved_ppt = ~npt & ~undecided
    rows, cols = np.nonzero(proved_npt)
    assert (lam[rows, cols] < -tol - eta[rows] / 2 + slack).all()
    assert (lam[proved_ppt] > -tol - slack).all()
    assert_exact(rho, tol=tol, scale=scale)


@pytest.mark.parametrize("n", [3, 4])
def test_margin_boundary_is_decided_by_float64(n):
    """States exactly ``eta/4`` on either side of the threshold: the screen cannot prove them
    (its error bound is eta/2), so they must all be undecided, and the final answer right."""
    rng = np.random.default_rng(10 + n)
    d = 2**n
    rho = mixtures(n, 200, rng, rank=3)
    for cut in range(n_cuts(n)):
        for side in (-1, 1):
            flat = np.ascontiguousarray(rho.reshape(len(rho), -1).T, dtype=np.complex64)
            eta = npt_screen.margin(flat, d, PPT_TOL)
            shifted = shifted_to(rho, cut, -PPT_TOL + side * eta / 4)
            _, undecided, _ = screen_verdicts(shifted, PPT_TOL)
            assert undecided[:, cut].all()
            assert (npt_mask(shifted, backend="mixed")[:, cut] == (side < 0)).all()


def test_the_screen_decides_almost_everything_away_from_the_threshold():
    rng = np.random.default_rng(1)
    rho = np.concatenate([mixtures(3, 2000, rng), near_boundary(3, 2000, rng)])
    _, undecided, eta = screen_verdicts(rho, PPT_TOL)
    assert 3e-6 < np.median(eta) < 2e-5  # about 7e-6 for these mixed states of trace 1, d = 8
    assert undecided.mean() < 0.01


def test_pure_product_and_rank_deficient_states():
    """PT spectra touching 0 (pure product states: lambda_min = 0 exactly, a distance of tol
    from the threshold, far inside the margin) and rank-1 entangled states."""
    rng = np.random.default_rng(2)
    d = 8
    prods = haar_state(2, 300 * 3, rng).reshape(300, 3, 2)
    psi = np.einsum("na,nb,nc->nabc", prods[:, 0], prods[:, 1], prods[:, 2]).reshape(300, d)
    ent = haar_state(d, 300, rng)
    psi = np.concatenate([psi, ent])
    rho = np.einsum("ni,nj->nij", psi, psi.conj())
    mixed = assert_exact(rho)
    assert not mixed[:300].any() and mixed[300:].all()


def test_non_finite_tiny_and_huge_states_fall_back_to_float64():
    rng = np.random.default_rng(3)
    rho = near_boundary(3, 60, rng)
    rho[1, 2, 1] = np.nan
    rho[2, 0, 0] = np.inf
    rho[3] *= 1e30  # nu > 2**60: not screened
    rho[4] *= 1e-25  # nu < 2**-60: not screened
    rho[5, 6, 6] = rho[5, 7, 7] = 1e308
    rho[6] *= 1e-3  # small but screened: the margin scales with the state
    np.testing.assert_array_equal(npt_mask(rho, backend="mixed"), npt_mask(rho, backend="numpy"))
    _, undecided, eta = screen_verdicts(rho, PPT_TOL)
    assert undecided[[1, 2, 3, 4, 5]].all() and (eta[[1, 2, 3, 4, 5]] == 0).all()


def test_upper_triangle_is_ignored_like_the_float64_test():
    rng = np.random.default_rng(4)
    rho = near_boundary(3, 400, rng)
    garbage = rho + np.triu(rng.standard_normal((8, 8)), 1)
    src, _ = packed_pt_plan(3)
    # garbage in rho's upper triangle lands in both triangles of some partial transposes: compare
    # the two backends on the same input rather than with eigvalsh
    np.testing.assert_array_equal(npt_mask(garbage, backend="mixed"), npt_mask(garbage, backend="numpy"))
    assert src.shape == (36, 3)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_chunks_tails_threads_and_dtypes(monkeypatch, workers):
    monkeypatch.setattr(ppt, "_NPT_MIXED_CHUNK_BYTES", 1)
    monkeypatch.setattr(ppt, "_NPT_MIN_MATRICES", 50)
    rng = np.random.default_rng(5)
    rho = near_boundary(3, 17 * 20 + 3, rng)
    ref = npt_mask(rho, backend="numpy")
    lam = pt_min_eigenvalues(rho)
    away = np.abs(lam + PPT_TOL) > BAND
    np.testing.assert_array_equal(npt_mask(rho, backend="mixed", workers=workers)[away], ref[away])
    np.testing.assert_array_equal(npt_mask(rho[::2], backend="mixed", workers=workers), ref[::2])
    c64 = rho.astype(np.complex64)  # float32 input: exactly representable, same answers as numpy on it
    np.testing.assert_array_equal(
        npt_mask(c64, backend="mixed", workers=workers), npt_mask(c64, backend="numpy", workers=workers)
    )
    real = np.ascontiguousarray(rho.real)
    np.testing.assert_array_equal(npt_mask(real, backend="mixed"), npt_mask(real, backend="numpy"))
    before = rho.copy()
    npt_mask(rho, backend="mixed")
    np.testing.assert_array_equal(rho, before)


# ------------------------------------------------------------------------------ the bounds
@pytest.mark.parametrize("d", [2, 4, 8, 16])
def test_inverse_norm_bound_bounds_the_true_norm(d):
    """``inverse_norm_bound`` >= ``||L^{-1}||_2^2`` for the unit factor of random positive definite
    matrices, ill-conditioned ones included."""
    rng = np.random.default_rng(d)
    m = 500
    g = rng.standard_normal((m, d, d)) + 1j * rng.standard_normal((m, d, d))
    a = g @ g.conj().transpose(0, 2, 1) / d + np.logspace(-6, 0, m)[:, None, None] * np.eye(d)
    chol = np.linalg.cholesky(a)
    diag = np.einsum("mii->mi", chol).real
    unit = chol / diag[:, None, :]  # L with unit diagonal: a = L D L^H, D = diag**2
    true = np.linalg.norm(np.linalg.inv(unit), 2, axis=(1, 2)) ** 2
    rows = np.concatenate([np.arange(j, d) for j in range(d)])
    cols = np.repeat(np.arange(d), np.arange(d, 0, -1))
    packed = (unit * (diag**2)[:, None, :])[:, rows, cols].T.astype(np.complex64)  # column j: l_.j p_j
    bound = npt_screen.inverse_norm_bound(np.ascontiguousarray(packed), d)
    assert (bound >= true * (1 - 1e-5)).all()


def test_float32_factorisation_error_is_inside_the_margin():
    """The float32 factorisation's verdict at shift ``s`` is right whenever ``|lambda_min + s| >
    eta / 2`` (the proved error bound): checked on states placed at ``0.51 eta`` from ``-s``."""
    rng = np.random.default_rng(6)
    d, src = 8, packed_pt_plan(3)[0]
    rho = mixtures(3, 3000, rng, rank=2)
    flat = np.ascontiguousarray(rho.reshape(len(rho), -1).T, dtype=np.complex64)
    eta = npt_screen.margin(flat, d, 0.0)
    for side in (-1, 1):
        shifted = shifted_to(rho, 1, side * 0.51 * eta)
        f = np.ascontiguousarray(shifted.reshape(len(rho), -1).T, dtype=np.complex64)
        a = np.ascontiguousarray(f[src[:, 1]])
        nonpositive, odd = npt_screen.eliminate(a, d, np.zeros(len(rho), dtype=np.float32))
        assert not odd.any()
        assert (nonpositive == (side < 0)).all()


# ------------------------------------------------------------------------------ labelers
def test_labelers_npt_stage_on_the_mixed_backend(monkeypatch):
    """The labelers call npt_mask without a backend (QEFRAME_NPT_BACKEND=mixed, the default
    without a C compiler, gives them this one): the same labels, provenance, kept rows and
    evidence as with QEFRAME_NPT_BACKEND=numpy, near-threshold states included (the screen's
    undecided cuts get the float64 answer)."""
    rng = np.random.default_rng(8)
    rho = np.concatenate([mixtures(3, 200, rng, rank=2), near_boundary(3, 200, rng)])
    assert_labelers_match_numpy(monkeypatch, rho, "mixed", npt_screen, "screen", exact_evidence=True)


def test_float64_recheck_of_chosen_pairs_on_strided_input():
    """The float64 pass over the cuts the screen leaves open gathers only those states, from any
    layout of rho (here a strided view), with the float64 backend's answers."""
    rng = np.random.default_rng(12)
    rho = near_boundary(3, 300, rng)
    holder = np.zeros((300, 2, 8, 8), dtype=complex)
    holder[:, 1] = rho
    view = holder[:, 1]
    states = np.arange(0, 300, 7)
    cuts = states % 3
    got = ppt._npt_pairs_float64(view, states, cuts, PPT_TOL, 3)
    np.testing.assert_array_equal(got, npt_mask(rho, backend="numpy")[states, cuts])
