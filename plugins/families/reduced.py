"""``reduced`` family: mixed states as partial traces of larger pure states, Eq. 8 of arXiv 2210.07410.

    ρ_AB = tr_C |ψ_ABC><ψ_ABC|                                                   (Eq. 8)

``|ψ_ABC>`` is a random pure state of ``n + e`` qubits — a random U/CU circuit on all of them
(``source="circuit"``, the ``entangled`` recipe of the ``circuit`` family) or an A3 (Haar) state
(``source="haar"``) — and the last ``e`` qubits (``C``) are traced out:
``ρ = M M^†`` with ``M`` the ``(2**n, 2**e)`` reshaped amplitude matrix, so ``rank ρ <= 2**min(n, e)``.
Both generators are invariant in distribution under qubit permutations, so tracing the last
``e`` qubits is the same as tracing a random set of ``e`` (what the authors' code does). The
authors use 9-qubit global circuits with several entangling rounds on random subsets; here the
global state has ``n + extra_qubits`` qubits.

Ground truth: -1 on every cut (unknown: such states may be separable, NPT or PPT-entangled; a
labeler decides), ``fully_separable = -1``, ``pptes`` false.

``max_rank=True`` — the paper's "mixed states with maximal ranks calculated as a partial trace of
the larger fully entangled global system generated with the quantum circuit", which the paper
labels entangled on every cut. Here ``e = max(extra_qubits, n)`` so that the rank can reach
``2**n``, and states with ``λ_min(ρ) <= rank_tol`` (rank below ``2**n``) are rejected and redrawn
in batched rounds. Ground truth 1 on every cut: provenance ``npt`` where the partial transpose is
negative (exact), ``paper-convention`` elsewhere — on a PPT cut "entangled" is the paper's
guess, not a proven fact (full-rank states near the maximally mixed state are separable, Gurvits
& Barnum 2002). ``pptes`` is set where some cut is PPT (entangled in the paper's sense though
PPT). The authors' code selects these states differently: it keeps reduced states of 9-qubit
random circuits whose partial transposes have exactly one eigenvalue in ``(-1e-3, 1e-3)`` on every
cut and labels their zero-negativity cuts entangled (``generate_max_rank_weak_pptes``).

``pure`` comes from the purity (``tr ρ² > 1 - 1e-9``; a circuit whose traced qubits never meet a
CU gate leaves ρ pure). Output ``rho`` ``(count, 2**n, 2**n)`` complex128, big-endian.

Example::

    >>> import numpy as np
    >>> fam = ReducedFamily(ReducedFamily.Params(source="haar", extra_qubits=2))
    >>> fam.sample(2, np.random.default_rng(0)).rho.shape
    (2, 8, 8)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import provenance_code
from qeframe.quantum.cuts import n_cuts
from qeframe.quantum.ops import PURE_TOL, purity
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import haar_state

from ._common import circuit_states, reduced_from_vectors, sample_until


class ReducedParams(FamilyParams):
    """Parameters of :class:`ReducedFamily`."""

    source: Literal["circuit", "haar"] = Field(
        "circuit", description="Random circuit or Haar (A3) global state."
    )
    extra_qubits: int = Field(1, ge=1, le=10, description="Qubits traced out of the global pure state.")
    max_rank: bool = Field(
        False, description="Keep only rank-2**n states, labelled entangled (paper convention)."
    )
    rank_tol: float = Field(1e-8, gt=0, description="max_rank: full rank when lambda_min(rho) > rank_tol.")
    u_layers: int = Field(2, ge=1, le=16, description="Final U layers of the global circuit (authors: 2).")


class ReducedFamily(StateFamily):
    """Eq. 8: reduced states of random pure states on more qubits (optionally of maximal rank)."""

    name = "reduced"
    description = "partial traces of larger random pure states (Eq. 8), optionally of maximal rank"
    Params = ReducedParams

    def _extra(self, n: int) -> int:
        p = self.params
        return max(p.extra_qubits, n) if p.max_rank else p.extra_qubits

    def _reduced(self, count: int, rng: np.random.Generator, n: int) -> np.ndarray:
        p = self.params
        total = n + self._extra(n)
        if p.source == "circuit":
            psi = circuit_states("entangled", count, rng, total, u_layers=p.u_layers).psi
        else:
            psi = haar_state(2**total, count, rng)
        rho = reduced_from_vectors(psi, n)
        return 0.5 * (rho + rho.conj().transpose(0, 2, 1))

    def _draw(self, count: int, rng: np.random.Generator, n: int) -> tuple[StateBatch, np.ndarray]:
        rho = self._reduced(count, rng, n)
        pure = purity(rho) > 1.0 - PURE_TOL
        if not self.params.max_rank:
            batch = StateBatch.build(rho, -1, "unknown", pure=pure, fully_separable=-1, pptes=False)
            return batch, np.ones(count, dtype=bool)
        full_rank = np.linalg.eigvalsh(rho)[:, 0] > self.params.rank_tol
        npt = npt_mask(rho, workers=1)
        prov = np.where(npt, provenance_code("npt"), provenance_code("paper-convention")).astype(np.uint8)
        batch = StateBatch.build(
            rho,
            np.ones((count, n_cuts(n)), dtype=np.int8),
            prov,
            pure=pure,
            fully_separable=np.where(npt.any(axis=1), 0, -1).astype(np.int8),  # NPT somewhere: not separable
            pptes=~npt.all(axis=1),
        )
        return batch, full_rank

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        if not self.params.max_rank:
            return self._draw(count, rng, n_qubits)[0]
        return sample_until(count, lambda m: self._draw(m, rng, n_qubits), "reduced (max_rank=True)")


@hookimpl
def qeframe_register_families(register):
    register(ReducedFamily)
