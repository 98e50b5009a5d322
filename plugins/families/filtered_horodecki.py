"""``filtered-horodecki``: SLOCC-filtered Horodecki edge states, PPT-entangled with a proof on every cut.

Definition. ``rho = F rho_b F^† / tr(F rho_b F^†)`` with ``rho_b`` P. Horodecki's
``2 x 2**(n-1)`` PPT entangled state (:mod:`.horodecki`, ``b`` uniform on the open ``b_range``) and
``F = F_1 ⊗ ... ⊗ F_n`` random invertible single-qubit filters (``F_k = U diag(1, s) V``, ``U, V``
Haar, ``s`` log-uniform in ``[1/kappa, 1]``). With ``local_randomize = true`` the qubits are also
permuted, so the PPT cut moves to any ``k | rest``.

Per-cut facts (exact). An invertible local filter is local with respect to *every* cut, so across
each cut it maps product decompositions to product decompositions and back: entanglement is
preserved; and ``(F rho F^†)^{T_A}`` is congruent to ``rho^{T_A}``, so by Sylvester's law of
inertia every partial transpose keeps its numbers of positive, zero and negative eigenvalues
(:func:`qeframe.quantum.random.apply_local_filters`; SLOCC: Dür, Vidal, Cirac, PRA 62, 062314
(2000)). Hence, like ``rho_b`` (P. Horodecki, Phys. Lett. A 232, 333 (1997)):

* cut ``1|2..n`` is PPT and entangled (an edge state: the range criterion still fails, because
  ``F`` maps the product vectors of the range of ``rho_b`` one-to-one onto those of ``rho``);
  ``rank rho = rank rho^{T_1} = 2**(n-1) + 1``;
* every other cut is NPT (entangled).

Ground truth: entangled (1) on every cut, provenance ``construction``; ``pptes = True``,
``fully_separable = 0``. Cost: one ``(N, d, d)`` state build plus ``n`` batched ``2 x 2`` contractions.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.filtered_horodecki import FilteredHorodeckiFamily
    >>> batch = FilteredHorodeckiFamily().generate(2, np.random.default_rng(0))
    >>> batch.ground_truth.tolist(), round(float(np.trace(batch.rho[0]).real), 12)
    ([[1, 1, 1], [1, 1, 1]], 1.0)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED

from ._ppt import FilterParams, filter_batch
from .horodecki import check_b_range, horodecki_states, open_uniform


class FilteredHorodeckiParams(FilterParams):
    """Parameters of ``filtered-horodecki`` (plus ``kappa`` and ``local_randomize``)."""

    b_range: tuple[float, float] = Field(
        default=(0.0, 1.0), description="Open interval (low, high), 0 <= low < high <= 1, for b."
    )

    @field_validator("b_range")
    @classmethod
    def _check_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return check_b_range(value)


class FilteredHorodeckiFamily(StateFamily):
    """Horodecki 2 x 2**(n-1) edge states under random invertible local filters; entangled on every cut."""

    name = "filtered-horodecki"
    description = "SLOCC-filtered Horodecki PPT entangled edge states: PPT on one cut, entangled on every cut"
    Params = FilteredHorodeckiParams

    qubit_range = (3, None)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        b = open_uniform(*self.params.b_range, count, rng)
        batch = StateBatch.build(
            horodecki_states(b, n_qubits),
            ENTANGLED,
            "construction",
            pure=False,
            fully_separable=0,
            pptes=True,
        )
        return filter_batch(batch, self.params.kappa, rng)


@hookimpl
def qeframe_register_families(register):
    register(FilteredHorodeckiFamily)
