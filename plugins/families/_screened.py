"""Screened comb products: the ``product`` family's biseparable circuit mixtures, exact only where a labeler keeps them.

The ``verified`` labeler keeps a biseparable product ``ρ = Σ_t p_t ρ_A^t ⊗ ρ_B^t`` (arXiv 2210.07410,
Eq. A5) only when every cut other than the product cut is NPT; for the comb entries of Table I
that is 2-4 % of the draws, and nothing short of the whole sum proves a draw PPT
(``docs/performance.md``). Given the labeler's :class:`~qeframe.plugin.interfaces.DropRule`, the
family therefore computes every draw twice, cheaply and then exactly where needed:

1. **Draw** every random number of the block first (:func:`draw_products`), in the order the
   unscreened family draws them (term counts and weights, then per term slot and factor the
   factor's mixing counts and weights and its pure states' uniforms): the generator ends where it
   ends without the screen.
2. **Screen**: assemble every draw in single precision (complex64 arithmetic, float32 cosines and
   sines without the float64 renormalisation; :func:`assemble` with ``approx``), in the canonical
   frame (side A first), and certify with :func:`qeframe.quantum.ppt.npt_mask` on
   ``ρ̃ - m I`` (``m`` = :data:`SCREEN_MARGIN`, tolerance ``m/10``) which cuts have
   ``λ_min(ρ̃^{T_X}) >= 0.9 m``.
3. **Exact**: assemble the draws the screen did not drop from the same random numbers with the
   unscreened family's operations (:func:`assemble` on a subset); the dropped draws become the
   maximally mixed state ``I/d`` with the same ground truth.

**Why the labeler's output is unchanged** (the :class:`~qeframe.plugin.interfaces.DropRule`
contract). *Kept rows are bit-identical*: every operation of the exact pass acts sample by sample
(pure states column by column, :mod:`._small_circuits`; a factor's mixture over its own consecutive draws, :func:`._common.mix_vectors`; the Kronecker
product, weight and running sum per sample), so a subset's states are those rows of the whole
batch; ``tests/plugins/test_screened.py`` checks it bit for bit. *Dropped draws would have been
dropped*: let ``ρ`` be the exact state and ``ρ̃`` its single-precision version, ``δ = ||ρ - ρ̃||_F``.
A partial transpose permutes matrix entries, so ``||ρ^Γ - ρ̃^Γ||_2 <= ||ρ^Γ - ρ̃^Γ||_F = δ`` and by
Weyl's inequality (Horn & Johnson, *Matrix Analysis*, 2nd ed., CUP 2013, Thm. 4.3.1)
``λ_min(ρ^Γ) >= λ_min(ρ̃^Γ) - δ >= 0.9 m - δ``. Every entry of ``ρ̃`` comes from inputs of modulus
at most 1 (unit phases, amplitudes, convex weights) through at most a few dozen float32 roundings
per operand path and convex (weight-sum-one) combinations, so each entry is within ``γ_k ≈ k u``
of ``ρ``'s (``u = 2^-24``, ``k < 100``; Higham, *Accuracy and Stability of Numerical Algorithms*,
2nd ed., SIAM 2002, Lemma 3.1 and Sec. 3.1) and ``δ <= d · 100 u < 1e-4`` for ``d <= 16`` (factors
of one and two qubits: at most 4 qubits), against ``0.9 m = 9e-4`` (the tests measure
``max |ρ - ρ̃|`` below ``1e-5``). So ``λ_min(ρ^Γ) > 0 > -tol``:
the cut is not NPT, and ``ρ`` is not pure either (a state with ``tr ρ² > 1 - ε`` has
``λ_min(ρ^Γ) < ε`` on every cut: ``ρ = λ_1 ψψ† + R`` with ``tr R < ε`` and a pure state's partial
transpose has ``λ_min <= 0``), so the labeler drops ``ρ`` — and drops ``I/d`` (PPT everywhere,
not pure, the same unknown cut). Which draws are kept, and their rows, are the same with and
without the screen; the store's content hash does not change.

Only the ``circuit`` source with one- and two-qubit factors is screened: for ``haar`` factors the
single-precision pass costs about what the exact one does (measured: 24.4 against 24.9 µs per draw),
so the screen would gain nothing there.

Shapes: ``rho`` ``(count, 2**n, 2**n)``; the canonical frame has side A (``sizes[0]`` qubits) as the
leftmost factor, as :func:`._common.place_bipartite` expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import batch_kron
from qeframe.quantum.ppt import npt_mask

from ._common import mix_vectors, random_counts, random_weights, term_weights
from ._small_circuits import (
    one_qubit_draws,
    one_qubit_from_draws,
    take_draws,
    two_qubit_draws,
    two_qubit_from_draws,
)

#: The screen drops a draw when ``λ_min(ρ̃^Γ) >= 0.9 * SCREEN_MARGIN`` on a cut of unknown ground truth.
SCREEN_MARGIN = 1e-3


@dataclass
class Factor:
    """One local factor of every sample of a term slot: ``counts`` ``(S,)`` pure draws each,
    ``weights`` ``(sum(counts),)`` float64 mixing weights, ``draws`` their uniforms."""

    qubits: int
    counts: np.ndarray
    weights: np.ndarray
    draws: tuple[np.ndarray, ...]


@dataclass
class ProductDraws:
    """The random numbers of ``count`` convex products: term weights ``w`` ``(count, T_max)`` and per
    term slot ``t`` the samples having it (``index[t]``) and their factors."""

    count: int
    w: np.ndarray
    index: list[np.ndarray]
    factors: list[list[Factor]]


def _draw_vectors(k: int, count: int, rng: np.random.Generator, u_layers: int) -> tuple[np.ndarray, ...]:
    """The uniforms of ``count`` pure ``k``-qubit circuit draws (``k`` = 1 or 2), as the family draws them."""
    return (one_qubit_draws if k == 1 else two_qubit_draws)(rng, count, u_layers)


def _vectors(k: int, draws: tuple[np.ndarray, ...], approx: bool) -> np.ndarray:
    """Pure states ``(count, 2**k)`` of the draws: complex128 exact, or complex64 with ``approx``."""
    return (one_qubit_from_draws if k == 1 else two_qubit_from_draws)(draws, approx)


def draw_products(
    count: int,
    sizes: list[int],
    rng: np.random.Generator,
    *,
    terms: tuple[int, int],
    local_terms: tuple[int, int],
    u_layers: int,
) -> ProductDraws:
    """Every random number of ``count`` convex products with factor sizes ``sizes``, in the order of
    ``ProductFamily._convex_products`` (term counts, term weights; then per slot and factor: mixing
    counts, mixing weights, the pure draws)."""
    n_terms, w = term_weights(rng, count, terms)
    index, factors = [], []
    for t in range(w.shape[1]):
        idx = np.flatnonzero(n_terms > t)
        row = []
        for k in sizes:
            m = random_counts(rng, idx.size, local_terms)
            q, _ = random_weights(rng, m)
            row.append(Factor(k, m, q, _draw_vectors(k, int(m.sum()), rng, u_layers)))
        index.append(idx)
        factors.append(row)
    return ProductDraws(count, w, index, factors)


def _factor(f: Factor, pos: np.ndarray | None, approx: bool) -> np.ndarray:
    """Factor ``f`` of the slot's samples ``pos`` (positions in the slot; ``None``: all)."""
    if pos is None:
        m, draws, q = f.counts, f.draws, f.weights
    else:
        m = f.counts[pos]
        starts = np.cumsum(f.counts) - f.counts
        cols = np.repeat(starts[pos], m) + (np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m))
        draws, q = take_draws(f.draws, cols), f.weights[cols]
    psi = _vectors(f.qubits, draws, approx)
    return mix_vectors(psi, q, m)  # complex64 psi (approx): the single-precision mixture


def assemble(draws: ProductDraws, samples: np.ndarray | None = None, approx: bool = False) -> np.ndarray:
    """``Σ_t p_t ⊗_f ρ_f^t`` of the samples ``samples`` (default: all) in the canonical frame.

    Exact (complex128): per sample the operations of ``ProductFamily._convex_products``, so the
    rows are bit-identical to it. ``approx``: complex64 throughout (the screening pass).
    """
    n_out = draws.count if samples is None else samples.size
    dim = 2 ** sum(f.qubits for f in draws.factors[0]) if draws.factors else 1
    rho = np.zeros((n_out, dim, dim), dtype=np.complex64 if approx else np.complex128)
    where = None
    if samples is not None:
        where = np.full(draws.count, -1)
        where[samples] = np.arange(n_out)
    for t, (idx, row) in enumerate(zip(draws.index, draws.factors, strict=True)):
        pos, rows = None, idx
        if where is not None:
            mapped = where[idx]
            pos = np.flatnonzero(mapped >= 0)
            if pos.size == 0:
                continue
            rows = mapped[pos]
        term = None
        for f in row:
            factor = _factor(f, pos, approx)
            term = factor if term is None else batch_kron(term, factor)
        wt = draws.w[idx if pos is None else idx[pos], t]
        term *= wt.astype(np.float32)[:, None, None] if approx else wt[:, None, None]
        rho[rows] += term
    return rho


def product_cut(a: int, n: int) -> int:
    """Index of the cut between the canonical frame's first ``a`` qubits and the rest."""
    side = frozenset(range(a))
    return next(c.index for c in bipartitions(n) if side in (frozenset(c.side_a), frozenset(c.side_b)))


def screen(approx: np.ndarray, a: int, n: int) -> np.ndarray:
    """``(count,)`` bool: draws certified to have ``λ_min(ρ̃^Γ) >= 0.9 SCREEN_MARGIN`` on a cut other
    than the product cut of their canonical frame (``approx`` complex64 ``(count, d, d)``)."""
    rho = approx.astype(np.complex128)
    rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))
    diag = np.arange(rho.shape[1])
    rho[:, diag, diag] -= SCREEN_MARGIN
    ppt = ~npt_mask(rho, tol=0.1 * SCREEN_MARGIN)
    ppt[:, product_cut(a, n)] = False
    return ppt.any(axis=1)


def screened_products(count: int, sizes: list[int], n: int, rng: np.random.Generator, **recipe) -> np.ndarray:
    """The canonical-frame products of ``ProductFamily._convex_products`` (same stream) with the
    draws the screen drops replaced by ``I/d``: ``(count, 2**n, 2**n)`` complex128 (module docstring)."""
    draws = draw_products(count, sizes, rng, **recipe)
    dropped = screen(assemble(draws, approx=True), sizes[0], n)
    d = 2**n
    out = np.empty((count, d, d), dtype=np.complex128)
    out[dropped] = np.eye(d) / d
    kept = np.flatnonzero(~dropped)
    if kept.size:
        out[kept] = assemble(draws, samples=kept)
    return out
