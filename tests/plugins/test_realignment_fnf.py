"""Filter-normal-form realignment / correlation-tensor certificate (qeframe.quantum.realignment),
the ``ccnr_fnf`` baseline, the ``realignment`` stage of the certified labeler and the proof stages
of the prediction layer. Every ``entangled`` answer must be a proof: never on a separable state."""

from __future__ import annotations

import numpy as np
import pytest
import test_certified as tc
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.baselines.ccnr_fnf import CcnrFnfBaseline
from qeframe_plugins.families.horodecki import horodecki_states
from qeframe_plugins.labelers.certified import CertifiedLabeler

from qeframe.learn.prediction import PredictionConfig, predict, proof_stages
from qeframe.plugin.labels import PROOF_PROVENANCE, provenance_code
from qeframe.quantum.ops import batch_kron, partial_transpose, pure_density
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import haar_state, haar_unitary
from qeframe.quantum.realignment import (
    correlation_tensor,
    filter_normal_form,
    fnf_certificate,
    realign_bipartite,
    realignment_norms,
)


def _ghz(n: int) -> np.ndarray:
    psi = np.zeros(2**n, complex)
    psi[[0, -1]] = 2**-0.5
    return np.outer(psi, psi.conj())


def _random_mixed(rng: np.random.Generator, n_states: int, d: int) -> np.ndarray:
    g = rng.normal(size=(n_states, d, d)) + 1j * rng.normal(size=(n_states, d, d))
    r = g @ np.conj(np.swapaxes(g, 1, 2))
    return r / np.trace(r, axis1=1, axis2=2).real[:, None, None]


def test_closed_forms_ghz_bell():
    # ||R(GHZ_n)||_1 = 2 on every cut (Schmidt coefficients 1/sqrt2 of the operator); Bell: 2
    assert np.allclose(realignment_norms(_ghz(3)), 2.0)
    assert np.allclose(realignment_norms(_ghz(2)), 2.0)
    for n in (3, 4):
        cert = fnf_certificate(_ghz(n))
        assert cert.entangled.all()
        # ||R|| - 1 = 1: the marginals are already I/2 on the support
        assert np.allclose(cert.realignment, 1.0)
    # correlation tensor of a Bell state: ||T||_1 = 3/2 (three singular values 1/2)
    r = realign_bipartite(_ghz(2), 2, 2)
    assert np.isclose(np.linalg.svd(correlation_tensor(r, 2, 2), compute_uv=False).sum(), 1.5)


def test_fnf_of_product_state_is_product_and_normal():
    rng = np.random.default_rng(1)
    a, b = _random_mixed(rng, 5, 2), _random_mixed(rng, 5, 4)
    x = batch_kron(a, b)
    fnf = filter_normal_form(x, 2, 4)
    assert fnf.converged.all()
    assert np.allclose(fnf.sigma, np.eye(8) / 8, atol=1e-9)  # the FNF of a full-rank product is I/d
    cert = fnf_certificate(x)
    assert not cert.entangled[:, 0].any()  # product across 1|23 (b itself may be entangled across 2|3)


def test_fnf_reduced_states_are_maximally_mixed():
    rng = np.random.default_rng(2)
    x = _random_mixed(rng, 20, 8)
    fnf = filter_normal_form(x, 2, 4)
    assert fnf.converged.all()
    t = fnf.sigma.reshape(-1, 2, 4, 2, 4)
    assert np.allclose(np.einsum("nibjb->nij", t), np.eye(2) / 2, atol=1e-8)
    assert np.allclose(np.einsum("naiaj->nij", t), np.eye(4) / 4, atol=1e-8)
    g = np.einsum("nij,nkl->nikjl", fnf.f_a, fnf.f_b).reshape(-1, 8, 8)
    y = g @ x @ np.conj(np.swapaxes(g, 1, 2))
    assert np.allclose(y / np.trace(y, axis1=1, axis2=2)[:, None, None], fnf.sigma, atol=1e-9)


def test_two_qubits_fnf_criterion_equals_ppt():
    # In the FNF a two-qubit state is Bell diagonal, where realignment <=> PPT (Verstraete, Dehaene,
    # De Moor, PRA 68, 012103 (2003); Gittsovich et al., PRA 78, 052319 (2008)).
    rng = np.random.default_rng(3)
    r = _random_mixed(rng, 600, 4)
    lam = np.linalg.eigvalsh(partial_transpose(r, [0]))[:, 0]
    far = np.abs(lam) > 1e-3
    cert = fnf_certificate(r)
    assert far.sum() > 500
    assert np.array_equal(cert.entangled[far, 0], lam[far] < 0)


def test_filters_strengthen_realignment():
    # Bell state mixed with |00>: plain CCNR misses it at p = 0.3 on cuts 1|23 and 2|13, the FNF proves it
    phi = np.zeros(4)
    phi[[0, 3]] = 2**-0.5
    z = np.zeros((4, 4))
    z[0, 0] = 1
    rho = np.kron(0.3 * np.outer(phi, phi) + 0.7 * z, np.eye(2) / 2)
    assert (realignment_norms(rho)[0, :2] < 1).all()
    assert fnf_certificate(rho).entangled[0, :2].all()


def test_local_filters_preserve_the_verdict():
    # an invertible local filter changes rho but not its FNF (up to local unitaries): same verdict
    rng = np.random.default_rng(4)
    r = _random_mixed(rng, 200, 4)
    f = rng.normal(size=(200, 2, 2)) + 1j * rng.normal(size=(200, 2, 2))
    g = batch_kron(f, np.broadcast_to(np.eye(2), (200, 2, 2)))
    y = g @ r @ np.conj(np.swapaxes(g, 1, 2))
    y /= np.trace(y, axis1=1, axis2=2).real[:, None, None]
    a, b = fnf_certificate(r), fnf_certificate(y)
    far = np.abs(a.realignment[:, 0]) > 1e-3
    assert np.array_equal(a.entangled[far], b.entangled[far])


def test_ppt_entangled_horodecki_not_detected_and_separable_never():
    # measured fact (docs/beyond-ppt.md): the realignment family misses Horodecki's 2x4 states even in FNF
    rho = horodecki_states(np.linspace(0.05, 0.95, 10), 3)
    cert = fnf_certificate(rho)
    assert not cert.entangled[:, 0].any()
    assert (cert.realignment[:, 0] < 0).all() and (cert.correlation[:, 0] < 0).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 12), n=st.sampled_from([2, 3, 4]))
def test_separable_mixtures_never_detected(seed, k, n):
    rng = np.random.default_rng(seed)
    # mixtures of k fully product pure states, some of them on the boundary (rank deficient)
    psi = [haar_state(2, k, rng) for _ in range(n)]
    prod = pure_density(np.stack([_kron_vecs([p[i] for p in psi]) for i in range(k)]))
    w = rng.dirichlet(np.ones(k))
    rho = np.einsum("k,kij->ij", w, prod)[None]
    assert not fnf_certificate(rho).entangled.any()
    assert not CcnrFnfBaseline().predict(rho).any()


def _kron_vecs(vs):
    out = vs[0]
    for v in vs[1:]:
        out = np.kron(out, v)
    return out


def test_baseline_registered_and_batched():
    from qeframe.plugin.registry import get_registry

    baseline = get_registry().create("baseline", "ccnr_fnf", {})
    rho = np.stack([_ghz(3), np.eye(8) / 8])
    assert baseline.predict(rho).tolist() == [[1, 1, 1], [0, 0, 0]]


def test_provenance_is_a_proof_and_appended():
    assert provenance_code("realignment") == 11
    assert "realignment" in PROOF_PROVENANCE


def test_labeler_stage_labels_ppt_cuts_only_by_proof():
    # fully product mixed states: every cut separable, the stage must never fire
    rng = np.random.default_rng(5)
    u = haar_unitary(2, 3 * 20, rng).reshape(20, 3, 2, 2)
    sep = batch_kron(*(u[:, q] @ np.diag([0.8, 0.2]) @ np.conj(np.swapaxes(u[:, q], 1, 2)) for q in range(3)))
    cert = CertifiedLabeler(CertifiedLabeler.Params(progress=False, sdp=False)).certify(sep)
    assert (cert.provenance != provenance_code("realignment")).all()
    assert (cert.labels == 0).all()


def test_prediction_proof_stages():
    rho = np.stack([_ghz(3), np.eye(8) / 8])
    npt = npt_mask(rho)
    proved = proof_stages(rho, ["realignment"], np.ones((2, 3), bool))
    assert proved[0].tolist() == ["realignment"] * 3 and proved[1].tolist() == [None] * 3
    config = PredictionConfig.uncalibrated(3)
    config.proofs = ("realignment",)
    out = predict(config, np.full((2, 3), -10.0), rho)
    assert out.proof()[0] == ["npt"] * 3  # the gate decides first
    assert out.answer[1].tolist() == [0, 0, 0]
    with pytest.raises(Exception, match="allowed: witness, realignment"):
        proof_stages(rho, ["sdp"], ~npt)


def test_prediction_config_round_trip_keeps_proofs():
    config = PredictionConfig.uncalibrated(3)
    config.proofs = ("witness", "realignment")
    again = PredictionConfig.from_dict(config.to_dict())
    assert again.proofs == ("witness", "realignment")


def test_fnf_undoes_local_filters_on_a_ppt_entangled_state():
    """The Tiles UPB state (PPT entangled across 12|34, rank-3 marginals) under random invertible local
    filters: plain CCNR misses most copies, the FNF certificate proves every one (filters preserve
    separability, and the FNF is the same up to local unitaries)."""
    rho = tc.tiles_in_four_qubits()
    rng = np.random.default_rng(6)
    f = [rng.normal(size=(40, 2, 2)) + 1j * rng.normal(size=(40, 2, 2)) for _ in range(4)]
    g = batch_kron(*f)
    y = g @ rho @ np.conj(np.swapaxes(g, 1, 2))
    y /= np.trace(y, axis1=1, axis2=2).real[:, None, None]
    assert not npt_mask(y)[:, 4].any()  # PPT on 12|34
    assert (realignment_norms(y)[:, 4] > 1 + 1e-9).mean() < 0.5
    cert = fnf_certificate(y)
    assert cert.entangled[:, 4].all()
    # and the certified labeler proves it with provenance `realignment`
    out = CertifiedLabeler(CertifiedLabeler.Params(progress=False, sdp=False)).certify(y[:5])
    assert (out.provenance_names()[:, 4] == "realignment").all() and (out.labels[:, 4] == 1).all()


def test_docstring_examples():
    import doctest

    from qeframe_plugins.baselines import ccnr, ccnr_fnf

    assert doctest.testmod(ccnr_fnf).failed == 0 and doctest.testmod(ccnr).failed == 0
