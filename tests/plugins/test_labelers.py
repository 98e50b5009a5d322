"""The ``construction`` and ``verified`` labelers on hand-made batches and on the PPTES families."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.families.acin import AcinFamily
from qeframe_plugins.families.horodecki import HorodeckiFamily, npt_eigenvalue
from qeframe_plugins.families.upb import UPBFamily, upb_state
from qeframe_plugins.labelers.construction import ConstructionLabeler
from qeframe_plugins.labelers.negativity import NegativityLabeler
from qeframe_plugins.labelers.verified import GroundTruthConflictError, VerifiedLabeler

from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.interfaces import LabelBatch, StateBatch
from qeframe.plugin.labels import PROVENANCE, provenance_code
from qeframe.plugin.registry import Registry
from qeframe.quantum.ops import batch_kron, pure_density
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.random import haar_state

CODE = {name: i for i, name in enumerate(PROVENANCE)}


def ket(bits: str) -> np.ndarray:
    v = np.zeros(2 ** len(bits))
    v[int(bits, 2)] = 1.0
    return v


def bell_zero() -> np.ndarray:
    """(|00> + |11>)/sqrt(2) on qubits 1,2 times |0> on qubit 3: entangled on 1|23, 2|13; product on 3|12."""
    return (ket("000") + ket("110")) / np.sqrt(2)


def ghz() -> np.ndarray:
    return (ket("000") + ket("111")) / np.sqrt(2)


def noisy_ghz(p: float) -> np.ndarray:
    """p|GHZ><GHZ| + (1-p) I/8: lambda_min(rho^{T_A}) = (1-p)/8 - p/2 on every cut (NPT iff p > 1/5)."""
    return p * np.outer(ghz(), ghz()) + (1 - p) * np.eye(8) / 8


def batch_of(rhos, truth=-1, provenance="unknown", pure=False) -> StateBatch:
    rho = np.stack([np.asarray(r, dtype=np.complex128) for r in rhos])
    return StateBatch.build(rho, truth, provenance, pure=pure)


def test_registered_through_entry_points():
    reg = Registry.load()
    assert reg.get("labeler", "verified") is VerifiedLabeler
    assert reg.get("labeler", "construction") is ConstructionLabeler
    lab = reg.create("labeler", "verified", {"tol": 1e-8, "drop_unknown": False})
    assert lab.params.tol == 1e-8 and not lab.params.drop_unknown
    with pytest.raises(SpecError):
        reg.create("labeler", "verified", {"tol": 0})
    with pytest.raises(SpecError, match="unknown key"):
        reg.create("labeler", "construction", {"tol": 1e-8})


# ---------------------------------------------------------------------------------- construction


def test_construction_copies_ground_truth_and_marks_unknown():
    rho = np.stack([np.eye(8) / 8] * 3).astype(complex)
    truth = np.array([[1, 0, -1], [0, 0, 0], [-1, -1, -1]], dtype=np.int8)
    prov = np.array(
        [
            [CODE["npt"], CODE["analytic"], CODE["construction"]],
            [CODE["construction"]] * 3,
            [CODE["analytic"]] * 3,
        ],
        dtype=np.uint8,
    )
    batch = StateBatch(rho, truth, prov, meta={})
    out = ConstructionLabeler().label(batch)
    assert isinstance(out, LabelBatch)
    assert out.keep.dtype == bool and out.keep.all() and out.keep.shape == (3,)
    np.testing.assert_array_equal(out.labels, truth)
    assert out.labels.dtype == np.int8 and out.provenance.dtype == np.uint8
    expected = prov.copy()
    expected[truth == -1] = CODE["unknown"]  # -1 never carries a provenance other than "unknown"
    np.testing.assert_array_equal(out.provenance, expected)
    assert out.evidence.shape == (3, 3) and np.isnan(out.evidence).all()
    assert out.labels is not batch.ground_truth  # a copy, not a view the caller could mutate


def test_construction_on_families():
    rng = np.random.default_rng(0)
    for fam, label in [(HorodeckiFamily(), 1), (UPBFamily(), 0), (AcinFamily(), 0)]:
        out = ConstructionLabeler().label(fam.generate(10, rng))
        assert (out.labels == label).all() and (out.provenance == CODE["analytic"]).all()


# -------------------------------------------------------------------------------------- verified


def test_pure_states_npt_or_pure_ppt():
    psi = np.stack([bell_zero(), ghz(), ket("010"), (ket("000") + ket("001")) / np.sqrt(2)])
    batch = StateBatch.build(pure_density(psi), -1, "unknown", pure=True)
    out = VerifiedLabeler().label(batch)
    assert out.keep.all()
    np.testing.assert_array_equal(out.labels, [[1, 1, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]])
    npt, ppt = CODE["npt"], CODE["pure-ppt"]
    np.testing.assert_array_equal(out.provenance, [[npt, npt, ppt], [npt] * 3, [ppt] * 3, [ppt] * 3])
    # evidence: lambda_min(rho^{T_A}) = -1/2 for a maximally entangled pair, NaN on PPT cuts
    np.testing.assert_allclose(out.evidence[:2][out.labels[:2] == 1], -0.5, atol=1e-12)
    assert np.isnan(out.evidence[out.labels == 0]).all()


def test_construction_label_wins_over_pure_and_paper_convention_is_kept():
    mixed_ppt = noisy_ghz(0.1)  # PPT on every cut, mixed
    truth = np.array([[0, 0, 0], [1, 1, 1]], dtype=np.int8)
    prov = np.array([[CODE["construction"]] * 3, [CODE["paper-convention"]] * 3], dtype=np.uint8)
    product = np.outer(ket("011"), ket("011"))
    batch = StateBatch(np.stack([product, mixed_ppt]).astype(complex), truth, prov, meta={})
    out = VerifiedLabeler().label(batch)
    assert out.keep.all()
    np.testing.assert_array_equal(out.labels, truth)
    np.testing.assert_array_equal(out.provenance, prov)
    assert np.isnan(out.evidence).all()


def test_mixed_ppt_of_unknown_status_is_dropped_or_unknown():
    rhos = [noisy_ghz(0.1), upb_state(), np.outer(bell_zero(), bell_zero()), noisy_ghz(0.9)]
    batch = batch_of(rhos)
    out = VerifiedLabeler().label(batch)
    np.testing.assert_array_equal(out.keep, [False, False, True, True])
    assert out.labels.shape == out.provenance.shape == out.evidence.shape == (2, 3)
    np.testing.assert_array_equal(out.labels, [[1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(out.provenance[1], [CODE["npt"]] * 3)
    np.testing.assert_allclose(out.evidence[1], (1 - 0.9) / 8 - 0.9 / 2)

    kept = VerifiedLabeler(VerifiedLabeler.Params(drop_unknown=False)).label(batch)
    assert kept.keep.all() and kept.labels.shape == (4, 3)
    np.testing.assert_array_equal(kept.labels[:2], -1)
    np.testing.assert_array_equal(kept.provenance[:2], CODE["unknown"])
    np.testing.assert_array_equal(kept.labels[2:], out.labels)


def test_partly_known_sample_is_dropped_only_for_its_unknown_cut():
    """A mixed state NPT on two cuts and PPT (unknown) on the third is dropped as a whole."""
    # a noisy Bell pair on qubits 1,2 times a maximally mixed qubit 3: cut 3|12 is PPT and mixed
    rho2 = np.zeros((4, 4))
    rho2[np.ix_([0, 3], [0, 3])] = 0.5
    rho2 = 0.8 * rho2 + 0.2 * np.eye(4) / 4
    rho = batch_kron(rho2[None], (np.eye(2) / 2)[None])[0]
    out = VerifiedLabeler().label(batch_of([rho]))
    assert not out.keep.any() and out.labels.shape == (0, 3)
    labelled = VerifiedLabeler(VerifiedLabeler.Params(drop_unknown=False)).label(batch_of([rho]))
    np.testing.assert_array_equal(labelled.labels, [[1, 1, -1]])
    # with the construction knowing cut 3|12 is separable, the sample is kept
    truth = np.array([[-1, -1, 0]], dtype=np.int8)
    prov = np.array([[0, 0, CODE["construction"]]], dtype=np.uint8)
    known = VerifiedLabeler().label(StateBatch(rho[None].astype(complex), truth, prov, meta={}))
    np.testing.assert_array_equal(known.labels, [[1, 1, 0]])
    np.testing.assert_array_equal(known.provenance, [[CODE["npt"], CODE["npt"], CODE["construction"]]])


def test_npt_overrides_a_construction_entangled_label():
    truth = np.array([[1, 1, 1]], dtype=np.int8)
    prov = np.array([[CODE["construction"]] * 3], dtype=np.uint8)
    out = VerifiedLabeler().label(StateBatch(noisy_ghz(0.5)[None].astype(complex), truth, prov, meta={}))
    np.testing.assert_array_equal(out.provenance, [[CODE["npt"]] * 3])


def test_npt_contradicting_separable_construction_raises():
    truth = np.array([[-1, 0, -1]], dtype=np.int8)
    prov = np.array([[0, CODE["construction"], 0]], dtype=np.uint8)
    batch = StateBatch(pure_density(bell_zero()[None]), truth, prov, meta={})
    with pytest.raises(GroundTruthConflictError, match=r"NPT on cut 2\|13.*'construction'") as info:
        VerifiedLabeler().label(batch)
    assert isinstance(info.value, QeframeError)


def test_tol_moves_the_npt_threshold():
    p = 0.2 + 1e-5  # lambda_min = (1-p)/8 - p/2 = -6.25e-6
    batch = batch_of([noisy_ghz(p)])
    assert VerifiedLabeler().label(batch).labels.tolist() == [[1, 1, 1]]
    loose = VerifiedLabeler(VerifiedLabeler.Params(tol=1e-4, drop_unknown=False)).label(batch)
    assert loose.labels.tolist() == [[-1, -1, -1]]


def test_families_through_verified():
    rng = np.random.default_rng(4)
    hor = HorodeckiFamily(HorodeckiFamily.Params(b=0.3)).generate(20, rng)
    out = VerifiedLabeler().label(hor)
    assert out.keep.all() and (out.labels == 1).all()
    np.testing.assert_array_equal(out.provenance[:, 0], CODE["analytic"])
    np.testing.assert_array_equal(out.provenance[:, 1:], CODE["npt"])
    np.testing.assert_allclose(out.evidence[:, 1:], npt_eigenvalue(0.3, 3), rtol=1e-9)
    assert np.isnan(out.evidence[:, 0]).all()

    for fam in (
        UPBFamily(UPBFamily.Params(local_randomize=True)),
        AcinFamily(AcinFamily.Params(local_randomize=True)),
    ):
        out = VerifiedLabeler().label(fam.generate(50, rng))
        assert out.keep.all() and (out.labels == 0).all() and (out.provenance == CODE["analytic"]).all()
    # the same states without their ground truth are PPT mixed states of unknown status: dropped
    upb = UPBFamily().generate(5, rng)
    anonymous = StateBatch.build(upb.rho, -1, "unknown", pure=False)
    assert not VerifiedLabeler().label(anonymous).keep.any()


def test_randomised_horodecki_keeps_the_analytic_cut_where_it_moved():
    out_batch = HorodeckiFamily(HorodeckiFamily.Params(local_randomize=True)).generate(
        100, np.random.default_rng(8)
    )
    out = VerifiedLabeler().label(out_batch)
    ppt = pt_min_eigenvalues(out_batch.rho) > -1e-10
    np.testing.assert_array_equal(out.provenance == CODE["analytic"], ppt)
    assert (out.labels == 1).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_qubits=st.sampled_from([2, 3, 4]))
def test_pure_states_agree_with_negativity_labeler(seed, n_qubits):
    """On pure states both strategies are exact and must coincide; nothing is dropped."""
    rng = np.random.default_rng(seed)
    d = 2**n_qubits
    psi = haar_state(d, 6, rng)
    halves = haar_state(2, 6, rng)  # plus some states with a product factor
    prod = batch_kron(halves, haar_state(d // 2, 6, rng))
    rho = pure_density(np.concatenate([psi, prod]))
    batch = StateBatch.build(rho, -1, "unknown", pure=True)
    ours, theirs = VerifiedLabeler().label(batch), NegativityLabeler().label(batch)
    assert ours.keep.all()
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    np.testing.assert_array_equal(ours.provenance, theirs.provenance)
    npt = ours.labels == 1
    np.testing.assert_allclose(ours.evidence[npt], pt_min_eigenvalues(rho)[npt], atol=1e-12)


def test_random_mixed_states_evidence_matches_eigenvalues():
    rng = np.random.default_rng(1)
    psi = haar_state(8, 400, rng).reshape(200, 2, 8)
    rho = 0.5 * (pure_density(psi[:, 0]) + pure_density(psi[:, 1]))  # rank-2 mixtures: almost all NPT
    out = VerifiedLabeler(VerifiedLabeler.Params(drop_unknown=False)).label(batch_of(rho))
    lam = pt_min_eigenvalues(rho)
    np.testing.assert_array_equal(out.labels == 1, lam < -1e-10)
    np.testing.assert_allclose(out.evidence[lam < -1e-10], lam[lam < -1e-10], atol=1e-13)
    assert (out.provenance[out.labels == -1] == CODE["unknown"]).all()
    assert provenance_code("npt") == CODE["npt"]
