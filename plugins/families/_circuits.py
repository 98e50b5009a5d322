"""The random-circuit engine of the paper's pure-state families (gates, circuit plans, statevectors).

Batched over samples and driven by an explicit :class:`numpy.random.Generator`; big-endian qubit
order (qubit ``k``, 0-based, is bit ``n - 1 - k`` of the basis index).

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
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

import numpy as np

from qeframe.quantum.random import unit_complex

TWO_PI = 2.0 * np.pi

#: Preparation codes of :attr:`CircuitPlan.prep`.
PREP_ZERO, PREP_GHZ, PREP_W = 0, 1, 2


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
    ``e_phi = e^{iφ}`` and ``e_lam = e^{iλ}`` (complex, all shaped alike; the entries have ``half``'s
    dtype): no transcendental call."""
    # numpy multiplies a complex by a real array through the real array cast to complex: cast once
    c, s = half.real.astype(half.dtype), half.imag.astype(half.dtype)
    return c, -e_lam * s, e_phi * s, (e_phi * e_lam) * c


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
    times ``π`` (the half angle) or ``2π``, turned into ``e^{ix}`` by
    :func:`qeframe.quantum.random.unit_complex` (float32 trigonometry, renormalised in float64), so
    ``|e^{ix}| = 1`` to rounding and ``arg`` differs from ``x`` by less than ``4e-7``. ``e^{iθ/2}``
    is kept in the closed upper half plane (``θ/2 ∈ [0, π]``, as the angle convention requires).
    """
    x = rng.random((k,) + shape, dtype=np.float32)
    x[0] *= np.float32(np.pi)
    x[1:] *= np.float32(TWO_PI)
    out = unit_complex(x)
    half = out[0].imag
    np.abs(half, out=half)
    return np.moveaxis(out, 0, -1)


def reference_gate_params(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    """The float64 reference of :func:`random_gate_params` (same layout and distribution): angles
    from ``rng.uniform(0, 2π)`` and float64 ``sin``/``cos``, as store format 1 drew them. ~4x
    slower; used by the tests and ``benchmarks/bench_generation.py`` to compare the two samplers."""
    return angle_params(np.moveaxis(rng.uniform(0.0, TWO_PI, size=(k,) + shape), 0, -1))


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

    def rows(self, index: slice) -> CircuitPlan:
        """The plan of samples ``index`` (every per-sample array sliced along its first axis)."""
        arrays = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "n_qubits"}
        return CircuitPlan(n_qubits=self.n_qubits, **arrays)

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


#: Samples per pass of :func:`plan_statevectors`: a chunk's amplitude rows stay in the core's cache.
PLAN_CHUNK = 8192


def plan_statevectors(plan: CircuitPlan) -> np.ndarray:
    """Run a :class:`CircuitPlan`: ``(N, 2**n)`` complex128 state vectors (big-endian).

    Runs in chunks of :data:`PLAN_CHUNK` samples (every sample's arithmetic is its own, so the
    result does not depend on the chunking), so that the amplitude rows of a large batch stay in the
    cache; the builds' batches (a few 10 000 circuits) gain little (``docs/performance.md``).
    """
    count = len(plan)
    if count <= PLAN_CHUNK:
        return _plan_statevectors(plan)
    out = np.empty((count, 2**plan.n_qubits), dtype=np.complex128)
    for start in range(0, count, PLAN_CHUNK):
        sl = slice(start, start + PLAN_CHUNK)
        out[sl] = _plan_statevectors(plan.rows(sl))
    return out


def _plan_statevectors(plan: CircuitPlan) -> np.ndarray:
    """:func:`plan_statevectors` of one chunk."""
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
