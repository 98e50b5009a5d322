"""Shared numerics of the paper's state families: gates, random circuits, A3 states, cuts, mixing.

Everything here is batched over samples (a leading axis ``N``) and takes its randomness from an
explicit :class:`numpy.random.Generator`. Qubit order is big-endian: qubit ``k`` (0-based) is the
``k``-th Kronecker factor from the left, so the basis index ``i`` carries qubit ``k`` in bit
``n - 1 - k`` of ``i``.

Gates (arXiv 2210.07410, Appendix, Eqs. A1-A2; identical to qiskit's ``UGate`` and ``CUGate``)::

    U(θ, φ, λ)     = [[cos θ/2,          -e^{iλ} sin θ/2      ],
                      [e^{iφ} sin θ/2,    e^{i(φ+λ)} cos θ/2  ]]
    CU(θ, φ, λ, γ) = |0><0|_c ⊗ 1_t + |1><1|_c ⊗ e^{iγ} U(θ, φ, λ)_t

with every angle uniform in ``[0, 2π)``. A gate is stored and applied through the unit complex
numbers ``e^{iθ/2}, e^{iφ}, e^{iλ}`` (and ``e^{iγ}``), never through its angles
(:func:`random_gate_params`): each is drawn as ``e^{ix}`` with ``x`` uniform on a float32 grid, its
cosine and sine taken in float32 (vectorised, ~40x cheaper than float64 ``sin``/``cos`` in numpy)
and the pair renormalised in float64. Every gate is therefore unitary to float64 rounding and every
angle is uniform up to a displacement below ``4e-7`` rad; the angles themselves
(:attr:`CircuitPlan.init_u` ...) are recovered exactly with ``arg`` where needed (qiskit checks).

Random circuit (the paper's Fig. 4 and the authors' ``PureStatesGenerator``): start from
``|0…0>``; on each *block* (a set of ``k`` qubits) apply one U layer, then ``g`` CU gates with
``g`` uniform in ``[1, 2·C(k,2))`` (i.e. ``1 … k(k-1) - 1``; none when ``k < 2``), each on a
uniformly random *ordered* pair (control, target) of distinct qubits of the block; finally apply
``u_layers`` U layers to every qubit (the authors use ``random_gates = 2``). A plan of these gates
is a :class:`CircuitPlan`; :func:`plan_statevectors` runs it. GHZ and W states are prepared exactly
(``(|0…0> + |1…1>)/√2`` and ``Σ_q |e_q>/√k`` on their support) and then locally randomised by the
final U layers, as in the paper.

A3 ("Haar") states: ``x_i`` uniform in ``(0, 1]``, ``y_i = -log x_i``, phases ``γ_i`` uniform in
``[0, 2π)``, ``ψ_i = sqrt(y_i / Σ_j y_j) e^{iγ_i}``. Since the ``y_i`` are i.i.d. exponential, the
``|ψ_i|^2`` are uniform on the simplex, so this is exactly the Haar measure on pure states (it is
also what qiskit's ``random_statevector`` does, which the authors call).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from qeframe.errors import QeframeError
from qeframe.plugin.labels import provenance_code
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.ops import basis_permutation

TWO_PI = 2.0 * np.pi

#: Preparation codes of :attr:`CircuitPlan.prep`.
PREP_ZERO, PREP_GHZ, PREP_W = 0, 1, 2

CONSTRUCTION = provenance_code("construction")
UNKNOWN_PROV = provenance_code("unknown")


# --------------------------------------------------------------------------------------------------
# Parameter helpers (used by the pydantic validators of the families)


def check_int_range(value: tuple[int, int], name: str, minimum: int) -> tuple[int, int]:
    """Validate an inclusive integer range ``(lo, hi)`` with ``minimum <= lo <= hi``."""
    lo, hi = int(value[0]), int(value[1])
    if lo < minimum:
        raise ValueError(f"{name} must start at {minimum} or more, got ({lo}, {hi})")
    if hi < lo:
        raise ValueError(f"{name} is empty: ({lo}, {hi}) has its upper end below its lower end")
    return (lo, hi)


# --------------------------------------------------------------------------------------------------
# Cuts


@cache
def side_a_masks(n: int) -> np.ndarray:
    """``(n_cuts, n)`` bool: which qubits are on the named-first side of each cut."""
    out = np.zeros((n_cuts(n), n), dtype=bool)
    for cut in bipartitions(n):
        out[cut.index, list(cut.side_a)] = True
    out.setflags(write=False)
    return out


@cache
def cut_canonical_perms(n: int) -> np.ndarray:
    """``(n_cuts, n)`` int64 qubit permutations that place ``side_a + side_b`` at their qubits.

    A state assembled as ``ρ_A ⊗ ρ_B`` (side A's qubits first, each side in ascending order) becomes
    the state with the cut's qubits in place under ``permute_qubits(·, perm)`` with
    ``perm = argsort(side_a + side_b)`` (new qubit ``q`` is old position ``perm[q]``).
    """
    out = np.stack([np.argsort(np.array(c.side_a + c.side_b)) for c in bipartitions(n)])
    out.setflags(write=False)
    return out


def splits(support: np.ndarray, n: int) -> np.ndarray:
    """``(N, n)`` bool qubit sets -> ``(N, n_cuts)`` bool: whether each cut has qubits of the set on both sides."""
    a = side_a_masks(n)
    on_a = (support[:, None, :] & a[None]).any(-1)
    on_b = (support[:, None, :] & ~a[None]).any(-1)
    return on_a & on_b


def draw_cuts(rng: np.random.Generator, count: int, n: int, fixed: int | None = None) -> np.ndarray:
    """``(count,)`` cut indices: ``fixed`` everywhere, or random as in the authors' code.

    Random: the size ``a`` of the smaller side is uniform in ``1 … n//2``, then the cut is uniform
    among the cuts whose named side has ``a`` qubits (for 3 qubits: uniform over the three cuts).
    """
    if fixed is not None:
        return np.full(count, fixed, dtype=np.int64)
    sizes = np.array([len(c.side_a) for c in bipartitions(n)])
    a = rng.integers(1, n // 2 + 1, size=count)
    offsets = np.searchsorted(sizes, np.arange(1, n // 2 + 2))  # first cut of each size
    number = offsets[a] - offsets[a - 1]
    return offsets[a - 1] + np.floor(rng.random(count) * number).astype(np.int64)


def random_subsets(rng: np.random.Generator, count: int, n: int, k: np.ndarray) -> np.ndarray:
    """``(count, n)`` bool: a uniformly random subset of ``k[i]`` qubits per sample."""
    ranks = np.argsort(np.argsort(rng.random((count, n)), axis=1), axis=1)
    return ranks < np.asarray(k)[:, None]


# --------------------------------------------------------------------------------------------------
# Gates
#
# The circuit engine keeps the batch axis LAST: a state batch is ``(2**n, N)`` and a batch of 2x2
# gates is four ``(N,)`` arrays ``(u00, u01, u10, u11)``. Every arithmetic step is then one
# vectorised operation over contiguous length-N rows, which is several times faster in numpy than
# the ``(N, 2**n)`` layout with its length-2 inner loops (the same trick as the batched Cholesky in
# :mod:`qeframe.quantum.ppt`). :func:`plan_statevectors` returns the usual batch-first layout.

Gate2 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def u_parts(half: np.ndarray, e_phi: np.ndarray, e_lam: np.ndarray) -> Gate2:
    """Entries ``(u00, u01, u10, u11)`` of ``U(θ, φ, λ)`` (Eq. A1) from ``half = e^{iθ/2}``,
    ``e_phi = e^{iφ}`` and ``e_lam = e^{iλ}`` (complex, all shaped alike): no transcendental call."""
    c, s = half.real, half.imag
    return c.astype(np.complex128), -e_lam * s, e_phi * s, (e_phi * e_lam) * c


def unit_phases(x: np.ndarray) -> np.ndarray:
    """``e^{ix}`` written as ``cos x + i sin x`` into one complex array (no temporaries)."""
    out = np.empty(np.shape(x), dtype=np.complex128)
    out.real = np.cos(x)
    out.imag = np.sin(x)
    return out


def angle_params(angles: np.ndarray) -> np.ndarray:
    """Gate angles ``(..., k)`` (``θ, φ, λ[, γ]``) -> the unit complex numbers ``(e^{iθ/2}, e^{iφ}, ...)``."""
    angles = np.asarray(angles, dtype=np.float64)
    scale = np.ones(angles.shape[-1])
    scale[0] = 0.5
    return unit_phases(angles * scale)


def param_angles(params: np.ndarray) -> np.ndarray:
    """Inverse of :func:`angle_params`: angles in ``[0, 2π)`` of gate parameters ``(..., k)``."""
    angles = np.angle(params)
    angles[..., 0] *= 2.0
    return np.mod(angles, TWO_PI)


def random_gate_params(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Parameters of ``prod(shape)`` random gates: complex ``shape + (k,)``, entry 0 ``e^{iθ/2}``
    and entries ``1..k-1`` ``e^{iφ}`` with every angle uniform in ``[0, 2π)``.

    Stored parameter-major (a transposed view), so that each parameter's values are contiguous for
    the batch-last engine. ``x`` is uniform on the float32 grid of :meth:`numpy.random.Generator.random`
    times ``π`` (the half angle) or ``2π``; ``cos x`` and ``sin x`` are evaluated in float32 (numpy's
    vectorised kernels, error ~1 ulp) and the pair is renormalised in float64, so ``|e^{ix}| = 1`` to
    rounding and ``arg`` differs from ``x`` by less than ``4e-7``. ``e^{iθ/2}`` is kept in the closed
    upper half plane (``θ/2 ∈ [0, π]``, as the angle convention requires).
    """
    x = rng.random((k,) + shape, dtype=np.float32)
    x[0] *= np.float32(np.pi)
    x[1:] *= np.float32(TWO_PI)
    c = np.cos(x).astype(np.float64)
    s = np.sin(x).astype(np.float64)
    np.abs(s[0], out=s[0])
    inv = c * c
    inv += s * s
    np.sqrt(inv, out=inv)
    np.divide(1.0, inv, out=inv)
    out = np.empty(x.shape, dtype=np.complex128)
    np.multiply(c, inv, out=out.real)
    np.multiply(s, inv, out=out.imag)
    return np.moveaxis(out, 0, -1)


def reference_gate_params(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    """The float64 reference of :func:`random_gate_params` (same layout and distribution): angles
    from ``rng.uniform(0, 2π)`` and float64 ``sin``/``cos``, as store format 1 drew them. ~4x
    slower; used by the tests and ``benchmarks/bench_generation.py`` to compare the two samplers."""
    return angle_params(np.moveaxis(rng.uniform(0.0, TWO_PI, size=(k,) + shape), 0, -1))


def random_phases(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``e^{ix}`` with ``x`` uniform in ``[0, 2π)``: complex ``shape`` (see :func:`random_gate_params`)."""
    return random_gate_params(rng, shape, 2)[..., 1]


def u_matrices(angles: np.ndarray) -> np.ndarray:
    """``U(θ, φ, λ)`` (Eq. A1, qiskit's ``UGate``) for angles ``(..., 3)`` -> ``(..., 2, 2)`` complex128."""
    p = angle_params(angles)
    a, b, c, d = u_parts(p[..., 0], p[..., 1], p[..., 2])
    return np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)


def cu_target_matrices(angles: np.ndarray) -> np.ndarray:
    """Target block ``e^{iγ} U(θ, φ, λ)`` of ``CU(θ, φ, λ, γ)`` (Eq. A2) for angles ``(..., 4)``."""
    return unit_phases(angles[..., 3])[..., None, None] * u_matrices(angles[..., :3])


def _matmul_parts(x: Gate2, y: Gate2) -> Gate2:
    """Entries of the 2x2 product ``x @ y``."""
    return (
        x[0] * y[0] + x[1] * y[2],
        x[0] * y[1] + x[1] * y[3],
        x[2] * y[0] + x[3] * y[2],
        x[2] * y[1] + x[3] * y[3],
    )


def _masked(u: Gate2, mask: np.ndarray) -> Gate2:
    """``u`` where ``mask``, the identity elsewhere."""
    if mask.all():
        return u
    return (
        np.where(mask, u[0], 1.0),
        np.where(mask, u[1], 0.0),
        np.where(mask, u[2], 0.0),
        np.where(mask, u[3], 1.0),
    )


def _apply_1q_bl(psi: np.ndarray, q: int, u: Gate2) -> np.ndarray:
    """Per-sample gate ``u`` on qubit ``q`` of a batch-last state ``(2**n, N)``."""
    d, count = psi.shape
    n = d.bit_length() - 1
    t = psi.reshape(2**q, 2, 2 ** (n - q - 1), count)
    x0, x1 = t[:, 0], t[:, 1]
    out = np.empty_like(t)
    out[:, 0] = u[0] * x0 + u[1] * x1
    out[:, 1] = u[2] * x0 + u[3] * x1
    return out.reshape(d, count)


@cache
def _pair_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude index tables of every ordered pair ``(c, t)``, pair id ``c*(n-1) + t - (t > c)``.

    ``i0[p]``: basis indices with control bit 1 and target bit 0; ``i1[p] = i0[p]`` with the target
    bit set. Shapes ``(n(n-1), 2**(n-2))``.
    """
    d = 2**n
    idx = np.arange(d)
    i0, i1 = [], []
    for c in range(n):
        for t in range(n):
            if c == t:
                continue
            bc, bt = 1 << (n - 1 - c), 1 << (n - 1 - t)
            sel = idx[((idx & bc) != 0) & ((idx & bt) == 0)]
            i0.append(sel)
            i1.append(sel | bt)
    a, b = np.array(i0, dtype=np.int64), np.array(i1, dtype=np.int64)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def pair_ids(control: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    """Index of the ordered pair ``(control, target)`` in the pair tables."""
    return control * (n - 1) + target - (target > control)


def _apply_cu_bl(psi: np.ndarray, control: np.ndarray, target: np.ndarray, m: Gate2) -> None:
    """In place: controlled block ``m`` with a different (control, target) pair per sample.

    ``psi`` ``(2**n, N)`` batch-last. The affected amplitudes (control bit 1) are gathered with
    per-sample index tables, so there is no loop over samples or pairs.
    """
    d, count = psi.shape
    n = d.bit_length() - 1
    t0, t1 = _pair_tables(n)
    p = pair_ids(control, target, n)
    cols = np.arange(count)
    f0 = t0.T[:, p] * count + cols  # flat indices into psi, (2**(n-2), N)
    f1 = t1.T[:, p] * count + cols
    flat = psi.reshape(-1)
    a0, a1 = flat.take(f0), flat.take(f1)
    flat.put(f0, m[0] * a0 + m[1] * a1)
    flat.put(f1, m[2] * a0 + m[3] * a1)


# --------------------------------------------------------------------------------------------------
# Random circuits


@dataclass(frozen=True)
class CircuitPlan:
    """The gates of ``N`` random circuits on ``n`` qubits.

    The circuit of sample ``s`` is, in time order:

    1. preparation ``prep[s]``: ``|0…0>`` (:data:`PREP_ZERO`), GHZ (:data:`PREP_GHZ`) or W
       (:data:`PREP_W`) on the qubits ``support[s]`` (the other qubits in ``|0>``);
    2. ``U(init_u[s, q])`` on every qubit ``q`` with ``init_mask[s, q]``;
    3. for ``g = 0 … G-1`` with ``cu_active[s, g]``: ``CU(cu_angles[s, g])`` with control
       ``cu_pairs[s, g, 0]`` and target ``cu_pairs[s, g, 1]``;
    4. for ``l = 0 … L-1``, for every qubit ``q``: ``U(final_u[s, l, q])``.

    The gates are stored as parameters (:func:`random_gate_params`: ``e^{iθ/2}, e^{iφ}, e^{iλ}[,
    e^{iγ}]``, complex): ``init_params`` ``(N, n, 3)``, ``cu_params`` ``(N, G, 4)``,
    ``final_params`` ``(N, L, n, 3)``; the angles in radians (``init_u``, ``cu_angles``,
    ``final_u``, same shapes, float64 in ``[0, 2π)``) are derived from them. Other shapes: ``prep``
    ``(N,)``, ``support``/``init_mask`` ``(N, n)`` bool, ``cu_pairs`` ``(N, G, 2)`` int64,
    ``cu_active`` ``(N, G)`` bool.
    """

    n_qubits: int
    prep: np.ndarray
    support: np.ndarray
    init_params: np.ndarray
    init_mask: np.ndarray
    cu_pairs: np.ndarray
    cu_params: np.ndarray
    cu_active: np.ndarray
    final_params: np.ndarray

    def __len__(self) -> int:
        return int(self.prep.shape[0])

    @property
    def init_u(self) -> np.ndarray:
        """Angles ``(θ, φ, λ)`` of the initial U gates: ``(N, n, 3)``."""
        return param_angles(self.init_params)

    @property
    def cu_angles(self) -> np.ndarray:
        """Angles ``(θ, φ, λ, γ)`` of the CU gates: ``(N, G, 4)``."""
        return param_angles(self.cu_params)

    @property
    def final_u(self) -> np.ndarray:
        """Angles ``(θ, φ, λ)`` of the final U layers: ``(N, L, n, 3)``."""
        return param_angles(self.final_params)


def random_circuit_plan(
    rng: np.random.Generator,
    count: int,
    n: int,
    *,
    blocks: list[np.ndarray] | None = None,
    prep: int = PREP_ZERO,
    support: np.ndarray | None = None,
    u_layers: int = 2,
) -> CircuitPlan:
    """Draw a :class:`CircuitPlan` of ``count`` circuits on ``n`` qubits.

    Args:
        blocks: list of ``(count, n)`` bool masks, disjoint per sample. Each block of ``k >= 1``
            qubits gets one U layer and ``g`` CU gates, ``g`` uniform in ``1 … k(k-1) - 1``
            (``[1, 2·C(k,2))``), on uniformly random ordered pairs of its qubits. ``None``: no
            entangling part (a separable circuit).
        prep: :data:`PREP_ZERO`, :data:`PREP_GHZ` or :data:`PREP_W` on ``support`` (``(count, n)``
            bool; default all qubits).
        u_layers: number of final U layers on every qubit (the authors' ``random_gates``, 2).
    """
    blocks = blocks or []
    if support is None:
        support = np.ones((count, n), dtype=bool)
    init_mask = np.zeros((count, n), dtype=bool)
    for block in blocks:
        init_mask |= block
    # parameters are drawn qubit/layer-major with the batch last, the layout plan_statevectors reads
    if blocks:
        init_u = np.swapaxes(random_gate_params(rng, (n, count), 3), 0, 1)
    else:
        init_u = np.ones((count, n, 3), dtype=np.complex128)

    pairs, angles, active = [], [], []
    rows = np.arange(count)
    for block in blocks:
        k = block.sum(axis=1)
        max_gates = np.maximum(k * (k - 1) - 1, 0)  # 2*C(k,2) - 1
        slots = int(max_gates.max(initial=0))
        if slots == 0:
            continue
        n_gates = np.where(max_gates > 0, 1 + np.floor(rng.random(count) * max_gates).astype(np.int64), 0)
        for g in range(slots):
            keys = np.where(block, rng.random((count, n)), -1.0)
            control = keys.argmax(axis=1)
            keys = np.where(block, rng.random((count, n)), -1.0)
            keys[rows, control] = -1.0
            target = keys.argmax(axis=1)
            on = g < n_gates
            control = np.where(on, control, 0)
            target = np.where(on, target, 1)
            pairs.append(np.stack([control, target], axis=1))
            angles.append(random_gate_params(rng, (count,), 4))
            active.append(on)
    if pairs:
        cu_pairs = np.stack(pairs, axis=1).astype(np.int64)
        cu_angles = np.stack(angles, axis=1)
        cu_active = np.stack(active, axis=1)
    else:
        cu_pairs = np.zeros((count, 0, 2), dtype=np.int64)
        cu_angles = np.ones((count, 0, 4), dtype=np.complex128)
        cu_active = np.zeros((count, 0), dtype=bool)
    final_u = np.moveaxis(random_gate_params(rng, (u_layers, n, count), 3), 2, 0)
    return CircuitPlan(
        n_qubits=n,
        prep=np.full(count, prep, dtype=np.int8),
        support=support,
        init_params=init_u,
        init_mask=init_mask,
        cu_pairs=cu_pairs,
        cu_params=cu_angles,
        cu_active=cu_active,
        final_params=final_u,
    )


def prepared_states(prep: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Initial vectors ``(N, 2**n)``: ``|0…0>``, or GHZ / W on the support qubits (others ``|0>``)."""
    count, n = support.shape
    psi = np.zeros((count, 2**n), dtype=np.complex128)
    bit = 1 << (n - 1 - np.arange(n))  # basis index of |e_q> (only qubit q is 1)
    zero = prep == PREP_ZERO
    psi[zero, 0] = 1.0
    ghz = prep == PREP_GHZ
    all_ones = (support * bit).sum(axis=1)
    psi[ghz, 0] = np.sqrt(0.5)
    psi[np.flatnonzero(ghz), all_ones[ghz]] = np.sqrt(0.5)
    w = prep == PREP_W
    k = support.sum(axis=1)
    amp = np.where(support, 1.0 / np.sqrt(np.maximum(k, 1))[:, None], 0.0)
    psi[np.ix_(np.flatnonzero(w), bit)] = amp[w]
    return psi


def _u_parts_of(params: np.ndarray) -> Gate2:
    """:func:`u_parts` of gate parameters ``(..., 3)`` with the parameter axis moved first (contiguous rows)."""
    a = np.ascontiguousarray(np.moveaxis(params, -1, 0))
    return u_parts(a[0], a[1], a[2])


def plan_statevectors(plan: CircuitPlan) -> np.ndarray:
    """Run a :class:`CircuitPlan`: ``(N, 2**n)`` complex128 state vectors (big-endian)."""
    n = plan.n_qubits
    psi = np.ascontiguousarray(prepared_states(plan.prep, plan.support).T)  # (2**n, N)
    if plan.init_mask.any():
        init = _u_parts_of(np.moveaxis(plan.init_params, 0, -2))  # entries (n, N)
        mask = plan.init_mask.T
        for q in range(n):
            if mask[q].any():
                psi = _apply_1q_bl(psi, q, _masked(tuple(x[q] for x in init), mask[q]))
    active = plan.cu_active.T  # (G, N)
    if active.any():
        # gate entries only where a gate is active (identity elsewhere): e^{iγ} U(θ, φ, λ)
        params = np.moveaxis(plan.cu_params, 0, -2)[active]  # (n_active, 4)
        a = np.ascontiguousarray(params.T)
        phase = a[3]
        blocks = []
        for x, eye in zip(u_parts(a[0], a[1], a[2]), (1.0, 0.0, 0.0, 1.0), strict=True):
            full = np.full(active.shape, eye, dtype=np.complex128)
            full[active] = phase * x
            blocks.append(full)
        for g in range(plan.cu_pairs.shape[1]):
            if active[g].any():
                block = (blocks[0][g], blocks[1][g], blocks[2][g], blocks[3][g])
                _apply_cu_bl(psi, plan.cu_pairs[:, g, 0], plan.cu_pairs[:, g, 1], block)
    final = _u_parts_of(np.moveaxis(plan.final_params, 0, -2))  # entries (L, n, N); layer 0 acts first
    for q in range(n):
        local = tuple(x[0, q] for x in final)
        for layer in range(1, plan.final_params.shape[1]):
            local = _matmul_parts(tuple(x[layer, q] for x in final), local)
        psi = _apply_1q_bl(psi, q, local)
    return np.ascontiguousarray(psi.T)


# --------------------------------------------------------------------------------------------------
# Pure states with what their construction knows


@dataclass
class PureStates:
    """Pure states and their construction facts.

    ``psi`` ``(N, 2**n)`` complex128; ``ground_truth`` ``(N, n_cuts)`` int8 (1 / 0 / -1);
    ``provenance`` ``(N, n_cuts)`` uint8 codes; ``fully_separable`` ``(N,)`` int8 (1 / 0 / -1).
    """

    psi: np.ndarray
    ground_truth: np.ndarray
    provenance: np.ndarray
    fully_separable: np.ndarray


def truth_from_codes(truth: np.ndarray) -> np.ndarray:
    """Provenance for construction facts: ``construction`` where known (0/1), ``unknown`` where -1."""
    return np.where(truth >= 0, CONSTRUCTION, UNKNOWN_PROV).astype(np.uint8)


def biseparable_truth(cuts: np.ndarray, n: int) -> np.ndarray:
    """``(N, n_cuts)`` int8: 0 on each sample's product cut, -1 elsewhere."""
    truth = np.full((cuts.shape[0], n_cuts(n)), -1, dtype=np.int8)
    truth[np.arange(cuts.shape[0]), cuts] = 0
    return truth


def biseparable_fully_separable(n: int) -> int:
    """``fully_separable`` of a product across one cut: 1 for two qubits (the only cut), else -1."""
    return 1 if n == 2 else -1


def circuit_states(
    kind: str,
    count: int,
    rng: np.random.Generator,
    n: int,
    *,
    cuts: np.ndarray | None = None,
    support: str = "all",
    u_layers: int = 2,
    return_plan: bool = False,
) -> PureStates | tuple[PureStates, CircuitPlan]:
    """Random-circuit pure states of one ``kind`` (see :class:`~qeframe_plugins.families.circuit.CircuitFamily`).

    ``cuts`` ``(count,)`` gives the product cut of every ``biseparable`` sample (required for that
    kind). ``support="random"`` entangles a uniformly random subset of ``k`` qubits, ``k`` uniform
    in ``2 … n`` (the authors' code), for the kinds ``entangled``, ``ghz`` and ``w``.
    """
    full = np.ones((count, n), dtype=bool)
    if support == "random" and kind in ("entangled", "ghz", "w"):
        k = rng.integers(2, n + 1, size=count)
        sup = random_subsets(rng, count, n, k)
    else:
        sup = full
    if kind == "separable":
        plan = random_circuit_plan(rng, count, n, u_layers=u_layers)
        truth = np.zeros((count, n_cuts(n)), dtype=np.int8)
        fully = np.ones(count, dtype=np.int8)
    elif kind == "entangled":
        plan = random_circuit_plan(rng, count, n, blocks=[sup], u_layers=u_layers)
        truth = np.where(splits(sup, n), -1, 0).astype(np.int8)
        fully = np.full(count, -1, dtype=np.int8)
    elif kind in ("ghz", "w"):
        prep = PREP_GHZ if kind == "ghz" else PREP_W
        plan = random_circuit_plan(rng, count, n, prep=prep, support=sup, u_layers=u_layers)
        truth = splits(sup, n).astype(np.int8)
        fully = np.zeros(count, dtype=np.int8)
    elif kind == "biseparable":
        if cuts is None:
            raise ValueError("biseparable circuit states need their cuts")
        side_a = side_a_masks(n)[cuts]
        plan = random_circuit_plan(rng, count, n, blocks=[side_a, ~side_a], u_layers=u_layers)
        truth = biseparable_truth(cuts, n)
        fully = np.full(count, biseparable_fully_separable(n), dtype=np.int8)
    else:
        raise ValueError(f"unknown circuit kind {kind!r}")
    states = PureStates(plan_statevectors(plan), truth, truth_from_codes(truth), fully)
    return (states, plan) if return_plan else states


def a3_states(count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` A3 ("Haar") state vectors ``(count, dim)``; see the module docstring."""
    x = 1.0 - rng.random((count, dim))  # uniform in (0, 1]
    y = -np.log(x)
    return np.sqrt(y / y.sum(axis=1, keepdims=True)) * random_phases(rng, (count, dim))


def kron_states(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample Kronecker product of vectors ``(N, p) ⊗ (N, q) -> (N, p*q)``."""
    return (a[:, :, None] * b[:, None, :]).reshape(a.shape[0], a.shape[1] * b.shape[1])


def place_bipartite(
    cuts: np.ndarray, n: int, draw: callable, out_shape: tuple[int, ...], dtype=np.complex128
) -> np.ndarray:
    """Assemble per-sample products across ``cuts`` ``(N,)``, grouped by the size of the named side.

    ``draw(index, a)`` returns the states (vectors ``(len(index), 2**n)`` or matrices
    ``(len(index), 2**n, 2**n)``) of the samples ``index``, assembled as side A (``a`` qubits,
    first) ⊗ side B; they are then permuted so that each cut's qubits sit in place. The loop runs
    over side sizes (at most ``n//2``), never over samples.
    """
    out = np.empty(out_shape, dtype=dtype)
    sizes = np.array([len(c.side_a) for c in bipartitions(n)])
    perms_table = cut_canonical_perms(n)
    for a in range(1, n // 2 + 1):
        index = np.flatnonzero(sizes[cuts] == a)
        if index.size == 0:
            continue
        states = draw(index, a)
        bperm = basis_permutation(perms_table[cuts[index]])[..., 0]
        if states.ndim == 2:
            out[index] = np.take_along_axis(states, bperm, axis=1)
        else:
            rows = np.take_along_axis(states, bperm[:, :, None], axis=1)
            out[index] = np.take_along_axis(rows, bperm[:, None, :], axis=2)
    return out


def haar_states(
    kind: str, count: int, rng: np.random.Generator, n: int, *, cuts: np.ndarray | None = None
) -> PureStates:
    """A3 pure states of one ``kind`` (see :class:`~qeframe_plugins.families.haar.HaarFamily`)."""
    d = 2**n
    if kind == "entangled":
        psi = a3_states(count, d, rng)
        truth = np.full((count, n_cuts(n)), -1, dtype=np.int8)
        fully = np.full(count, -1, dtype=np.int8)
    elif kind == "separable":
        psi = a3_states(count, 2, rng)
        for _ in range(n - 1):
            psi = kron_states(psi, a3_states(count, 2, rng))
        truth = np.zeros((count, n_cuts(n)), dtype=np.int8)
        fully = np.ones(count, dtype=np.int8)
    elif kind == "biseparable":
        if cuts is None:
            raise ValueError("biseparable A3 states need their cuts")

        def draw(index: np.ndarray, a: int) -> np.ndarray:
            m = index.size
            return kron_states(a3_states(m, 2**a, rng), a3_states(m, 2 ** (n - a), rng))

        psi = place_bipartite(cuts, n, draw, (count, d))
        truth = biseparable_truth(cuts, n)
        fully = np.full(count, biseparable_fully_separable(n), dtype=np.int8)
    else:
        raise ValueError(f"unknown Haar kind {kind!r}")
    return PureStates(psi, truth, truth_from_codes(truth), fully)


# --------------------------------------------------------------------------------------------------
# Mixing


def random_counts(rng: np.random.Generator, count: int, bounds: tuple[int, int]) -> np.ndarray:
    """``(count,)`` integers uniform in the inclusive range ``bounds``."""
    return rng.integers(bounds[0], bounds[1] + 1, size=count)


def random_weights(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mixture weights as in the authors' code: ``p_i`` uniform in ``[0, 1)``, normalised to sum 1.

    Returns ``(weights, owner)``: flat ``(sum(counts),)`` weights grouped by sample, and the sample
    each weight belongs to.
    """
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    w = rng.random(owner.shape[0])
    w = np.where(w > 0, w, np.finfo(float).tiny)  # avoid an all-zero draw
    totals = np.bincount(owner, weights=w, minlength=counts.shape[0])
    return w / totals[owner], owner


def mix_vectors(psi: np.ndarray, weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``ρ_s = Σ_i p_i |ψ_i><ψ_i|`` over the consecutive group of ``counts[s]`` vectors of sample ``s``.

    ``psi`` ``(sum(counts), D)``, ``weights`` ``(sum(counts),)`` -> ``(N, D, D)`` (a sample with
    ``counts[s] = 0`` gets 0). Batch-last: with ``a = sqrt(p) ψ`` stored ``(D, sum(counts))``, each
    lower-triangle entry ``ρ[:, i, j]`` is one product ``a_i conj(a_j)`` over all vectors and one
    :func:`numpy.add.reduceat` over the group starts; the upper triangle is its conjugate (exactly
    Hermitian). ``D (D + 1) / 2`` contiguous passes instead of a ``(sum(counts), D, D)`` temporary.
    """
    n_samples, d = counts.shape[0], psi.shape[1]
    out = np.zeros((n_samples, d, d), dtype=np.complex128)
    filled = np.flatnonzero(counts > 0)
    if filled.size == 0:
        return out
    starts = (np.cumsum(counts) - counts)[filled]
    a = np.ascontiguousarray((np.sqrt(weights)[:, None] * psi).T)  # (D, sum(counts))
    ac = a.conj()
    prod = np.empty(a.shape[1], dtype=np.complex128)
    for i in range(d):
        for j in range(i + 1):
            np.multiply(a[i], ac[j], out=prod)
            entry = np.add.reduceat(prod, starts)
            out[filled, i, j] = entry
            if i != j:
                out[filled, j, i] = entry.conj()
    diag = np.arange(d)
    out[:, diag, diag] = out[:, diag, diag].real  # exact real diagonal
    return out


def mix_matrices(rho: np.ndarray, weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``Σ_i p_i ρ_i`` over consecutive groups: ``rho`` ``(sum(counts), D, D)`` -> ``(N, D, D)``.

    Every ``counts[s] >= 1``; one :func:`numpy.add.reduceat` over the group starts.
    """
    if counts.shape[0] == 0:
        return np.zeros((0,) + rho.shape[1:], dtype=rho.dtype)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(weights[:, None, None] * rho, starts, axis=0)


def reduced_from_vectors(psi: np.ndarray, keep: int) -> np.ndarray:
    """Partial trace of ``|ψ><ψ|`` over all but the first ``keep`` qubits: ``(N, 2**m)`` -> ``(N, 2**keep, 2**keep)``.

    ``ρ = M M^†`` with ``M = ψ`` reshaped to ``(2**keep, 2**(m-keep))``.
    """
    m = psi.reshape(psi.shape[0], 2**keep, psi.shape[1] >> keep)
    return np.einsum("nij,nkj->nik", m, m.conj())


# --------------------------------------------------------------------------------------------------
# Rejection sampling

#: Give up after this many rounds, or when this many draws were accepted not even once.
MAX_ROUNDS = 200
MAX_FRUITLESS_DRAWS = 20_000


def sample_until(count: int, draw, what: str):
    """Batched rejection sampling: ``count`` accepted samples from rounds of ``draw(m)``.

    ``draw(m)`` returns ``(batch, accept)`` with a :class:`~qeframe.plugin.interfaces.StateBatch` of ``m``
    samples and an ``(m,)`` bool mask. Each round draws about ``need / rate`` samples, ``rate`` being
    the acceptance observed so far, so a typical call takes one or two rounds. Raises
    :class:`~qeframe.errors.QeframeError` naming ``what`` when nothing is ever accepted.
    """
    from qeframe.plugin.interfaces import StateBatch

    kept: list[StateBatch] = []
    n_kept = drawn = 0
    for _ in range(MAX_ROUNDS):
        need = count - n_kept
        if need <= 0:
            break
        rate = max((n_kept + 0.5) / (drawn + 1.0), 1e-3) if drawn else 1.0
        m = int(np.ceil(need / rate * 1.1)) + (8 if drawn else 0)
        m = min(m, max(50 * need, 1024))
        batch, accept = draw(m)
        drawn += m
        if accept.any():
            kept.append(batch.take(np.flatnonzero(accept)[:need]))
            n_kept += len(kept[-1])
        elif n_kept == 0 and drawn >= MAX_FRUITLESS_DRAWS:
            raise QeframeError(f"{what}: none of {drawn} drawn states was accepted")
    if n_kept < count:
        raise QeframeError(f"{what}: only {n_kept} of {count} states accepted after {drawn} draws")
    if not kept:
        return draw(0)[0]
    return StateBatch.concatenate(kept) if len(kept) > 1 else kept[0]
