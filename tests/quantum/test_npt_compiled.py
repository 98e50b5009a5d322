"""The compiled NPT kernel (qeframe.quantum.npt_compiled) against the numpy path and eigvalsh.

The two backends of ``npt_mask`` run the same Cholesky test with different rounding (numpy's
complex multiply may fuse multiply-adds, the compiled kernel does not), so they must agree exactly
on every cut whose ``lambda_min(rho^{T_A}) + tol`` is farther from 0 than the rounding band
(``npt_rounding_bound``, about 1e-15 here; the tests allow 1e-13 for eigvalsh's own error), and
both must be right there. Compiling takes a while the first time (Inductor's disk cache makes
later runs fast); the tests skip when no kernel can be built (no torch.compile / C++ compiler).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ppt_states import assert_labelers_match_numpy, ghz_at_threshold, mixtures, near_boundary, shifted_to

from qeframe.errors import QeframeError
from qeframe.quantum import npt_compiled, npt_native, ppt
from qeframe.quantum.ops import partial_transpose
from qeframe.quantum.ppt import PPT_TOL, npt_backend, npt_mask, npt_rounding_bound, pt_min_eigenvalues

#: Cuts closer than this to the threshold may differ between backends (eigvalsh's error included).
BAND = 1e-13


@pytest.fixture(scope="module", autouse=True)
def _forget_kernels_afterwards():
    """A kernel compiled here would switch every later ``npt_mask`` of the test session to the
    compiled backend (``auto`` uses a kernel once it exists): forget them after this module, so
    the other test modules keep testing the numpy path."""
    yield
    npt_compiled._kernels.clear()


@pytest.fixture(scope="module")
def compiled3():
    """The 3-qubit kernel, compiled once per test session (skip where it cannot be built)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fn = npt_compiled.kernel(3)
    if fn is None:
        pytest.skip(f"compiled NPT kernel unavailable: {npt_compiled.failure(3)}")
    return fn


def assert_backends_agree(rho: np.ndarray, tol: float = PPT_TOL, workers: int = 1) -> np.ndarray:
    """Both backends equal each other and eigvalsh outside the band; returns the compiled mask."""
    lam = pt_min_eigenvalues(rho)
    away = np.abs(lam + tol) > BAND
    numpy_mask = npt_mask(rho, tol=tol, backend="numpy", workers=workers)
    compiled_mask = npt_mask(rho, tol=tol, backend="compiled", workers=workers)
    np.testing.assert_array_equal(compiled_mask[away], numpy_mask[away])
    np.testing.assert_array_equal(compiled_mask[away], (lam < -tol)[away])
    return compiled_mask


# ------------------------------------------------------------------------------ backend choice
def test_backend_choice(monkeypatch):
    """Without the native kernel (no C compiler), auto chooses between mixed and compiled."""
    monkeypatch.delenv(ppt.NPT_BACKEND_ENV, raising=False)
    monkeypatch.setattr(npt_native, "_state", {"failure": "RuntimeError: no C compiler"})
    monkeypatch.setattr(npt_compiled, "_kernels", {})
    monkeypatch.setattr(npt_compiled, "_failed", {})
    assert npt_backend(3, 1000) == "mixed"  # auto: small batch, nothing compiled yet
    assert npt_backend(3, ppt.NPT_AUTO_COMPILE_STATES) == "compiled"
    assert npt_backend(4, 10**9) == "mixed"  # no kernel beyond MAX_QUBITS
    assert npt_backend(3, 10**9, "numpy") == "numpy"
    assert npt_backend(3, 1, "compiled") == "compiled"
    assert npt_backend(4, 1, "compiled") == "mixed"
    monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "compiled")
    assert npt_backend(2, 1) == "compiled"
    monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "numpy")
    assert npt_backend(3, 10**9) == "numpy"
    monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "fast")
    with pytest.raises(QeframeError, match="NPT backend must be one of .* QEFRAME_NPT_BACKEND"):
        npt_backend(3, 1)  # a user error: one line from the CLI
    monkeypatch.setattr(npt_compiled, "_kernels", {3: object()})  # compiled already: auto uses it
    assert npt_backend(3, 1, "auto") == "compiled"
    monkeypatch.setattr(npt_compiled, "_failed", {3: "no compiler"})
    assert npt_backend(3, 10**9, "compiled") == "mixed"


def test_compile_failure_falls_back_to_numpy(monkeypatch):
    monkeypatch.setattr(npt_native, "_state", {"failure": "RuntimeError: no C compiler"})
    monkeypatch.setattr(npt_compiled, "_kernels", {})
    monkeypatch.setattr(npt_compiled, "_failed", {})

    def broken(n_qubits):
        raise RuntimeError("no C++ compiler\nsecond line")

    monkeypatch.setattr(npt_compiled, "_compile", broken)
    rho = near_boundary(3, 200, np.random.default_rng(0))
    with pytest.warns(RuntimeWarning, match=r"no C\+\+ compiler\); using the numpy path"):
        got = npt_mask(rho, backend="compiled")
    assert npt_compiled.failure(3) == "RuntimeError: no C++ compiler"
    np.testing.assert_array_equal(got, npt_mask(rho, backend="numpy"))
    assert npt_backend(3, 10**9, "compiled") == "mixed"  # not retried: auto's choice without it


def test_no_kernel_beyond_max_qubits():
    assert npt_compiled.kernel(npt_compiled.MAX_QUBITS + 1) is None
    assert npt_compiled.failure(npt_compiled.MAX_QUBITS + 1) is None


# ------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("workers", [1, 2])
def test_compiled_agrees_on_mixtures_and_near_boundary(compiled3, workers):
    rng = np.random.default_rng(7)
    rho = np.concatenate([mixtures(3, 3000, rng), near_boundary(3, 3000, rng)])
    mask = assert_backends_agree(rho, workers=workers)
    assert 0.3 < mask.mean() < 0.95  # both NPT and PPT cuts present


def test_compiled_identical_to_numpy_on_every_benchmark_like_cut(compiled3):
    """Away from a 1e-13 band the two masks are identical; count the cuts inside the band."""
    rng = np.random.default_rng(11)
    rho = near_boundary(3, 20000, rng)
    lam = pt_min_eigenvalues(rho)
    a, b = npt_mask(rho, backend="numpy"), npt_mask(rho, backend="compiled")
    assert not ((a != b) & (np.abs(lam + PPT_TOL) > BAND)).any()


@pytest.mark.parametrize("side", [-1, 1])
@pytest.mark.parametrize("offset", [1e-13, 1e-12])
def test_compiled_resolves_the_threshold(compiled3, side, offset):
    """Noisy GHZ states with lambda_min(PT) = -tol + side*offset on every cut (exact by
    construction: (1-p)/d - p/2), rotated by Haar local unitaries."""
    rho = ghz_at_threshold(-PPT_TOL + side * offset, 200, np.random.default_rng(3))
    assert (npt_mask(rho, backend="compiled") == (side < 0)).all()
    assert (npt_mask(rho, backend="numpy") == (side < 0)).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    rank=st.integers(1, 8),
    exponent=st.floats(-12.5, -1.0),
    side=st.sampled_from([-1.0, 1.0]),
    tol=st.sampled_from([PPT_TOL, 1e-6, 0.0]),
    scale=st.sampled_from([1.0, 1e-3, 7.5]),
)
def test_compiled_matches_numpy_and_eigvalsh_at_a_chosen_distance(
    compiled3, seed, rank, exponent, side, tol, scale
):
    """States shifted by a multiple of the identity so that cut ``c``'s ``lambda_min(rho^{T_A})``
    sits at ``-tol + side * 10**exponent`` (times the scale): both backends say NPT exactly when
    ``side < 0``, and agree on every other cut outside the band."""
    rng = np.random.default_rng(seed)
    rho = mixtures(3, 64, rng, rank=rank) * scale
    cut = int(rng.integers(3))
    target = -tol + side * 10.0**exponent * scale
    rho, lam_now = shifted_to(rho, cut, target)
    assert np.abs(lam_now[:, cut] - target).max() < 1e-14 * max(scale, 1.0)
    mask = assert_backends_agree(rho, tol=tol)
    band = BAND * scale  # rounding and eigvalsh errors scale with the trace
    decided = np.abs(lam_now[:, cut] + tol) > band
    np.testing.assert_array_equal(mask[decided, cut], np.full(decided.sum(), side < 0))


def test_rounding_bound_is_inside_the_test_band():
    # the band the tests allow is far wider than the proven rounding band of either backend
    assert 2 * npt_rounding_bound(8) < BAND / 10


# ------------------------------------------------------------------------------ edges
def test_chunks_tails_and_threads(compiled3, monkeypatch):
    monkeypatch.setattr(npt_compiled, "CHUNK_STATES", 40)
    rng = np.random.default_rng(5)
    rho = near_boundary(3, 40 * 25 + 7, rng)
    for workers in (1, 2, 4):
        assert_backends_agree(rho, workers=workers)
    assert_backends_agree(rho[:20], workers=8)  # chunks of 16 and 4: the 4-state tail goes to numpy


def test_real_single_and_non_contiguous_input(compiled3):
    rng = np.random.default_rng(9)
    rho = near_boundary(3, 300, rng)
    real = np.ascontiguousarray(rho.real)  # real symmetric: same lower triangles' real parts
    np.testing.assert_array_equal(npt_mask(real, backend="compiled"), npt_mask(real, backend="numpy"))
    strided = rho[::2]
    np.testing.assert_array_equal(npt_mask(strided, backend="compiled"), npt_mask(strided, backend="numpy"))
    one = rho[0]
    assert npt_mask(one, backend="compiled").shape == (1, 3)
    before = rho.copy()
    npt_mask(rho, backend="compiled")
    np.testing.assert_array_equal(rho, before)  # input untouched


def test_non_finite_rows_are_decided_by_numpy(compiled3):
    rng = np.random.default_rng(2)
    rho = 0.1 * mixtures(3, 100, rng) + 0.9 * np.eye(8) / 8  # all PPT: lambda_min(PT) >= -0.05 + 0.1125
    rho[3, 2, 1] = np.nan
    rho[5, 0, 0] = np.inf
    rho[7, 4, 2] = -np.inf
    rho[9, 6, 6] = 1e308  # finite entry, overflowing sum
    rho[9, 7, 7] = 1e308
    got = npt_mask(rho, backend="compiled")
    np.testing.assert_array_equal(got, npt_mask(rho, backend="numpy"))
    assert got[3, 0]  # a NaN in cut 1|23's lower triangle fails it (an infinite pivot need not)
    assert not got[np.setdiff1d(np.arange(100), [3, 5, 7, 9])].any()


def test_kernel_for_two_qubits_matches_partial_transpose():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if npt_compiled.kernel(2) is None:
            pytest.skip(f"compiled NPT kernel unavailable: {npt_compiled.failure(2)}")
    rng = np.random.default_rng(4)
    rho = near_boundary(2, 3000, rng)
    lam = np.linalg.eigvalsh(partial_transpose(rho, [0]))[:, 0]
    mask = assert_backends_agree(rho)
    away = np.abs(lam + PPT_TOL) > BAND
    np.testing.assert_array_equal(mask[away, 0], (lam < -PPT_TOL)[away])


# ------------------------------------------------------------------------------ labelers
def test_labelers_npt_stage_on_the_compiled_backend(compiled3, monkeypatch):
    """The labelers call npt_mask without a backend: QEFRAME_NPT_BACKEND=compiled gives them the
    compiled kernel, with the same labels, provenance and kept rows as the numpy path (these
    states are far from the threshold on every cut)."""
    rng = np.random.default_rng(8)
    rho = np.concatenate(
        [mixtures(3, 300, rng, rank=2), mixtures(3, 300, rng, rank=8) * 0.2 + np.eye(8) * 0.1]
    )
    assert (np.abs(pt_min_eigenvalues(rho) + PPT_TOL) > 1e-6).all()
    assert_labelers_match_numpy(
        monkeypatch, rho, "compiled", npt_compiled, "not_positive_definite", exact_evidence=False
    )
