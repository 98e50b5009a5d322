"""Bipartitions ("cuts") of n qubits, in the one order every array and table uses.

Qubits are numbered 1..n in names and 0..n-1 in code; qubit 1 is the leftmost Kronecker factor.
A cut is named by its smaller side first; when both sides have n/2 qubits, the side holding qubit 1
is named first. Cuts are ordered by the size of the named side, then lexicographically::

    n=3: 1|23, 2|13, 3|12
    n=4: 1|234, 2|134, 3|124, 4|123, 12|34, 13|24, 14|23

There are ``2**(n-1) - 1`` cuts.

User-given cut names (family parameters, options) are parsed and validated by :func:`check_cut_name`
and located by :func:`resolve_cut`, for built-in and third-party families alike.

Qubit permutations follow :func:`qeframe.quantum.ops.permute_qubits`: ``perm[k]`` is the old
qubit that becomes new qubit ``k``. Such a permutation maps cut ``j`` of the old state to cut
``cut_index_map(perm)[j]`` of the new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np

from qeframe.errors import QeframeError


@dataclass(frozen=True)
class Cut:
    """One bipartition. ``side_a``/``side_b`` hold 0-based qubit indices, ``side_a`` the named-first side."""

    index: int
    side_a: tuple[int, ...]
    side_b: tuple[int, ...]

    @property
    def name(self) -> str:
        fmt = "".join if max(self.side_a + self.side_b) < 9 else ",".join
        return f"{fmt(str(q + 1) for q in self.side_a)}|{fmt(str(q + 1) for q in self.side_b)}"


def n_cuts(n_qubits: int) -> int:
    """Number of bipartitions of ``n_qubits`` qubits: ``2**(n-1) - 1``."""
    return 2 ** (n_qubits - 1) - 1


@cache
def bipartitions(n_qubits: int) -> tuple[Cut, ...]:
    """The ordered cuts of ``n_qubits`` (>= 2) qubits; see the module docstring for the order."""
    if n_qubits < 2:
        raise ValueError(f"bipartitions need at least 2 qubits, got {n_qubits}")
    qubits = tuple(range(n_qubits))
    cuts: list[Cut] = []
    for size in range(1, n_qubits // 2 + 1):
        for side in combinations(qubits, size):
            if 2 * size == n_qubits and 0 not in side:
                continue  # the complement, which holds qubit 1, was already listed
            rest = tuple(q for q in qubits if q not in side)
            cuts.append(Cut(len(cuts), side, rest))
    return tuple(cuts)


def cut_names(n_qubits: int) -> list[str]:
    """Names of the cuts in order, e.g. ``['1|23', '2|13', '3|12']``."""
    return [c.name for c in bipartitions(n_qubits)]


@cache
def _side_to_index(n_qubits: int) -> dict[frozenset[int], int]:
    table: dict[frozenset[int], int] = {}
    for cut in bipartitions(n_qubits):
        table[frozenset(cut.side_a)] = cut.index
        table[frozenset(cut.side_b)] = cut.index
    return table


def cut_index_map(perm: tuple[int, ...] | list[int] | np.ndarray) -> np.ndarray:
    """Cut re-indexing induced by the qubit permutation ``perm`` (new qubit k = old qubit perm[k]).

    Returns an ``int64`` array ``m`` of length ``n_cuts`` such that cut ``j`` of the original state
    is cut ``m[j]`` of the permuted state, so per-cut quantities satisfy
    ``q_new[m[j]] == q_old[j]``.
    """
    perm = [int(p) for p in perm]
    n = len(perm)
    if sorted(perm) != list(range(n)):
        raise ValueError(f"not a permutation of 0..{n - 1}: {perm}")
    new_position = np.argsort(perm)  # old qubit q sits at new position new_position[q]
    table = _side_to_index(n)
    return np.array(
        [table[frozenset(int(new_position[q]) for q in cut.side_a)] for cut in bipartitions(n)],
        dtype=np.int64,
    )


def cut_index_maps(perms: np.ndarray) -> np.ndarray:
    """Batched :func:`cut_index_map`: ``(B, n)`` permutations -> ``(B, n_cuts)`` maps.

    Loops over the distinct permutations only (at most ``n!``), never over the batch.
    """
    perms = np.asarray(perms, dtype=np.int64)
    unique, inverse = np.unique(perms, axis=0, return_inverse=True)
    maps = np.stack([cut_index_map(p) for p in unique])
    return maps[inverse.reshape(-1)]


# --------------------------------------------------------------------------------------------------
# Cut names given by users (family parameters, command-line options)


_CUT_NAME_RE = re.compile(r"^\s*([0-9,]+)\s*\|\s*([0-9,]+)\s*$")


def check_cut_name(name: str) -> str:
    """Validate a cut name such as ``"1|23"``, ``"12|34"`` or ``"1,2|3,...,10"``; returns it normalised.

    For the pydantic validators of family parameters (a third-party family reuses it as
    ``field_validator("cut")(lambda v: None if v is None else check_cut_name(v))``): raises
    :class:`ValueError`, which pydantic reports with the key path.

    The two sides must split qubits ``1..m`` (``m`` the number of qubits named), in either order;
    the result is the canonical name of :func:`cut_names` (``"23|1"`` -> ``"1|23"``). Whether ``m``
    matches the number of qubits actually generated is checked when sampling (:func:`resolve_cut`).
    """
    match = _CUT_NAME_RE.match(name)
    if not match:
        raise ValueError(f"cut {name!r} is not of the form '1|23'")
    sides = []
    for part in match.groups():
        tokens = part.split(",") if "," in part else list(part)
        if any(not t.isdigit() for t in tokens):
            raise ValueError(f"cut {name!r} is not of the form '1|23'")
        sides.append([int(t) for t in tokens])
    m = len(sides[0]) + len(sides[1])
    named = {frozenset(sides[0]), frozenset(sides[1])}
    normalised = None
    for cut in bipartitions(max(m, 2)):
        if len(set(sides[0])) + len(set(sides[1])) == m and named == {
            frozenset(q + 1 for q in cut.side_a),
            frozenset(q + 1 for q in cut.side_b),
        }:
            normalised = cut.name
    if normalised is None:
        raise ValueError(
            f"cut {name!r} is not a bipartition of qubits 1..{m}; allowed: {', '.join(cut_names(max(m, 2)))}"
        )
    return normalised


def resolve_cut(name: str | None, n: int) -> int | None:
    """Index of the named cut (canonical, as :func:`check_cut_name` returns it) among the cuts of ``n``
    qubits (``None`` stays ``None``); a one-line :class:`~qeframe.errors.QeframeError` otherwise."""
    if name is None:
        return None
    names = cut_names(n)
    if name not in names:
        raise QeframeError(f"cut {name!r} is not a cut of {n} qubits; allowed: {', '.join(names)}")
    return names.index(name)


# ------------------------------------------------------------------------------------ partial-transpose index plans
@cache
def pt_source_index(n_qubits: int) -> np.ndarray:
    """Flat source indices of every cut's partial transpose: ``(n_cuts, d, d)`` intp.

    ``rho^{T_A}[i, j] = rho.flat[src[cut, i, j]]``: the partial transpose on the qubits of A swaps
    the bits of those qubits between the row index ``i`` and the column index ``j`` (qubit ``q``
    is bit ``n-1-q`` of a basis index, big-endian).
    """
    d = 2**n_qubits
    rows = np.arange(d)[:, None]
    cols = np.arange(d)[None, :]
    cuts = bipartitions(n_qubits)
    src = np.empty((len(cuts), d, d), dtype=np.intp)
    for cut in cuts:
        mask = sum(1 << (n_qubits - 1 - q) for q in cut.side_a)
        diff = (rows ^ cols) & mask  # the A-bits where row and column differ
        src[cut.index] = (rows ^ diff) * d + (cols ^ diff)
    src.setflags(write=False)
    return src


@cache
def packed_offsets(d: int) -> np.ndarray:
    """``(d + 1,)`` int: column ``j`` of a lower triangle packed column by column (rows ``j..d-1``,
    diagonal first) occupies positions ``offsets[j]:offsets[j+1]``; ``offsets[:-1]`` are the
    diagonal entries. Read-only (cached)."""
    offsets = np.concatenate([[0], np.cumsum(np.arange(d, 0, -1))])
    offsets.setflags(write=False)
    return offsets


@cache
def packed_pt_plan(n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed lower triangles of every cut's partial transpose.

    Returns ``(src, offsets)``: ``src`` ``(P, n_cuts)`` with ``P = d(d+1)/2`` holds, for packed
    position ``p`` of entry ``(i, j)``, ``i >= j``, the flat index in ``rho`` of
    ``rho^{T_A}[i, j]``; the packing is column-major, column ``j`` (rows ``j..d-1``) occupying
    positions ``offsets[j]:offsets[j+1]``, its diagonal entry first.
    """
    d = 2**n_qubits
    full = pt_source_index(n_qubits)
    cols = np.repeat(np.arange(d), np.arange(d, 0, -1))
    rows = np.concatenate([np.arange(j, d) for j in range(d)])
    src = np.ascontiguousarray(full[:, rows, cols].T)
    src.setflags(write=False)
    return src, packed_offsets(d)
