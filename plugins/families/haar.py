"""``haar`` family: pure states from the uniform (Haar) measure (arXiv 2210.07410, Eq. A3).

A3 recipe for a ``K``-dimensional state: ``x_i`` uniform in ``(0, 1]``, ``y_i = -log x_i``,
phases ``γ_i`` uniform in ``[0, 2π)``, and

    |ψ> = Σ_i sqrt(y_i / Σ_j y_j) e^{iγ_i} |i>.

The ``y_i`` are i.i.d. exponential, so ``(|ψ_i|^2)`` is uniform on the simplex and ``|ψ>`` is
exactly Haar-distributed (this is qiskit's ``random_statevector``, which the authors call).

Kinds:

* ``entangled`` — one A3 state of ``2**n`` amplitudes. Ground truth -1 on every cut (a labeler
  decides; for pure states negativity is exact), ``fully_separable = -1``.
* ``separable`` — ``|a_1> ⊗ … ⊗ |a_n>`` of single-qubit A3 states. Ground truth 0 on every cut
  (``construction``), ``fully_separable = 1``.
* ``biseparable`` — ``|a>_A ⊗ |b>_B`` of A3 states on the two sides of a cut, the qubits placed so
  that the product cut is ``cut`` (or, when ``cut`` is None, a random cut per sample: the size of
  the smaller side uniform in ``1 … n//2``, then a uniform cut of that size, as in the authors'
  code; for 3 qubits this is uniform over ``1|23, 2|13, 3|12``). For 4 qubits ``cut`` may also
  name a two-qubit cut such as ``12|34``. Ground truth 0 on the product cut (``construction``),
  -1 elsewhere.

``pure`` is true, ``pptes`` false. Output ``rho`` ``(count, 2**n, 2**n)`` complex128, big-endian.

Example::

    >>> import numpy as np
    >>> fam = HaarFamily(HaarFamily.Params(kind="biseparable", cut="2|13"))
    >>> fam.sample(2, np.random.default_rng(0)).ground_truth.tolist()
    [[-1, 0, -1], [-1, 0, -1]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.quantum.cuts import check_cut_name, resolve_cut
from qeframe.quantum.ops import pure_density

from ._common import draw_cuts, haar_states


class HaarParams(FamilyParams):
    """Parameters of :class:`HaarFamily`."""

    kind: Literal["separable", "biseparable", "entangled"] = Field(
        "entangled", description="Product of 1-qubit A3 states, A3 ⊗ A3 across a cut, or one A3 state."
    )
    cut: str | None = Field(
        None, description="Product cut of 'biseparable' states, e.g. '1|23'; None: random per sample."
    )

    @field_validator("cut")
    @classmethod
    def _cut_name(cls, value: str | None) -> str | None:
        return None if value is None else check_cut_name(value)

    @model_validator(mode="after")
    def _consistent(self) -> HaarParams:
        if self.cut is not None and self.kind != "biseparable":
            raise ValueError(f"cut applies to kind='biseparable' only, not kind={self.kind!r}")
        return self


class HaarFamily(StateFamily):
    """Pure states sampled from the Haar measure (Eq. A3), whole or as products across cuts."""

    name = "haar"
    description = "pure states from the Haar measure (A3): separable, biseparable or entangled"
    Params = HaarParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        p = self.params
        cuts = None
        if p.kind == "biseparable":
            cuts = draw_cuts(rng, count, n_qubits, resolve_cut(p.cut, n_qubits))
        states = haar_states(p.kind, count, rng, n_qubits, cuts=cuts)
        return StateBatch.build(
            pure_density(states.psi),
            states.ground_truth,
            states.provenance,
            pure=True,
            fully_separable=states.fully_separable,
            pptes=False,
        )


@hookimpl
def qeframe_register_families(register):
    register(HaarFamily)
