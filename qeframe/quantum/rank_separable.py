"""Exact separability of PPT cuts from numerical ranks: pure states, low rank, small supports.

For a cut ``A | B`` of a state ``rho`` that is PPT across it, each rule below *proves* ``rho``
separable across the cut (no witness can then detect it):

- ``pure``: ``rank(rho) = 1``. A pure state with a positive partial transpose is a product across
  the cut (its Schmidt coefficients ``s_i s_j`` appear as ``-s_i s_j`` eigenvalues of the partial
  transpose; Peres, PRL 77, 1413 (1996)).
- ``rank``: ``rank(rho) <= max(rank rho_A, rank rho_B)``. Every PPT state supported on
  ``C^M ⊗ C^N`` (local ranks ``M``, ``N``) with ``rank(rho) <= max(M, N)`` is separable
  (P. Horodecki, Lewenstein, Vidal, Cirac, PRA 62, 032310 (2000), Theorem 1; for ``2 x N`` with
  rank ``N``: Kraus, Cirac, Karnas, Lewenstein, PRA 61, 062302 (2000)). The local ranks are those of
  the actual marginals, never the nominal dimensions: a rank-4 PPT state supported on ``3 x 3`` can
  be entangled.
- ``support``: ``min(rank rho_A, rank rho_B) = 1``, or local ranks ``{2, 2}`` / ``{2, 3}``: the state
  lives on ``supp(rho_A) ⊗ supp(rho_B)`` (Horodecki^3, PLA 223, 1 (1996): PPT is sufficient on
  ``2 x 2`` and ``2 x 3``; a partial transpose commutes with local isometries up to complex
  conjugation, so the compressed state is PPT exactly when ``rho`` is).

Ranks are numerical: an eigenvalue counts as zero when ``<= tol`` and as non-zero when ``>= gap``; a
cut where ``rho``, ``rho_A`` or ``rho_B`` has an eigenvalue in between is *ambiguous* and gets no
verdict. These are the rules and defaults of the ``certified`` labeler's ``pure-ppt``, ``rank`` and
support ``analytic`` stages (``qeframe_plugins.labelers.certified``, through the ``rank`` stage of
:func:`qeframe.quantum.separable_proofs.separable_proofs`, which calls :func:`numerical_ranks` and
:func:`rank_verdicts`), so a cut with a verdict here is one that labeler proves separable.

Conventions: ``rho`` ``(N, 2**n, 2**n)`` complex, big-endian qubits; the caller passes PPT cuts
only (the rules assume PPT; this module does not test it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qeframe.quantum.ops import partial_trace

#: Default numerical-rank tolerances (as the ``certified`` labeler's ``rank_tol`` / ``rank_gap``).
RANK_TOL = 1e-9
RANK_GAP = 1e-6

#: Verdict codes of :func:`rank_separable`.
NONE, PURE, RANK, SUPPORT = 0, 1, 2, 3
RULE_NAMES = ("none", "pure", "rank", "support")


def numerical_ranks(eigenvalues: np.ndarray, tol: float, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Numerical ranks ``(M,)`` int and an ``(M,)`` bool "ambiguous" flag from ``(M, k)`` eigenvalues."""
    rank = np.count_nonzero(eigenvalues > tol, axis=-1)
    ambiguous = ((eigenvalues > tol) & (eigenvalues < gap)).any(axis=-1)
    return rank, ambiguous


def rank_separable(
    rho: np.ndarray,
    side_a: Sequence[int],
    *,
    tol: float = RANK_TOL,
    gap: float = RANK_GAP,
    eigenvalues: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which PPT cuts ``side_a | rest`` of ``rho`` ``(N, d, d)`` the rank rules prove separable.

    ``eigenvalues`` ``(N, d)``: those of ``rho`` when already computed (they do not depend on the
    cut). Returns ``(verdict (N,) int8, rank (N,) int)``: :data:`PURE`, :data:`RANK`,
    :data:`SUPPORT` (the first rule that applies, in that order) or :data:`NONE`, and the numerical
    rank of ``rho``. Valid only for cuts that are PPT (module docstring).
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n = int(np.log2(rho.shape[-1]))
    side_b = [q for q in range(n) if q not in set(side_a)]
    eig = np.linalg.eigvalsh(rho) if eigenvalues is None else np.asarray(eigenvalues)
    r, amb = numerical_ranks(eig, tol, gap)
    r_a, amb_a = numerical_ranks(np.linalg.eigvalsh(partial_trace(rho, list(side_a))), tol, gap)
    r_b, amb_b = numerical_ranks(np.linalg.eigvalsh(partial_trace(rho, side_b)), tol, gap)
    return rank_verdicts(r, r_a, r_b, amb | amb_a | amb_b), r


def rank_verdicts(
    rank: np.ndarray, rank_a: np.ndarray, rank_b: np.ndarray, ambiguous: np.ndarray
) -> np.ndarray:
    """The rules of the module docstring on numerical ranks ``(M,)`` of ``rho``, ``rho_A``, ``rho_B``
    (:func:`numerical_ranks`; ``ambiguous`` ``(M,)`` bool: any of the three spectra ambiguous).
    Returns ``(M,)`` int8 verdicts: :data:`PURE`, :data:`RANK`, :data:`SUPPORT` (the first rule that
    applies, in that order) or :data:`NONE` (always where ambiguous)."""
    clear = ~np.asarray(ambiguous, bool)
    lo, hi = np.minimum(rank_a, rank_b), np.maximum(rank_a, rank_b)
    pure = clear & (rank == 1)
    by_rank = clear & ~pure & (rank <= hi)
    small = clear & ~pure & ~by_rank & ((lo <= 1) | ((lo == 2) & (hi <= 3)))
    verdict = np.zeros(len(clear), np.int8)
    verdict[pure], verdict[by_rank], verdict[small] = PURE, RANK, SUPPORT
    return verdict
