"""The certified PPT-cut families and the labeler stages that go with them (issue 13, data side).

Every family is checked against what its docstring proves: which cuts are PPT, ranks, the
closed-form thresholds, explicit decompositions, and that the ``certified`` labeler (without SDPs)
never contradicts the ground truth and leaves no PPT cut of the training sources unproved. The
held-out test sets must share no family configuration with any training or validation set.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.families._ppt import horodecki_witness
from qeframe_plugins.families.boundary_separable import BoundarySeparableFamily, ppt_thresholds
from qeframe_plugins.families.cut_filtered_horodecki import (
    CutFilteredHorodeckiFamily,
    cut_local_congruence,
    random_joint_filters,
)
from qeframe_plugins.families.cut_separable import CutSeparableFamily
from qeframe_plugins.families.filtered_horodecki import FilteredHorodeckiFamily
from qeframe_plugins.families.filtered_separable import FilteredSeparableFamily
from qeframe_plugins.families.horodecki import horodecki_states
from qeframe_plugins.families.product_lowrank import ProductLowRankFamily
from qeframe_plugins.families.spectrum_separable import SpectrumSeparableFamily
from qeframe_plugins.families.witnessed_horodecki import (
    WitnessedHorodeckiFamily,
    WitnessedHorodeckiParams,
    separable_noise,
    witnessed_mixtures,
)
from qeframe_plugins.labelers.certified import CertifiedLabeler

from qeframe.config.specs import load_registry_file
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, UNKNOWN, provenance_code
from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import partial_transpose, permute_qubits, pure_density
from qeframe.quantum.ppt import npt_mask, pt_min_eigenvalues
from qeframe.quantum.random import random_local_filters
from qeframe.quantum.validation import validate_density_matrices
from qeframe.quantum.witness import absolute_separability_margin, verify_block_positive, witness_values

SEEDS = st.integers(0, 2**32 - 1)
WITNESS = provenance_code("witness")


def labeler(**params) -> CertifiedLabeler:
    params.setdefault("progress", False)
    params.setdefault("sdp", False)
    return CertifiedLabeler(CertifiedLabeler.Params(**params))


def ranks(m: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    return (np.linalg.eigvalsh(m) > tol).sum(axis=-1)


def ghz() -> np.ndarray:
    psi = np.zeros(8, dtype=complex)
    psi[[0, 7]] = 2**-0.5
    return psi


# ------------------------------------------------------------------------------ entangled PPT cuts


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, kappa=st.floats(1.0, 10.0))
def test_filtered_horodecki_is_ppt_on_one_cut_edge_ranks_and_npt_elsewhere(seed, kappa):
    fam = FilteredHorodeckiFamily(FilteredHorodeckiFamily.Params(kappa=kappa, b_range=(0.05, 0.95)))
    batch = fam.generate(64, np.random.default_rng(seed))
    validate_density_matrices(batch.rho)
    lm = pt_min_eigenvalues(batch.rho)
    assert (lm[:, 0] > -1e-12).all() and (lm[:, 1:] < -1e-8).all()
    assert (ranks(batch.rho) == 5).all() and (ranks(partial_transpose(batch.rho, [0])) == 5).all()
    assert (batch.ground_truth == ENTANGLED).all() and batch.meta["pptes"].all()


def test_filtered_horodecki_with_unit_kappa_is_a_local_unitary_orbit():
    """kappa = 1: the filters are unitaries, so the spectrum is that of rho_b."""
    fam = FilteredHorodeckiFamily(
        FilteredHorodeckiFamily.Params(kappa=1.0, b_range=(0.5 - 1e-12, 0.5 + 1e-12))
    )
    batch = fam.generate(16, np.random.default_rng(0))
    ref = np.linalg.eigvalsh(horodecki_states([0.5]))
    assert np.allclose(np.linalg.eigvalsh(batch.rho), ref, atol=1e-10)
    kappa = FilteredHorodeckiFamily(
        FilteredHorodeckiFamily.Params(kappa=5.0, b_range=(0.5 - 1e-12, 0.5 + 1e-12))
    )
    assert not np.allclose(
        np.linalg.eigvalsh(kappa.generate(16, np.random.default_rng(0)).rho), ref, atol=1e-3
    )


@settings(max_examples=6, deadline=None)
@given(seed=SEEDS, noise=st.sampled_from(["white", "product", "separable", "range-product"]))
def test_witnessed_horodecki_states_are_ppt_on_the_witness_cut(seed, noise):
    fam = WitnessedHorodeckiFamily(
        WitnessedHorodeckiFamily.Params(noise=noise, b_values=(0.3, 0.5), local_randomize=True)
    )
    batch = fam.generate(64, np.random.default_rng(seed))
    validate_density_matrices(batch.rho)
    witness_cut = batch.ground_truth_provenance == WITNESS
    assert (witness_cut.sum(axis=1) == 1).all()  # exactly one witness cut per state, moved around
    assert (batch.ground_truth[witness_cut] == ENTANGLED).all()
    assert (pt_min_eigenvalues(batch.rho)[witness_cut] > -1e-12).all()  # a PPT cut


def test_witnessed_noise_is_separable_and_the_witness_value_is_enforced():
    rng = np.random.default_rng(1)
    from qeframe_plugins.families._ppt import horodecki_witness

    w = horodecki_witness(0.3).matrix
    for kind in ("white", "product", "separable"):
        sigma = separable_noise(kind, 200, 3, rng)
        validate_density_matrices(sigma)
        assert (witness_values(w, sigma) >= 0).all()  # W is block-positive on separable noise
    # without filters or rotations (kappa = 1 is still a random local unitary, so build by hand):
    rho0 = horodecki_states([0.3])[0]
    eps = -witness_values(w, rho0[None])[0]
    assert eps > 1e-3
    q_max = (eps - 0.01 * eps) / (eps + witness_values(w, np.eye(8)[None] / 8)[0])
    edge = (1 - q_max) * rho0 + q_max * np.eye(8) / 8
    assert witness_values(w, edge[None])[0] == pytest.approx(-0.01 * eps, rel=1e-6)


def test_witnessed_states_are_found_by_the_labeler_witness_stage_when_unrotated():
    """The labeler's built-in library catches noisy Horodecki states in the fixed frame, on any 1|rest cut."""
    rho = 0.998 * horodecki_states(np.array([0.3, 0.5, 0.7])) + 0.002 * np.eye(8) / 8
    moved = permute_qubits(rho, [1, 0, 2])  # the 2 x 4 cut is now 2|13
    cert = labeler().certify(np.concatenate([rho, moved]))
    names = cert.provenance_names()
    assert (names[:3, 0] == "witness").all() and (names[3:, 1] == "witness").all()
    assert (cert.evidence[cert.provenance == WITNESS] < 0).all()
    assert (cert.labels == ENTANGLED).all()
    off = labeler(witnesses=()).certify(rho)
    assert (off.labels[:, 0] == UNKNOWN).all()  # without the library (and without SDPs): unproved


def test_witness_stage_never_fires_on_separable_ppt_states():
    rng = np.random.default_rng(2)
    seps = [
        FilteredSeparableFamily(FilteredSeparableFamily.Params(source=s)).generate(200, rng).rho
        for s in ("upb", "acin")
    ]
    seps.append(ProductLowRankFamily(ProductLowRankFamily.Params(terms=(6, 16))).generate(200, rng).rho)
    cert = labeler(spectrum=False).certify(np.concatenate(seps))
    assert not (cert.provenance == WITNESS).any()
    assert (cert.labels != ENTANGLED).all()


# ------------------------------------------------------------------------------ separable PPT cuts


@settings(max_examples=6, deadline=None)
@given(seed=SEEDS, source=st.sampled_from(["upb", "acin"]))
def test_filtered_separable_states_are_ppt_everywhere_with_the_source_ranks(seed, source):
    fam = FilteredSeparableFamily(FilteredSeparableFamily.Params(source=source, kappa=8.0))
    batch = fam.generate(64, np.random.default_rng(seed))
    validate_density_matrices(batch.rho)
    assert (pt_min_eigenvalues(batch.rho) > -1e-12).all()
    expected = 4 if source == "upb" else 7
    assert (ranks(batch.rho) == expected).all()
    for cut in bipartitions(3):
        assert (ranks(partial_transpose(batch.rho, cut.side_a)) == expected).all()
    assert (batch.ground_truth == SEPARABLE).all()


def test_filtered_acin_keeps_an_explicit_decomposition():
    """Filtering the product terms of an Acín cut decomposition reproduces the filtered state."""
    from qeframe_plugins.families.acin import acin_states, cut_decomposition

    from qeframe.quantum.random import apply_local_filters, random_local_filters

    a, b, c = 2.0, 0.3, 5.0
    f = random_local_filters(1, 3, 6.0, np.random.default_rng(3))
    big = np.kron(np.kron(f[0, 0], f[0, 1]), f[0, 2])
    out = apply_local_filters(acin_states([a], [b], [c]), f)[0]
    for cut in range(3):
        weights, vectors = cut_decomposition(a, b, c, cut)
        moved = vectors @ big.T  # F|v_k>, still product across the cut
        rebuilt = np.einsum("k,ki,kj->ij", weights, moved, moved.conj())
        assert np.allclose(rebuilt / np.trace(rebuilt), out, atol=1e-12)


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, k=st.integers(1, 7))
def test_product_lowrank_states_sit_on_the_ppt_boundary(seed, k):
    fam = ProductLowRankFamily(ProductLowRankFamily.Params(terms=(k, k)))
    batch = fam.generate(32, np.random.default_rng(seed))
    lm = pt_min_eigenvalues(batch.rho)
    assert (np.abs(lm) < 1e-12).all()  # PPT with a zero eigenvalue on every cut
    assert (ranks(batch.rho) <= k).all() and (batch.meta["fully_separable"] == 1).all()


def test_cut_separable_is_ppt_on_its_cut_and_npt_labels_match():
    fam = CutSeparableFamily(CutSeparableFamily.Params(terms=(6, 8)))
    batch = fam.generate(300, np.random.default_rng(4))
    sep = batch.ground_truth_provenance == provenance_code("construction")
    assert (sep.sum(axis=1) == 1).all() and (batch.ground_truth[sep] == SEPARABLE).all()
    assert (pt_min_eigenvalues(batch.rho)[sep] > -1e-12).all()
    npt = npt_mask(batch.rho)
    assert ((batch.ground_truth == ENTANGLED) == (npt & ~sep)).all()
    assert (npt | sep).mean() > 0.9  # the two-qubit parts are entangled: the other cuts are NPT


def test_cut_separable_fixed_cut():
    fam = CutSeparableFamily(CutSeparableFamily.Params(cut="3|12"))
    batch = fam.generate(20, np.random.default_rng(5))
    assert (batch.ground_truth[:, 2] == SEPARABLE).all()


def test_spectrum_separable_states_satisfy_johnstons_condition_and_are_ppt():
    batch = SpectrumSeparableFamily(SpectrumSeparableFamily.Params(spread=0.0)).generate(
        500, np.random.default_rng(6)
    )
    margin = absolute_separability_margin(np.linalg.eigvalsh(batch.rho), (2, 4))
    assert (margin <= 1e-12).all()
    assert np.median(margin) > -1e-6  # spread 0: on the boundary (unless the random spectrum was inside)
    assert (pt_min_eigenvalues(batch.rho) > -1e-12).all()
    assert (batch.ground_truth_provenance == provenance_code("spectrum")).all()


def test_spectrum_stage_of_the_labeler():
    sep = SpectrumSeparableFamily(SpectrumSeparableFamily.Params(spread=0.05)).generate(
        300, np.random.default_rng(8)
    )
    cert = labeler().certify(sep.rho)
    spec = cert.provenance == provenance_code("spectrum")
    assert spec.any() and (cert.labels[spec] == SEPARABLE).all() and (cert.evidence[spec] <= 0).all()
    off = labeler(spectrum=False).certify(sep.rho)
    assert not (off.provenance == provenance_code("spectrum")).any()
    # a spectrum just outside the set (margin > 0) and outside the separable ball is never "spectrum"
    lam = np.array([0.0, 0.0, 0.05, 0.1, 0.15, 0.2, 0.2, 0.3])
    assert absolute_separability_margin(lam, (2, 4)) > 0 and (lam**2).sum() > 1 / 7
    u = np.linalg.qr(
        np.random.default_rng(7).normal(size=(8, 8)) + 1j * np.random.default_rng(8).normal(size=(8, 8))
    )[0]
    cert = labeler().certify(((u * lam) @ u.conj().T)[None])
    assert not (cert.provenance == provenance_code("spectrum")).any()


def test_boundary_thresholds_closed_form_for_ghz():
    th = ppt_thresholds(ghz()[None])
    assert np.allclose(th, 1 / (1 + 8 * 0.5))  # s1 s2 = 1/2 on every cut
    for p, ppt in ((0.2 - 1e-4, True), (0.2 + 1e-4, False)):
        rho = p * pure_density(ghz()[None]) + (1 - p) * np.eye(8) / 8
        assert (pt_min_eigenvalues(rho) > 0).all() == ppt


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS)
def test_boundary_separable_target_cut_is_ppt_next_to_the_threshold(seed):
    fam = BoundarySeparableFamily(BoundarySeparableFamily.Params(cut="2|13", gap_range=(1e-6, 1e-3)))
    batch = fam.generate(64, np.random.default_rng(seed))
    lm = pt_min_eigenvalues(batch.rho)
    assert (batch.ground_truth[:, 1] == SEPARABLE).all()
    assert (lm[:, 1] > -1e-12).all()
    assert ((lm > -1e-12) == (batch.ground_truth == SEPARABLE)).all()  # exact labels: PPT iff separable
    assert np.median(lm[:, 1]) < 1e-3  # next to the boundary


@settings(max_examples=8, deadline=None)
@given(
    seed=SEEDS,
    noise=st.sampled_from(["none", "white", "product", "separable", "range-product"]),
    transpose=st.sampled_from([0.0, 1.0]),
    kappa_rest=st.floats(1.0, 10.0),
    n_qubits=st.sampled_from([3, 3, 4]),
)
def test_cut_filtered_horodecki_is_ppt_on_its_cut_and_npt_labels_are_exact(
    seed, noise, transpose, kappa_rest, n_qubits
):
    fam = CutFilteredHorodeckiFamily(
        CutFilteredHorodeckiFamily.Params(
            noise=noise,
            transpose=transpose,
            kappa_rest=kappa_rest,
            b_range=(0.05, 0.95),
            b_values=(0.35, 0.6),
        )
    )
    batch = fam.generate(32, np.random.default_rng(seed), n_qubits)
    validate_density_matrices(batch.rho)
    lm = pt_min_eigenvalues(batch.rho)
    assert (lm[:, 0] > -1e-12).all()  # the construction cut 1|2..n is PPT
    assert (batch.ground_truth[:, 0] == ENTANGLED).all()
    proof = "construction" if noise == "none" else "witness"
    assert (batch.ground_truth_provenance[:, 0] == provenance_code(proof)).all()
    npt = lm[:, 1:] < -1e-10
    assert (batch.ground_truth[:, 1:][npt] == ENTANGLED).all()
    assert (batch.ground_truth[:, 1:][~npt] == UNKNOWN).all()
    if noise == "none":  # congruence keeps the edge-state ranks of rho_b (and of rho_b^{T_1})
        edge = 2 ** (n_qubits - 1) + 1
        assert (ranks(batch.rho) == edge).all()
        assert (ranks(partial_transpose(batch.rho, [0])) == edge).all()


@pytest.mark.parametrize("n_qubits", [3, 4])
def test_range_product_noise_lies_in_the_range_and_gives_birank_d_plus_1_d_plus_2(n_qubits):
    """range-product noise: |e,f> in the range of rho_b0, so rank rho = D + 1 while rank rho^{T_1}
    = D + 2 (edge state: |e*,f> is not in the range of rho_b0^{T_1}); the transpose swaps them.
    The tolerated noise weight reaches far beyond white noise's ~1 %."""
    d_half = 2 ** (n_qubits - 1)
    rng = np.random.default_rng(4)
    params = WitnessedHorodeckiParams(b_values=(0.35,), noise="range-product")
    rho = witnessed_mixtures(200, params, n_qubits, rng)
    rho0 = horodecki_states([0.35], n_qubits)[0]
    distance = 0.5 * np.abs(np.linalg.eigvalsh(rho - rho0)).sum(axis=-1)  # trace distance to rho_b0
    assert (ranks(rho) == d_half + 1).all()
    assert (ranks(partial_transpose(rho, [0])) == d_half + 2).all()
    assert (pt_min_eigenvalues(rho)[:, 0] > -1e-12).all()
    assert np.quantile(distance, 0.9) > 0.02  # white noise: distance <= q <= ~1.2 %
    fam = CutFilteredHorodeckiFamily(
        CutFilteredHorodeckiFamily.Params(noise="range-product", transpose=1.0, b_values=(0.35,))
    )
    batch = fam.generate(50, rng, n_qubits)
    assert (ranks(batch.rho) == d_half + 2).all()
    assert (ranks(partial_transpose(batch.rho, [0])) == d_half + 1).all()
    assert (batch.ground_truth_provenance[:, 0] == WITNESS).all()


def test_cut_filtered_horodecki_filter_is_not_a_product_of_qubit_filters():
    """kappa = kappa_rest = 1: M is unitary, so the spectrum is rho_b's, but G entangles qubits 2, 3,
    which changes the spectrum of the 2|13 partial transpose (a product of qubit unitaries would not)."""
    b = (0.5 - 1e-12, 0.5 + 1e-12)
    fam = CutFilteredHorodeckiFamily(
        CutFilteredHorodeckiFamily.Params(kappa=1.0, kappa_rest=1.0, transpose=0.0, b_range=b)
    )
    batch = fam.generate(16, np.random.default_rng(0))
    ref = horodecki_states([0.5])
    assert np.allclose(np.linalg.eigvalsh(batch.rho), np.linalg.eigvalsh(ref), atol=1e-10)
    pt_ref = np.linalg.eigvalsh(partial_transpose(ref, [1]))
    pt = np.linalg.eigvalsh(partial_transpose(batch.rho, [1]))
    assert np.abs(pt - pt_ref).max(axis=-1).min() > 1e-3


@pytest.mark.parametrize("transpose", [False, True])
def test_cut_filtered_witness_transports_to_a_verified_block_positive_witness(transpose):
    """The proof of the witnessed variant, checked state by state: W' = M^{-†} W^{(T_1)} M^{-1} is
    verified block-positive (grid-plus-concavity proof) and tr(W' rho) < 0 for the filtered state."""
    rng = np.random.default_rng(5)
    rho0 = witnessed_mixtures(3, WitnessedHorodeckiParams(b_values=(0.35,), noise="separable"), 3, rng)
    w = horodecki_witness(0.35).matrix
    if transpose:
        rho0, w = partial_transpose(rho0, [0]), partial_transpose(w[None], [0])[0]
    f = random_local_filters(3, 1, 4.0, rng)[:, 0]
    g = random_joint_filters(3, 4, 4.0, rng)
    assert (np.linalg.cond(g) <= 4.0 + 1e-9).all()
    rho = cut_local_congruence(rho0, f, g)
    for i in range(3):
        m_inv = np.linalg.inv(np.kron(f[i], g[i]))
        w_prime = m_inv.conj().T @ w @ m_inv
        assert verify_block_positive(w_prime).verified
        assert witness_values(w_prime, rho[i : i + 1])[0] < 0
        # and the congruence inverts: M^{-1} rho M^{-†} is rho0 up to normalisation
        back = m_inv @ rho[i] @ m_inv.conj().T
        assert np.allclose(back / np.trace(back), rho0[i], atol=1e-10)


@pytest.mark.slow
def test_cut_filtered_horodecki_entanglement_is_confirmed_independently_by_dps2():
    """Without the family's ground truth, the DPS-2 SDP (no 2-copy PPT symmetric extension; Doherty,
    Parrilo, Spedalieri, PRA 69, 022308 (2004)) proves the construction cut entangled for every
    variant, and the other cuts are NPT: the labeler's own decisions equal the ground truth."""
    pytest.importorskip("cvxpy")
    batches = [
        CutFilteredHorodeckiFamily(
            CutFilteredHorodeckiFamily.Params(
                noise=noise, transpose=transpose, b_values=(0.35, 0.6), local_randomize=True
            )
        ).generate(1, np.random.default_rng(seed))
        for seed, (noise, transpose) in enumerate(
            [(noise, t) for noise in ("none", "white", "separable", "range-product") for t in (0.0, 1.0)]
        )
    ]
    rho = np.concatenate([b.rho for b in batches])
    truth = np.concatenate([b.ground_truth for b in batches])
    proof = np.concatenate([b.ground_truth_provenance for b in batches])
    cert = labeler(sdp=True, use_ground_truth=False, workers=1).certify(rho)
    np.testing.assert_array_equal(cert.labels, truth)
    construction_cut = np.isin(proof, [provenance_code("construction"), WITNESS])
    assert (cert.provenance[construction_cut] == provenance_code("dps2")).all()
    assert (cert.evidence[construction_cut] < 1 - 1e-3).all()


# ------------------------------------------------------------------------------ labelling at scale, datasets


FAMILIES = [
    FilteredHorodeckiFamily(FilteredHorodeckiFamily.Params(local_randomize=True)),
    WitnessedHorodeckiFamily(WitnessedHorodeckiFamily.Params(local_randomize=True)),
    FilteredSeparableFamily(FilteredSeparableFamily.Params(source="upb", local_randomize=True)),
    FilteredSeparableFamily(FilteredSeparableFamily.Params(source="acin", local_randomize=True)),
    ProductLowRankFamily(ProductLowRankFamily.Params(local_randomize=True)),
    CutSeparableFamily(CutSeparableFamily.Params(local_randomize=True)),
    SpectrumSeparableFamily(SpectrumSeparableFamily.Params(local_randomize=True)),
    BoundarySeparableFamily(BoundarySeparableFamily.Params(local_randomize=True)),
    CutFilteredHorodeckiFamily(CutFilteredHorodeckiFamily.Params(local_randomize=True)),
    CutFilteredHorodeckiFamily(CutFilteredHorodeckiFamily.Params(noise="separable", local_randomize=True)),
    CutFilteredHorodeckiFamily(
        CutFilteredHorodeckiFamily.Params(noise="range-product", local_randomize=True)
    ),
]


def _family_id(f) -> str:
    return f"{f.name}-{getattr(f.params, 'source', '')}{getattr(f.params, 'noise', '')}"


@pytest.mark.parametrize("family", FAMILIES, ids=_family_id)
def test_certified_labeler_without_sdp_proves_every_ppt_cut_and_never_conflicts(family):
    batch = family.generate(200, np.random.default_rng(9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a conflict with the ground truth warns
        out = labeler().label(batch)
    ppt = pt_min_eigenvalues(batch.rho) > -1e-10
    assert (out.labels[ppt] != UNKNOWN).all()
    known = batch.ground_truth != UNKNOWN
    assert (out.labels[known] == batch.ground_truth[known]).all()


def test_ppt_datasets_hold_out_their_test_sources():
    reg = load_registry_file(Path(__file__).resolve().parents[2] / "registry.toml")
    names = [n for n in reg.datasets if n.endswith("-ppt") or "-ppt-" in n]
    assert {"quickstart-train-ppt", "paper-train-ppt", "quickstart-val-ppt", "paper-val-ppt"} <= set(names)
    seen = set()
    for n in names:
        spec = reg.datasets[n]
        if spec.split != "test":
            seen |= {
                (e.family, tuple(sorted((k, str(v)) for k, v in e.params.items()))) for e in spec.families
            }
    for n in (
        "quickstart-test-ppt-entangled",
        "quickstart-test-ppt-separable",
        "paper-test-ppt-entangled",
        "paper-test-ppt-separable",
        "quickstart-test-ppt-entangled-cutfilter",
        "paper-test-ppt-entangled-cutfilter",
    ):
        spec = reg.datasets[n]
        assert spec.split == "test"
        for e in spec.families:
            assert (e.family, tuple(sorted((k, str(v)) for k, v in e.params.items()))) not in seen
    train_families = {e.family for e in reg.datasets["paper-train-ppt"].families}
    assert "boundary-separable" not in train_families  # the held-out separable source
    # held-out sources that no training or validation set of the whole registry uses at all
    for family in ("boundary-separable", "cut-filtered-horodecki"):
        users = [
            n
            for n, spec in reg.datasets.items()
            if spec.split != "test" and family in {e.family for e in spec.families}
        ]
        assert not users, (family, users)
    for n in ("quickstart-test-ppt-entangled-cutfilter", "paper-test-ppt-entangled-cutfilter"):
        assert {e.family for e in reg.datasets[n].families} == {"cut-filtered-horodecki"}
