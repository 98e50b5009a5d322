"""``circuit`` family: pure states from random quantum circuits (arXiv 2210.07410, Fig. 4, Eqs. A1-A2).

Gates: the single-qubit gate (A1) and the controlled gate (A2), exactly qiskit's ``UGate`` and
``CUGate``::

    U(θ, φ, λ)     = [[cos θ/2, -e^{iλ} sin θ/2], [e^{iφ} sin θ/2, e^{i(φ+λ)} cos θ/2]]
    CU(θ, φ, λ, γ) = |0><0|_c ⊗ 1 + |1><1|_c ⊗ e^{iγ} U(θ, φ, λ)

with θ, φ, λ, γ uniform in ``[0, 2π)``. Circuits start in ``|0…0>`` and, following the paper and
the authors' code (``PureStatesGenerator``, ``circuit_ops.random_entanglement``), are:

* ``separable`` — ``u_layers`` U gates on every qubit (no CU gates): ``⊗_q u_q |0>``.
* ``entangled`` — one U layer on the entangled qubits, then ``g`` CU gates with ``g`` uniform in
  ``[1, 2·C(k,2))`` for ``k`` entangled qubits, each on a uniformly random ordered pair (control,
  target) of them, then ``u_layers`` U layers on every qubit.
* ``ghz`` / ``w`` — ``(|0…0> + |1…1>)/√2`` or ``(|10…0> + … + |0…01>)/√k`` on the entangled
  qubits, locally randomised by ``u_layers`` U layers on every qubit.
* ``biseparable`` — the ``entangled`` recipe run independently on the two sides of a cut (a side of
  one qubit gets only U gates), so the state is ``|a>_A ⊗ |b>_B``.

``support="all"`` (default, the paper's text) entangles all ``n`` qubits; ``support="random"``
entangles a uniformly random subset of ``k`` qubits, ``k`` uniform in ``2 … n``, as the authors'
code does (the other qubits only see the final U layers). ``u_layers`` defaults to 2, the authors'
``random_gates``.

Ground truth (per cut, cuts in :func:`qeframe.quantum.cuts.bipartitions` order):

* ``separable``: 0 on every cut (``construction``), ``fully_separable = 1``.
* ``ghz``, ``w``: 1 on every cut that splits the entangled qubits, 0 on the others (``construction``:
  GHZ and W are entangled across every cut of their qubits; the rest is a product), ``fully_separable = 0``.
* ``biseparable``: 0 on its product cut (``construction``), -1 elsewhere.
* ``entangled``: -1 on every cut that splits the entangled qubits (a labeler decides — for pure
  states negativity is exact), 0 (``construction``) on the others.

``pure`` is always true and ``pptes`` false. Output: ``rho`` ``(count, 2**n, 2**n)`` complex128,
big-endian (qubit 1 leftmost); qiskit numbers qubits from the right, so qiskit qubit ``k`` is our
qubit ``k`` after reversing the Kronecker order.

Example::

    >>> import numpy as np
    >>> fam = CircuitFamily(CircuitFamily.Params(kind="ghz"))
    >>> batch = fam.sample(4, np.random.default_rng(0), n_qubits=3)
    >>> batch.rho.shape, batch.ground_truth.tolist()[0]
    ((4, 8, 8), [1, 1, 1])
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.quantum.cuts import check_cut_name, resolve_cut
from qeframe.quantum.ops import pure_density

from ._circuits import CircuitPlan
from ._common import circuit_states, draw_cuts

CircuitKind = Literal["separable", "biseparable", "entangled", "ghz", "w"]


class CircuitParams(FamilyParams):
    """Parameters of :class:`CircuitFamily`."""

    kind: CircuitKind = Field("entangled", description="Which circuit recipe (see the module docstring).")
    cut: str | None = Field(
        None, description="Product cut of 'biseparable' states, e.g. '1|23'; None: random per sample."
    )
    support: Literal["all", "random"] = Field(
        "all", description="Entangle all qubits, or a random subset of 2..n qubits (authors' code)."
    )
    u_layers: int = Field(2, ge=1, le=16, description="Final U layers on every qubit (authors: 2).")

    @field_validator("cut")
    @classmethod
    def _cut_name(cls, value: str | None) -> str | None:
        return None if value is None else check_cut_name(value)

    @model_validator(mode="after")
    def _consistent(self) -> CircuitParams:
        if self.cut is not None and self.kind != "biseparable":
            raise ValueError(f"cut applies to kind='biseparable' only, not kind={self.kind!r}")
        if self.support == "random" and self.kind not in ("entangled", "ghz", "w"):
            raise ValueError(f"support='random' applies to kinds entangled, ghz, w, not {self.kind!r}")
        return self


class CircuitFamily(StateFamily):
    """Pure states from random U/CU circuits, GHZ and W states (the paper's circuit generator)."""

    name = "circuit"
    description = "pure states from random U/CU circuits: separable, biseparable, entangled, GHZ, W"
    Params = CircuitParams

    def plan_and_states(
        self, count: int, rng: np.random.Generator, n_qubits: int = 3
    ) -> tuple[CircuitPlan, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The gate plan and ``(psi, ground_truth, provenance, fully_separable)`` of ``count`` states.

        Exposed so that the circuits can be rebuilt gate by gate (e.g. in qiskit) and compared.
        """
        p = self.params
        cuts = None
        if p.kind == "biseparable":
            cuts = draw_cuts(rng, count, n_qubits, resolve_cut(p.cut, n_qubits))
        states, plan = circuit_states(
            p.kind, count, rng, n_qubits, cuts=cuts, support=p.support, u_layers=p.u_layers, return_plan=True
        )
        return plan, states.psi, states.ground_truth, states.provenance, states.fully_separable

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        _, psi, truth, prov, fully = self.plan_and_states(count, rng, n_qubits)
        return StateBatch.build(pure_density(psi), truth, prov, pure=True, fully_separable=fully, pptes=False)


@hookimpl
def qeframe_register_families(register):
    register(CircuitFamily)
