"""Realignment (CCNR) and correlation-tensor certificates of entanglement, in filter normal form.

Conventions: ``rho`` is ``(N, 2**n, 2**n)`` complex, big-endian qubits; a :class:`~qeframe.quantum.cuts.Cut`
``A|B`` lists the qubits of each side (ascending). ``d_A = 2**|A|``, ``d_B = 2**|B|``.

**Realignment.** For an operator on ``A ⊗ B``, ``R(X)_{(i k),(j l)} = X_{(i j),(k l)}``
(``d_A^2 x d_B^2``). Every separable state has ``||R(rho)||_1 <= 1`` (Rudolph, Quantum Inf. Process. 4,
219 (2005); Chen and Wu, Quantum Inf. Comput. 3, 193 (2003)).

**Correlation tensor (de Vicente).** With ``P_A = 1 - vec(I_A) vec(I_A)^T / d_A`` (the projector
orthogonal to ``vec(I)``), ``P_A R(rho) P_B`` is the correlation tensor ``T`` of ``rho`` in a
Hilbert-Schmidt-orthonormal basis of traceless operators. For a pure product state
``||P_A vec(a)|| = sqrt(1 - 1/d_A)``, so by convexity every separable state has

    ||P_A R(rho) P_B||_1 <= sqrt((1 - 1/d_A)(1 - 1/d_B))

(de Vicente, Quantum Inf. Comput. 7, 624 (2007); J. Phys. A 41, 065309 (2008)).

**Filter normal form (FNF).** Separability is preserved by local invertible filters:
``sigma = (F_A ⊗ F_B) rho (F_A ⊗ F_B)^† / tr(...)`` is separable when ``rho`` is. A state of full
local rank can be brought to ``sigma_A = I/d_A``, ``sigma_B = I/d_B`` by alternately applying
``F_A = sigma_A^{-1/2}`` and ``F_B = sigma_B^{-1/2}`` (Sinkhorn-like iteration; Leinaas, Myrheim,
Ovrum, PRA 74, 012313 (2006); Verstraete, Dehaene, De Moor, PRA 68, 012103 (2003)). In the FNF both
criteria are much stronger (Gittsovich, Gühne, Hyllus, Eisert, PRA 78, 052319 (2008)): the filter
removes the local Bloch vectors that make realignment weak for states with mixed marginals (e.g.
Horodecki's 2x4 states mixed with product noise). For ``d_A = 2, d_B = 4`` the de Vicente bound in the
FNF is strictly below the realignment bound (``||T||_1 <= sqrt(3/8)`` against ``1 - 1/sqrt(8)``).

**Rigour.** Nothing in the proof needs the iteration to converge: *any* pair of invertible filters
gives a valid test. The certificate recomputes ``X = G rho G^†`` (``G = F_A ⊗ F_B``, the
accumulated filters as stored) in one step from the stored ``rho`` and uses the homogeneous forms
``||R(X)||_1 > tr X`` and ``||P_A R(X) P_B||_1 > c tr X``, with an explicit error budget
(:func:`fnf_error_bound`): the floating-point error of ``G rho G^†`` (Higham, *Accuracy and Stability
of Numerical Algorithms*, 2nd ed., SIAM 2002, Sec. 3.5: ``|fl(AB) - AB| <= gamma_k |A||B|``), the
accuracy of the computed singular values (Weyl: ``|s_i(R+E) - s_i(R)| <= ||E||_2``, SVD backward
error ``p(m,n) u ||R||_2``), the rounding of the trace, and an *input margin*: the verdict holds for
every Hermitian matrix within ``input_tol · tr rho`` of the stored one in Frobenius norm (the same
``1e-10`` relative margin the PPT gate keeps, :data:`qeframe.quantum.ppt.PPT_TOL`), amplified by
``||G||_2^2``. All errors are multiplied by a safety factor :data:`FNF_SAFETY`. A state whose
filters are not finite, or whose filtered trace is not positive, is "not detected".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qeframe.quantum.cuts import Cut, bipartitions
from qeframe.quantum.ops import num_qubits, permute_qubits
from qeframe.quantum.ppt import PPT_TOL

#: Iteration budget of the FNF iteration (each step filters A then B).
FNF_MAX_ITER = 60
#: Converged when ``max(||d_A sigma_A - I||_2, ||d_B sigma_B - I||_2) <= FNF_CONV_TOL``.
FNF_CONV_TOL = 1e-9
#: Eigenvalues of a reduced state below ``FNF_EIG_FLOOR * tr`` are raised to it before ``^{-1/2}``
#: (the filter stays invertible; the proof does not depend on this choice).
FNF_EIG_FLOOR = 1e-12
#: Safety factor on the rounding bounds (as :data:`qeframe.quantum.ppt.NPT_SAFETY`).
FNF_SAFETY = 100.0
#: Filters with ``cond(F_A) cond(F_B)`` above this are not used (the error budget would swamp the test).
FNF_MAX_COND = 1e10
_U = np.finfo(np.float64).eps / 2


# --------------------------------------------------------------------------------------------------
# realignment


def realign(rho: np.ndarray, cut: Cut) -> np.ndarray:
    """The realigned matrix of every state across ``cut``: ``(N, d, d)`` -> ``(N, d_A^2, d_B^2)``.

    Row index ``(a_row, a_col)`` over the qubits of ``cut.side_a`` (ascending), column index
    ``(b_row, b_col)`` over ``cut.side_b``.
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n_batch, d = rho.shape[0], rho.shape[1]
    n = num_qubits(d)
    t = rho.reshape((n_batch,) + (2,) * (2 * n))
    a, b = list(cut.side_a), list(cut.side_b)
    axes = [0] + [1 + q for q in a] + [1 + n + q for q in a] + [1 + q for q in b] + [1 + n + q for q in b]
    return t.transpose(axes).reshape(n_batch, 4 ** len(a), 4 ** len(b))


def realign_bipartite(rho: np.ndarray, d_a: int, d_b: int) -> np.ndarray:
    """Realignment of operators on ``C^{d_a} ⊗ C^{d_b}`` (any local dimensions, A leftmost):
    ``(N, d_a d_b, d_a d_b)`` -> ``(N, d_a^2, d_b^2)`` with ``R[(i k), (j l)] = rho[(i j), (k l)]``."""
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    if rho.shape[-1] != d_a * d_b or rho.shape[-2] != d_a * d_b:
        raise ValueError(f"expected ({d_a * d_b}, {d_a * d_b}) matrices, got {rho.shape[1:]}")
    t = rho.reshape(rho.shape[0], d_a, d_b, d_a, d_b)
    return t.transpose(0, 1, 3, 2, 4).reshape(rho.shape[0], d_a * d_a, d_b * d_b)


def realignment_norms(rho: np.ndarray) -> np.ndarray:
    """``||R(rho)||_1`` (sum of singular values) per state and cut: ``(N, d, d)`` -> ``(N, n_cuts)``."""
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    cuts = bipartitions(num_qubits(rho.shape[-1]))
    out = np.empty((rho.shape[0], len(cuts)))
    for cut in cuts:  # loop over cuts; each is one batched SVD
        out[:, cut.index] = np.linalg.svd(realign(rho, cut), compute_uv=False).sum(axis=-1)
    return out


def correlation_tensor(r: np.ndarray, d_a: int, d_b: int) -> np.ndarray:
    """``P_A R P_B`` for realigned matrices ``r`` ``(N, d_a^2, d_b^2)``: the part of ``R`` orthogonal
    to ``vec(I_A)`` on the left and ``vec(I_B)`` on the right (the correlation tensor)."""
    u = np.eye(d_a).reshape(-1) / np.sqrt(d_a)
    v = np.eye(d_b).reshape(-1) / np.sqrt(d_b)
    ru = np.einsum("i,nij->nj", u, r)  # u^T R, (N, d_b^2)
    rv = np.einsum("nij,j->ni", r, v)  # R v, (N, d_a^2)
    urv = np.einsum("ni,i->n", rv, u)  # u^T R v
    return (
        r
        - u[None, :, None] * ru[:, None, :]
        - rv[:, :, None] * v[None, None, :]
        + urv[:, None, None] * u[None, :, None] * v[None, None, :]
    )


# --------------------------------------------------------------------------------------------------
# filter normal form


def _inv_sqrt(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``m^{-1/2}`` of Hermitian PSD ``(N, k, k)`` (eigenvalues floored at
    ``FNF_EIG_FLOOR * tr m``) and the smallest eigenvalue relative to the trace."""
    m = 0.5 * (m + np.conj(np.swapaxes(m, -1, -2)))
    w, v = np.linalg.eigh(m)
    tr = np.maximum(w.sum(axis=-1, keepdims=True), np.finfo(float).tiny)
    rel = w[..., 0] / tr[..., 0]
    # an eigenvalue below the floor is (numerically) outside the support: filter it like the largest
    # eigenvalue, so the filter stays invertible and, once the support is normal (all its eigenvalues
    # equal), a multiple of the identity: repeated steps do not blow up the condition number
    w = np.where(w < FNF_EIG_FLOOR * tr, w[..., -1:], w)
    return (v * (w**-0.5)[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2)), rel


def _filter_a(x: np.ndarray, f: np.ndarray, d_a: int, d_b: int) -> np.ndarray:
    """``(F ⊗ I) X (F ⊗ I)^†`` for ``X`` ``(N, d, d)``, ``F`` ``(N, d_a, d_a)``."""
    t = x.reshape(-1, d_a, d_b, d_a, d_b)
    t = np.einsum("nik,nkblc->niblc", f, t)
    t = np.einsum("niblc,njl->nibjc", t, np.conj(f))
    return t.reshape(x.shape)


def _filter_b(x: np.ndarray, f: np.ndarray, d_a: int, d_b: int) -> np.ndarray:
    """``(I ⊗ F) X (I ⊗ F)^†`` for ``X`` ``(N, d, d)``, ``F`` ``(N, d_b, d_b)``."""
    t = x.reshape(-1, d_a, d_b, d_a, d_b)
    t = np.einsum("nbk,nakcl->nabcl", f, t)
    t = np.einsum("nabcl,nel->nabce", t, np.conj(f))
    return t.reshape(x.shape)


def _marginals(x: np.ndarray, d_a: int, d_b: int) -> tuple[np.ndarray, np.ndarray]:
    t = x.reshape(-1, d_a, d_b, d_a, d_b)
    return np.einsum("nibjb->nij", t), np.einsum("naiaj->nij", t)


@dataclass
class FilterNormalForm:
    """The FNF of a batch across one cut (operators on ``A ⊗ B``, the qubits of A first).

    Attributes:
        sigma: ``(N, d, d)`` complex, ``G rho G^† / tr(G rho G^†)`` with ``G = f_a ⊗ f_b``.
        f_a: ``(N, d_A, d_A)`` complex, the accumulated filter on A.
        f_b: ``(N, d_B, d_B)`` complex, the accumulated filter on B.
        converged: ``(N,)`` bool, ``max(||d_A sigma_A - I||_2, ||d_B sigma_B - I||_2) <= conv_tol``.
        iterations: ``(N,)`` int, filter steps used.
        singular: ``(N,)`` bool, a reduced state had an eigenvalue below the floor (filter regularised).
    """

    sigma: np.ndarray
    f_a: np.ndarray
    f_b: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    singular: np.ndarray


def filter_normal_form(
    x: np.ndarray, d_a: int, d_b: int, *, max_iter: int = FNF_MAX_ITER, conv_tol: float = FNF_CONV_TOL
) -> FilterNormalForm:
    """Bring bipartite states ``x`` ``(N, d_a d_b, d_a d_b)`` (A leftmost) to filter normal form.

    Batched: every step is one batched ``eigh`` of the reduced states of the states not yet
    converged; a fixed budget of ``max_iter`` steps. States of full local rank converge (typically
    geometrically); states whose iteration does not converge keep the filters of the last step
    (see the module docstring: the certificate is valid for any invertible filter).
    """
    x = np.asarray(x, dtype=np.complex128)
    n = x.shape[0]
    fa = np.broadcast_to(np.eye(d_a, dtype=complex), (n, d_a, d_a)).copy()
    fb = np.broadcast_to(np.eye(d_b, dtype=complex), (n, d_b, d_b)).copy()
    sigma = x / np.trace(x, axis1=1, axis2=2).real[:, None, None]
    converged = np.zeros(n, bool)
    singular = np.zeros(n, bool)
    iterations = np.zeros(n, int)
    active = np.arange(n)
    eye_a, eye_b = np.eye(d_a), np.eye(d_b)
    for _ in range(max_iter + 1):
        if active.size == 0:
            break
        s = sigma[active]
        sa, sb = _marginals(s, d_a, d_b)
        err = np.maximum(
            np.linalg.norm(d_a * sa - eye_a, ord=2, axis=(1, 2)),
            np.linalg.norm(d_b * sb - eye_b, ord=2, axis=(1, 2)),
        )
        done = err <= conv_tol
        converged[active[done]] = True
        active, s, sa = active[~done], s[~done], sa[~done]
        if active.size == 0 or iterations[active[0]] >= max_iter:
            break
        ga, rel_a = _inv_sqrt(sa)
        s = _filter_a(s, ga, d_a, d_b)
        s /= np.trace(s, axis1=1, axis2=2).real[:, None, None]
        _, sb = _marginals(s, d_a, d_b)
        gb, rel_b = _inv_sqrt(sb)
        s = _filter_b(s, gb, d_a, d_b)
        s /= np.trace(s, axis1=1, axis2=2).real[:, None, None]
        singular[active] |= (rel_a < FNF_EIG_FLOOR * 10) | (rel_b < FNF_EIG_FLOOR * 10)
        ok = np.isfinite(s).all(axis=(1, 2))
        fa_new = ga @ fa[active]
        fb_new = gb @ fb[active]
        # keep the filters normalised (the criterion is homogeneous; this keeps ||G|| near 1)
        fa_new /= np.linalg.norm(fa_new, ord=2, axis=(1, 2))[:, None, None]
        fb_new /= np.linalg.norm(fb_new, ord=2, axis=(1, 2))[:, None, None]
        fa[active[ok]], fb[active[ok]] = fa_new[ok], fb_new[ok]
        sigma[active[ok]] = s[ok]
        iterations[active] += 1
        active = active[ok]
    return FilterNormalForm(sigma, fa, fb, converged, iterations, singular)


# --------------------------------------------------------------------------------------------------
# the certificate


def fnf_error_bound(
    x: np.ndarray, g: np.ndarray, d_a: int, d_b: int, input_tol: float = PPT_TOL
) -> np.ndarray:
    """``(N,)``: a bound on ``| ||R(X_computed)||_1 - ||R(G rho' G^†)||_1 |`` plus the trace error, for
    every ``rho'`` within ``input_tol · tr rho`` (Frobenius) of ``x``; the rounding terms are multiplied
    by :data:`FNF_SAFETY`.

    Terms (``k = min(d_A^2, d_B^2)``, ``||R(E)||_1 <= sqrt(k) ||E||_F``, ``|tr E| <= sqrt(d) ||E||_F``):
    the product ``G x G^†`` in floating point, ``|E| <= gamma_{2d} |G||x||G|^T``; the input margin
    ``||G||_2^2 input_tol tr x``; the SVD, ``gamma_{d^2} k ||R||_F`` (per singular value
    ``p u ||R||_2``, summed over ``k`` values).
    """
    d = d_a * d_b
    k = min(d_a * d_a, d_b * d_b)
    gamma = lambda m: m * _U / (1 - m * _U)
    ag = np.abs(g)
    prod = ag @ np.abs(x) @ np.swapaxes(ag, -1, -2)
    e_prod = gamma(2 * d) * np.linalg.norm(prod, axis=(1, 2))
    tr = np.abs(np.trace(x, axis1=1, axis2=2))
    e_in = np.linalg.norm(g, ord=2, axis=(1, 2)) ** 2 * input_tol * tr
    y = g @ x @ np.conj(np.swapaxes(g, -1, -2))
    e_svd = gamma(d * d) * k * np.linalg.norm(y, axis=(1, 2))
    return FNF_SAFETY * ((np.sqrt(k) + np.sqrt(d)) * e_prod + e_svd) + (np.sqrt(k) + np.sqrt(d)) * e_in


@dataclass
class FnfCertificate:
    """Per state and cut, ``(N, n_cuts)``.

    Attributes:
        entangled: bool, proved entangled (realignment or correlation tensor in the FNF).
        realignment: float64 ``||R(sigma)||_1 - 1`` of the normalised filtered state (``> 0`` violates).
        correlation: float64 ``||P_A R(sigma) P_B||_1 - sqrt((1-1/d_A)(1-1/d_B))``.
        error: float64 the error budget relative to ``tr(G rho G^†)`` (a violation must exceed it).
        converged: bool, the FNF iteration converged.
    """

    entangled: np.ndarray
    realignment: np.ndarray
    correlation: np.ndarray
    error: np.ndarray
    converged: np.ndarray

    @property
    def margin(self) -> np.ndarray:
        """``max(realignment, correlation) - error``: positive exactly where entangled."""
        return np.maximum(self.realignment, self.correlation) - self.error


def fnf_certificate(
    rho: np.ndarray,
    *,
    cuts: tuple[Cut, ...] | None = None,
    mask: np.ndarray | None = None,
    input_tol: float = PPT_TOL,
    max_iter: int = FNF_MAX_ITER,
    correlation: bool = True,
) -> FnfCertificate:
    """Entanglement proofs by realignment / correlation tensor in filter normal form.

    Args:
        rho: ``(N, 2**n, 2**n)`` complex density matrices (any positive trace).
        cuts: the cuts (default: every cut of :func:`~qeframe.quantum.cuts.bipartitions`).
        mask: ``(N, n_cuts)`` bool, which cuts to test (default: all); others are not detected.
        input_tol: the verdict holds for every matrix within ``input_tol · tr rho`` (Frobenius).
        max_iter: FNF iteration budget.
        correlation: also test the de Vicente correlation-tensor bound.

    Returns:
        :class:`FnfCertificate`; ``entangled`` is a proof (see the module docstring). Untested cuts
        have NaN values and ``entangled = False``.
    """
    rho = np.asarray(rho)
    if rho.ndim == 2:
        rho = rho[None]
    n_batch, d = rho.shape[0], rho.shape[-1]
    n = num_qubits(d)
    cuts = bipartitions(n) if cuts is None else cuts
    shape = (n_batch, len(bipartitions(n)))
    mask = np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
    ent = np.zeros(shape, bool)
    conv = np.zeros(shape, bool)
    r_val = np.full(shape, np.nan)
    c_val = np.full(shape, np.nan)
    err = np.full(shape, np.nan)
    for cut in cuts:
        rows = np.flatnonzero(mask[:, cut.index])
        if rows.size == 0:
            continue
        d_a, d_b = 2 ** len(cut.side_a), 2 ** len(cut.side_b)
        x = permute_qubits(rho[rows], list(cut.side_a) + list(cut.side_b)).astype(np.complex128)
        fnf = filter_normal_form(x, d_a, d_b, max_iter=max_iter)
        eye = (np.broadcast_to(np.eye(d_a), fnf.f_a.shape), np.broadcast_to(np.eye(d_b), fnf.f_b.shape))
        best = None
        # the FNF filters, and the identity (plain criteria) as a fallback for badly conditioned filters
        for f_a, f_b in ((fnf.f_a, fnf.f_b), eye):
            res = _filtered_test(x, f_a, f_b, d_a, d_b, input_tol, correlation)
            if best is None:
                best = res
            else:
                use = ~best[0] & (res[0] | ~np.isfinite(best[1]))
                best = tuple(np.where(use, new_, old_) for new_, old_ in zip(res, best))
        hit, s_r, s_c, e = best
        ent[rows, cut.index] = hit
        r_val[rows, cut.index] = s_r
        c_val[rows, cut.index] = s_c
        err[rows, cut.index] = e
        conv[rows, cut.index] = fnf.converged
    return FnfCertificate(ent, r_val, c_val, err, conv)


def _filtered_test(
    x: np.ndarray, f_a: np.ndarray, f_b: np.ndarray, d_a: int, d_b: int, input_tol: float, correlation: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both criteria on ``G x G^†`` (``G = f_a ⊗ f_b``) with the error budget; ``(N,)`` arrays
    ``hit``, realignment excess, correlation excess (NaN when not tested), error. Filters that are
    not finite or too badly conditioned give ``hit = False`` and NaN values."""
    n, d = x.shape[0], d_a * d_b
    g = np.einsum("nij,nkl->nikjl", f_a, f_b).reshape(n, d, d)
    finite = np.isfinite(g).all(axis=(1, 2))
    g = np.where(finite[:, None, None], g, np.eye(d))
    y = g @ x @ np.conj(np.swapaxes(g, -1, -2))  # one step from the stored rho
    tr = np.trace(y, axis1=1, axis2=2).real
    f_a = np.where(finite[:, None, None], f_a, np.eye(d_a))
    f_b = np.where(finite[:, None, None], f_b, np.eye(d_b))
    cond = np.linalg.cond(f_a.astype(complex)) * np.linalg.cond(f_b.astype(complex))
    ok = finite & np.isfinite(y).all(axis=(1, 2)) & (tr > 0) & (cond <= FNF_MAX_COND)
    tr_safe = np.where(ok, tr, 1.0)
    y = np.where(ok[:, None, None], y, 0)
    r = realign_bipartite(y, d_a, d_b)
    e = fnf_error_bound(np.where(ok[:, None, None], x, 0), g, d_a, d_b, input_tol) / tr_safe
    s_r = np.linalg.svd(r, compute_uv=False).sum(axis=-1) / tr_safe - 1.0
    hit = s_r > e
    s_c = np.full(n, np.nan)
    if correlation:
        bound = np.sqrt((1 - 1 / d_a) * (1 - 1 / d_b))
        s_c = np.linalg.svd(correlation_tensor(r, d_a, d_b), compute_uv=False).sum(axis=-1) / tr_safe - bound
        hit |= s_c > e
    nan = np.where(ok, 1.0, np.nan)
    return hit & ok, s_r * nan, s_c * nan, e * nan
