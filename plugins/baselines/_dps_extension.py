"""An exact, SDP-free certificate that the DPS-2 visibility SDP cannot prove a cut entangled.

What it proves
--------------
The visibility SDP of :mod:`qeframe_plugins.baselines._dps` declares the cut ``A|B`` of ``rho``
entangled only when ``p* < 1 - margin``, where ``p*`` is the largest ``p <= 1`` such that
``p·rho + (1 - p)·I/d`` has a PPT Bose-symmetric extension (Doherty, Parrilo, Spedalieri,
PRL 88, 187904 (2002); PRA 69, 022308 (2004)). If we *exhibit* such an extension for

    sigma = (1 - margin)·rho + margin·I/d,

then ``p = 1 - margin`` is feasible, so ``p* >= 1 - margin`` exactly and the SDP's only correct
answer is "inconclusive". An SDP run on that cut can then add nothing: a returned ``p* < 1 - margin``
could only come from solver error (the labeler's contract is that "entangled" means the *true*
``p*`` is below ``1 - margin``), so skipping the SDP gives every correct answer the SDP could give,
never a weaker one. The cut stays unknown, with this certificate as the reason and ``1 - margin``,
a proved lower bound on ``p*``, as its evidence.

The extension is ``X = V Y V^†`` on ``A ⊗ A' ⊗ B`` with ``V = V_sym ⊗ I_B`` the isometry from
``Sym²(C^{d_A}) ⊗ C^{d_B}`` (:func:`~qeframe_plugins.baselines._dps.symmetric_isometry`), so ``X`` is
Bose-symmetric by construction, and the conditions are, for a Hermitian ``Y`` of size
``k = s·d_B`` (``s = d_A(d_A + 1)/2``):

* ``L(Y) := tr_{A'}(V Y V^†) = sigma`` (``L`` is complex-linear and onto the Hermitian ``d x d``
  matrices: it has full row rank, checked when the maps are built),
* ``Y ⪰ 0`` (equivalent to ``X ⪰ 0``), ``Y^{T_B} ⪰ 0`` (equivalent to ``X^{T_B} ⪰ 0``: the
  partial transpose on ``B`` commutes with ``V``; ``X^{T_B}`` itself always has zeros on the
  antisymmetric part), ``(V Y V^†)^{T_{A'}} ⪰ 0``.

Rigorous float64 check (:func:`verify_extensions`)
--------------------------------------------------
A float ``Y`` never satisfies ``L(Y) = sigma`` exactly. Let ``R = sigma - L(Y)`` and
``Y* = Y + L^+(R)``; then ``L(Y*) = sigma`` exactly, and ``||L^+(R)||_2 <= ||L^+(R)||_F <=
kappa·||R||_F`` with ``kappa = 1/s_min(L)``. Partial transposes and ``Δ -> V Δ V^†`` preserve the
Frobenius norm, so by Weyl's inequality every smallest eigenvalue of ``Y*``, ``Y*^{T_B}`` and
``(V Y* V^†)^{T_{A'}}`` is at least the one of ``Y`` minus ``kappa·||R||_F``. The computed
quantities carry rounding: a backward-stable Hermitian eigensolver returns eigenvalues within
``p(n)·u·||M||_2`` of the exact ones (Golub & Van Loan, *Matrix Computations*, 4th ed., §8.4), and
forming ``V Y V^†``, ``L(Y)``, ``sigma`` costs ``O(k²·u)·(||Y||_F + ||sigma||_F)``. We bound all of
it by ``rounding = 64·D²·u·(||Y||_F + ||sigma||_F)`` (``D = d_A² d_B``, ``u = 2^-53``; about
``5e-12`` for the largest problem the labeler solves) and accept a cut only when

    min(lambda_min(Y), lambda_min(Y^{T_B}), lambda_min(X^{T_{A'}})) >= tol + kappa·(||R||_F + rounding) + rounding

with ``tol = 1e-9`` by default, so the accepted eigenvalue margin is far above every rounding
term. The extension exists, hence ``p* >= 1 - margin``; nothing about how ``Y`` was found matters.

How ``Y`` is found (:func:`find_extensions`)
-------------------------------------------
Averaged projections with heavy-ball momentum (B. T. Polyak, USSR Comput. Math. Math. Phys.
4(5), 1 (1964)), batched over all pending cuts: from the least-norm solution
``Y_0 = L^+(sigma)``, each step moves ``Z = Y_k + beta (Y_k - Y_{k-1})`` by ``step`` times the sum
of its displacements to the three cones ``{lambda_min(Y) >= eps}``, ``{lambda_min(Y^{T_B}) >= eps}``,
``{lambda_min(X^{T_{A'}}) >= eps}`` (eigenvalue clipping, the Frobenius projections) and projects
the result exactly onto the affine set ``{L(Y) = sigma}``. The shift ``eps`` decreases in five
stages (``8e-2/d`` down to ``1e-4/d``, 500 iterations in all) because a rank-deficient ``rho``
leaves only a thin interior (its depth is about ``0.4·margin/d``). Every fifth iteration the
active cuts are checked with :func:`verify_extensions` and the certified ones leave the batch. On
the 948 pending cuts of ``paper-test-certified`` this certifies 947 in about 2.6 CPU-s (momentum
0.9 and four stages: 929; plain cyclic projections: 864 in 3 CPU-s); a cut that is not certified
goes to the SDP as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from qeframe_plugins.baselines._dps import symmetric_isometry

#: Default eigenvalue margin of an accepted extension (far above the rounding bound, ~1e-12).
EXTENSION_TOL = 1e-9
#: ``(shift * d, iterations)`` stages of the projection search; shifts scale with ``1/d``.
SCHEDULE: tuple[tuple[float, int], ...] = ((8e-2, 20), (8e-3, 30), (2e-3, 50), (4e-4, 150), (1e-4, 250))
#: Step on the summed cone displacements and heavy-ball momentum of the search.
STEP = 0.8
MOMENTUM = 0.97
#: Cuts per batch (bounds the memory of the batched eigendecompositions).
CHUNK = 4096
_CHECK_EVERY = 5
_U = 2.0**-53


@dataclass(frozen=True)
class ExtensionMaps:
    """The linear maps of the extension problem for ``d_A x d_B``; see the module docstring.

    Attributes:
        d_a, d_b: the copied side's and the other side's dimensions.
        v: ``(d_a² d_b, k)`` float64 isometry ``V_sym ⊗ I_B`` (``k = s·d_b``).
        lin: ``(d², k²)`` complex ``L`` acting on row-major ``vec(Y)``, values row-major ``vec``.
        pinv: ``(k², d²)`` complex Moore-Penrose inverse ``L^+``.
        kappa: ``1/s_min(L)`` with 1 % slack, bounds ``||L^+||`` in the Frobenius norm.

    ``lin`` and ``pinv`` define ``kappa`` and check the structured forms; the search itself uses
    :meth:`marginal`, :meth:`adjoint` and the closed-form inverse of ``L L^†`` in
    :meth:`project_affine` (stacked small products only: a ``(M, k²) @ (k², d²)`` BLAS call is
    multi-threaded, and its idle threads spinning between calls made the search cost 4x more CPU
    with 2 BLAS threads than with 1; now the cost does not depend on the thread count).
    """

    d_a: int
    d_b: int
    v: np.ndarray
    lin: np.ndarray
    pinv: np.ndarray
    kappa: float

    @property
    def k(self) -> int:
        return self.v.shape[1]

    def marginal(self, y: np.ndarray) -> np.ndarray:
        """``L(Y) = tr_{A'}(V Y V^†)``: ``(M, k, k)`` -> ``(M, d, d)``."""
        a, b = self.d_a, self.d_b
        x = self.lift(y).reshape(-1, a, a, b, a, a, b)
        out = x[:, :, 0, :, :, 0, :].copy()
        for i in range(1, a):
            out += x[:, :, i, :, :, i, :]
        return out.reshape(-1, a * b, a * b)

    def adjoint(self, r: np.ndarray) -> np.ndarray:
        """``L^†(R) = V^† (R ⊗ I_{A'}) V`` (``I_{A'}`` in the middle factor): ``(M, d, d)`` -> ``(M, k, k)``."""
        a, b = self.d_a, self.d_b
        big = np.zeros((r.shape[0], a, a, b, a, a, b), dtype=np.result_type(r, np.complex128))
        rr = r.reshape(-1, a, b, a, b)
        for i in range(a):
            big[:, :, i, :, :, i, :] = rr
        return self.lower(big.reshape(-1, a * a * b, a * a * b))

    def lift(self, y: np.ndarray) -> np.ndarray:
        """``X = V Y V^†``: ``(M, k, k)`` -> ``(M, D, D)``, ``D = d_a² d_b``."""
        return self.v @ y @ self.v.T

    def lower(self, x: np.ndarray) -> np.ndarray:
        """``V^† X V``: ``(M, D, D)`` -> ``(M, k, k)`` (the orthogonal projection onto Bose operators)."""
        return self.v.T @ x @ self.v

    def pt_y(self, y: np.ndarray) -> np.ndarray:
        """``Y^{T_B}`` on ``Sym² ⊗ B``: ``(M, k, k)`` -> ``(M, k, k)``."""
        s = self.k // self.d_b
        return _swap(y, (s, self.d_b), 1)

    def pt_x(self, x: np.ndarray) -> np.ndarray:
        """``X^{T_{A'}}`` on ``A ⊗ A' ⊗ B``: ``(M, D, D)`` -> ``(M, D, D)``."""
        return _swap(x, (self.d_a, self.d_a, self.d_b), 1)

    def project_affine(self, y: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Orthogonal (Frobenius) projection onto ``{L(Y) = sigma}``: ``Y - L^+(L(Y) - sigma)``."""
        m = y.shape[0]
        a, b = self.d_a, self.d_b
        r = self.marginal(y) - sigma
        # (L L^†)(S) = ((d_A + 2) S + I_A ⊗ tr_A S) / 4, inverted in closed form (tested against pinv)
        r_b = np.einsum("maiaj->mij", r.reshape(m, a, b, a, b))
        s_ = (4.0 * r - np.einsum("ac,mbe->mabce", np.eye(a), 2.0 * r_b / (a + 1)).reshape(r.shape)) / (a + 2)
        y = y - self.adjoint(s_)
        return 0.5 * (y + y.conj().transpose(0, 2, 1))


def _swap(m: np.ndarray, dims: tuple[int, ...], axis: int) -> np.ndarray:
    """Partial transpose of ``(M, D, D)`` operators on factor ``axis`` of ``dims`` (``prod = D``)."""
    n = len(dims)
    t = m.reshape((m.shape[0],) + dims + dims)
    perm = list(range(1 + 2 * n))
    perm[1 + axis], perm[1 + n + axis] = perm[1 + n + axis], perm[1 + axis]
    return t.transpose(perm).reshape(m.shape)


@cache
def extension_maps(d_a: int, d_b: int) -> ExtensionMaps:
    """The cached :class:`ExtensionMaps` for ``d_A x d_B`` (built once per process)."""
    v = np.kron(symmetric_isometry(d_a), np.eye(d_b))
    k, d = v.shape[1], d_a * d_b
    vt = v.reshape(d_a, d_a, d_b, k)
    # L[(a b), (c e)], [p, r] = sum_{a'} V[a a' b, p] V[c a' e, r]: tr over A' of V E_pr V^T
    lin = np.einsum("aibp,cier->abcepr", vt, vt).reshape(d * d, k * k).astype(np.complex128)
    gram = lin @ lin.conj().T  # (d², d²); L onto <=> gram invertible, then L^+ = L^† gram^-1
    ev = np.linalg.eigvalsh(gram)
    if not ev[0] > 1e-8 * ev[-1]:  # never for d_a, d_b >= 1; a guard for the proof
        raise ValueError(f"L is not onto for d_A={d_a}, d_B={d_b}")
    pinv = lin.conj().T @ np.linalg.inv(gram)
    maps = ExtensionMaps(d_a, d_b, v, lin, pinv, float(1.01 / np.sqrt(ev[0])))
    for arr in (maps.v, maps.lin, maps.pinv):
        arr.setflags(write=False)
    return maps


def _hermitian(m: np.ndarray) -> np.ndarray:
    return 0.5 * (m + m.conj().transpose(0, 2, 1))


def target(rho_ab: np.ndarray, margin: float) -> np.ndarray:
    """``sigma = (1 - margin)·rho + margin·I/d`` for ``rho`` hermitised exactly as the SDP does.

    ``rho_ab`` ``(M, d, d)`` complex -> ``(M, d, d)`` complex128.
    """
    rho_ab = np.asarray(rho_ab, dtype=np.complex128)
    d = rho_ab.shape[-1]
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows stay non-finite, quietly
        rho_s = 0.5 * (rho_ab + rho_ab.conj().transpose(0, 2, 1))
        return (1.0 - margin) * rho_s + margin * np.eye(d) / d


def extension_margins(y: np.ndarray, sigma: np.ndarray, maps: ExtensionMaps) -> np.ndarray:
    """Proved lower bounds on the three smallest eigenvalues of the exact extension near ``y``.

    ``y`` ``(M, k, k)`` Hermitian candidates, ``sigma`` ``(M, d, d)`` targets -> ``(M,)`` float64:
    ``min(lambda_min(Y), lambda_min(Y^{T_B}), lambda_min(X^{T_{A'}})) - kappa·(||R||_F + rounding)
    - rounding`` (see the module docstring). Positive means a PPT Bose-symmetric extension of
    ``sigma`` exists. Non-finite inputs give ``-inf``.
    """
    y = _hermitian(np.asarray(y, dtype=np.complex128))
    m = y.shape[0]
    if m == 0:
        return np.zeros(0)
    big = maps.v.shape[0]
    norms = np.linalg.norm(y.reshape(m, -1), axis=1) + np.linalg.norm(sigma.reshape(m, -1), axis=1)
    rounding = 64.0 * big * big * _U * norms
    resid = np.linalg.norm((sigma - maps.marginal(y)).reshape(m, -1), axis=1)
    finite = np.isfinite(y.reshape(m, -1)).all(axis=1) & np.isfinite(resid)
    y = np.where(finite[:, None, None], y, 0)
    lam = np.minimum(
        np.minimum(np.linalg.eigvalsh(y)[:, 0], np.linalg.eigvalsh(maps.pt_y(y))[:, 0]),
        np.linalg.eigvalsh(maps.pt_x(maps.lift(y)))[:, 0],
    )
    out = lam - maps.kappa * (resid + rounding) - rounding
    out[~finite] = -np.inf
    return out


def verify_extensions(
    y: np.ndarray, sigma: np.ndarray, maps: ExtensionMaps, tol: float = EXTENSION_TOL
) -> np.ndarray:
    """``(M,)`` bool: ``y`` proves that ``sigma`` has a PPT Bose-symmetric extension, with margin ``tol``."""
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    return extension_margins(y, sigma, maps) >= tol


def _clip(h: np.ndarray, eps: np.ndarray | float) -> np.ndarray:
    """The Frobenius projection onto ``{lambda_min >= eps}``: eigenvalues raised to ``eps``."""
    w, u = np.linalg.eigh(h)
    return (u * np.maximum(w, eps)[:, None, :]) @ u.conj().transpose(0, 2, 1)


def find_extensions(
    sigma: np.ndarray,
    maps: ExtensionMaps,
    *,
    tol: float = EXTENSION_TOL,
    schedule: tuple[tuple[float, int], ...] = SCHEDULE,
    step: float = STEP,
    momentum: float = MOMENTUM,
) -> tuple[np.ndarray, np.ndarray]:
    """Search and verify extensions of ``sigma`` ``(M, d, d)``: returns ``(certified, margins)``.

    ``certified`` ``(M,)`` bool (each verified by :func:`verify_extensions` with ``tol``),
    ``margins`` ``(M,)`` float64 the proved eigenvalue margin of the last candidate (``>= tol``
    where certified). Deterministic: the result of a cut depends only on its own ``sigma``. A
    ``sigma`` with a non-finite entry is not searched (not certified, margin ``-inf``).
    """
    sigma = np.asarray(sigma, dtype=np.complex128)
    m = sigma.shape[0]
    certified = np.zeros(m, dtype=bool)
    margins = np.full(m, -np.inf)
    finite = np.flatnonzero(np.isfinite(sigma.reshape(m, -1)).all(axis=1))  # others: never certified
    for start in range(0, finite.size, CHUNK):
        rows = finite[start : start + CHUNK]
        certified[rows], margins[rows] = _search(sigma[rows], maps, tol, schedule, step, momentum)
    return certified, margins


def _displacement(z: np.ndarray, maps: ExtensionMaps, eps: float) -> np.ndarray:
    """Sum over the three shifted cones of ``P_cone(Z) - Z``: ``(M, k, k)``."""
    to_y = _clip(z, eps)
    to_tb = maps.pt_y(_clip(maps.pt_y(z), eps))
    to_ta = maps.lower(maps.pt_x(_clip(maps.pt_x(maps.lift(z)), eps)))
    return to_y + to_tb + to_ta - 3.0 * z


def _search(
    sigma: np.ndarray,
    maps: ExtensionMaps,
    tol: float,
    schedule: tuple[tuple[float, int], ...],
    step: float,
    momentum: float,
) -> tuple[np.ndarray, np.ndarray]:
    m, d = sigma.shape[0], sigma.shape[-1]
    y = maps.project_affine(np.zeros((m, maps.k, maps.k), dtype=np.complex128), sigma)  # L^+(sigma)
    previous = y.copy()
    certified = np.zeros(m, dtype=bool)
    margins = np.full(m, -np.inf)
    active = np.arange(m)
    it = 0
    for shift, count in schedule:
        for _ in range(count):
            if it % _CHECK_EVERY == 0:
                margin = extension_margins(y[active], sigma[active], maps)
                margins[active] = margin
                ok = margin >= tol
                certified[active[ok]] = True
                active = active[~ok]
                if active.size == 0:
                    return certified, margins
            ya = y[active]
            z = ya + momentum * (ya - previous[active])
            previous[active] = ya
            y[active] = maps.project_affine(z + step * _displacement(z, maps, shift / d), sigma[active])
            it += 1
    margin = extension_margins(y[active], sigma[active], maps)
    margins[active] = margin
    certified[active[margin >= tol]] = True
    return certified, margins


def extension_certificates(
    rho_ab: np.ndarray, d_a: int, margin: float, tol: float = EXTENSION_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """Prove ``p* >= 1 - margin`` without an SDP, for cuts already ordered ``A ⊗ B``.

    Args:
        rho_ab: ``(M, d, d)`` complex, each ``rho`` with side ``A`` (the copied, smaller side)
            first, as :func:`~qeframe_plugins.baselines._dps.cut_blocks` gives it.
        d_a: dimension of side ``A``; ``d_b = d / d_a``.
        margin: the SDP's decision margin (entangled when ``p* < 1 - margin``), ``0 < margin < 1``.
        tol: eigenvalue margin required of the exhibited extension.

    Returns:
        ``(certified, margins)``: ``(M,)`` bool — a PPT Bose-symmetric extension of
        ``(1 - margin) rho + margin I/d`` was exhibited and verified, so the visibility SDP's
        ``p* >= 1 - margin`` — and ``(M,)`` float64, the verified eigenvalue margin.
    """
    if not 0 < margin < 1:
        raise ValueError(f"margin must be in (0, 1), got {margin}")
    rho_ab = np.asarray(rho_ab)
    d = rho_ab.shape[-1]
    if d % d_a:
        raise ValueError(f"d_a = {d_a} does not divide the dimension {d}")
    return find_extensions(target(rho_ab, margin), extension_maps(d_a, d // d_a), tol=tol)
