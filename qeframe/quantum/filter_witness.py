"""Verified library witnesses aligned to a state by a local filter: a proof search whose successes are proofs.

**The fact used.** Let ``W`` on ``C^2 ⊗ C^D`` be block-positive (``<e,f|W|e,f> >= 0`` for all product
vectors) and ``H = H_A ⊗ H_B`` *any* local operator. Then ``H^† W H`` is block-positive:
``<e,f|H^† W H|e,f> = <H_A e, H_B f| W |H_A e, H_B f> >= 0``. So

    tr(W H rho H^†) = tr(H^† W H rho) < 0   proves   rho entangled across the cut,

whoever chose ``H`` (Horodecki^3, Phys. Lett. A 223, 1 (1996); Terhal, Phys. Lett. A 271, 319
(2000)). Likewise the partial transpose ``W^{T_A}`` is block-positive
(``<e,f|W^{T_A}|e,f> = <e*,f|W|e*,f>``, an exact permutation of the stored entries), which detects
partially transposed states. The library is the verified built-in one
(:func:`qeframe.quantum.witness.load_witness_library`: LKCH witnesses of P. Horodecki's ``2 x D``
states, Lewenstein, Kraus, Cirac, Horodecki, PRA 62, 052310 (2000)) plus these transposes.

**The search** (finding ``H``; nothing here needs to be right for a proof to be valid):

1. *Filter normal form* (closed form). Both the state and each library witness' target state
   ``rho_k`` are brought to FNF, ``sigma = (F_A ⊗ F_B) rho (F_A ⊗ F_B)^† / tr`` with maximally
   mixed marginals (:func:`qeframe.quantum.realignment.filter_normal_form`; Leinaas, Myrheim, Ovrum,
   PRA 74, 012313 (2006); Verstraete, Dehaene, De Moor, PRA 68, 012103 (2003)). Two states in one
   SLOCC orbit with full-rank marginals have FNFs that differ by a *local unitary* only (Verstraete
   et al. 2003), so the non-unitary part of the unknown filter is removed in closed form.
2. *Local-unitary alignment* (batched Adam). ``U = exp(i h_A) ⊗ exp(i h_B)`` minimises
   ``tr(W_k^F U sigma U^†)`` with ``W_k^F = (F_A^k ⊗ F_B^k)^{-†} W_k (F_A^k ⊗ F_B^k)^{-1}`` (the
   witness carried to the FNF of its target), for every library witness ``k`` and a few starts,
   all states at once (``torch``; no per-state Python loop; the search itself lives in
   :mod:`qeframe.quantum.alignment_search`). Starts: ``U = 1`` plus random ones;
   :func:`search_alignment` also takes given starts (``starts``), the input of a learned proposer
   (:mod:`qeframe.learn.proposer`, passed as ``propose`` to :func:`aligned_witness_proofs`; its
   starts join the first round). The search is staged
   (:func:`aligned_witness_proofs` defaults): the best candidate of every state is verified every
   ``check_every`` steps and proved states leave the batch (early exit); the starts run in rounds
   (``round_restarts``), each only on the cuts still unproved; the search runs in float32 on any
   ``torch`` device (the proof is step 3, float64, on the CPU). Cuts that the rank rules of
   :mod:`qeframe.quantum.rank_separable` prove separable are not searched (:func:`separable_skip`).
3. *Verification* (float64, from the stored input): ``H_A = (F_A^k)^{-1} e^{i h_A} F_A``,
   ``H_B = (F_B^k)^{-1} e^{i h_B} F_B`` (the stored factors define ``H`` exactly),
   ``v = Re tr(W_k fl(H rho H^†))``, and the cut is proved when
   ``v < -(margin · tr(H rho H^†) + budget)`` with the budget of :func:`aligned_error_bound`.

Conventions: ``rho`` ``(N, 2**n, 2**n)`` complex, big-endian qubits; the stage works on the cuts
``q | rest`` (one qubit on side A), moving ``q`` to the front with
:func:`~qeframe.quantum.witness.qubit_first` (a qubit permutation maps product vectors across the cut
to product vectors). Other cuts are not tested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from qeframe.quantum.alignment_search import (  # noqa: F401 (re-exported: the stage's API)
    CPU_CHUNK,
    CUDA_CHUNK,
    DEFAULT_LR,
    DEFAULT_RESTARTS,
    DEFAULT_STEPS,
    AlignedLibrary,
    Verifier,
    alignment_values,
    local_unitaries,
    search_alignment,
)
from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.ops import batch_kron, num_qubits, partial_transpose
from qeframe.quantum.ppt import PPT_TOL
from qeframe.quantum.realignment import FNF_MAX_COND, FNF_SAFETY, filter_normal_form
from qeframe.quantum.witness import horodecki_library_states, load_witness_library, qubit_first

_U = np.finfo(np.float64).eps / 2
#: Relative margin: a proved cut has ``tr(W H rho H^†) < -ALIGNED_MARGIN tr(H rho H^†) - budget``.
ALIGNED_MARGIN = 1e-9
#: Staged search defaults of :func:`aligned_witness_proofs` (measured in docs/beyond-ppt.md, section 9).
DEFAULT_CHECK_EVERY: int | None = 10
DEFAULT_KEEP: int | None = None
DEFAULT_ROUND_RESTARTS: int | None = 4
DEFAULT_DTYPE = "float32"


@cache
def aligned_library(n_qubits: int) -> AlignedLibrary:
    """The built-in library for ``1 | rest`` cuts of ``n_qubits`` qubits (built once per process)."""
    from qeframe.quantum.witness import HORODECKI_LIBRARY_B

    base = load_witness_library(("horodecki",), None, n_qubits)
    targets = horodecki_library_states(n_qubits)
    d = base.shape[-1]
    witnesses = np.concatenate([base, partial_transpose(base, [0])])
    states = np.concatenate([targets, partial_transpose(targets, [0])])
    names = tuple(f"horodecki-b{b:g}" for b in HORODECKI_LIBRARY_B)
    names = names + tuple(f"{x}-T" for x in names)
    fnf = filter_normal_form(states, 2, d // 2)
    inv_fa, inv_fb = np.linalg.inv(fnf.f_a), np.linalg.inv(fnf.f_b)
    g_inv = batch_kron(inv_fa, inv_fb)
    w_fnf = np.conj(np.swapaxes(g_inv, -1, -2)) @ witnesses @ g_inv
    w_fnf /= np.linalg.norm(w_fnf, axis=(1, 2), keepdims=True)
    for a in (witnesses, inv_fa, inv_fb, w_fnf):
        a.setflags(write=False)
    return AlignedLibrary(witnesses, names, inv_fa, inv_fb, w_fnf)


# --------------------------------------------------------------------------------------------------
# the proof


def aligned_error_bound(
    rho: np.ndarray, k: np.ndarray, w: np.ndarray, input_tol: float = PPT_TOL
) -> np.ndarray:
    """``(N,)``: a bound on ``|v_computed - tr(W K rho' K^†)|`` for every Hermitian ``rho'`` within
    ``input_tol · tr rho`` (Frobenius) of the stored ``rho``; rounding terms times :data:`FNF_SAFETY`.

    ``rho`` ``(N, d, d)``, ``k`` ``(N, d, d)`` the *computed* ``fl(H_A ⊗ H_B)`` (entries one rounding
    from the exact Kronecker product of the stored factors, ``|K~ - K| <= u' |K~|``,
    ``u' = u / (1 - u)``), ``w`` ``(N, d, d)`` the witness of each state. Terms (Higham, *Accuracy and
    Stability of Numerical Algorithms*, 2nd ed., SIAM 2002, Sec. 3.5; ``P = |K~||rho||K~|^T``):

    - the two products ``fl(K~ rho K~^†)``: ``|E| <= gamma_{2d} P``; replacing ``K~`` by ``K``:
      ``(2u' + u'^2) P <= 3u' P``; so ``|tr(W E)| <= (gamma_{2d} + 3u') sum |W| ∘ P^T``;
    - the trace ``sum_ij W_ij Y_ji`` in floating point (complex products):
      ``gamma_{d^2 + 4} sum |W| ∘ |Y|^T``;
    - the input margin: ``|tr(K^† W K E)| <= ||W||_F ||K||_2^2 ||E||_F <= ||W||_F ||K||_2^2 input_tol tr rho``
      (``||K||_2 <= ||K~||_2 (1 + sqrt(d) u')``, absorbed by the factor 2 below).
    """
    d = rho.shape[-1]
    u1 = _U / (1 - _U)
    gamma = lambda m: m * _U / (1 - m * _U)
    ak = np.abs(k)
    p = ak @ np.abs(rho) @ np.swapaxes(ak, -1, -2)
    aw = np.abs(w)
    e_prod = (gamma(2 * d) + 3 * u1) * np.einsum("nij,nji->n", aw, p)
    y = k @ rho @ np.conj(np.swapaxes(k, -1, -2))
    e_trace = gamma(d * d + 4) * np.einsum("nij,nji->n", aw, np.abs(y))
    tr = np.abs(np.trace(rho, axis1=1, axis2=2))
    e_in = 2 * np.linalg.norm(w, axis=(1, 2)) * np.linalg.norm(k, ord=2, axis=(1, 2)) ** 2 * input_tol * tr
    return FNF_SAFETY * (e_prod + e_trace) + e_in


@dataclass
class AlignedProof:
    """Result of :func:`verify_aligned` for a batch of qubit-first states, ``(N,)`` arrays.

    ``proved``: ``value < -(ALIGNED_MARGIN tr + budget)``; ``value``: ``Re tr(W fl(H rho H^†))``
    divided by ``tr(H rho H^†)`` (so comparable across states); ``budget`` relative to the same trace;
    ``witness``: index into the library.
    """

    proved: np.ndarray
    value: np.ndarray
    budget: np.ndarray
    witness: np.ndarray


def verify_aligned(
    rho: np.ndarray,
    library: AlignedLibrary,
    witness: np.ndarray,
    h_a: np.ndarray,
    h_b: np.ndarray,
    input_tol: float = PPT_TOL,
) -> AlignedProof:
    """Check ``tr(W_k H rho H^†) < 0`` beyond the error budget, ``H = h_a ⊗ h_b`` as given.

    ``rho`` ``(N, 2D, 2D)`` qubit first (stored input), ``witness`` ``(N,)`` int library indices,
    ``h_a`` ``(N, 2, 2)``, ``h_b`` ``(N, D, D)``. Any ``h_a``, ``h_b`` give a valid test (module
    docstring); non-finite or badly conditioned ones (``cond > FNF_MAX_COND``) are not used.
    """
    rho = np.asarray(rho, np.complex128)
    w = library.witnesses[np.asarray(witness, int)]
    finite = np.isfinite(h_a).all(axis=(1, 2)) & np.isfinite(h_b).all(axis=(1, 2))
    h_a = np.where(finite[:, None, None], h_a, np.eye(2))
    h_b = np.where(finite[:, None, None], h_b, np.eye(h_b.shape[-1]))
    cond = np.linalg.cond(h_a) * np.linalg.cond(h_b)
    k = batch_kron(h_a, h_b)
    y = k @ rho @ np.conj(np.swapaxes(k, -1, -2))
    tr = np.trace(y, axis1=1, axis2=2).real
    value = np.einsum("nij,nji->n", w, y).real
    ok = finite & (cond <= FNF_MAX_COND) & np.isfinite(value) & (tr > 0)
    tr_safe = np.where(ok, tr, 1.0)
    budget = aligned_error_bound(rho, k, w, input_tol) / tr_safe
    rel = value / tr_safe
    proved = ok & (rel < -(ALIGNED_MARGIN + budget))
    return AlignedProof(
        proved, np.where(ok, rel, np.nan), np.where(ok, budget, np.nan), np.asarray(witness, int)
    )


@dataclass
class AlignedSearch:
    """:func:`aligned_witness_proofs` per state and cut, ``(N, n_cuts)``: ``proved`` (bool),
    ``value`` / ``budget`` (float64, NaN where not tested), ``witness`` (int, -1 where not tested),
    ``skipped`` (int8: the :mod:`~qeframe.quantum.rank_separable` rule by which a PPT cut was not
    searched because it is separable, 0 where searched or not asked; a skip is not a proof stage's
    answer, and never a proof of entanglement)."""

    proved: np.ndarray
    value: np.ndarray
    budget: np.ndarray
    witness: np.ndarray
    skipped: np.ndarray | None = None


def separable_skip(x: np.ndarray) -> np.ndarray:
    """``(M,)`` int8: the rank rule proving the ``1 | rest`` cut of qubit-first ``x`` ``(M, 2D, 2D)``
    separable (:func:`~qeframe.quantum.rank_separable.rank_separable`: pure, rank, small support),
    0 where none applies. Only cuts PPT by the gate's rule (``lambda_min(x^{T_A}) >= -PPT_TOL tr x``)
    get a verdict (the rules assume PPT). No block-positive witness can detect such a cut, so it
    need not be searched."""
    from qeframe.quantum.rank_separable import rank_separable

    if len(x) == 0:
        return np.zeros(0, np.int8)
    tr = np.trace(x, axis1=1, axis2=2).real
    ppt = np.linalg.eigvalsh(partial_transpose(x, [0]))[:, 0] >= -PPT_TOL * tr
    verdict, _ = rank_separable(x / tr[:, None, None], [0])
    return np.where(ppt, verdict, 0).astype(np.int8)


def _verify_rows(
    x: np.ndarray,
    f_a: np.ndarray,
    f_b: np.ndarray,
    good: np.ndarray,
    library: AlignedLibrary,
    i: np.ndarray,
    u_a: np.ndarray,
    u_b: np.ndarray,
    k: np.ndarray,
) -> np.ndarray:
    """The :data:`Verifier` of :func:`aligned_witness_proofs`: rows ``i`` of qubit-first ``x`` with
    FNF filters ``f_a``, ``f_b`` and found unitaries, proved by :func:`verify_aligned`."""
    h_a = library.inv_fa[k] @ u_a @ f_a[i]
    h_b = library.inv_fb[k] @ u_b @ f_b[i]
    return verify_aligned(x[i], library, k, h_a, h_b).proved & good[i]


def _subset(check: Verifier, rows: np.ndarray, i: np.ndarray, *args: np.ndarray) -> np.ndarray:
    """``check`` on rows ``rows[i]`` (a round of the staged restarts searches a subset)."""
    return check(rows[i], *args)


def aligned_witness_proofs(
    rho: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    restarts: int = DEFAULT_RESTARTS,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    propose: Callable[[np.ndarray], np.ndarray] | None = None,
    check_every: int | None = DEFAULT_CHECK_EVERY,
    keep: int | None = DEFAULT_KEEP,
    round_restarts: int | None = DEFAULT_ROUND_RESTARTS,
    skip_separable: bool = True,
    device: Any = None,
    dtype: str = DEFAULT_DTYPE,
    chunk: int | None = None,
) -> AlignedSearch:
    """Prove ``q | rest`` cuts of ``rho`` ``(N, 2**n, 2**n)`` entangled with aligned library witnesses.

    ``mask`` ``(N, n_cuts)`` selects the cuts to try (default all; only cuts with one qubit on side A
    are tried); ``restarts``, ``steps``, ``lr``, ``seed``, ``keep``, ``device``, ``dtype``, ``chunk``
    as in :func:`search_alignment` (the seed of cut ``j`` is ``seed + j``; the random starts of a
    state depend on its place in the batch). ``check_every``: verify the best candidate of every
    state every so many steps and stop searching the proved ones (early exit; ``None``: verify once,
    at the end). ``round_restarts``: staged restarts — the ``restarts`` starts are tried in rounds of
    this many (the first with ``U = 1``), each round only on the cuts no earlier round proved (seed
    of round ``r``: ``seed + j + 1000 r``); ``None``: one round. ``skip_separable``: do not search cuts that :func:`separable_skip` proves separable
    (reported in ``skipped``). Every ``proved`` entry is a proof (:func:`verify_aligned`, float64,
    from the stored input); the search only proposes.

    On a CUDA ``device`` the whole chunk (:data:`CUDA_CHUNK` states) runs on the GPU; the filter
    normal form and the verification stay on the CPU (float64 numpy).

    ``propose`` (optional): maps the FNF states ``sigma`` ``(M, 2D, 2D)`` complex128 of one cut
    (qubit first) to start parameters ``(M, S, K, 8 + 2 D^2)`` float64, passed to
    :func:`search_alignment` as ``starts`` in the first round (e.g. a trained
    :class:`~qeframe.learn.proposer.AlignmentProposer`); whatever it returns, proofs stay proofs.
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n_states, d = rho.shape[0], rho.shape[-1]
    n = num_qubits(d)
    cuts = bipartitions(n)
    shape = (n_states, len(cuts))
    mask = np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
    out = AlignedSearch(
        np.zeros(shape, bool),
        np.full(shape, np.nan),
        np.full(shape, np.nan),
        np.full(shape, -1),
        np.zeros(shape, np.int8),
    )
    library = aligned_library(n)
    for cut in cuts:
        rows = np.flatnonzero(mask[:, cut.index])
        if len(cut.side_a) != 1 or rows.size == 0:
            continue
        x = qubit_first(rho[rows].astype(np.complex128), cut.side_a[0])
        if x.ndim == 2:
            x = x[None]
        if skip_separable:
            skip = separable_skip(x)
            out.skipped[rows, cut.index] = skip
            rows, x = rows[skip == 0], x[skip == 0]
            if rows.size == 0:
                continue
        fnf = filter_normal_form(x, 2, d // 2)
        good = np.isfinite(fnf.sigma).all(axis=(1, 2))

        check = partial(_verify_rows, x, fnf.f_a, fnf.f_b, good, library)
        sigma = np.where(good[:, None, None], fnf.sigma, np.eye(d) / d)
        per_round = restarts if not round_restarts else min(restarts, round_restarts)
        best_v = np.full(len(rows), np.inf)
        u_a = np.zeros((len(rows), 2, 2), complex)
        u_b = np.zeros((len(rows), d // 2, d // 2), complex)
        k = np.zeros(len(rows), int)
        open_ = np.arange(len(rows))
        proposed = None if propose is None else propose(sigma)
        done, r = 0, 0
        while done < restarts and open_.size:
            n_r = min(per_round, restarts - done)
            a_r, b_r, k_r, v_r = search_alignment(
                sigma[open_],
                library,
                restarts=n_r,
                steps=steps,
                lr=lr,
                seed=seed + cut.index + 1000 * r,
                chunk=chunk,
                verify=partial(_subset, check, open_) if check_every else None,
                check_every=check_every,
                keep=keep,
                device=device,
                dtype=dtype,
                identity=r == 0,
                starts=proposed[open_] if proposed is not None and r == 0 else None,
            )
            proved_r = check(open_, a_r, b_r, k_r)
            better = proved_r | (v_r < best_v[open_])
            i = open_[better]
            u_a[i], u_b[i], k[i], best_v[i] = a_r[better], b_r[better], k_r[better], v_r[better]
            best_v[open_[proved_r]] = -np.inf  # a proof is final
            open_ = open_[~proved_r]
            done, r = done + n_r, r + 1
        h_a = library.inv_fa[k] @ u_a @ fnf.f_a
        h_b = library.inv_fb[k] @ u_b @ fnf.f_b
        res = verify_aligned(x, library, k, h_a, h_b)
        res.proved &= good
        out.proved[rows, cut.index] = res.proved
        out.value[rows, cut.index] = res.value
        out.budget[rows, cut.index] = res.budget
        out.witness[rows, cut.index] = k
    return out
