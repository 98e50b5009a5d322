"""Block-positivity verification, LKCH witnesses, separability from spectrum and local filters.

The verifier is checked where the answer is known: decomposable operators (partial transposes of
positive matrices) and the flip are block-positive; ``-F``, ``1 - 2|00><00|`` and an LKCH operator
shifted past its product minimum are not. Its lower bound must never exceed a brute-force minimum
over random product vectors. Johnston's condition is checked against closed forms and, in the
direction that can be sampled, against random eigenbases. The filter invariances (PPT/NPT pattern,
ranks of every partial transpose, transport of witnesses) are property tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.families.horodecki import horodecki_states

from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import partial_transpose, permute_qubits, pure_density
from qeframe.quantum.ppt import npt_mask, pt_eigenvalues, pt_min_eigenvalues
from qeframe.quantum.random import apply_local_filters, haar_state, haar_unitary, random_local_filters
from qeframe.quantum.witness import (
    absolute_separability_margin,
    bloch_blocks,
    bloch_grid,
    kernel_projector,
    lkch_witness,
    load_witness_library,
    qubit_first,
    verify_block_positive,
    witness_values,
)

SEEDS = st.integers(0, 2**32 - 1)


def product_expectations(w: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``<e,f|W|e,f>`` for ``count`` random unit product vectors (qubit first)."""
    e = haar_state(2, count, rng)
    f = haar_state(w.shape[0] // 2, count, rng)
    v = (e[:, :, None] * f[:, None, :]).reshape(count, -1)
    return np.einsum("ni,ij,nj->n", v.conj(), w, v).real


def random_mixed(count: int, d: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((count, d, rank)) + 1j * rng.standard_normal((count, d, rank))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.einsum("nii->n", rho).real[:, None, None]


# ------------------------------------------------------------------------------ the verifier


def test_bloch_blocks_reproduce_the_compression():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
    w = w + w.conj().T
    blocks = bloch_blocks(w, (2, 4))
    pts, _ = bloch_grid(8)
    for n in pts[::7]:
        theta, phi = np.arccos(np.clip(n[2], -1, 1)), np.arctan2(n[1], n[0])
        e = np.array([np.cos(theta / 2), np.exp(1j * phi) * np.sin(theta / 2)])
        iso = np.kron(e[:, None], np.eye(4))
        direct = iso.conj().T @ w @ iso
        assert np.allclose(direct, 0.5 * (blocks[0] + np.einsum("k,kij->ij", n, blocks[1:])), atol=1e-13)


def test_grid_covering_angle_holds_for_random_directions():
    pts, alpha = bloch_grid(16)
    v = np.random.default_rng(1).normal(size=(20000, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    nearest = np.arccos(np.clip((v @ pts.T).max(axis=1), -1, 1))
    assert nearest.max() <= alpha


@settings(max_examples=12, deadline=None)
@given(seed=SEEDS, n_b=st.sampled_from([2, 3, 4]))
def test_partial_transposes_of_positive_matrices_are_verified(seed, n_b):
    """Decomposable: <e,f|P^{T_A}|e,f> = <e*,f|P|e*,f> >= 0 (P full rank, so the minimum is > 0)."""
    rng = np.random.default_rng(seed)
    d = 2 * n_b
    p = random_mixed(1, d, d, rng)[0] + 0.05 * np.eye(d) / d
    w = partial_transpose(p, [0]) if n_b in (2, 4) else _pt_first(p, n_b)
    cert = verify_block_positive(w, (2, n_b))
    assert cert.verified and not cert.refuted
    assert cert.lower_bound <= product_expectations(w, 4000, rng).min() + 1e-12


def _pt_first(p: np.ndarray, n_b: int) -> np.ndarray:
    """Partial transpose of the qubit of a 2 x n_b matrix."""
    return p.reshape(2, n_b, 2, n_b).transpose(2, 1, 0, 3).reshape(2 * n_b, 2 * n_b)


def test_flip_is_block_positive_and_minus_flip_is_refuted():
    """The flip F = 2|Phi+><Phi+|^{T_A} is block-positive with product minimum exactly 0 (e ⊥ f): the
    grid proof needs a strictly positive minimum, so F itself is neither verified nor refuted."""
    flip = np.eye(4)[[0, 2, 1, 3]]
    exact = verify_block_positive(flip)
    assert not exact.refuted and exact.lower_bound <= 0 <= exact.upper_bound + 1e-15
    assert verify_block_positive(flip + 1e-2 * np.eye(4)).verified
    cert = verify_block_positive(-flip)
    assert cert.refuted and not cert.verified
    e, f = cert.refuting_vector
    v = np.kron(e, f)
    assert np.vdot(v, -flip @ v).real < 0  # the refutation is an explicit product vector


def test_negative_product_expectation_is_refuted():
    w = np.eye(8) - 2 * np.outer(np.eye(8)[0], np.eye(8)[0])  # <000| W |000> = -1
    cert = verify_block_positive(w)
    assert cert.refuted and cert.upper_bound < -0.9


def test_lkch_operator_shifted_past_its_product_minimum_is_not_verified():
    rho = horodecki_states([0.3])[0]
    x = kernel_projector(rho) + partial_transpose(kernel_projector(partial_transpose(rho, [0])), [0])
    base = verify_block_positive(x)
    assert 0 < base.lower_bound <= base.upper_bound
    over = verify_block_positive(x - (base.upper_bound + 1e-3) * np.eye(8))
    assert over.refuted and not over.verified
    # between the bounds of a coarse grid: without refinement undecided; the refined lower bound must
    # stay below every product expectation (a sound bound), whatever it decides
    shifted = x - 0.5 * (base.lower_bound + base.upper_bound) * np.eye(8)
    coarse = verify_block_positive(shifted, resolution=16, refine=False)
    assert not coarse.verified and not coarse.refuted
    fine = verify_block_positive(shifted, resolution=16)
    sampled = product_expectations(shifted, 200000, np.random.default_rng(5)).min()
    assert coarse.lower_bound <= fine.lower_bound <= sampled + 1e-12


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
def test_refined_lower_bound_is_sound_and_tighter(seed):
    """Random Hermitian W shifted so that its product minimum is near 0: the refined bound is never
    above the sampled minimum and never below the grid bound."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
    w = w + w.conj().T
    grid = verify_block_positive(w, resolution=16, refine=False)
    w = w - (grid.upper_bound - 1e-3) * np.eye(8)
    coarse = verify_block_positive(w, resolution=16, refine=False)
    fine = verify_block_positive(w, resolution=16, tighten=True)
    sampled = product_expectations(w, 100000, rng).min()
    assert coarse.lower_bound - 1e-12 <= fine.lower_bound <= sampled + 1e-12
    assert not fine.refuted or sampled < 0


def test_verifier_rejects_bad_input():
    with pytest.raises(ValueError, match="Hermitian"):
        verify_block_positive(np.triu(np.ones((4, 4))))
    with pytest.raises(ValueError, match="qubit"):
        bloch_blocks(np.eye(6), (3, 2))


@pytest.mark.parametrize("b", [0.1, 0.5, 0.9])
def test_lkch_witness_detects_its_ppt_state_and_is_nonnegative_on_separable_states(b):
    rho = horodecki_states([b])[0]
    wit = lkch_witness(rho)
    assert wit.certificate.verified
    assert pt_min_eigenvalues(rho[None])[0, 0] > -1e-12  # PPT on 1|23 ...
    assert witness_values(wit.matrix, rho[None])[0] < -1e-4  # ... and detected
    rng = np.random.default_rng(2)
    assert product_expectations(wit.matrix, 5000, rng).min() >= wit.certificate.lower_bound - 1e-12
    psi = haar_state(2, 300, rng)
    phi = haar_state(4, 300, rng)
    sep = pure_density((psi[:, :, None] * phi[:, None, :]).reshape(300, 8))
    assert witness_values(wit.matrix, sep).min() >= 0


def test_lkch_refuses_a_state_that_is_not_an_edge_state():
    with pytest.raises(ValueError, match="no positive product minimum"):
        lkch_witness(np.eye(8)[:, :4] @ np.eye(8)[:4] / 4)  # rank-4 product projector


def test_witness_library_verifies_files(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, witnesses=np.stack([partial_transpose(np.eye(8) / 8, [0])]))
    lib = load_witness_library((), str(good), 3)
    assert lib.shape == (1, 8, 8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, witnesses=np.stack([-np.eye(8)]))
    with pytest.raises(ValueError, match="not verified block-positive"):
        load_witness_library((), str(bad), 3)
    assert load_witness_library(("horodecki",), None, 3).shape[1:] == (8, 8)


# ------------------------------------------------------------------------------ separability from spectrum


def test_johnston_margin_closed_forms():
    assert np.isclose(absolute_separability_margin(np.full(8, 1 / 8), (2, 4)), -2 / 8)
    assert np.isclose(absolute_separability_margin(np.eye(8)[-1], (2, 4)), 1.0)  # pure state
    # 2 x 2: Verstraete-Audenaert-De Moor, lambda_1 <= lambda_3 + 2 sqrt(lambda_2 lambda_4)
    lam = np.array([0.1, 0.2, 0.3, 0.4])
    assert np.isclose(absolute_separability_margin(lam, (2, 2)), 0.4 - 0.2 - 2 * np.sqrt(0.3 * 0.1))


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS)
def test_absolutely_separable_spectra_are_ppt_in_every_eigenbasis(seed):
    """The necessary half that sampling can test: margin <= 0 => PPT for random eigenbases."""
    from qeframe_plugins.families.spectrum_separable import boundary_mixing

    rng = np.random.default_rng(seed)
    mu = np.sort(rng.dirichlet(np.full(8, 0.3), size=64), axis=1)
    t = boundary_mixing(mu, (2, 4)) + 1e-9
    lam = (1 - t)[:, None] * mu + t[:, None] / 8
    assert (absolute_separability_margin(lam, (2, 4)) <= 0).all()
    u = haar_unitary(8, 64, rng)
    rho = np.einsum("nij,nj,nkj->nik", u, lam, u.conj())
    assert pt_min_eigenvalues(rho).min() > -1e-12
    # and just outside the set the margin is positive (so the bisection found the boundary)
    t_out = np.clip(t - 1e-6, 0, None)
    out = (1 - t_out)[:, None] * mu + t_out[:, None] / 8
    assert (absolute_separability_margin(out, (2, 4))[t > 1e-5] > 0).all()


# ------------------------------------------------------------------------------ local filters


def _ranks(m: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    return (np.linalg.eigvalsh(m) > tol).sum(axis=-1)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, kappa=st.floats(1.0, 20.0), rank=st.integers(1, 8))
def test_local_filters_keep_the_inertia_of_every_partial_transpose(seed, kappa, rank):
    rng = np.random.default_rng(seed)
    rho = random_mixed(32, 8, rank, rng)
    out = apply_local_filters(rho, random_local_filters(32, 3, kappa, rng))
    assert np.allclose(np.einsum("nii->n", out), 1) and np.allclose(out, out.conj().transpose(0, 2, 1))
    assert (_ranks(out, 1e-11) == _ranks(rho, 1e-11)).all()
    before, after = pt_eigenvalues(rho), pt_eigenvalues(out)  # (N, cuts, d)
    clear = (np.abs(before) > 1e-6).all(axis=-1)  # no eigenvalue near zero: inertia is well defined
    for sign in (np.greater, np.less):
        assert (sign(before, 0).sum(-1) == sign(after, 0).sum(-1))[clear].all()
    assert (npt_mask(rho) == npt_mask(out))[clear].all()


def test_filter_condition_numbers_are_bounded():
    f = random_local_filters(500, 3, 7.0, np.random.default_rng(3))
    s = np.linalg.svd(f, compute_uv=False)
    assert np.allclose(s[..., 0], 1) and (s[..., 0] / s[..., 1] <= 7.0 + 1e-9).all()
    with pytest.raises(ValueError, match="kappa"):
        random_local_filters(1, 3, 0.5, np.random.default_rng(0))


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, b=st.floats(0.15, 0.85))
def test_filtered_witness_certifies_the_filtered_state(seed, b):
    """W' = F^{-†} W F^{-1} stays verified block-positive and tr(W' F rho F^†) < 0 (edge state kept)."""
    rng = np.random.default_rng(seed)
    rho = horodecki_states([b])[0]
    w = lkch_witness(rho, resolution=64).matrix
    f = random_local_filters(1, 3, 5.0, rng)[0]
    big = np.kron(np.kron(f[0], f[1]), f[2])
    out = apply_local_filters(rho[None], f[None])[0]
    inv = np.linalg.inv(big)
    w2 = inv.conj().T @ w @ inv
    w2 /= np.abs(w2).max()
    # block-positive by the argument (F^{-1} maps product vectors to product vectors); the filter can
    # squeeze the product minimum towards 0, so check it is never refuted and never negative on samples
    assert not verify_block_positive(0.5 * (w2 + w2.conj().T), resolution=32).refuted
    assert product_expectations(w2, 4000, rng).min() >= -1e-12
    assert witness_values(w2, out[None])[0] < 0
    assert (
        pt_min_eigenvalues(out[None])[0, 0] > -1e-12 and (pt_min_eigenvalues(out[None])[0, 1:] < -1e-6).all()
    )
    assert _ranks(out) == 5 and _ranks(partial_transpose(out, [0])) == 5


def test_qubit_first_moves_the_cut():
    rho = random_mixed(2, 8, 3, np.random.default_rng(4))
    for cut in bipartitions(3):
        moved = qubit_first(rho, cut.side_a[0])
        assert np.allclose(moved, permute_qubits(rho, [cut.side_a[0]] + list(cut.side_b)))


# ------------------------------------------------------------------------------ proposing witnesses


def test_proposed_witness_certifies_a_rotated_noisy_horodecki_state():
    from qeframe.quantum.ops import apply_local_unitaries
    from qeframe.quantum.witness import propose_witness

    rng = np.random.default_rng(11)
    rho = 0.999 * horodecki_states([0.3])[0] + 0.001 * np.eye(8) / 8
    rho = apply_local_unitaries(rho[None], haar_unitary(2, 3, rng)[None])[0]
    moved = permute_qubits(rho, [2, 0, 1])  # the 2 x 4 cut is now 2|13 (qubit index 1)
    found = propose_witness(moved, qubit=1, ranks=((3, 3), (2, 2)))
    assert found.certified and found.value < 0 and found.witness.certificate.verified
    assert np.isclose(witness_values(found.witness.matrix, qubit_first(moved, 1)[None])[0], found.value)


def test_proposals_never_certify_separable_ppt_states():
    from qeframe_plugins.families.boundary_separable import BoundarySeparableFamily
    from qeframe_plugins.families.filtered_separable import FilteredSeparableFamily

    from qeframe.quantum.witness import propose_witness

    rng = np.random.default_rng(12)
    upb = FilteredSeparableFamily(FilteredSeparableFamily.Params(kappa=3.0)).generate(3, rng).rho
    edge = BoundarySeparableFamily(BoundarySeparableFamily.Params(cut="1|23")).generate(3, rng).rho
    for rho in np.concatenate([upb, edge]):
        found = propose_witness(rho, qubit=0, ranks=((1, 1), (3, 3), (4, 4)), resolution=48)
        assert not found.certified


def test_docstring_examples_of_the_new_modules():
    import doctest
    import importlib

    for name in (
        "qeframe.quantum.witness",
        "qeframe_plugins.families.filtered_horodecki",
        "qeframe_plugins.families.witnessed_horodecki",
        "qeframe_plugins.families.cut_filtered_horodecki",
        "qeframe_plugins.families.filtered_separable",
        "qeframe_plugins.families.product_lowrank",
        "qeframe_plugins.families.cut_separable",
        "qeframe_plugins.families.spectrum_separable",
        "qeframe_plugins.families.boundary_separable",
    ):
        assert doctest.testmod(importlib.import_module(name)).failed == 0, name
