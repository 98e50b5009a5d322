"""Tests of the classical baselines ``ppt``, ``ccnr`` and ``dps2`` (and the shared DPS-2 SDP).

Physics is checked against closed forms: Bell/GHZ states, products, the Horodecki 2x4 PPT
entangled state, the 3-qubit "Shifts" UPB state (separable across every cut), the 3x3 "Tiles"
UPB state (bound entangled; realignment detects it), and a direct-loop realignment oracle.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ppt_states import separable_mixtures
from qeframe_plugins.baselines import _dps
from qeframe_plugins.baselines.ccnr import CcnrBaseline, realign, realign_bipartite, realignment_norms
from qeframe_plugins.baselines.dps2 import Dps2Baseline
from qeframe_plugins.baselines.ppt import PptBaseline
from qeframe_plugins.families.horodecki import horodecki_states
from qeframe_plugins.families.upb import upb_state

from qeframe.plugin.registry import get_registry
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.ops import apply_local_unitaries, batch_kron, permute_qubits, pure_density
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.random import haar_state, haar_unitary


#: SDP tests need the optional extra ``qeframe[certify]`` (CI installs only ``qeframe[test]``).
def _has_cvxpy() -> bool:
    try:
        return importlib.util.find_spec("cvxpy") is not None
    except ValueError:  # sys.modules["cvxpy"] is None: import blocked
        return False


needs_cvxpy = pytest.mark.skipif(not _has_cvxpy(), reason="needs cvxpy: pip install 'qeframe[certify]'")


# ------------------------------------------------------------------------------------------ states
def ghz(n: int) -> np.ndarray:
    psi = np.zeros(2**n)
    psi[[0, -1]] = 2**-0.5
    return np.outer(psi, psi).astype(np.complex128)


def random_mixed(count: int, n: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    d = 2**n
    k = rank or d
    g = rng.standard_normal((count, d, k)) + 1j * rng.standard_normal((count, d, k))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.trace(rho, axis1=1, axis2=2).real[:, None, None]


def tiles_state() -> np.ndarray:
    """Bennett et al.'s "Tiles" UPB bound entangled state on C^3 ⊗ C^3 (PPT, entangled)."""
    e = np.eye(3)
    vectors = [
        np.kron(e[0], (e[0] - e[1]) / np.sqrt(2)),
        np.kron((e[0] - e[1]) / np.sqrt(2), e[2]),
        np.kron(e[2], (e[1] - e[2]) / np.sqrt(2)),
        np.kron((e[1] - e[2]) / np.sqrt(2), e[0]),
        np.kron(e.sum(0), e.sum(0)) / 3,
    ]
    return ((np.eye(9) - sum(np.outer(v, v) for v in vectors)) / 4).astype(np.complex128)


# ------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("name, cls", [("ppt", PptBaseline), ("ccnr", CcnrBaseline), ("dps2", Dps2Baseline)])
def test_baselines_are_registered_plugins(name, cls):
    reg = get_registry()
    info = reg.info("baseline", name)
    assert info.cls is cls and info.kind == "baseline"
    assert isinstance(reg.create("baseline", name, {}), cls)


def test_baseline_params_are_validated():
    from qeframe.errors import SpecError

    with pytest.raises(SpecError, match="margin"):
        get_registry().create("baseline", "dps2", {"margin": 2.0})
    with pytest.raises(SpecError, match="unknown key"):
        get_registry().create("baseline", "ccnr", {"bogus": 1})


# ------------------------------------------------------------------------------------------ ppt
def test_ppt_baseline_matches_eigenvalues():
    rng = np.random.default_rng(0)
    rho = np.concatenate(
        [random_mixed(200, 3, rng), random_mixed(200, 3, rng, rank=1), separable_mixtures(50, 3, 3, rng)]
    )
    pred = PptBaseline().predict(rho)
    assert pred.dtype == np.int8 and pred.shape == (450, 3)
    np.testing.assert_array_equal(pred, (pt_min_eigenvalues(rho) < -1e-10).astype(np.int8))
    assert (pred[-50:] == 0).all()  # separable states are PPT


def test_ppt_baseline_matches_qiskit_negativity():
    """Oracle: qiskit's negativity (qeframe qubit k = qiskit qubit k; see qiskit_interop)."""
    from qiskit.quantum_info import negativity

    from qeframe.quantum.qiskit_interop import to_qiskit

    rng = np.random.default_rng(10)
    rho = np.concatenate([random_mixed(6, 4, rng), random_mixed(6, 4, rng, rank=1), tb_ghz_noisy(4)])
    pred = PptBaseline().predict(rho)
    for m in range(len(rho)):
        state = to_qiskit(rho[m])
        for cut in bipartitions(4):
            neg = negativity(state, list(cut.side_a))
            assert pred[m, cut.index] == int(neg > 1e-9), (m, cut.name, neg)


def tb_ghz_noisy(n: int) -> np.ndarray:
    """GHZ with white noise at visibilities around the NPT threshold 1/(1 + 2**(n-1))."""
    threshold = 1 / (1 + 2 ** (n - 1))
    v = np.array([0.5 * threshold, 2 * threshold])
    return v[:, None, None] * ghz(n) + (1 - v)[:, None, None] * np.eye(2**n) / 2**n


def test_ppt_baseline_on_closed_forms():
    b = np.array([0.1, 0.5, 0.9])
    np.testing.assert_array_equal(PptBaseline().predict(horodecki_states(b)), [[0, 1, 1]] * 3)
    np.testing.assert_array_equal(PptBaseline().predict(ghz(4)[None]), np.ones((1, n_cuts(4))))
    np.testing.assert_array_equal(PptBaseline().predict(upb_state()[None]), [[0, 0, 0]])


# ------------------------------------------------------------------------------------------ ccnr
def realign_loops(rho: np.ndarray, d_a: int, d_b: int) -> np.ndarray:
    """Oracle: the definition R[(i k), (j l)] = rho[(i j), (k l)] with explicit loops (one matrix)."""
    r = np.zeros((d_a * d_a, d_b * d_b), dtype=rho.dtype)
    for i in range(d_a):
        for k in range(d_a):
            for j in range(d_b):
                for l in range(d_b):
                    r[i * d_a + k, j * d_b + l] = rho[i * d_b + j, k * d_b + l]
    return r


@pytest.mark.parametrize("n", [2, 3, 4])
def test_realign_matches_definition_on_every_cut(n):
    rng = np.random.default_rng(n)
    rho = random_mixed(3, n, rng)
    for cut in bipartitions(n):
        d_a, d_b = 2 ** len(cut.side_a), 2 ** len(cut.side_b)
        ordered = permute_qubits(rho, list(cut.side_a) + list(cut.side_b))
        got = realign(rho, cut)
        assert got.shape == (3, d_a * d_a, d_b * d_b)
        np.testing.assert_array_equal(got, realign_bipartite(ordered, d_a, d_b))
        for m in range(3):
            np.testing.assert_array_equal(got[m], realign_loops(ordered[m], d_a, d_b))


def test_realignment_of_products_and_maximally_entangled_states():
    rng = np.random.default_rng(1)
    a, b = random_mixed(5, 1, rng), random_mixed(5, 2, rng)
    prod = batch_kron(a, b)
    r = realign(prod, bipartitions(3)[0])
    # R(a ⊗ b) = vec(a) vec(b)^T: rank one with trace norm ||a||_2 ||b||_2 <= 1
    np.testing.assert_allclose(r, a.reshape(5, 4, 1) * b.reshape(5, 1, 16), atol=1e-15)
    np.testing.assert_allclose(
        realignment_norms(prod)[:, 0], np.linalg.norm(a, axis=(1, 2)) * np.linalg.norm(b, axis=(1, 2))
    )
    # a maximally entangled state of Schmidt rank 2 has ||R||_1 = 2 across each cut
    np.testing.assert_allclose(realignment_norms(ghz(3)[None]), [[2.0, 2.0, 2.0]], atol=1e-12)
    np.testing.assert_allclose(realignment_norms(ghz(2)[None]), [[2.0]], atol=1e-12)
    np.testing.assert_array_equal(CcnrBaseline().predict(ghz(4)[None]), np.ones((1, 7)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_realignment_norm_is_local_unitary_invariant(seed):
    """R(U_A ⊗ U_B rho ...) = (U_A ⊗ conj U_A) R (U_B ⊗ conj U_B)^T: the trace norm is invariant."""
    rng = np.random.default_rng(seed)
    rho = random_mixed(4, 3, rng)
    us = haar_unitary(2, 4 * 3, rng).reshape(4, 3, 2, 2)
    np.testing.assert_allclose(
        realignment_norms(apply_local_unitaries(rho, us)), realignment_norms(rho), atol=1e-12
    )


def test_ccnr_never_detects_separable_states():
    rng = np.random.default_rng(2)
    for rho in (separable_mixtures(200, 3, 4, rng), separable_mixtures(50, 4, 3, rng), np.eye(16)[None] / 16):
        assert (realignment_norms(rho) <= 1 + 1e-12).all()
        assert (CcnrBaseline().predict(rho) == 0).all()


def test_ccnr_detects_the_tiles_upb_bound_entangled_state():
    """Literature (Chen & Wu, QIC 3, 193 (2003); Rudolph 2003): ||R||_1 ≈ 1.087 > 1 although PPT."""
    rho = tiles_state()
    pt = rho.reshape(3, 3, 3, 3).transpose(2, 1, 0, 3).reshape(9, 9)
    assert np.linalg.eigvalsh(pt).min() > -1e-12  # PPT
    norm = np.linalg.svd(realign_bipartite(rho, 3, 3)[0], compute_uv=False).sum()
    assert norm == pytest.approx(1.0874, abs=1e-4)


def test_ccnr_on_upb_shifts_state_is_silent_on_every_cut():
    """The Shifts state is separable across every cut (entangled only multipartitely): CCNR, a
    bipartite necessary condition, must not fire; numerically ||R||_1 = 0.8283 on each cut."""
    norms = realignment_norms(upb_state()[None])
    np.testing.assert_allclose(norms, [[0.8283, 0.8283, 0.8283]], atol=1e-4)
    np.testing.assert_array_equal(CcnrBaseline().predict(upb_state()[None]), [[0, 0, 0]])


def test_ccnr_on_horodecki_state_misses_the_ppt_cut():
    """Numerical observation (verified here, not a literature claim): the realignment criterion
    does not detect the Horodecki 2x4 state on its PPT cut 1|23 (||R||_1 ≈ 0.79–0.95 for b in
    [0.05, 0.95]); on the NPT cuts it fires only for small b."""
    b = np.array([0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95])
    norms = realignment_norms(horodecki_states(b))
    assert (norms[:, 0] < 0.96).all()
    np.testing.assert_array_equal(CcnrBaseline().predict(horodecki_states(b))[:, 0], 0)
    np.testing.assert_array_equal(CcnrBaseline().predict(horodecki_states(np.array([0.05]))), [[0, 1, 1]])


# ------------------------------------------------------------------------------------------ dps2
def test_symmetric_isometry():
    for d in (2, 3, 4):
        v = _dps.symmetric_isometry(d)
        assert v.shape == (d * d, d * (d + 1) // 2)
        np.testing.assert_allclose(v.T @ v, np.eye(v.shape[1]), atol=1e-15)
        swap = np.eye(d * d).reshape(d, d, d, d).transpose(1, 0, 2, 3).reshape(d * d, d * d)
        np.testing.assert_allclose(v @ v.T, (np.eye(d * d) + swap) / 2, atol=1e-15)


def test_dps2_npt_cuts_need_no_sdp(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("an SDP was requested for an NPT cut")

    monkeypatch.setattr("qeframe_plugins.baselines.dps2.dps2_batch", boom)
    rng = np.random.default_rng(3)
    rho = np.concatenate([ghz(3)[None], pure_density(haar_state(8, 20, rng))])
    assert (PptBaseline().predict(rho) == 1).all()
    np.testing.assert_array_equal(Dps2Baseline().predict(rho), np.ones((21, 3), np.int8))


@needs_cvxpy
def test_dps2_detects_horodecki_ppt_cut():
    pred = Dps2Baseline(Dps2Baseline.Params(workers=1, progress=False)).predict(
        horodecki_states(np.array([0.5]))
    )
    np.testing.assert_array_equal(pred, [[1, 1, 1]])


@needs_cvxpy
def test_dps2_visibility_values_for_horodecki():
    """p* on the PPT cut: about 0.9777 at b = 0.5 (high-accuracy reference 0.977659), < 1 - 1e-3."""
    p_star, ok, reason = _dps.dps2_visibility(horodecki_states(np.array([0.5]))[0], d_a=2)
    assert ok and reason == ""
    assert p_star == pytest.approx(0.977659, abs=2e-5)


@pytest.mark.slow
@needs_cvxpy
def test_dps2_separable_states_are_not_detected():
    rng = np.random.default_rng(4)
    rho = separable_mixtures(2, 3, 6, rng)
    pred = Dps2Baseline(Dps2Baseline.Params(progress=False)).predict(rho)
    np.testing.assert_array_equal(pred, np.zeros((2, 3), np.int8))


@pytest.mark.slow
@needs_cvxpy
def test_dps2_results_do_not_depend_on_workers():
    rho = np.concatenate([horodecki_states(np.array([0.2, 0.8])), np.eye(8)[None] / 8 + 0j])
    jobs = [(i, c) for i in range(3) for c in range(3)]
    one = _dps.dps2_batch(rho, jobs, workers=1, progress=False)
    two = _dps.dps2_batch(rho, jobs, workers=2, progress=False)
    np.testing.assert_array_equal(one.p_star, two.p_star)
    assert one.ok.all() and two.ok.all()


def test_dps2_missing_cvxpy_gives_no_answer_with_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvxpy", None)  # `import cvxpy` now raises ImportError
    assert "pip install 'qeframe[certify]'" in _dps.missing_dependency("SCS")
    rho = np.concatenate([horodecki_states(np.array([0.5])), ghz(3)[None]])
    with pytest.warns(RuntimeWarning, match=r"qeframe\[certify\]"):
        pred = Dps2Baseline(Dps2Baseline.Params(progress=False)).predict(rho)
    np.testing.assert_array_equal(pred, [[-1, 1, 1], [1, 1, 1]])  # NPT cuts need no solver
    with pytest.raises(_dps.MissingDependencyError, match="certify"):
        _dps.require_solver("SCS")
    p_star, ok, reason = _dps.dps2_visibility(rho[0], d_a=2)
    assert not ok and np.isnan(p_star) and "cvxpy is not installed" in reason


@needs_cvxpy
def test_dps2_solver_failure_is_never_entangled(monkeypatch):
    """A solver that returns garbage or raises yields -1 (no answer), never 1."""

    def failing_solve(self, rho_ab):
        return float("nan"), False, "solver SCS returned status 'infeasible'"

    monkeypatch.setattr(_dps._Problem, "solve", failing_solve)
    with pytest.warns(RuntimeWarning, match="without an answer"):
        pred = Dps2Baseline(Dps2Baseline.Params(workers=1, progress=False)).predict(
            horodecki_states(np.array([0.5]))
        )
    np.testing.assert_array_equal(pred, [[-1, 1, 1]])

    def raising_solve(self, rho_ab):
        raise RuntimeError("segfault-ish")

    monkeypatch.setattr(_dps._Problem, "solve", raising_solve)
    out = _dps.dps2_batch(horodecki_states(np.array([0.5])), [(0, 0)], workers=1, progress=False)
    assert not out.ok[0] and "RuntimeError" in out.reasons[0]
    np.testing.assert_array_equal(out.decisions(1e-3), [-1])
