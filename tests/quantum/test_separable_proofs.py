"""Exact separability proofs (:mod:`qeframe.quantum.separable_proofs`).

Checks, on states with a known answer: products of mixed states get ``product``; any state inside the
Gurvits-Barnum ball gets ``ball`` on every cut; absolutely separable spectra outside the ball get
``spectrum`` on every ``1 | rest`` cut; low-rank separable mixtures get the rank rules. P. Horodecki's
PPT-entangled ``2 x 4`` states (any ``b``, local filters, qubit permutations) never get a proof; the
stages can be chosen; a wrong stage name is a one-line error.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ppt_states import filtered_product_mixture, mixtures
from qeframe_plugins.families.horodecki import horodecki_states

from qeframe.errors import QeframeError
from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import batch_kron, permute_qubits
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import apply_local_filters, haar_unitary, random_local_filters
from qeframe.quantum.rank_separable import rank_separable
from qeframe.quantum.separable_proofs import (
    BALL,
    PRODUCT,
    PROOF_NAMES,
    SEPARABLE_STAGES,
    SPECTRUM,
    check_separable_stages,
    separable_proofs,
)
from qeframe.quantum.witness import absolute_separability_margin

ALL = np.ones((1, 3), bool)


def _with_spectrum(eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``U diag(eigenvalues) U^†`` for Haar ``U`` of ``C^8``: ``(N, 8)`` -> ``(N, 8, 8)``."""
    u = haar_unitary(8, len(eigenvalues), rng)
    return np.einsum("nij,nj,nkj->nik", u, eigenvalues, u.conj())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), noise=st.floats(0.0, 1.0))
def test_products_of_mixed_states_are_proved_products(seed, noise):
    """``rho_A ⊗ rho_{BC}`` with full-rank noisy marginals (rank 8 > 4, supports 2 x 4): ``product`` on
    the ``1 | 23`` cut (the rank rules do not apply there)."""
    rng = np.random.default_rng(seed)
    a = mixtures(1, 4, rng, rank=2)
    bc = mixtures(2, 4, rng, rank=4)
    a = (1 - noise / 2) * a + noise / 4 * np.eye(2)
    rho = batch_kron(a, bc)
    ppt = ~npt_mask(rho)  # rho_{BC} is a random (mostly entangled) state: 2|13, 3|12 may be NPT
    assert ppt[:, 0].all()
    sep = separable_proofs(rho, ppt)
    assert (sep.proof[:, 0] == PRODUCT).all()
    assert (sep.evidence[:, 0] <= 1e-12).all()
    # moved so that the product cut is 2 | 13: the same proof there
    moved = np.stack([permute_qubits(r, [1, 0, 2]) for r in rho])
    assert (separable_proofs(moved, ~npt_mask(moved)).proof[:, 1] == PRODUCT).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), depth=st.floats(0.0, 0.99))
def test_states_inside_the_separable_ball_are_proved_on_every_cut(seed, depth):
    """Random three-qubit states of rank 1-4 (pure ones mostly NPT on every cut) mixed with white noise until
    ``tr rho^2 = depth / 7 + (1 - depth) / 8`` (inside the radius ``1/7``): ``ball`` on every cut, or an
    earlier stage; the evidence is the purity."""
    rng = np.random.default_rng(seed)
    sigma = mixtures(3, 5, rng, rank=int(rng.integers(1, 5)))  # tr(sigma^2) >= 1/4
    target = depth / 7 + (1 - depth) / 8
    pur = np.einsum("nij,nji->n", sigma, sigma).real  # tr(sigma^2) > target
    q = np.sqrt((target - 1 / 8) / (pur - 1 / 8))  # tr((q sigma + (1-q) I/8)^2) = 1/8 + q^2 (pur - 1/8)
    rho = q[:, None, None] * sigma + (1 - q)[:, None, None] * np.eye(8) / 8
    assert not npt_mask(rho).any()  # the ball lies inside the PPT states
    sep = separable_proofs(rho, np.ones((5, 3), bool), ("ball",))
    assert (sep.proof == BALL).all()
    np.testing.assert_allclose(sep.evidence, np.broadcast_to(target, (3, 5)).T, rtol=1e-12)


def test_the_ball_is_used_strictly_inside_its_radius():
    """Purity ``1/7 + 1e-9`` (just outside) is not proved by the ball; ``1/7 - 1e-9`` is."""
    rng = np.random.default_rng(0)
    lam = np.full(8, 1 / 8.0)
    for delta, proved in ((1e-9, False), (-1e-9, True)):
        x = np.sqrt((1 / 7 + delta - 1 / 8) / (1 - 1 / 8))  # tr(rho^2) of (1-x) I/8 + x |0><0|
        e = (1 - x) * lam + x * np.eye(8)[0]
        rho = _with_spectrum(e[None], rng)
        sep = separable_proofs(rho, ALL, ("ball",))
        assert (sep.proof == BALL).all() == proved


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), top=st.floats(0.15, 0.29))
def test_absolutely_separable_spectra_outside_the_ball_are_proved_on_every_one_qubit_cut(seed, top):
    """Spectrum ``(top, (1 - top)/7 x 7)``: absolutely separable for ``top <= 3 (1 - top)/7`` (Johnston's
    ``2 x 4`` condition, ``top <= 0.3``), outside the ball for ``top > 0.226`` (purity ``> 1/7``).
    Random eigenvectors: ``spectrum`` on every cut of three qubits (all ``1 | rest``) when outside the
    ball, ``ball`` otherwise; never ``product`` (the eigenvectors are generic)."""
    rng = np.random.default_rng(seed)
    e = np.array([top] + [(1 - top) / 7] * 7)
    rho = _with_spectrum(np.broadcast_to(e, (4, 8)), rng)
    assert not npt_mask(rho).any()
    sep = separable_proofs(rho, np.ones((4, 3), bool))
    expected = BALL if (e**2).sum() <= 1 / 7 - 1e-12 else SPECTRUM
    assert (sep.proof == expected).all()
    if expected == SPECTRUM:
        assert (sep.evidence < 0).all()


def test_a_spectrum_at_johnstons_bound_is_not_proved():
    """``top = 0.3``: margin 0 exactly; the eigenvalue error bars make it positive, so no proof (the
    stage never relies on rounding)."""
    e = np.array([0.3] + [0.1] * 7)
    assert absolute_separability_margin(np.sort(e)[None], (2, 4))[0] == pytest.approx(0.0, abs=1e-16)
    rho = _with_spectrum(e[None], np.random.default_rng(1))
    assert not separable_proofs(rho, ALL).proved.any()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), terms=st.integers(1, 4), kappa=st.floats(1.0, 10.0))
def test_rank_stage_is_the_rank_rules(seed, terms, kappa):
    """The low-rank separable mixtures of test_rank_separable: the ``rank`` stage gives exactly
    :func:`~qeframe.quantum.rank_separable.rank_separable`'s verdict on every cut."""
    rho = filtered_product_mixture(seed, 6, terms, kappa)
    sep = separable_proofs(rho, np.ones((6, 3), bool), ("rank",))
    for cut in bipartitions(3):
        verdict, _ = rank_separable(rho, cut.side_a)
        assert (sep.proof[:, cut.index] == verdict).all()
    assert {PROOF_NAMES[c] for c in np.unique(sep.proof)} <= {"none", "pure", "rank", "support"}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    b=st.floats(1e-3, 1 - 1e-3),
    kappa=st.floats(1.0, 10.0),
)
def test_horodecki_states_are_never_proved_separable(seed, b, kappa):
    """P. Horodecki's ``2 x 4`` states (Phys. Lett. A 232, 333 (1997); PPT-entangled on ``1 | 23`` for
    every ``0 < b < 1``) under local filters (which keep entanglement) and a qubit permutation: no
    stage proves any PPT cut separable (the NPT cuts are outside the mask, where the rank rules are
    not valid)."""
    rng = np.random.default_rng(seed)
    rho = horodecki_states(np.full(3, b))
    rho = apply_local_filters(rho, random_local_filters(3, 3, kappa, rng))
    rho /= np.trace(rho, axis1=1, axis2=2).real[:, None, None]
    rho = np.stack([permute_qubits(r, list(rng.permutation(3))) for r in rho])
    ppt = ~npt_mask(rho)
    assert ppt.sum(axis=1).tolist() == [1, 1, 1]  # the 2 x 4 cut is PPT, the others NPT
    assert not separable_proofs(rho, ppt).proved.any()


def test_stages_are_chosen_and_checked():
    rng = np.random.default_rng(3)
    rho = batch_kron(mixtures(1, 2, rng, rank=2), mixtures(2, 2, rng, rank=4))
    mask = np.ones((2, 3), bool)
    assert (separable_proofs(rho, mask, ()).proof == 0).all()
    assert (separable_proofs(rho, mask, ("product",)).proof[:, 0] == PRODUCT).all()
    masked = separable_proofs(rho, np.zeros((2, 3), bool))
    assert not masked.proved.any() and np.isnan(masked.evidence).all()
    assert masked.names()[0].tolist() == [None, None, None]
    assert check_separable_stages(["ball", "rank"]) == ("ball", "rank")
    assert SEPARABLE_STAGES == ("rank", "product", "ball", "spectrum")
    with pytest.raises(
        QeframeError,
        match=r"^prediction\.separable_proofs: unknown stage\(s\) \['pure'\]; "
        r"allowed: rank, product, ball, spectrum$",
    ):
        check_separable_stages(["rank", "pure"], key="prediction.separable_proofs")
