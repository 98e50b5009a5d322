"""``filtered-separable``: SLOCC-filtered UPB and Acín states — PPT and separable on every cut, not fully separable.

Definition. ``rho = F sigma F^† / tr(F sigma F^†)`` with ``sigma`` the Shifts-UPB bound entangled
state (:mod:`.upb`, Bennett et al., PRL 82, 5385 (1999)) or an Acín–Bruß–Lewenstein–Sanpera edge
state (:mod:`.acin`, PRL 87, 040401 (2001); ``a, b, c`` log-uniform in ``[0.01, 100]``) and
``F = F_1 ⊗ F_2 ⊗ F_3`` random invertible single-qubit filters with condition number ``<= kappa``.

Facts (exact). ``sigma`` is PPT and separable across each of the three cuts (proofs in
:mod:`.upb` and :mod:`.acin`). ``F`` is local for every cut: it maps a separable decomposition
across a cut to one of ``F sigma F^†`` (each product term ``|x><x| ⊗ |y><y|`` goes to
``F_A|x><x|F_A^† ⊗ F_B|y><y|F_B^†``), and every partial transpose is transformed by a congruence,
so it stays PSD (Sylvester's law of inertia; :func:`qeframe.quantum.random.apply_local_filters`).
``rho`` is not fully separable (``F^{-1}`` would map a fully separable decomposition of ``rho``
back to one of ``sigma``). Unlike the paper's randomised UPB/Acín sets (local *unitaries*), the
filtered states have other spectra, purities and partial-transpose spectra — the learned part
cannot recognise them by their spectrum.

Ground truth: separable (0) on every cut, provenance ``construction``; ``pptes = True``
(PPT entangled in the multipartite sense), ``fully_separable = 0``. Three qubits only.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.filtered_separable import FilteredSeparableFamily
    >>> fam = FilteredSeparableFamily(FilteredSeparableFamily.Params(source="acin"))
    >>> fam.generate(2, np.random.default_rng(0)).ground_truth.tolist()
    [[0, 0, 0], [0, 0, 0]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import StateBatch, StateFamily

from ._ppt import FilterParams, filter_batch
from .acin import AcinFamily
from .upb import upb_state


class FilteredSeparableParams(FilterParams):
    """Parameters of ``filtered-separable`` (plus ``kappa`` and ``local_randomize``)."""

    source: Literal["upb", "acin"] = Field(default="upb", description="The state that is filtered.")


class FilteredSeparableFamily(StateFamily):
    """UPB / Acín states under random invertible local filters: PPT and separable on every cut."""

    name = "filtered-separable"
    description = "SLOCC-filtered UPB or Acin states: PPT and separable on every cut, not fully separable"
    Params = FilteredSeparableParams

    qubit_range = (3, 3)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        if self.params.source == "upb":
            rho = np.broadcast_to(upb_state(), (count, 8, 8))
            base = StateBatch.build(rho, 0, "construction", pure=False, fully_separable=0, pptes=True)
        else:
            acin = AcinFamily(AcinFamily.Params(distribution="log-uniform")).sample(count, rng, n_qubits)
            base = StateBatch.build(acin.rho, 0, "construction", pure=False, fully_separable=0, pptes=True)
        return filter_batch(base, self.params.kappa, rng)


@hookimpl
def qeframe_register_families(register):
    register(FilteredSeparableFamily)
