"""``dps2`` baseline: the Doherty–Parrilo–Spedalieri hierarchy at level k = 2, per cut.

A state separable across ``A|B`` has a PPT Bose-symmetric extension to ``A ⊗ A' ⊗ B`` (two copies
of the smaller side ``A``). We solve the visibility SDP

    p* = max { p <= 1 : p rho + (1 - p) I/d has a PPT symmetric extension on 2 copies of A }

(see :mod:`qeframe_plugins.baselines._dps`) and predict

* 1 (entangled) when the cut is NPT — a state with a PPT extension is PPT, so level 2 contains the
  PPT test; no SDP is solved for NPT cuts — or when ``p* < 1 - margin``;
* 0 (not detected) when ``p* >= 1 - margin``;
* -1 (no answer) when the solver fails or cvxpy / the solver is missing
  (``pip install 'qeframe[certify]'``), with a warning giving the reason.

References: A. C. Doherty, P. A. Parrilo, F. M. Spedalieri, PRL 88, 187904 (2002) and
PRA 69, 022308 (2004). Strictly stronger than PPT: it detects the Horodecki 2x4 PPT entangled
states (``p*`` between about 0.97 and 0.998 on their PPT cut).

Example (needs ``qeframe[certify]``)::

    >>> from qeframe_plugins.baselines.dps2 import Dps2Baseline
    >>> from qeframe_plugins.families.horodecki import horodecki_states
    >>> Dps2Baseline(Dps2Baseline.Params(workers=1, progress=False)).predict(horodecki_states([0.5])).tolist()
    [[1, 1, 1]]
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from pydantic import Field
from qeframe_plugins.baselines._dps import DpsSettings, dps2_batch

from qeframe import hookimpl
from qeframe.plugin.interfaces import Baseline, Params
from qeframe.quantum.ppt import PPT_TOL, npt_mask


class Dps2Params(Params):
    tol: float = Field(default=PPT_TOL, gt=0, description="NPT when lambda_min(rho^T_A) < -tol.")
    margin: float = Field(default=1e-3, gt=0, lt=0.5, description="Entangled when p* < 1 - margin.")
    solver: Literal["SCS", "CLARABEL"] = "SCS"
    workers: int | None = Field(default=None, ge=1, description="SDP worker processes (default: all cores).")
    progress: bool = Field(default=True, description="Show a progress bar while SDPs run.")


class Dps2Baseline(Baseline):
    """NPT or no 2-copy PPT symmetric extension (``p* < 1 - margin``) -> 1; else 0; solver failure -> -1."""

    name = "dps2"
    description = "Doherty-Parrilo-Spedalieri k=2 symmetric extension (visibility SDP) per cut"
    Params = Dps2Params

    def predict(self, rho: np.ndarray) -> np.ndarray:
        rho = np.asarray(rho, dtype=np.complex128)
        if rho.ndim == 2:
            rho = rho[None]
        npt = npt_mask(rho, tol=self.params.tol)
        out = npt.astype(np.int8)
        jobs = np.argwhere(~npt)
        if jobs.size:
            settings = DpsSettings(solver=self.params.solver, margin=self.params.margin)
            res = dps2_batch(rho, jobs, settings, workers=self.params.workers, progress=self.params.progress)
            out[jobs[:, 0], jobs[:, 1]] = res.decisions(self.params.margin)
            if not res.ok.all():
                first = str(res.reasons[np.flatnonzero(~res.ok)[0]])
                warnings.warn(
                    f"dps2: {int((~res.ok).sum())} cut(s) without an answer (-1): {first}",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return out


@hookimpl
def qeframe_register_baselines(register):
    register(Dps2Baseline)
