"""``mixture`` family: mixed states from the definition, Eq. 7 of arXiv 2210.07410.

    ρ = Σ_{i=1}^{d} p_i |ψ_i><ψ_i|                                              (Eq. 7)

* ``d`` is uniform in the inclusive range ``d_range``. Default ``None``: the paper's ``[2, 2**n]``
  (the text writes ``[2, 2N]``); the authors' code uses ``[2, 2**(n+1)]`` (``max_num_ps``), which
  ``d_range=(2, 16)`` reproduces for 3 qubits.
* weights as in the authors' code: ``p_i`` uniform in ``[0, 1)``, divided by their sum.
* the ``|ψ_i>`` are pure states of the ``base`` family (``circuit`` or ``haar``) of kind
  ``base_kind``; several kinds joined by ``+`` (e.g. ``"separable+entangled"``, the authors' pool
  of separable and random circuits) draw each ``|ψ_i>`` from a uniformly chosen kind. For
  ``biseparable`` components all ``|ψ_i>`` of one state share one cut (``cut``, or random per
  state as in the base family). The authors mix states from a pre-generated pool of 10 000; here
  every ``|ψ_i>`` is drawn fresh.

``keep`` filters by the partial transpose (``λ_min(ρ^{T_A}) < -npt_tol``, the negativity
labeler's test), by batched rejection in rounds until ``count`` states are kept:

* ``all`` — keep everything (the "negativity labeled" data set);
* ``npt`` — keep states NPT on at least one cut: the paper's "keeping only those with Neg > 0",
  ``Neg`` being the authors' mean negativity over cuts;
* ``npt_all`` — keep states NPT on every cut: the authors' exact filter for these mixtures
  (``zero_neg='none'`` in ``save_dens_matrix_with_labels``: mean negativity ≥ 1e-4 and no cut with
  negativity ≤ 1e-4, since these mixtures declare no unentangled qubits).

Ground truth per cut: 0 (``construction``) where every component is separable across the cut by
construction (a mixture of product states across a cut is separable across it), else -1; with a
``keep`` filter, the NPT cuts found by it are 1 (provenance ``npt``: NPT implies entangled).
``fully_separable`` is 1 when every component is fully separable (a mixture of fully separable
states is fully separable), 0 when the filter found an NPT cut, else -1. ``pure`` comes from the purity (``tr ρ² > 1 - 1e-9``);
``pptes`` is false. Output ``rho`` ``(count, 2**n, 2**n)`` complex128, big-endian.

Example::

    >>> import numpy as np
    >>> fam = MixtureFamily(MixtureFamily.Params(base="haar", keep="npt_all"))
    >>> fam.sample(2, np.random.default_rng(0)).ground_truth.tolist()
    [[1, 1, 1], [1, 1, 1]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import provenance_code
from qeframe.quantum.cuts import check_cut_name, resolve_cut
from qeframe.quantum.ops import PURE_TOL, purity
from qeframe.quantum.ppt import PPT_TOL, npt_mask

from ._common import (
    CONSTRUCTION,
    UNKNOWN_PROV,
    check_int_range,
    circuit_states,
    draw_cuts,
    haar_states,
    mix_vectors,
    random_counts,
    random_weights,
    sample_until,
)

BASE_KINDS: dict[str, tuple[str, ...]] = {
    "circuit": ("separable", "biseparable", "entangled", "ghz", "w"),
    "haar": ("separable", "biseparable", "entangled"),
}


class MixtureParams(FamilyParams):
    """Parameters of :class:`MixtureFamily`."""

    base: Literal["circuit", "haar"] = Field("circuit", description="Family of the pure components.")
    base_kind: str = Field(
        "entangled",
        description="Kind of the base family, or several joined by '+' (one drawn per component).",
    )
    d_range: tuple[int, int] | None = Field(
        None, description="Inclusive range of the number d of components; None: (2, 2**n)."
    )
    keep: Literal["all", "npt", "npt_all"] = Field(
        "all", description="Keep all, only states NPT on some cut, or only states NPT on every cut."
    )
    cut: str | None = Field(
        None, description="Shared cut of 'biseparable' components; None: random per state."
    )
    support: Literal["all", "random"] = Field(
        "all", description="Circuit base: entangle all qubits, or a random subset of 2..n (authors' code)."
    )
    npt_tol: float = Field(PPT_TOL, gt=0, description="NPT when lambda_min(rho^T_A) < -npt_tol.")

    @field_validator("d_range")
    @classmethod
    def _d_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value is None else check_int_range(value, "d_range (mixture size)", 2)

    @field_validator("cut")
    @classmethod
    def _cut_name(cls, value: str | None) -> str | None:
        return None if value is None else check_cut_name(value)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The component kinds named by ``base_kind``."""
        return tuple(k.strip() for k in self.base_kind.split("+"))

    @model_validator(mode="after")
    def _consistent(self) -> MixtureParams:
        allowed = BASE_KINDS[self.base]
        bad = [k for k in self.kinds if k not in allowed]
        if bad or len(set(self.kinds)) != len(self.kinds):
            raise ValueError(
                f"base_kind {self.base_kind!r} for base {self.base!r}: use one of {', '.join(allowed)} "
                "or distinct ones joined by '+'"
            )
        if self.cut is not None and "biseparable" not in self.kinds:
            raise ValueError("cut applies only when base_kind includes 'biseparable'")
        if self.support == "random" and self.base != "circuit":
            raise ValueError("support='random' applies to base='circuit' only")
        if self.keep != "all" and set(self.kinds) == {"separable"}:
            raise ValueError(f"keep={self.keep!r} can never accept mixtures of separable states")
        if self.keep == "npt_all" and set(self.kinds) <= {"separable", "biseparable"}:
            raise ValueError(
                "keep='npt_all' can never accept mixtures of separable/biseparable states "
                "(they are PPT across their product cut)"
            )
        return self


class MixtureFamily(StateFamily):
    """Eq. 7: random convex mixtures of d pure circuit or Haar states, optionally NPT-filtered."""

    name = "mixture"
    description = "mixtures of d random pure states (Eq. 7), optionally keeping only NPT states"
    Params = MixtureParams

    def _draw(self, count: int, rng: np.random.Generator, n: int) -> tuple[StateBatch, np.ndarray]:
        p = self.params
        d_bounds = p.d_range or (2, 2**n)
        d = random_counts(rng, count, d_bounds)
        total = int(d.sum())
        kinds = p.kinds
        which = rng.integers(len(kinds), size=total) if len(kinds) > 1 else np.zeros(total, dtype=np.int64)
        cuts = None
        if "biseparable" in kinds:
            cuts = np.repeat(draw_cuts(rng, count, n, resolve_cut(p.cut, n)), d)

        dim = 2**n
        psi = np.empty((total, dim), dtype=np.complex128)
        truth = np.empty((total, 2 ** (n - 1) - 1), dtype=np.int8)
        fully = np.empty(total, dtype=np.int8)
        for j, kind in enumerate(kinds):  # loop over the (few) component kinds
            index = np.flatnonzero(which == j)
            sub_cuts = None if cuts is None else cuts[index]
            if p.base == "circuit":
                states = circuit_states(kind, index.size, rng, n, cuts=sub_cuts, support=p.support)
            else:
                states = haar_states(kind, index.size, rng, n, cuts=sub_cuts)
            psi[index], truth[index], fully[index] = states.psi, states.ground_truth, states.fully_separable

        weights, owner = random_weights(rng, d)
        rho = mix_vectors(psi, weights, d)
        rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))
        # a cut is separable by construction when every component is separable across it
        not_sep = np.zeros((count, truth.shape[1]), dtype=np.int64)
        np.add.at(not_sep, owner, (truth != 0).astype(np.int64))
        mixed_truth = np.where(not_sep == 0, 0, -1).astype(np.int8)
        prov = np.where(not_sep == 0, CONSTRUCTION, UNKNOWN_PROV).astype(np.uint8)
        not_fully = np.bincount(owner, weights=(fully != 1), minlength=count)
        fully_sep = np.where(not_fully == 0, 1, -1).astype(np.int8)

        accept = np.ones(count, dtype=bool)
        if p.keep != "all":
            npt = npt_mask(rho, tol=p.npt_tol, workers=1)
            accept = npt.any(axis=1) if p.keep == "npt" else npt.all(axis=1)
            mixed_truth = np.where(npt, 1, mixed_truth).astype(np.int8)
            prov = np.where(npt, provenance_code("npt"), prov).astype(np.uint8)
            fully_sep = np.where(npt.any(axis=1), 0, fully_sep).astype(np.int8)
        pure = purity(rho) > 1.0 - PURE_TOL
        batch = StateBatch.build(rho, mixed_truth, prov, pure=pure, fully_separable=fully_sep, pptes=False)
        return batch, accept

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        if self.params.keep == "all":
            return self._draw(count, rng, n_qubits)[0]
        return sample_until(
            count, lambda m: self._draw(m, rng, n_qubits), f"mixture (keep={self.params.keep!r})"
        )


@hookimpl
def qeframe_register_families(register):
    register(MixtureFamily)
