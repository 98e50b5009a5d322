"""Tests of the SDP-free DPS-2 extension certificate (``qeframe_plugins.baselines._dps_extension``).

The maps are checked against the qubit helpers of :mod:`qeframe.quantum.ops` (partial trace and
partial transposes of the lifted extension), the verification against perturbed and mismatched
candidates, and the whole certificate against the visibility SDP on the same states: Horodecki
2x4 states (PPT entangled, ``p*`` 0.97-0.998) are never certified and stay proved entangled by
DPS-2; separable mixtures are certified and their SDP is skipped; the certificate's margin is the
SDP's (a certificate at a larger margin than ``1 - p*`` exists, one at a smaller margin does not).
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
from qeframe_plugins.baselines import _dps_extension as ext
from qeframe_plugins.families.horodecki import horodecki_states
from qeframe_plugins.labelers import certified as certified_module
from qeframe_plugins.labelers.certified import CertifiedLabeler

from qeframe.quantum.ops import partial_trace, partial_transpose

needs_cvxpy = pytest.mark.skipif(
    importlib.util.find_spec("cvxpy") is None, reason="needs cvxpy: pip install 'qeframe[certify]'"
)
MARGIN = 1e-3


def random_hermitian(count: int, k: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((count, k, k)) + 1j * rng.standard_normal((count, k, k))
    return 0.5 * (g + g.conj().transpose(0, 2, 1))


def ab_blocks(rho: np.ndarray, cut: int = 0) -> np.ndarray:
    from qeframe.quantum.cuts import bipartitions

    return _dps.cut_blocks(rho, bipartitions(3)[cut])


# ---------------------------------------------------------------------------------------- the maps
@pytest.mark.parametrize("d_a, d_b", [(2, 2), (2, 4), (4, 4), (2, 8)])
def test_maps_match_the_qubit_partial_trace_and_transposes(d_a, d_b):
    maps = ext.extension_maps(d_a, d_b)
    a, b = d_a.bit_length() - 1, d_b.bit_length() - 1  # qubits of A (= of A') and of B
    y = random_hermitian(3, maps.k, np.random.default_rng(d_a * d_b))
    x = maps.lift(y)
    a_prime, side_b = list(range(a, 2 * a)), list(range(2 * a, 2 * a + b))
    keep = list(range(a)) + side_b
    np.testing.assert_allclose(maps.marginal(y), partial_trace(x, keep), atol=1e-12)
    np.testing.assert_allclose(maps.pt_x(x), partial_transpose(x, a_prime), atol=1e-12)
    np.testing.assert_allclose(maps.lift(maps.pt_y(y)), partial_transpose(x, side_b), atol=1e-12)
    np.testing.assert_allclose(maps.lower(x), y, atol=1e-12)  # V is an isometry
    np.testing.assert_allclose(maps.lin @ maps.pinv, np.eye(maps.lin.shape[0]), atol=1e-12)  # L onto
    m, d = len(y), d_a * d_b
    np.testing.assert_allclose(maps.marginal(y), (y.reshape(m, -1) @ maps.lin.T).reshape(m, d, d), atol=1e-12)
    sigma = partial_trace(maps.lift(random_hermitian(m, maps.k, np.random.default_rng(1))), keep)
    by_pinv = y - ((maps.marginal(y) - sigma).reshape(m, -1) @ maps.pinv.T).reshape(y.shape)
    np.testing.assert_allclose(maps.project_affine(y, sigma), by_pinv, atol=1e-12)  # closed-form inverse


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-12, 1e3))
def test_kappa_bounds_the_correction_and_projection_is_exact(seed, scale):
    maps = ext.extension_maps(2, 4)
    rng = np.random.default_rng(seed)
    r = scale * random_hermitian(1, 8, rng)
    dy = (r.reshape(1, -1) @ maps.pinv.T).reshape(1, maps.k, maps.k)
    assert np.linalg.norm(dy) <= maps.kappa * np.linalg.norm(r) * (1 + 1e-12)
    y = maps.project_affine(random_hermitian(1, maps.k, rng), r)
    np.testing.assert_allclose(maps.marginal(y), r, atol=1e-12 * max(1.0, scale))


# ----------------------------------------------------------------------------- the verification
def _certified_candidate(rho_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray, ext.ExtensionMaps]:
    """A verified extension ``Y`` of the target of ``rho_ab``, found by the search's own steps."""
    maps = ext.extension_maps(2, 4)
    sigma = ext.target(rho_ab, MARGIN)
    y = maps.project_affine(np.zeros((len(sigma), maps.k, maps.k), complex), sigma)
    eps = 1e-3
    for _ in range(200):
        if ext.verify_extensions(y, sigma, maps).all():
            return y, sigma, maps
        y = maps.project_affine(ext._clip(y, eps), sigma)
        y = maps.project_affine(maps.pt_y(ext._clip(maps.pt_y(y), eps)), sigma)
        y = maps.project_affine(maps.lower(maps.pt_x(ext._clip(maps.pt_x(maps.lift(y)), eps))), sigma)
    raise AssertionError("no extension found for a near-maximally-mixed separable state")


def test_verification_rejects_perturbed_or_mismatched_candidates():
    rng = np.random.default_rng(11)
    rho = 0.5 * separable_mixtures(4, 3, 8, rng) + 0.5 * np.eye(8) / 8
    y, sigma, maps = _certified_candidate(ab_blocks(rho))
    margins = ext.extension_margins(y, sigma, maps)
    assert (margins >= ext.EXTENSION_TOL).all()
    # raising every eigenvalue by c (Y + c I) moves the marginal by c (d_A + 1)/2 I: the residual
    # term outweighs the gain, so breaking the marginal never helps a candidate through
    c = 2 * margins[:, None, None]
    raised = ext.extension_margins(y + c * np.eye(maps.k), sigma, maps)
    assert (raised < margins - 2 * c[:, 0, 0]).all() and (raised < 0).all()
    # the marginal constraint is checked: the same Y does not certify another state's target
    other = np.roll(sigma, 1, axis=0)
    assert not ext.verify_extensions(y, other, maps).any()
    # non-finite candidates and a non-positive tolerance
    nan = y.copy()
    nan[0, 0, 0] = np.nan
    assert ext.extension_margins(nan, sigma, maps)[0] == -np.inf
    with pytest.raises(ValueError, match="tol"):
        ext.verify_extensions(y, sigma, maps, tol=0.0)
    # non-finite states are never certified (and do not stop the others)
    bad = ab_blocks(rho).copy()
    bad[1, 0, 0], bad[2, 0, 1] = np.nan, np.inf
    found, bad_margins = ext.extension_certificates(bad, 2, MARGIN)
    assert found.tolist() == [True, False, False, True] and np.isneginf(bad_margins[1:3]).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), t=st.floats(0.0, 0.2))
def test_margin_bounds_every_cone_computed_independently(seed, t):
    """Along a direction that keeps the marginal (the kernel of L), the proved margin never exceeds
    the smallest eigenvalue of Y, of X^{T_B} on the Bose subspace or of X^{T_A'}, each computed with
    the qubit helpers of qeframe.quantum.ops; dropping any cone from the check breaks this."""
    rng = np.random.default_rng(seed)
    rho = 0.6 * separable_mixtures(2, 3, 8, rng) + 0.4 * np.eye(8) / 8
    y, sigma, maps = _certified_candidate(ab_blocks(rho))
    b = random_hermitian(2, maps.k, rng)
    kernel = maps.project_affine(b, np.zeros_like(sigma))  # L(kernel) = 0
    kernel /= np.linalg.norm(kernel.reshape(2, -1), axis=1)[:, None, None]
    y_t = y + t * kernel
    x = maps.lift(y_t)
    cones = np.stack(
        [
            np.linalg.eigvalsh(y_t)[:, 0],
            np.linalg.eigvalsh(maps.lower(partial_transpose(x, [2, 3])))[:, 0],
            np.linalg.eigvalsh(partial_transpose(x, [1]))[:, 0],
        ]
    )
    margins = ext.extension_margins(y_t, sigma, maps)
    assert (margins <= cones.min(axis=0)).all()
    assert (margins >= cones.min(axis=0) - 1e-10).all()  # the marginal is exact: only rounding is charged


def test_singular_targets_are_never_certified():
    """A rank-deficient target has no extension with a positive margin: margin 0 on a state of
    rank 4 (every candidate fails), and the certificate refuses a margin of 0 outright."""
    rng = np.random.default_rng(5)
    rho = separable_mixtures(20, 3, 4, rng)
    maps = ext.extension_maps(2, 4)
    sigma = ext.target(ab_blocks(rho), 0.0)
    found, margins = ext.find_extensions(sigma, maps)
    assert not found.any() and (margins < ext.EXTENSION_TOL).all()
    with pytest.raises(ValueError, match="margin"):
        ext.extension_certificates(ab_blocks(rho), 2, 0.0)


# --------------------------------------------------------------------- against the DPS-2 SDP
@settings(max_examples=25, deadline=None)
@given(b=st.floats(0.02, 0.98))
def test_horodecki_ppt_cut_is_never_certified(b):
    """P. Horodecki's 2x4 states are PPT entangled with p* < 1 - 1e-3 on cut 1|23: no extension."""
    rho = horodecki_states(np.array([b]), 3)
    found, margins = ext.extension_certificates(ab_blocks(rho), 2, MARGIN)
    assert not found.any() and margins[0] < 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), terms=st.integers(8, 16), noise=st.floats(0.05, 0.5))
def test_full_rank_separable_mixtures_are_certified(seed, terms, noise):
    rng = np.random.default_rng(seed)
    rho = (1 - noise) * separable_mixtures(3, 3, terms, rng) + noise * np.eye(8) / 8
    for cut in range(3):
        found, margins = ext.extension_certificates(ab_blocks(rho, cut), 2, MARGIN)
        assert found.all(), margins


@needs_cvxpy
def test_certificate_agrees_with_the_sdp_margin():
    """At b = 0.9 the SDP gives p* ~ 0.99: an extension exists for margins above 1 - p*, none below."""
    rho = horodecki_states(np.array([0.9]), 3)
    p_star, ok, _ = _dps.dps2_visibility(ab_blocks(rho)[0], d_a=2)
    assert ok and 0.9 < p_star < 1 - MARGIN
    gap = 1 - p_star
    below, _ = ext.extension_certificates(ab_blocks(rho), 2, 0.5 * gap)
    above, _ = ext.extension_certificates(ab_blocks(rho), 2, 2.0 * gap)
    assert not below.any() and above.all()


@needs_cvxpy
def test_dps2_batch_skips_certified_cuts_and_keeps_every_sdp_decision(monkeypatch):
    rng = np.random.default_rng(8)
    rho = np.concatenate(
        [
            horodecki_states(np.array([0.3, 0.7]), 3),
            0.7 * separable_mixtures(3, 3, 10, rng) + 0.3 / 8 * np.eye(8),
        ]
    )
    jobs = [(i, 0) for i in range(5)]
    off = _dps.dps2_batch(rho, jobs, _dps.DpsSettings(extension=False), workers=1, progress=False)
    on = _dps.dps2_batch(rho, jobs, workers=1, progress=False)
    np.testing.assert_array_equal(on.decisions(MARGIN), off.decisions(MARGIN))
    np.testing.assert_array_equal(on.extended, [False, False, True, True, True])
    assert (on.decisions(MARGIN)[:2] == 1).all()  # Horodecki: still proved by the SDP
    assert (off.p_star[2:] >= 1 - MARGIN).all() and (on.p_star[2:] == 1 - MARGIN).all()
    assert (on.seconds[2:] == 0).all() and (on.extension_margin[2:] >= ext.EXTENSION_TOL).all()
    # certified cuts need no cvxpy at all; the others report the missing dependency
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    bare = _dps.dps2_batch(rho, jobs, workers=1, progress=False)
    np.testing.assert_array_equal(bare.decisions(MARGIN), [-1, -1, 0, 0, 0])
    assert "cvxpy is not installed" in bare.reasons[0] and bare.reasons[2] == ""


@needs_cvxpy
def test_certified_labeler_labels_are_unchanged_and_reasons_say_why(monkeypatch):
    rng = np.random.default_rng(9)
    rho = np.concatenate(
        [horodecki_states(np.array([0.5]), 3), 0.8 * separable_mixtures(2, 3, 10, rng) + 0.025 * np.eye(8)]
    )
    params = CertifiedLabeler.Params(
        progress=False, workers=1, realignment=False, witnesses=(), spectrum=False
    )
    on = CertifiedLabeler(params).certify(rho)

    def no_extension(**kwargs):
        return _dps.DpsSettings(extension=False, **kwargs)

    monkeypatch.setattr(certified_module, "DpsSettings", no_extension)
    off = CertifiedLabeler(params).certify(rho)
    np.testing.assert_array_equal(on.labels, off.labels)
    np.testing.assert_array_equal(on.provenance, off.provenance)
    assert on.provenance_names()[0, 0] == "dps2"
    skipped = np.char.find(on.reasons.astype(str), "without an SDP") >= 0
    assert skipped.any() and (on.labels[skipped] == -1).all()
    assert (on.evidence[skipped] == 1 - MARGIN).all() and (off.evidence[skipped] >= 1 - MARGIN).all()


@pytest.mark.parametrize("n", [2, 4])
def test_other_sizes_separable_certified_and_pure_entangled_never(n):
    """Every cut of 2 and 4 qubits (including the 4 x 4 cut 12|34): noisy separable mixtures are
    certified; Haar-random pure states (NPT by a wide margin on every cut) never are."""
    from qeframe.quantum.cuts import bipartitions
    from qeframe.quantum.ops import pure_density
    from qeframe.quantum.random import haar_state

    rng = np.random.default_rng(n)
    d = 2**n
    separable = 0.8 * separable_mixtures(6, n, 2 * d, rng) + 0.2 * np.eye(d) / d
    entangled = pure_density(haar_state(d, 2, rng))
    for cut in bipartitions(n):
        d_a = 2 ** len(cut.side_a)
        assert ext.extension_certificates(_dps.cut_blocks(separable, cut), d_a, MARGIN)[0].all()
        assert not ext.extension_certificates(_dps.cut_blocks(entangled, cut), d_a, MARGIN)[0].any()
