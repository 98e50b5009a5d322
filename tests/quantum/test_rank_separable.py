"""Rank rules for separable PPT cuts (:mod:`qeframe.quantum.rank_separable`).

Checks: low-rank separable constructions get a verdict on every cut (hypothesis), entangled PPT
constructions (filtered Horodecki states) never do on their PPT cut, ambiguous spectra get none,
the rules agree with the ``certified`` labeler's ``pure-ppt`` / ``rank`` / support stages.
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ppt_states import filtered_product_mixture

from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import partial_trace, permute_qubits
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import apply_local_filters, random_local_filters
from qeframe.quantum.rank_separable import (
    NONE,
    PURE,
    RANK,
    RANK_GAP,
    RANK_TOL,
    SUPPORT,
    numerical_ranks,
    rank_separable,
)
from qeframe.quantum.witness import horodecki_library_states


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), terms=st.integers(1, 4), kappa=st.floats(1.0, 10.0))
@example(seed=1, terms=4, kappa=6.0)  # a marginal eigenvalue between RANK_TOL and RANK_GAP
def test_low_rank_separable_mixtures_get_a_verdict_on_every_cut(seed, terms, kappa):
    """A mixture of ``r <= 4`` product states (then filtered) is separable on every ``1 | 2`` cut
    and has ``rank = r <= 4 = rank rho_B`` (generic): the rank rule (``pure`` for ``r = 1``)."""
    rho = filtered_product_mixture(seed, 6, terms, kappa)
    assert not npt_mask(rho).any()
    _, amb_rho = numerical_ranks(np.linalg.eigvalsh(rho), RANK_TOL, RANK_GAP)
    clear_cases = 0
    for cut in bipartitions(3):
        verdict, rank = rank_separable(rho, cut.side_a)
        assert (rank == terms).all()
        side_b = [q for q in range(3) if q not in cut.side_a]
        ambiguous = amb_rho.copy()
        for side in (list(cut.side_a), side_b):
            ambiguous |= numerical_ranks(np.linalg.eigvalsh(partial_trace(rho, side)), RANK_TOL, RANK_GAP)[1]
        # A draw whose product terms are nearly dependent (after the filter) has an eigenvalue of
        # rho or of a marginal between RANK_TOL and RANK_GAP: that verdict is refused (NONE), never
        # guessed; every other draw gets the rule.
        assert (verdict[~ambiguous] == (PURE if terms == 1 else RANK)).all()
        assert (verdict[ambiguous] == NONE).all()
        clear_cases += int((~ambiguous).sum())
    assert clear_cases >= 12  # of 18: ambiguous spectra are rare


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), kappa=st.floats(1.0, 10.0))
def test_filtered_horodecki_states_never_get_a_verdict_on_their_ppt_cut(seed, kappa):
    """P. Horodecki's ``2 x 4`` PPT-entangled states (rank > 4) under local filters and qubit
    permutations: no rule applies on the PPT cut (nor on the NPT ones, where the rules are not valid)."""
    rng = np.random.default_rng(seed)
    rho = horodecki_library_states(3)[rng.integers(0, 5, 4)]
    rho = apply_local_filters(rho, random_local_filters(4, 3, kappa, rng))
    rho = np.stack([permute_qubits(r, list(rng.permutation(3))) for r in rho])
    for cut in bipartitions(3):
        verdict, rank = rank_separable(rho, cut.side_a)
        assert (verdict == NONE).all() and (rank > 4).all()


def test_ambiguous_spectra_and_small_supports():
    """An eigenvalue between ``tol`` and ``gap`` gives no verdict; a state on a ``2 x 2`` support
    of a ``1 | 23`` cut with full rank 4 > 2 gets the support rule."""
    rng = np.random.default_rng(0)
    rho = filtered_product_mixture(1, 1, 2, 1.0)
    lam, vec = np.linalg.eigh(rho[0])
    lam[0] = 1e-7  # neither zero nor clearly non-zero
    amb = (vec * lam) @ vec.conj().T
    assert (rank_separable(amb[None], [0])[0] == NONE).all()
    # qubit 1 maximally mixed with a full-rank two-qubit state on qubits 2, 3 restricted to |0>,|1> of qubit 3
    two = np.zeros((4, 4), complex)
    m = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    two = m @ m.conj().T
    two /= np.trace(two).real
    # embed qubits (1, 2) of `two` with qubit 3 fixed to |0>: rho_B of the 1|23 cut has rank 2
    e0 = np.diag([1.0, 0.0])
    emb = np.kron(two, e0)
    verdict, rank = rank_separable(emb[None], [0])
    assert rank[0] == 4 and verdict[0] == SUPPORT
    assert numerical_ranks(np.array([[0.0, 1e-10, 0.5, 0.5]]), 1e-9, 1e-6)[0][0] == 2


def test_rules_agree_with_the_certified_labeler():
    """Where a rule applies, the ``certified`` labeler (no SDP) proves the cut separable with the
    matching provenance (``pure-ppt``, ``rank``, ``analytic``)."""
    from qeframe_plugins.labelers.certified import CertifiedLabeler

    rho = np.concatenate([filtered_product_mixture(s, 3, t, 3.0) for s, t in ((1, 1), (2, 2), (3, 4))])
    cert = CertifiedLabeler(CertifiedLabeler.Params(sdp=False, progress=False, use_ground_truth=False))
    out = cert.certify(rho)
    names = out.provenance_names()
    expect = {PURE: "pure-ppt", RANK: "rank", SUPPORT: "analytic"}
    for cut in bipartitions(3):
        verdict, _ = rank_separable(rho, cut.side_a)
        assert (verdict != NONE).all()
        assert (out.labels[:, cut.index] == 0).all()
        assert [names[i, cut.index] for i in range(len(rho))] == [expect[int(v)] for v in verdict]
