"""``product`` family: mixed separable (A4) and biseparable (A5) states (arXiv 2210.07410, Appendix).

Separable (A4) and biseparable across a cut ``A|B`` (A5)::

    ρ = Σ_{i=1}^{T} p_i  ρ^i_1 ⊗ ρ^i_2 ⊗ … ⊗ ρ^i_n          (A4, kind="separable")
    ρ = Σ_{i=1}^{T} p_i  ρ^i_A ⊗ ρ^i_B                        (A5, kind="biseparable")

with ``T`` uniform in the inclusive range ``terms`` and weights drawn as in the authors' code
(``p_i`` uniform in ``[0, 1)``, divided by their sum). Each local factor ``ρ^i_k`` (one qubit, or
one side of the cut) is itself a mixture ``Σ_l q_l ρ_l`` of ``M`` draws from ``source``, ``M``
uniform in ``local_terms`` and ``q`` drawn like ``p``:

* ``circuit`` — pure states from circuits: ``u_layers`` random U gates on ``|0>`` for one qubit
  (the authors' single-qubit "separable circuit"), a random U/CU circuit (see the ``circuit``
  family) for a side of two or more qubits;
* ``haar`` — pure A3 (Haar) states of the factor's size;
* ``traced`` — reduced states ``tr_C |ψ><ψ|`` of a random U/CU circuit state on the factor's
  qubits plus ``trace_extra`` more (the paper's "obtained by tracing from the larger system").

With ``pure_factors=True`` every factor is one pure draw (``M = 1``; not allowed for ``traced``).
Defaults of ``local_terms``: ``(1, 1)`` for ``traced``, otherwise the authors' ``[2, 2**(n+1)]``
(their ``max_num_ps``). The authors' three mixing modes are: ``outer`` = ``terms=(2, 2**(n+1))``
with ``pure_factors=True``; ``inner`` = ``terms=(1, 1)`` with mixed factors (this family's
default: a Kronecker product of mixed single-qubit states, as in the paper's text); ``comb`` = both
ranges above 1. Differences from the authors' code, all of which leave the ground truth unchanged:
factor states are drawn fresh (the authors draw from a pre-generated pool of 10 000); each factor
has its own mixing weights (the authors reuse one weight vector for all qubits); the ``traced``
global state is a random circuit on ``k + trace_extra`` qubits (the authors use 9-qubit circuits
with several entangling rounds on random subsets, which makes the one-qubit reductions almost
maximally mixed; ``trace_extra`` up to 8 reproduces that size).

Biseparable states: the product cut is ``cut``, or when ``None`` a random cut per sample (the size
of the smaller side uniform in ``1 … n//2``, then a uniform cut of that size — the authors'
random qubit permutation; for 3 qubits uniform over ``1|23, 2|13, 3|12``). All terms of one
sample share its cut.

Given a labeler's drop rule (:meth:`sample_screened`, used by dataset builds with the ``verified``
labeler), biseparable ``circuit`` mixtures of mixed one- and two-qubit factors are screened
(:mod:`._screened`): a draw proved PPT with a margin on a cut other than the product cut comes back
as ``I/d`` (the labeler drops both); every other row is bit-identical to the unscreened one.

Ground truth: ``separable`` — 0 on every cut (``construction``), ``fully_separable = 1``;
``biseparable`` — 0 on the product cut (``construction``), -1 elsewhere. ``pure`` is computed from
the purity ``tr ρ² > 1 - 1e-9`` (one term of pure factors is pure), ``pptes`` is false.
Output ``rho`` ``(count, 2**n, 2**n)`` complex128, big-endian.

Example::

    >>> import numpy as np
    >>> fam = ProductFamily(ProductFamily.Params(kind="separable", source="haar", terms=(2, 4)))
    >>> fam.sample(3, np.random.default_rng(0)).ground_truth.tolist()
    [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import DropRule, FamilyParams, StateBatch, StateFamily
from qeframe.quantum.cuts import check_cut_name, n_cuts, resolve_cut
from qeframe.quantum.ops import PURE_TOL, batch_kron, pure_density, purity
from qeframe.quantum.random import haar_state

from ._common import (
    CONSTRUCTION,
    biseparable_fully_separable,
    biseparable_truth,
    check_int_range,
    circuit_states,
    draw_cuts,
    mix_matrices,
    mix_vectors,
    place_bipartite,
    random_counts,
    random_weights,
    reduced_from_vectors,
    term_weights,
    truth_from_codes,
)
from ._screened import screened_products
from ._small_circuits import one_qubit_separable_states, reproduces_engine, two_qubit_entangled_states


class ProductParams(FamilyParams):
    """Parameters of :class:`ProductFamily`."""

    kind: Literal["separable", "biseparable"] = Field(
        "separable", description="A4 (product of single-qubit factors) or A5 (product across a cut)."
    )
    source: Literal["circuit", "haar", "traced"] = Field(
        "circuit",
        description="How local states are drawn: circuits, Haar (A3), or traced from a larger state.",
    )
    terms: tuple[int, int] = Field((1, 1), description="Inclusive range of the number T of terms of A4/A5.")
    cut: str | None = Field(
        None, description="Product cut of 'biseparable' states, e.g. '1|23'; None: random per sample."
    )
    pure_factors: bool = Field(False, description="Every local factor is one pure draw (circuit/haar only).")
    local_terms: tuple[int, int] | None = Field(
        None,
        description="Inclusive range of pure draws mixed into each local factor; "
        "None: (1, 1) for traced, else (2, 2**(n+1)).",
    )
    trace_extra: int = Field(2, ge=1, le=8, description="Qubits traced out to make a 'traced' local state.")
    u_layers: int = Field(2, ge=1, le=16, description="Final U layers of the circuits (authors: 2).")

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: tuple[int, int]) -> tuple[int, int]:
        return check_int_range(value, "terms", 1)

    @field_validator("local_terms")
    @classmethod
    def _local_terms(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value is None else check_int_range(value, "local_terms", 1)

    @field_validator("cut")
    @classmethod
    def _cut_name(cls, value: str | None) -> str | None:
        return None if value is None else check_cut_name(value)

    @model_validator(mode="after")
    def _consistent(self) -> ProductParams:
        if self.cut is not None and self.kind != "biseparable":
            raise ValueError(f"cut applies to kind='biseparable' only, not kind={self.kind!r}")
        if self.pure_factors and self.source == "traced":
            raise ValueError("pure_factors=True contradicts source='traced' (traced states are mixed)")
        if self.pure_factors and self.local_terms not in (None, (1, 1)):
            raise ValueError(f"pure_factors=True needs local_terms=(1, 1) or None, got {self.local_terms}")
        return self


class ProductFamily(StateFamily):
    """Convex sums of products of local states: separable (A4) or biseparable across a cut (A5)."""

    name = "product"
    description = "mixed separable (A4) and biseparable (A5) states from circuit, Haar or traced local states"
    Params = ProductParams

    # ----------------------------------------------------------------------------------------------
    def _local_bounds(self, n: int) -> tuple[int, int]:
        p = self.params
        if p.pure_factors:
            return (1, 1)
        if p.local_terms is not None:
            return p.local_terms
        return (1, 1) if p.source == "traced" else (2, 2 ** (n + 1))

    def _draw_local(self, count: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` single draws from ``source`` on ``k`` qubits: ``(count, 2**k, 2**k)``."""
        p = self.params
        if p.source == "traced":
            psi = circuit_states("entangled", count, rng, k + p.trace_extra, u_layers=p.u_layers).psi
            return reduced_from_vectors(psi, k)
        return pure_density(self._draw_vectors(count, k, rng))

    def _draw_vectors(self, count: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` pure draws from a ``circuit`` or ``haar`` source on ``k`` qubits: ``(count, 2**k)``."""
        p = self.params
        if p.source == "haar":
            return haar_state(2**k, count, rng)
        if k <= 2 and count > 1 and reproduces_engine():  # same stream and values (see _small_circuits)
            fast = one_qubit_separable_states if k == 1 else two_qubit_entangled_states
            return fast(rng, count, p.u_layers)
        kind = "separable" if k == 1 else "entangled"
        return circuit_states(kind, count, rng, k, u_layers=p.u_layers).psi

    def _local_factors(self, count: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` local factors on ``k`` qubits, each a mixture of ``M`` draws: ``(count, 2**k, 2**k)``."""
        bounds = self._local_bounds(n)
        if bounds == (1, 1):
            return self._draw_local(count, k, rng)
        m = random_counts(rng, count, bounds)
        weights, _ = random_weights(rng, m)
        if self.params.source == "traced":
            return mix_matrices(self._draw_local(int(m.sum()), k, rng), weights, m)
        return mix_vectors(self._draw_vectors(int(m.sum()), k, rng), weights, m)

    def _convex_products(self, count: int, sizes: list[int], n: int, rng: np.random.Generator) -> np.ndarray:
        """``Σ_i p_i ⊗_f ρ^i_f`` with factor sizes ``sizes`` (in this order): ``(count, 2**n, 2**n)``.

        Loops over the term slot ``t < max(T)`` and the factors, never over samples.
        """
        terms, w = term_weights(rng, count, self.params.terms)
        d = 2**n
        rho = np.zeros((count, d, d), dtype=np.complex128)
        for t in range(w.shape[1]):
            index = np.flatnonzero(terms > t)
            term = self._local_factors(index.size, sizes[0], n, rng)
            for k in sizes[1:]:
                term = batch_kron(term, self._local_factors(index.size, k, n, rng))
            term *= w[index, t, None, None]
            if index.size == count:  # every sample has this term: no gather/scatter
                rho += term
            else:
                rho[index] += term
        return rho

    def _screenable(self, n: int, a: int) -> bool:
        """Whether :mod:`._screened` reproduces :meth:`_convex_products` for side sizes ``a, n - a``:
        mixed factors of at least 2 pure draws (so no factor batch holds one circuit, where the engine
        rounds differently) from ``circuit``, one- and two-qubit factors, while the engine draws
        with the trig-free gate sampler."""
        p = self.params
        if p.kind != "biseparable" or p.source != "circuit" or self._local_bounds(n)[0] < 2:
            return False
        return n_cuts(n) > 1 and n - a <= 2 and reproduces_engine()  # n = 2: every cut is known

    def sample_screened(
        self, count: int, rng: np.random.Generator, n_qubits: int, drop: DropRule
    ) -> StateBatch:
        """:meth:`sample` for a labeler that drops by ``drop``: biseparable circuit mixtures of mixed
        factors are screened (:mod:`._screened`): draws that are PPT with a margin on a cut other than the
        product cut come back as ``I/d`` (the labeler drops both), every other row is the row
        :meth:`sample` gives, from the same random numbers."""
        return self.sample(count, rng, n_qubits, drop=drop)

    def _products(self, index: np.ndarray, a: int, n: int, rng: np.random.Generator, screen: bool):
        if screen and self._screenable(n, a):
            p = self.params
            bounds = self._local_bounds(n)
            return screened_products(
                index.size, [a, n - a], n, rng, terms=p.terms, local_terms=bounds, u_layers=p.u_layers
            )
        return self._convex_products(index.size, [a, n - a], n, rng)

    def sample(
        self, count: int, rng: np.random.Generator, n_qubits: int = 3, drop: DropRule | None = None
    ) -> StateBatch:
        p = self.params
        n = n_qubits
        d = 2**n
        if p.kind == "separable":
            rho = self._convex_products(count, [1] * n, n, rng)
            truth = np.zeros((count, n_cuts(n)), dtype=np.int8)
            fully = np.int8(1)
            prov = np.full(truth.shape, CONSTRUCTION, dtype=np.uint8)
        else:
            cuts = draw_cuts(rng, count, n, resolve_cut(p.cut, n))
            rho = place_bipartite(
                cuts, n, lambda index, a: self._products(index, a, n, rng, drop is not None), (count, d, d)
            )
            truth = biseparable_truth(cuts, n)
            fully = np.int8(biseparable_fully_separable(n))
            prov = truth_from_codes(truth)
        rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))  # exact Hermiticity after the sums
        pure = purity(rho) > 1.0 - PURE_TOL
        return StateBatch.build(rho, truth, prov, pure=pure, fully_separable=fully, pptes=False)


@hookimpl
def qeframe_register_families(register):
    register(ProductFamily)
