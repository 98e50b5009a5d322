"""Exact proofs of separability of PPT cuts: rank rules, product, the separable ball, the spectrum.

For the cuts ``A | B`` of ``rho`` in a mask (cuts that are PPT), :func:`separable_proofs` names
the first stage that *proves* ``rho`` separable across the cut, in this order:

==========  ============  ===========================================================  =========================
stage       proof         condition                                                    evidence
==========  ============  ===========================================================  =========================
``rank``    ``pure``      ``rank(rho) = 1`` (a PPT pure state is a product; Peres,     ``1`` (the rank)
                          PRL 77, 1413 (1996))
``rank``    ``rank``      ``rank(rho) <= max(rank rho_A, rank rho_B)`` (P. Horodecki,  ``rank(rho)``
                          Lewenstein, Vidal, Cirac, PRA 62, 032310 (2000), Thm. 1)
``rank``    ``support``   local ranks with ``min = 1`` or ``{2, 2}`` / ``{2, 3}``: PPT  ``lambda_min(rho^{T_A})``
                          is sufficient there (Horodecki^3, PLA 223, 1 (1996))
``product`` ``product``   ``max |rho - rho_A ⊗ rho_B| <= product_tol``                 that maximum
``ball``    ``ball``      ``tr rho^2 <= 1/(d - 1) - BALL_SLACK``: inside the largest   ``tr rho^2``
                          separable ball around ``I/d`` (Gurvits, Barnum, PRA 66,
                          062311 (2002)); separable across every cut
``spectrum`` ``spectrum`` a ``1 | rest`` (``2 x N``) cut and an absolutely separable     the margin (``<= 0``)
                          spectrum, ``l_1 <= l_{2N-1} + 2 sqrt(l_{2N-2} l_{2N})`` with
                          eigenvalue error bars ``eig_tol`` (Johnston, PRA 88, 062330
                          (2013); :func:`~qeframe.quantum.witness.absolute_separability_margin`)
==========  ============  ===========================================================  =========================

The three ``rank`` rules are those of :mod:`qeframe.quantum.rank_separable` (numerical ranks with
the ``tol`` / ``gap`` rule: an ambiguous spectrum gets no rank verdict) and are valid only on PPT
cuts; ``product``, ``ball`` and ``spectrum`` do not need PPT. The rounding slacks are those of the
``certified`` labeler, whose exact separability stages are this function
(``qeframe_plugins.labelers.certified``): a ``product`` gap of ``1e-12`` (entries of a float64
state are exact to ~1e-16), the ball used ``1e-12`` inside its radius (``tr rho^2`` rounds at
~1e-16) and eigenvalue error bars of ``1e-13`` in the spectrum condition (each eigenvalue of a
trace-1 ``eigvalsh`` is exact to ~``d`` ulp). The prediction layer answers "separable" with these
proofs (``prediction.separable_proofs``; :func:`qeframe.learn.prediction.predict`).

Conventions: ``rho`` ``(N, 2**n, 2**n)`` complex, big-endian qubits, cuts in
:func:`qeframe.quantum.cuts.bipartitions` order (``A`` the named-first side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qeframe.errors import QeframeError
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.ops import batch_kron, num_qubits, partial_trace, partial_transpose, permute_qubits
from qeframe.quantum.rank_separable import (
    PURE,
    RANK,
    RANK_GAP,
    RANK_TOL,
    SUPPORT,
    numerical_ranks,
    rank_verdicts,
)
from qeframe.quantum.witness import absolute_separability_margin

#: Stages of :func:`separable_proofs`, in the order they are tried.
SEPARABLE_STAGES: tuple[str, ...] = ("rank", "product", "ball", "spectrum")
#: Proof codes of :attr:`SeparableProofs.proof` (0: none); codes 1-3 are those of
#: :mod:`qeframe.quantum.rank_separable`.
PRODUCT, BALL, SPECTRUM = 4, 5, 6
PROOF_NAMES: tuple[str, ...] = ("none", "pure", "rank", "support", "product", "ball", "spectrum")
#: ``max |rho - rho_A ⊗ rho_B|`` at or below this is a product (the labeler's ``product_tol``).
PRODUCT_TOL = 1e-12
#: The separable ball is used this far inside its radius ``1/(d-1)`` (rounding of ``tr rho^2``).
BALL_SLACK = 1e-12
#: Error bar on each eigenvalue of ``rho`` in the spectrum stage (the labeler's ``eig_tol``).
EIG_TOL = 1e-13


def check_separable_stages(stages: Sequence[str], key: str = "separable stages") -> tuple[str, ...]:
    """``stages`` as a tuple if each is one of :data:`SEPARABLE_STAGES`, else a one-line error naming ``key``."""
    stages = tuple(str(s) for s in stages)
    bad = [s for s in stages if s not in SEPARABLE_STAGES]
    if bad:
        raise QeframeError(f"{key}: unknown stage(s) {bad}; allowed: {', '.join(SEPARABLE_STAGES)}")
    return stages


@dataclass
class SeparableProofs:
    """What :func:`separable_proofs` proved; arrays ``(N, n_cuts)``.

    Attributes:
        proof: int8 codes into :data:`PROOF_NAMES` (0: no proof).
        evidence: float64, the value behind each proof (module table), NaN without one.
        support: int ``(N, n_cuts, 2)``: ``(min, max)`` numerical local ranks where the ``rank``
            stage ran (the support of a ``support`` proof), else 0.
        ball_bound: the bound ``1/(d - 1) - BALL_SLACK`` on ``tr rho^2`` the ``ball`` stage used.
    """

    proof: np.ndarray
    evidence: np.ndarray
    support: np.ndarray
    ball_bound: float

    @property
    def proved(self) -> np.ndarray:
        """``(N, n_cuts)`` bool: the cut is proved separable."""
        return self.proof != 0

    def names(self) -> np.ndarray:
        """``(N, n_cuts)`` object array: the proof's name (:data:`PROOF_NAMES`) or ``None``."""
        table = np.array([None, *PROOF_NAMES[1:]], dtype=object)
        return table[self.proof]


def separable_proofs(
    rho: np.ndarray,
    mask: np.ndarray,
    stages: Sequence[str] = SEPARABLE_STAGES,
    *,
    rank_tol: float = RANK_TOL,
    rank_gap: float = RANK_GAP,
    product_tol: float = PRODUCT_TOL,
    eig_tol: float = EIG_TOL,
) -> SeparableProofs:
    """Prove the cuts in ``mask`` ``(N, n_cuts)`` of ``rho`` ``(N, d, d)`` separable (module table).

    ``mask`` must hold PPT cuts only (the ``rank`` stage assumes PPT; the caller tests it, e.g. with
    :func:`qeframe.quantum.ppt.npt_mask`). ``stages``: a subset of :data:`SEPARABLE_STAGES`, always
    tried in the table's order. Batched over states, one pass per cut.
    """
    stages = check_separable_stages(stages)
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n, d = num_qubits(rho.shape[-1]), rho.shape[-1]
    mask = np.asarray(mask, bool)
    shape = (rho.shape[0], n_cuts(n))
    proof = np.zeros(shape, np.int8)
    evidence = np.full(shape, np.nan)
    support = np.zeros((*shape, 2), int)
    ball_bound = 1.0 / (d - 1) - BALL_SLACK
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0 or not stages:
        return SeparableProofs(proof, evidence, support, ball_bound)
    sub = rho[rows]
    eig = np.linalg.eigvalsh(sub)
    rank_rho, amb_rho = numerical_ranks(eig, rank_tol, rank_gap)
    pur = (eig * eig).sum(axis=-1)  # tr(rho^2)
    for cut in bipartitions(n):  # loop over cuts, batched over states
        sel = np.flatnonzero(mask[rows, cut.index])
        if sel.size == 0:
            continue
        s, target, j = sub[sel], rows[sel], cut.index
        rho_a, rho_b = partial_trace(s, cut.side_a), partial_trace(s, cut.side_b)
        rest = np.ones(sel.size, bool)
        if "rank" in stages:
            r_a, amb_a = numerical_ranks(np.linalg.eigvalsh(rho_a), rank_tol, rank_gap)
            r_b, amb_b = numerical_ranks(np.linalg.eigvalsh(rho_b), rank_tol, rank_gap)
            r = rank_rho[sel]
            verdict = rank_verdicts(r, r_a, r_b, amb_rho[sel] | amb_a | amb_b)
            support[target, j] = np.stack([np.minimum(r_a, r_b), np.maximum(r_a, r_b)], axis=1)
            by_rank = (verdict == PURE) | (verdict == RANK)
            small = verdict == SUPPORT
            proof[target, j] = verdict
            evidence[target[by_rank], j] = r[by_rank]
            evidence[target[small], j] = np.linalg.eigvalsh(partial_transpose(s[small], cut.side_a))[:, 0]
            rest = verdict == 0
        if "product" in stages:
            reordered = permute_qubits(s, list(cut.side_a) + list(cut.side_b))
            gap = np.abs(reordered - batch_kron(rho_a, rho_b)).max(axis=(1, 2))
            hit = rest & (gap <= product_tol)
            proof[target[hit], j], evidence[target[hit], j] = PRODUCT, gap[hit]
            rest &= ~hit
        if "ball" in stages:
            hit = rest & (pur[sel] <= ball_bound)
            proof[target[hit], j], evidence[target[hit], j] = BALL, pur[sel][hit]
            rest &= ~hit
        if "spectrum" in stages and len(cut.side_a) == 1:
            # eigenvalue error bars: upper end for lambda_1, lower ends for the others
            e = eig[sel]
            margin = absolute_separability_margin(
                np.concatenate([e[:, :-1] - eig_tol, e[:, -1:] + eig_tol], axis=1), (2, d // 2)
            )
            hit = rest & (margin <= 0)
            proof[target[hit], j], evidence[target[hit], j] = SPECTRUM, margin[hit]
    return SeparableProofs(proof, evidence, support, ball_bound)
