"""``ccnr_fnf`` baseline: realignment and correlation-tensor criteria in filter normal form, per cut.

For each cut ``A|B`` the state is brought to its filter normal form ``sigma = (F_A ⊗ F_B) rho
(F_A ⊗ F_B)^† / tr(...)`` with ``sigma_A = I/d_A``, ``sigma_B = I/d_B`` (Leinaas, Myrheim, Ovrum,
PRA 74, 012313 (2006); Verstraete, Dehaene, De Moor, PRA 68, 012103 (2003)). Local invertible
filters preserve separability, so

    ||R(sigma)||_1 > 1 + err   or   ||P_A R(sigma) P_B||_1 > sqrt((1-1/d_A)(1-1/d_B)) + err

proves ``rho`` entangled across the cut (prediction 1; realignment: Rudolph, Quantum Inf. Process.
4, 219 (2005), Chen and Wu, Quantum Inf. Comput. 3, 193 (2003); correlation tensor: de Vicente,
Quantum Inf. Comput. 7, 624 (2007); both in the FNF: Gittsovich, Gühne, Hyllus, Eisert, PRA 78,
052319 (2008)); else 0 (not detected). ``err`` is an explicit rounding budget
(:func:`qeframe.quantum.realignment.fnf_error_bound`), so a 1 is a proof: never 1 on a separable
cut. Unlike plain ``ccnr`` it detects most Horodecki 2x4 states mixed with product noise.

Batched (:func:`qeframe.quantum.realignment.fnf_certificate`): per cut, a few dozen batched
``eigh`` of ``d_A x d_A`` / ``d_B x d_B`` reduced states and two batched SVDs; any ``n``.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.baselines.ccnr_fnf import CcnrFnfBaseline
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> CcnrFnfBaseline().predict(np.stack([np.outer(ghz, ghz), np.eye(8) / 8])).tolist()
    [[1, 1, 1], [0, 0, 0]]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import Baseline, Params
from qeframe.quantum.ppt import PPT_TOL
from qeframe.quantum.realignment import FNF_MAX_ITER, fnf_certificate


class CcnrFnfParams(Params):
    input_tol: float = Field(
        default=PPT_TOL,
        ge=0,
        description="The verdict holds for every matrix within input_tol * tr(rho) (Frobenius) of the input.",
    )
    max_iter: int = Field(default=FNF_MAX_ITER, ge=0, description="Filter-normal-form iteration budget.")
    correlation: bool = Field(
        default=True, description="Also test the de Vicente correlation-tensor bound in the FNF."
    )


class CcnrFnfBaseline(Baseline):
    """Realignment / correlation tensor in filter normal form: violated -> 1 (proof), else 0."""

    name = "ccnr_fnf"
    description = "Realignment and correlation-tensor criteria in filter normal form -> entangled (proof)"
    Params = CcnrFnfParams

    def predict(self, rho: np.ndarray) -> np.ndarray:
        cert = fnf_certificate(
            np.asarray(rho),
            input_tol=self.params.input_tol,
            max_iter=self.params.max_iter,
            correlation=self.params.correlation,
        )
        return cert.entangled.astype(np.int8)


@hookimpl
def qeframe_register_baselines(register):
    register(CcnrFnfBaseline)
