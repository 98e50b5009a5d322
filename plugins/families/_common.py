"""Shared numerics of the paper's state families: parameter checks, cuts, pure states with their
construction facts, A3 states, mixing, and the sampling loop. The random-circuit engine is
:mod:`._circuits`.

Everything here is batched over samples (a leading axis ``N``) and takes its randomness from an
explicit :class:`numpy.random.Generator`. Qubit order is big-endian: qubit ``k`` (0-based) is the
``k``-th Kronecker factor from the left, so the basis index ``i`` carries qubit ``k`` in bit
``n - 1 - k`` of ``i``.

A3 ("Haar") states are :func:`qeframe.quantum.random.haar_state`, the package's one Haar sampler
(the paper's Eq. A3 recipe, which is also what qiskit's ``random_statevector`` does, which the
authors call).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from qeframe.errors import QeframeError
from qeframe.plugin.labels import provenance_code
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.ops import basis_permutation
from qeframe.quantum.random import haar_state

from ._circuits import PREP_GHZ, PREP_W, CircuitPlan, plan_statevectors, random_circuit_plan

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
        psi = haar_state(d, count, rng)
        truth = np.full((count, n_cuts(n)), -1, dtype=np.int8)
        fully = np.full(count, -1, dtype=np.int8)
    elif kind == "separable":
        psi = haar_state(2, count, rng)
        for _ in range(n - 1):
            psi = kron_states(psi, haar_state(2, count, rng))
        truth = np.zeros((count, n_cuts(n)), dtype=np.int8)
        fully = np.ones(count, dtype=np.int8)
    elif kind == "biseparable":
        if cuts is None:
            raise ValueError("biseparable A3 states need their cuts")

        def draw(index: np.ndarray, a: int) -> np.ndarray:
            m = index.size
            return kron_states(haar_state(2**a, m, rng), haar_state(2 ** (n - a), m, rng))

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


def term_weights(
    rng: np.random.Generator, count: int, bounds: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Term counts ``T`` uniform in ``bounds`` and their weights (:func:`random_weights`) laid out per
    term slot: ``(terms (count,), w (count, max T))``, ``w[s, t]`` the weight of term ``t`` of sample
    ``s`` (0 beyond ``terms[s]``)."""
    terms = random_counts(rng, count, bounds)
    weights, owner = random_weights(rng, terms)
    slot = np.arange(owner.shape[0]) - np.repeat(np.cumsum(terms) - terms, terms)
    w = np.zeros((count, int(terms.max(initial=1))))
    w[owner, slot] = weights
    return terms, w


def mix_vectors(psi: np.ndarray, weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``ρ_s = Σ_i p_i |ψ_i><ψ_i|`` over the consecutive group of ``counts[s]`` vectors of sample ``s``.

    ``psi`` ``(sum(counts), D)``, ``weights`` ``(sum(counts),)`` -> ``(N, D, D)`` (a sample with
    ``counts[s] = 0`` gets 0), complex128; complex64 when ``psi`` is complex64 (then ``sqrt(p)`` is
    rounded to float32 and every step is single precision: the screening pass of :mod:`._screened`).
    Batch-last: with ``a = sqrt(p) ψ`` stored ``(D, sum(counts))``, each
    lower-triangle entry ``ρ[:, i, j]`` is one product ``a_i conj(a_j)`` over all vectors and one
    :func:`numpy.add.reduceat` over the group starts; the upper triangle is its conjugate (exactly
    Hermitian). ``D (D + 1) / 2`` contiguous passes instead of a ``(sum(counts), D, D)`` temporary.
    """
    single = psi.dtype == np.complex64
    dtype = np.complex64 if single else np.complex128
    n_samples, d = counts.shape[0], psi.shape[1]
    out = np.zeros((n_samples, d, d), dtype=dtype)
    filled = np.flatnonzero(counts > 0)
    if filled.size == 0:
        return out
    starts = (np.cumsum(counts) - counts)[filled]
    rows = slice(None) if filled.size == n_samples else filled  # a view when every sample has vectors
    amplitude = np.sqrt(weights).astype(np.float32 if single else np.float64, copy=False)
    a = np.ascontiguousarray((amplitude[:, None] * psi).T)  # (D, sum(counts))
    ac = a.conj()
    prod = np.empty(a.shape[1], dtype=dtype)
    for i in range(d):
        for j in range(i + 1):
            np.multiply(a[i], ac[j], out=prod)
            entry = np.add.reduceat(prod, starts)
            out[rows, i, j] = entry
            if i != j:
                out[rows, j, i] = entry.conj()
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
