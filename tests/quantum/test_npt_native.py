"""The native NPT kernel (qeframe.quantum.npt_native) against the numpy path and eigvalsh.

Both run the float64 Cholesky test of ``rho^{T_A} + tol I`` with different rounding (numpy's
complex multiply may fuse multiply-adds, the C loop does not), so they must agree exactly on every
cut whose ``lambda_min(rho^{T_A}) + tol`` is farther from 0 than the rounding band
(``npt_rounding_bound``, about 1e-15 here; the tests allow 1e-13 for eigvalsh's own error), and
both must be right there. The tests that need the kernel skip where it cannot be built (no C
compiler); the build, cache and fallback tests build into temporary directories.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ppt_states import assert_labelers_match_numpy, ghz_at_threshold, mixtures, near_boundary, shifted_to

from qeframe.quantum import npt_native, ppt
from qeframe.quantum.ppt import PPT_TOL, npt_backend, npt_mask, pt_min_eigenvalues

#: Cuts closer than this to the threshold may differ between backends (eigvalsh's error included).
BAND = 1e-13


@pytest.fixture(scope="module")
def native():
    """The kernel, built (or loaded from the user cache) once per session; skip where it cannot be."""
    fn = npt_native.library()
    if fn is None:
        pytest.skip(f"native NPT kernel unavailable: {npt_native.failure()}")
    return fn


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process state with no kernel loaded, building into an empty cache directory."""
    monkeypatch.setattr(npt_native, "_state", {})
    monkeypatch.setenv(npt_native.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def assert_backends_agree(rho: np.ndarray, tol: float = PPT_TOL, workers: int = 1) -> np.ndarray:
    """native == numpy and == eigvalsh outside the band; returns the native mask."""
    lam = pt_min_eigenvalues(rho)
    away = np.abs(lam + tol) > BAND * max(1.0, float(np.abs(rho).max(initial=0.0)))
    numpy_mask = npt_mask(rho, tol=tol, backend="numpy", workers=workers)
    native_mask = npt_mask(rho, tol=tol, backend="native", workers=workers)
    np.testing.assert_array_equal(native_mask[away], numpy_mask[away])
    np.testing.assert_array_equal(native_mask[away], (lam < -tol)[away])
    return native_mask


# ------------------------------------------------------------------------------ backend choice
def test_native_is_the_default_where_it_builds(native, monkeypatch):
    monkeypatch.delenv(ppt.NPT_BACKEND_ENV, raising=False)
    for n in (2, 3, 4, 7):
        assert npt_backend(n, 10) == "native"
    assert npt_backend(3, 10, "mixed") == "mixed"
    assert npt_backend(3, 10, "numpy") == "numpy"
    monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "mixed")
    assert npt_backend(3, 10**9) == "mixed"
    monkeypatch.setenv(ppt.NPT_BACKEND_ENV, "native")
    assert npt_backend(3, 1) == "native"


def test_no_compiler_falls_back_to_mixed(fresh, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/qeframe-cc")
    rho = near_boundary(3, 200, np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto falls back silently
        assert npt_backend(3, 10) == "mixed"
    assert npt_native.failure() == "RuntimeError: no C compiler (/nonexistent/qeframe-cc not found)"
    with pytest.warns(RuntimeWarning, match=r"no C compiler .*\); using the numpy path"):
        got = npt_mask(rho, backend="native")
    np.testing.assert_array_equal(got, npt_mask(rho, backend="numpy"))
    assert npt_backend(7, 10, "native") == "numpy"  # beyond the mixed screen's sizes
    assert not fresh.exists()


def test_compile_error_falls_back(fresh, monkeypatch):
    monkeypatch.setattr(npt_native, "SOURCE", npt_native.SOURCE + "\n#error qeframe test\n")
    if npt_native._compiler() is None:
        pytest.skip("no C compiler")
    assert npt_native.library() is None
    assert "failed" in npt_native.failure() and "qeframe test" in npt_native.failure()
    assert npt_backend(3, 10) == "mixed"
    assert not list(fresh.glob("*.so"))  # nothing half-written left under the library's name


# ------------------------------------------------------------------------------ build and cache
def test_build_once_then_load_from_the_cache(native, fresh):
    fn = npt_native.library()
    assert fn is not None and npt_native.failure() is None
    (lib,) = fresh.glob("npt_native-*")
    assert lib == npt_native.library_path(npt_native._compiler())
    assert not [p for p in fresh.iterdir() if p != lib]  # the temporary build directory is gone
    stamp = lib.stat().st_mtime_ns
    npt_native._state.clear()
    assert npt_native.library() is not None  # a new process: loads, does not rebuild
    assert lib.stat().st_mtime_ns == stamp
    rho = near_boundary(3, 100, np.random.default_rng(1))
    np.testing.assert_array_equal(npt_mask(rho, backend="native"), npt_mask(rho, backend="numpy"))


def test_damaged_library_is_rebuilt(native, fresh):
    """A file under the library's name that does not load (left by another process) is replaced
    by a fresh build (a new file, renamed over it: a copy mapped by a running process stays)."""
    lib = npt_native.library_path(npt_native._compiler())
    fresh.mkdir()
    lib.write_bytes(b"not a shared library")
    assert npt_native.library() is not None
    assert lib.read_bytes()[:4] == b"\x7fELF" or not lib.read_bytes().startswith(b"not ")


def test_unwritable_cache_directory_uses_a_private_temporary_one(native, fresh, monkeypatch):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        blocker = fresh.parent / "file"  # root writes anywhere: make the cache path impossible
        blocker.write_text("")
        monkeypatch.setenv(npt_native.CACHE_ENV, str(blocker / "cache"))
    else:
        fresh.mkdir()
        fresh.chmod(0o500)
    monkeypatch.setattr(npt_native.tempfile, "tempdir", str(fresh.parent))
    assert npt_native.library() is not None
    private = fresh.parent / f"qeframe-native-{os.getuid()}"
    assert list(private.glob("npt_native-*"))
    assert private.stat().st_mode & 0o777 == 0o700


def test_concurrent_builds_into_one_cache(native, tmp_path):
    """Processes that start on a machine without the library build it at the same time (data
    builds, pytest-xdist): each renames its own complete copy into place, and all load it."""
    code = (
        "from qeframe.quantum import npt_native; import sys; "
        "sys.exit(0 if npt_native.library() is not None else f'failed: {npt_native.failure()}')"
    )
    env = {**os.environ, npt_native.CACHE_ENV: str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE) for _ in range(3)
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert [p.name for p in tmp_path.iterdir()] == [npt_native.library_path(npt_native._compiler()).name]


def test_cache_key_depends_on_source_and_compiler(monkeypatch):
    a = npt_native.library_path("cc")
    assert npt_native.library_path("gcc") != a
    monkeypatch.setattr(npt_native, "SOURCE", npt_native.SOURCE + " ")
    assert npt_native.library_path("cc") != a


# ------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("workers", [1, 2])
def test_native_agrees_on_mixtures_and_near_boundary(native, workers):
    rng = np.random.default_rng(7)
    rho = np.concatenate([mixtures(3, 3000, rng), near_boundary(3, 3000, rng)])
    mask = assert_backends_agree(rho, workers=workers)
    assert 0.3 < mask.mean() < 0.95  # both NPT and PPT cuts present


@pytest.mark.parametrize("n", [2, 4, 5, 6])
def test_native_other_sizes(native, n):
    """d = 4 and 8 are unrolled, 16 and larger run the generic loop: all agree."""
    rng = np.random.default_rng(n)
    count = {2: 3000, 4: 600, 5: 120, 6: 24}[n]
    mask = assert_backends_agree(near_boundary(n, count, rng))
    assert mask.any() and not mask.all()


def test_native_identical_to_numpy_on_every_benchmark_like_cut(native):
    rng = np.random.default_rng(11)
    rho = near_boundary(3, 20000, rng)
    lam = pt_min_eigenvalues(rho)
    a, b = npt_mask(rho, backend="numpy"), npt_mask(rho, backend="native")
    assert not ((a != b) & (np.abs(lam + PPT_TOL) > BAND)).any()


@pytest.mark.parametrize("side", [-1, 1])
@pytest.mark.parametrize("offset", [1e-13, 1e-12])
def test_native_resolves_the_threshold(native, side, offset):
    """Noisy GHZ states with lambda_min(PT) = -tol + side*offset on every cut (exact by
    construction: (1-p)/d - p/2), rotated by Haar local unitaries."""
    rho = ghz_at_threshold(-PPT_TOL + side * offset, 203, np.random.default_rng(3))
    assert (npt_mask(rho, backend="native") == (side < 0)).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    rank=st.integers(1, 8),
    exponent=st.floats(-12.5, -1.0),
    side=st.sampled_from([-1.0, 1.0]),
    tol=st.sampled_from([PPT_TOL, 1e-6, 0.0]),
    scale=st.sampled_from([1.0, 1e-3, 7.5]),
)
def test_native_matches_numpy_and_eigvalsh_at_a_chosen_distance(
    native, seed, rank, exponent, side, tol, scale
):
    """States shifted by a multiple of the identity so that cut ``c``'s ``lambda_min(rho^{T_A})``
    sits at ``-tol + side * 10**exponent`` (times the scale): NPT exactly when ``side < 0``, and
    the same answers as numpy on every other cut outside the band."""
    rng = np.random.default_rng(seed)
    rho = mixtures(3, 61, rng, rank=rank) * scale  # 61: a tail of 5 after blocks of 8
    cut = int(rng.integers(3))
    target = -tol + side * 10.0**exponent * scale
    rho, lam_now = shifted_to(rho, cut, target)
    assert np.abs(lam_now[:, cut] - target).max() < 1e-14 * max(scale, 1.0)
    mask = assert_backends_agree(rho, tol=tol)
    decided = np.abs(lam_now[:, cut] + tol) > BAND * scale
    np.testing.assert_array_equal(mask[decided, cut], np.full(decided.sum(), side < 0))


# ------------------------------------------------------------------------------ edges
def test_chunks_tails_and_threads(native, monkeypatch):
    monkeypatch.setattr(npt_native, "CHUNK_STATES", 40)
    rng = np.random.default_rng(5)
    rho = near_boundary(3, 40 * 25 + 7, rng)
    for workers in (1, 2, 4):
        assert_backends_agree(rho, workers=workers)
    for count in (0, 1, 3, 8, 9):
        assert_backends_agree(rho[:count], workers=8)


def test_real_complex64_single_and_non_contiguous_input(native):
    rng = np.random.default_rng(9)
    rho = near_boundary(3, 300, rng)
    for x in (np.ascontiguousarray(rho.real), rho[::2], rho.astype(np.complex64), rho.transpose(0, 2, 1)):
        np.testing.assert_array_equal(npt_mask(x, backend="native"), npt_mask(x, backend="numpy"))
    assert npt_mask(rho[0], backend="native").shape == (1, 3)
    before = rho.copy()
    npt_mask(rho, backend="native")
    np.testing.assert_array_equal(rho, before)  # input untouched


def test_non_finite_rows_are_decided_by_numpy(native):
    rng = np.random.default_rng(2)
    rho = 0.1 * mixtures(3, 100, rng) + 0.9 * np.eye(8) / 8  # all PPT: lambda_min(PT) >= -0.05 + 0.1125
    rho[3, 2, 1] = np.nan
    rho[5, 0, 0] = np.inf
    rho[7, 4, 2] = -np.inf
    rho[9, 6, 6] = 1e308  # finite entries, an overflowing update
    rho[9, 7, 7] = 1e308
    rho[11, 0, 0] = -1.0  # fails at the first pivot of every cut, before the NaN below is read
    rho[11, 7, 6] = np.nan
    got = npt_mask(rho, backend="native")
    np.testing.assert_array_equal(got, npt_mask(rho, backend="numpy"))
    assert got[3, 0] and got[11].all()
    assert not got[np.setdiff1d(np.arange(100), [3, 5, 7, 9, 11])].any()
    raw = npt_native.not_positive_definite(native, np.ascontiguousarray(rho), PPT_TOL)
    assert raw.shape == (100, 4)
    assert raw[[3, 5, 7], 3].all() and not raw[11, 3]  # flagged rows; row 11 failed first
    assert not raw[np.setdiff1d(np.arange(100), [3, 5, 7, 9, 11]), 3].any()


# ------------------------------------------------------------------------------ labelers
def test_labelers_npt_stage_on_the_default_backend(native, monkeypatch):
    """The labelers call npt_mask without a backend, so they get the native kernel by default:
    the same labels, provenance, kept rows and evidence as with QEFRAME_NPT_BACKEND=numpy,
    near-threshold states included."""
    rng = np.random.default_rng(8)
    rho = np.concatenate([mixtures(3, 200, rng, rank=2), near_boundary(3, 200, rng)])
    assert_labelers_match_numpy(
        monkeypatch, rho, None, npt_native, "not_positive_definite", exact_evidence=True
    )
