"""Entanglement witnesses of qubit-qudit cuts: a rigorous block-positivity check and the LKCH construction.

A Hermitian ``W`` on ``C^2 ⊗ C^N`` is an *entanglement witness* when it is **block-positive**,
``<e, f| W |e, f> >= 0`` for every product vector, and has a negative expectation on some state:
then ``tr(W rho) < 0`` proves ``rho`` entangled across the cut (Horodecki^3, Phys. Lett. A 223, 1
(1996); Terhal, Phys. Lett. A 271, 319 (2000)).

**Block-positivity of a qubit-qudit operator (the check behind every witness here).** Write
``W = sum_{ij} |i><j| ⊗ W_ij`` (``W_ij`` ``N x N``) and a unit qubit vector as its Bloch vector
``n`` (``|e><e| = (1 + n . sigma) / 2``). Then

    M(n) = (<e| ⊗ 1) W (|e> ⊗ 1) = (A_0 + n_x A_x + n_y A_y + n_z A_z) / 2,
    A_0 = W_00 + W_11,  A_z = W_00 - W_11,  A_x = W_01 + W_10,  A_y = i (W_01 - W_10),

and ``W`` is block-positive iff ``M(n) >= 0`` on the unit sphere. ``M`` is *affine* in
``n in R^3``, so ``f(n) = lambda_min(M(n))`` (a minimum of affine functions) is **concave** on
``R^3``. Hence for any polytope ``P`` containing the unit ball, ``min_{|n| <= 1} f >= min_P f =
min_{vertices of P} f`` (a concave function attains its minimum over a polytope at a vertex).
:func:`bloch_grid` gives unit vectors ``u_i`` with angular covering radius ``alpha`` (every unit
vector lies within angle ``alpha`` of some ``u_i``); then ``max_i <u_i, w> >= cos(alpha)`` for
every unit ``w``, so ``conv{u_i / cos(alpha)}`` contains the unit ball. Therefore

    min_{|n| = 1} f(n)  >=  min_i f(u_i / cos alpha)  -  (rounding slack)          (lower bound)
    min_{|n| = 1} f(n)  <=  min_i f(u_i)                                            (upper bound)

with no Lipschitz constant: the lower bound loses only ``O(alpha^2 ||A||)`` (so an operator whose
product minimum is exactly 0, such as the flip, can be refuted never and verified never). If the lower bound is
``>= 0`` the operator is block-positive (:func:`verify_block_positive` returns a certificate); if the
upper bound is ``< 0`` the grid point is an explicit product vector with ``<e,f|W|e,f> < 0`` (a
refutation). The rounding slack bounds the backward error of the symmetric eigensolver
(``|lambda_computed - lambda| <= c N u ||M||``, Golub & Van Loan, *Matrix Computations*, 4th ed.,
Sec. 8.1) generously: ``64 N u ||M(v)||_F`` per point, ``u`` the unit roundoff.

**LKCH witnesses.** For a PPT entangled edge state ``rho`` of a ``2 x N`` cut (no product vector
``|e,f>`` with ``|e,f>`` in the range of ``rho`` and ``|e*,f>`` in the range of ``rho^{T_A}``),
Lewenstein, Kraus, Cirac, Horodecki, Phys. Rev. A 62, 052310 (2000) build

    W = P + Q^{T_A} - eps 1,    eps = min_{|e,f>} <e,f| P + Q^{T_A} |e,f>  (> 0 for an edge state),

``P`` (``Q``) the projector on the kernel of ``rho`` (of ``rho^{T_A}``). ``tr(P rho) = 0`` and
``tr(Q^{T_A} rho) = tr(Q rho^{T_A}) = 0``, so ``tr(W rho) = -eps < 0``: ``W`` detects ``rho``
although ``rho`` is PPT (``W`` is non-decomposable). :func:`lkch_witness` takes ``eps`` just below
the certified lower bound of the minimum, so the returned ``W`` is verified block-positive.

**Local filters.** For invertible local ``F = F_A ⊗ F_B``, ``W' = F^{-†} W F^{-1}`` is
block-positive whenever ``W`` is (``F^{-1}`` maps product vectors to product vectors), and
``tr(W' F rho F^†) = tr(W rho)``. One verified witness therefore certifies every filtered copy of
the states it detects (:func:`witness_values` evaluates ``tr(W rho)`` batched).

Conventions: big-endian qubit order; for an ``n``-qubit matrix the qubit side of the cut is moved
to the front with :func:`qubit_first` (a qubit permutation, which maps product vectors across the
cut to product vectors), so ``dims = (2, 2**(n-1))``.

Example::

    >>> import numpy as np
    >>> from qeframe.quantum.witness import verify_block_positive
    >>> flip = np.eye(4)[[0, 2, 1, 3]]  # SWAP = 2 |Phi+><Phi+|^{T_A}: block-positive, not PSD
    >>> verify_block_positive(flip + 0.01 * np.eye(4), dims=(2, 2)).verified  # product minimum 0.01
    True
    >>> verify_block_positive(-flip, dims=(2, 2)).refuted  # <e,e| -F |e,e> = -1
    True

Size: about 520 lines, kept as one module on purpose (issue 14's rule): the block-positivity
check, its error analysis and the LKCH witnesses it verifies are one argument; the FNF-aligned
use of the library lives in :mod:`qeframe.quantum.filter_witness`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from qeframe.quantum.ops import num_qubits, partial_transpose, permute_qubits

#: Default number of polar rings of :func:`bloch_grid` (covering angle ``pi / resolution``).
DEFAULT_RESOLUTION = 128
_UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
#: Relative gap between the bounds that ``tighten=True`` aims for.
_TIGHTEN_REL = 1e-3


@dataclass(frozen=True)
class BlockPositivityCertificate:
    """Result of :func:`verify_block_positive` for one operator on ``C^2 ⊗ C^N``.

    Attributes:
        verified: ``lower_bound >= 0``: the operator is block-positive (a proof).
        refuted: ``upper_bound < 0``: ``refuting_vector`` ``(e, f)`` is a product vector with a
            negative expectation (a proof of the opposite).
        lower_bound: rigorous lower bound of ``min <e,f|W|e,f>`` over unit product vectors
            (rounding slack already subtracted).
        upper_bound: ``min`` over the grid points on the sphere, an upper bound of the same minimum.
        covering_angle: the grid's angular covering radius ``alpha`` (radians).
        n_points: number of grid directions.
        dims: ``(2, N)``.
        refuting_vector: ``(e (2,), f (N,))`` at the grid's minimum (always filled; a refutation
            only when ``refuted``).
    """

    verified: bool
    refuted: bool
    lower_bound: float
    upper_bound: float
    covering_angle: float
    n_points: int
    dims: tuple[int, int]
    refuting_vector: tuple[np.ndarray, np.ndarray] = field(repr=False)


@cache
def bloch_grid(resolution: int = DEFAULT_RESOLUTION) -> tuple[np.ndarray, float]:
    """Unit vectors on the Bloch sphere and their angular covering radius.

    Polar angles ``theta_i = i pi / m`` (``i = 0..m``, poles included) and azimuths
    ``phi_j = 2 pi j / (2m)``. Any unit vector ``(theta, phi)`` reaches the grid point
    ``(theta_i, phi_j)`` with ``|theta - theta_i| <= pi/(2m)``, ``|phi - phi_j| <= pi/(2m)`` by a
    meridian arc (``<= pi/(2m)``) and an arc of the parallel at ``theta_i`` (``<= sin(theta_i) pi/(2m)``),
    so the angular distance is at most ``alpha = pi / m``.

    Returns ``(points (P, 3) float64, alpha)``, ``P = (m + 1) 2m``; read-only.
    """
    m = int(resolution)
    if m < 4:
        raise ValueError(f"resolution must be >= 4, got {m}")
    theta = np.arange(m + 1) * np.pi / m
    phi = np.arange(2 * m) * np.pi / m
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pts = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)
    pts.setflags(write=False)
    return pts, float(np.pi / m)


def bloch_blocks(w: np.ndarray, dims: tuple[int, int]) -> np.ndarray:
    """``(A_0, A_x, A_y, A_z)`` of the module docstring: ``(..., 2N, 2N)`` -> ``(..., 4, N, N)`` complex."""
    da, db = dims
    if da != 2:
        raise ValueError(f"the first subsystem must be a qubit, got dims={dims}")
    w = np.asarray(w, dtype=np.complex128)
    if w.shape[-2:] != (2 * db, 2 * db):
        raise ValueError(f"expected a ({2 * db}, {2 * db}) operator for dims={dims}, got {w.shape}")
    b = w.reshape(w.shape[:-2] + (2, db, 2, db))
    w00, w01, w10, w11 = b[..., 0, :, 0, :], b[..., 0, :, 1, :], b[..., 1, :, 0, :], b[..., 1, :, 1, :]
    return np.stack([w00 + w11, w01 + w10, 1j * (w01 - w10), w00 - w11], axis=-3)


def _lambda_min_on(blocks: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``lambda_min(M(v))`` for ``v`` in ``points`` ``(P, 3)``, plus eigenvectors and Frobenius norms."""
    m = 0.5 * (blocks[0][None] + np.einsum("pk,kij->pij", points, blocks[1:]))
    m = 0.5 * (m + m.conj().transpose(0, 2, 1))
    vals, vecs = np.linalg.eigh(m)
    return vals[:, 0], vecs[:, :, 0], np.linalg.norm(m, axis=(1, 2))


@cache
def _icosahedron() -> np.ndarray:
    """The 20 faces of the regular icosahedron as unit vertex triples: ``(20, 3, 3)``."""
    g = (1 + 5**0.5) / 2
    v = np.array(
        [[-1, g, 0], [1, g, 0], [-1, -g, 0], [1, -g, 0], [0, -1, g], [0, 1, g],
         [0, -1, -g], [0, 1, -g], [g, 0, -1], [g, 0, 1], [-g, 0, -1], [-g, 0, 1]], dtype=float,
    )  # fmt: skip
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
         [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]  # fmt: skip
    out = v[np.array(f)]
    out.setflags(write=False)
    return out


def _circumradius(tri: np.ndarray) -> np.ndarray:
    """Angular circumradius of spherical triangles ``(T, 3, 3)`` (unit vertices): ``(T,)``."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    center = np.cross(b - a, c - a)
    center /= np.linalg.norm(center, axis=1, keepdims=True)
    cos_r = np.abs(np.einsum("tk,tk->t", center, a))
    return np.arccos(np.clip(cos_r, -1.0, 1.0))


def refined_lower_bound(
    blocks: np.ndarray, target: float, max_levels: int = 14, max_triangles: int = 20000
) -> float:
    """A lower bound of ``min_n lambda_min(M(n))`` by adaptive refinement of a spherical triangulation.

    Let a spherical triangle ``T`` have circumcentre ``c`` and angular circumradius ``r < pi/2``.
    Its three vertices scaled by ``1/cos r`` lie on the plane ``<x, c> = 1``, and every unit ``n`` in
    the cone over ``T`` is ``t y`` with ``y`` in that flat triangle and ``t = <n, c> in (0, 1]``. So the
    cone's part of the unit ball lies in ``conv{0, v_a/cos r, v_b/cos r, v_c/cos r}`` and, ``f`` being
    concave, ``f >= min(f(0), f(v_i / cos r))`` there. Starting from the icosahedron, triangles
    whose bound is below ``target`` are split in four (edge midpoints), up to ``max_levels``; the
    result is ``min(f(0), bounds of all leaves)`` (rounding slack not included; the caller subtracts
    twice the grid slack, since the scaled vertices have norms up to ``1/cos(37.4 deg) < 1.3``). ``blocks`` as
    returned by :func:`bloch_blocks`.
    """
    f0 = float(np.linalg.eigvalsh(0.5 * blocks[0])[0])
    tri = np.array(_icosahedron())
    lowest = f0
    for level in range(max_levels + 1):
        r = _circumradius(tri)
        scaled = (tri / np.cos(r)[:, None, None]).reshape(-1, 3)
        bound = _lambda_min_on(blocks, scaled)[0].reshape(-1, 3).min(axis=1)
        split = bound < target
        if level == max_levels or not split.any() or 4 * int(split.sum()) > max_triangles:
            return min(lowest, float(bound.min()))
        lowest = min(lowest, float(bound[~split].min(initial=np.inf)))
        t = tri[split]
        a, b, c = t[:, 0], t[:, 1], t[:, 2]
        ab, bc, ca = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a + b, b + c, c + a))
        tri = np.concatenate(
            [np.stack(v, axis=1) for v in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))]
        )
    return lowest


def verify_block_positive(
    w: np.ndarray,
    dims: tuple[int, int] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    refine: bool = True,
    tighten: bool = False,
) -> BlockPositivityCertificate:
    """Prove or refute block-positivity of a Hermitian ``W`` on ``C^2 ⊗ C^N`` (see the module docstring).

    Args:
        w: ``(2N, 2N)`` Hermitian matrix (complex or real); the qubit is the first (left) factor.
        dims: ``(2, N)``; default ``(2, dim/2)``.
        resolution: polar rings ``m`` of :func:`bloch_grid`; ``(m+1) 2m`` eigenproblems of size
            ``N``, covering angle ``pi/m`` (the lower bound loses about ``(pi/m)^2 / 2 * ||A||``).
        refine: when the grid is inconclusive (lower bound < 0 <= upper bound), tighten the lower
            bound with :func:`refined_lower_bound` (refining only near the minimum).
        tighten: refine until the lower bound is within ``1e-3 |upper|`` of the upper bound where it
            can (for the best lower bound, e.g. the ``eps`` of an LKCH witness).

    Returns:
        A :class:`BlockPositivityCertificate`. Neither ``verified`` nor ``refuted`` means the grid
        is too coarse to decide (raise ``resolution``).
    """
    w = np.asarray(w)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] % 2:
        raise ValueError(f"expected a square (2N, 2N) matrix, got shape {w.shape}")
    if not np.allclose(w, w.conj().T, atol=1e-12 * max(1.0, float(np.abs(w).max()))):
        raise ValueError("W must be Hermitian")
    dims = dims or (2, w.shape[0] // 2)
    blocks = bloch_blocks(w, dims)
    points, alpha = bloch_grid(resolution)
    outer, _, norms = _lambda_min_on(blocks, points / np.cos(alpha))
    slack = 64.0 * dims[1] * _UNIT_ROUNDOFF * float(norms.max())
    lower = float(outer.min()) - slack
    inner, vecs, _ = _lambda_min_on(blocks, points)
    k = int(np.argmin(inner))
    upper = float(inner[k])
    if tighten and upper - lower > _TIGHTEN_REL * abs(upper) + 4 * slack:
        lower = max(lower, refined_lower_bound(blocks, upper - _TIGHTEN_REL * abs(upper)) - 2 * slack)
    elif refine and lower < 0 <= upper - 2 * slack:
        lower = max(lower, refined_lower_bound(blocks, 4 * slack) - 2 * slack)  # enough to prove >= 0
    theta = np.arccos(np.clip(points[k, 2], -1.0, 1.0))
    phi = np.arctan2(points[k, 1], points[k, 0])
    e = np.array([np.cos(theta / 2), np.exp(1j * phi) * np.sin(theta / 2)])
    return BlockPositivityCertificate(
        verified=bool(lower >= 0.0),
        refuted=bool(upper < -slack),
        lower_bound=lower,
        upper_bound=upper,
        covering_angle=alpha,
        n_points=int(points.shape[0]),
        dims=(int(dims[0]), int(dims[1])),
        refuting_vector=(e, vecs[k]),
    )


def shifted_certificate(cert: BlockPositivityCertificate, shift: float) -> BlockPositivityCertificate:
    """The certificate of ``W - shift 1`` from that of ``W``: every product expectation moves by
    exactly ``-shift``, so both bounds do (minus ``1e-15 |shift|`` for rounding ``W - shift 1``)."""
    lower = cert.lower_bound - shift - 1e-15 * abs(shift)
    upper = cert.upper_bound - shift
    return BlockPositivityCertificate(
        verified=bool(lower >= 0.0),
        refuted=bool(upper < -1e-12 * (abs(cert.upper_bound) + abs(shift))),
        lower_bound=lower,
        upper_bound=upper,
        covering_angle=cert.covering_angle,
        n_points=cert.n_points,
        dims=cert.dims,
        refuting_vector=cert.refuting_vector,
    )


def qubit_first(rho: np.ndarray, qubit: int) -> np.ndarray:
    """Move ``qubit`` (0-based) to the front, the others keeping their order: ``(N, d, d)`` or ``(d, d)``."""
    n = num_qubits(np.asarray(rho).shape[-1])
    perm = [qubit] + [q for q in range(n) if q != qubit]
    return permute_qubits(rho, perm)


def kernel_projector(m: np.ndarray, rel_tol: float = 1e-9) -> np.ndarray:
    """Projector on the eigenvectors of Hermitian ``m`` with eigenvalue ``<= rel_tol * lambda_max``."""
    vals, vecs = np.linalg.eigh(m)
    k = vecs[:, vals <= rel_tol * vals[-1]]
    return k @ k.conj().T


@dataclass(frozen=True)
class Witness:
    """A verified witness for the cut ``qubit | rest`` of ``n`` qubits.

    ``matrix`` ``(2**n, 2**n)`` complex128 in the *qubit-first* order (:func:`qubit_first`),
    ``certificate`` its :class:`BlockPositivityCertificate` (``verified`` is True), ``name`` free text.
    """

    matrix: np.ndarray
    certificate: BlockPositivityCertificate
    name: str = ""


def lkch_witness(rho: np.ndarray, resolution: int = DEFAULT_RESOLUTION, shrink: float = 0.999) -> Witness:
    """LKCH witness of a qubit-first ``2 x N`` PPT edge state ``rho`` ``(2N, 2N)``, verified.

    ``W = P + Q^{T_A} - eps 1`` with ``eps = shrink * (certified lower bound of the product minimum
    of P + Q^{T_A})``. Raises ``ValueError`` when that bound is not positive (``rho`` is not an
    edge state, or the grid is too coarse) or the verification of ``W`` fails.
    """
    rho = np.asarray(rho, dtype=np.complex128)
    d = rho.shape[0]
    p = kernel_projector(rho)
    q = kernel_projector(partial_transpose(rho, [0]))
    x = p + partial_transpose(q, [0])
    x = 0.5 * (x + x.conj().T)
    base = verify_block_positive(x, (2, d // 2), resolution, tighten=True)
    if base.lower_bound <= 0:
        raise ValueError(
            f"LKCH: no positive product minimum (certified lower bound {base.lower_bound:.3g}); "
            "not an edge state or resolution too low"
        )
    w = x - shrink * base.lower_bound * np.eye(d)
    cert = shifted_certificate(base, shrink * base.lower_bound)  # exact: M_W(n) = M_X(n) - eps 1
    if not cert.verified:
        raise ValueError(f"LKCH: the witness failed verification (lower bound {cert.lower_bound:.3g})")
    return Witness(matrix=w, certificate=cert, name="lkch")


def witness_values(w: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``tr(W rho)`` for one ``W`` ``(d, d)`` and a batch ``rho`` ``(N, d, d)``: ``(N,)`` float64."""
    return np.einsum("ij,nji->n", np.asarray(w), np.asarray(rho)).real


# ------------------------------------------------------------------------------ separability from spectrum


def absolute_separability_margin(eigenvalues: np.ndarray, dims: tuple[int, int]) -> np.ndarray:
    """Johnston's qubit-qudit margin ``lambda_1 - lambda_{2N-1} - 2 sqrt(lambda_{2N-2} lambda_{2N})``.

    N. Johnston, "Separability from spectrum for qubit-qudit states", Phys. Rev. A 88, 062330 (2013):
    a state on ``C^2 ⊗ C^N`` with eigenvalues ``lambda_1 >= ... >= lambda_{2N}`` is separable for
    *every* choice of eigenvectors (absolutely separable) iff the margin is ``<= 0``; in ``2 x N``
    absolute separability and absolute PPT coincide (for ``N = 2``: Verstraete, Audenaert,
    De Moor, PRA 64, 012316 (2001)). The spectrum is invariant under qubit permutations, so the
    margin decides every ``1 | rest`` cut of a qubit state at once.

    ``eigenvalues`` ``(..., 2N)`` in ascending order (as :func:`numpy.linalg.eigvalsh` returns
    them); negative rounding noise is clipped to 0 under the square root. Returns ``(...)`` float64.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if dims[0] != 2 or lam.shape[-1] != 2 * dims[1] or dims[1] < 2:
        raise ValueError(f"expected 2N eigenvalues of a 2 x N state (N >= 2), got {lam.shape[-1]} for {dims}")
    # ascending a[0] <= ... <= a[2N-1]:  lambda_1 = a[-1], lambda_{2N-1} = a[1], lambda_{2N-2} = a[2], lambda_{2N} = a[0]
    return (
        lam[..., -1]
        - lam[..., 1]
        - 2.0 * np.sqrt(np.clip(lam[..., 2], 0, None) * np.clip(lam[..., 0], 0, None))
    )


# ------------------------------------------------------------------------------ witness library

#: ``b`` values of the built-in ``horodecki`` witness set.
HORODECKI_LIBRARY_B = (0.1, 0.3, 0.5, 0.7, 0.9)


@cache
def horodecki_library_states(n_qubits: int) -> np.ndarray:
    """The target states of the built-in ``horodecki`` set: P. Horodecki's ``2 x 2**(n-1)`` state
    (PLA 232, 333 (1997); see ``qeframe_plugins.families.horodecki``) at each ``b`` of
    :data:`HORODECKI_LIBRARY_B`, trace 1, qubit first: ``(5, 2**n, 2**n)`` complex128, read-only."""
    d, half = 2**n_qubits, 2 ** (n_qubits - 1)
    out = []
    for b in HORODECKI_LIBRARY_B:
        rho = np.zeros((d, d))
        i = np.arange(half - 1)
        rho[i, i] = rho[half + i + 1, half + i + 1] = rho[i, half + i + 1] = rho[half + i + 1, i] = b
        rho[half - 1, half - 1] = b
        rho[half, half] += (1 + b) / 2
        rho[d - 1, d - 1] += (1 - b) / 2
        rho[half, d - 1] = rho[d - 1, half] = np.sqrt(1 - b * b) / 2
        out.append(rho / np.trace(rho))
    states = np.stack(out).astype(np.complex128)
    states.setflags(write=False)
    return states


@cache
def _builtin_witnesses(name: str, n_qubits: int) -> np.ndarray:
    if name != "horodecki":
        raise ValueError(f"unknown witness set {name!r}; allowed: horodecki")
    lib = np.stack([lkch_witness(rho).matrix for rho in horodecki_library_states(n_qubits)])
    lib.setflags(write=False)
    return lib


@cache
def _file_witnesses(path: str, n_qubits: int) -> np.ndarray:
    d = 2**n_qubits
    with np.load(path) as data:
        mats = np.asarray(data["witnesses"], dtype=np.complex128)
    if mats.ndim != 3 or mats.shape[1:] != (d, d):
        raise ValueError(f"{path}: `witnesses` must be (K, {d}, {d}), got {mats.shape}")
    for k, w in enumerate(mats):
        cert = verify_block_positive(w, (2, d // 2))
        if not cert.verified:
            raise ValueError(
                f"{path}: witness {k} is not verified block-positive (lower bound {cert.lower_bound:.3g})"
            )
    mats.setflags(write=False)
    return mats


def load_witness_library(names: tuple[str, ...], path: str | None, n_qubits: int) -> np.ndarray:
    """Verified witnesses ``(K, 2**n, 2**n)`` for the cut ``1 | rest`` (qubit-first order).

    ``names``: built-in sets (``"horodecki"``: LKCH witnesses of P. Horodecki's ``2 x 2**(n-1)``
    state at ``b`` in :data:`HORODECKI_LIBRARY_B`, built and verified on first use); ``path``: an
    ``.npz`` whose array ``witnesses`` is verified matrix by matrix with
    :func:`verify_block_positive` on load — an unverified matrix is an error, never used.
    Cached per process.
    """
    parts = [_builtin_witnesses(name, n_qubits) for name in names]
    if path is not None:
        parts.append(_file_witnesses(str(path), n_qubits))
    d = 2**n_qubits
    return np.concatenate(parts) if parts else np.zeros((0, d, d), dtype=np.complex128)


# ------------------------------------------------------------------------------ proposing witnesses


@dataclass(frozen=True)
class WitnessProposal:
    """A witness proposed for one state and its verification (:func:`propose_witness`).

    ``certified``: the witness is verified block-positive **and** ``value = tr(W rho) < -margin`` —
    a proof that ``rho`` is entangled across the cut, whoever proposed ``W``. ``witness`` is in the
    qubit-first order of the cut (:func:`qubit_first`); ``None`` when no positive product minimum
    was found.
    """

    certified: bool
    value: float
    witness: Witness | None


def lkch_operator(rho: np.ndarray, k_rho: int, k_pt: int) -> np.ndarray:
    """``P + Q^{T_A}`` with ``P`` (``Q``) the projector on the ``k_rho`` (``k_pt``) eigenvectors of ``rho``
    (of ``rho^{T_A}``) with the smallest eigenvalues; ``rho`` ``(2N, 2N)`` qubit first."""
    _, v = np.linalg.eigh(rho)
    p = v[:, :k_rho] @ v[:, :k_rho].conj().T
    _, u = np.linalg.eigh(partial_transpose(rho, [0]))
    q = u[:, :k_pt] @ u[:, :k_pt].conj().T
    x = p + partial_transpose(q, [0])
    return 0.5 * (x + x.conj().T)


def propose_witness(
    rho: np.ndarray,
    qubit: int = 0,
    ranks: tuple[tuple[int, int], ...] | None = None,
    margin: float = 1e-9,
    resolution: int = DEFAULT_RESOLUTION,
    keep: int = 2,
) -> WitnessProposal:
    """Propose an LKCH-type witness for the cut ``qubit | rest`` of one state and verify it.

    Candidates: for each ``(k_rho, k_pt)`` in ``ranks`` (default: all pairs ``1..N-1``, ``N = d/2``)
    the operator ``X = P + Q^{T_A}`` of :func:`lkch_operator` — projectors on the *approximate*
    kernels of ``rho`` and ``rho^{T_A}`` (the construction of Lewenstein, Kraus, Cirac, Horodecki,
    PRA 62, 052310 (2000), applied to the near-kernels of a noisy or filtered state). Each candidate
    is screened on a coarse grid by its best possible value ``tr(X rho) - (upper bound of the product
    minimum)``; the ``keep`` best are verified at ``resolution``: ``W = X - lb 1`` with ``lb`` the
    certified lower bound (times 0.999). The most negative verified ``tr(W rho)`` is returned. Every certificate
    comes from :func:`verify_block_positive`, so a bad proposal can only fail to certify — never
    certify a separable state. This is the verifier a learned proposer (issue 13, item 6) plugs
    into: pass a model's projectors through :func:`verify_block_positive` the same way.

    ``rho``: ``(2**n, 2**n)``. Cost: ``len(ranks)`` coarse grids plus ``2 keep`` grids of
    ``(m+1) 2m`` Hermitian ``N x N`` eigenproblems (about 0.5 s for three qubits at ``m = 128``).
    """
    moved = qubit_first(np.asarray(rho, dtype=np.complex128), qubit)
    d = moved.shape[0]
    half = d // 2
    pairs = ranks or tuple((a, b) for a in range(1, half) for b in range(1, half))
    scored = []
    for k_rho, k_pt in pairs:
        x = lkch_operator(moved, k_rho, k_pt)
        coarse = verify_block_positive(x, (2, half), 16)
        scored.append((float(witness_values(x, moved[None])[0]) - coarse.upper_bound, x, k_rho, k_pt))
    scored.sort(key=lambda item: item[0])
    best = WitnessProposal(False, np.inf, None)
    for _, x, k_rho, k_pt in scored[:keep]:
        base = verify_block_positive(x, (2, half), resolution, tighten=True)
        if base.lower_bound <= 0:
            continue
        w = x - 0.999 * base.lower_bound * np.eye(d)
        cert = shifted_certificate(base, 0.999 * base.lower_bound)
        value = float(witness_values(w, moved[None])[0])
        if cert.lower_bound >= 0 and value < best.value:
            best = WitnessProposal(
                bool(value < -margin), value, Witness(w, cert, f"lkch-near-kernel-{k_rho}-{k_pt}")
            )
    return best
