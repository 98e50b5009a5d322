"""``boundary-separable``: pure states in white noise at the PPT threshold of a cut — exactly labelled per cut.

Definition. ``|psi>`` Haar-random on ``n`` qubits, ``d = 2**n``, and

    sigma = p |psi><psi| + (1 - p) 1/d,        rho = F sigma F^† / tr(F sigma F^†),

``F`` random invertible local filters (condition number ``<= kappa``). For a cut ``A|B`` let
``s_1 >= s_2`` be the two largest Schmidt coefficients (amplitudes) of ``psi`` across it and
``p_c = 1 / (1 + d s_1 s_2)``. The *target* cut (``cut``, or random per state) gets
``p = p_c (1 - g)`` with the relative gap ``g`` log-uniform in ``gap_range``: just inside the PPT set.

Facts (exact, per cut). ``lambda_min(|psi><psi|^{T_A}) = -s_1 s_2``, so
``lambda_min(sigma^{T_A}) = (1 - p)/d - p s_1 s_2``: ``sigma`` is PPT across the cut iff ``p <= p_c``.
Vidal & Tarrach (Phys. Rev. A 59, 141 (1999), random robustness of pure states) show that
``p |psi><psi| + (1 - p) 1/d`` is separable across the cut iff ``p <= p_c`` (PPT is necessary and
sufficient for this family; for a maximally entangled ``psi`` this is the isotropic-state
threshold). The filter keeps separability, entanglement and PPT/NPT on every cut
(:func:`qeframe.quantum.random.apply_local_filters`) and destroys the white-noise structure.
So the target cut is **separable and on the PPT boundary** (``lambda_min(rho^{T_A}) ~ g``), and every
other cut is separable (``p <= p_c'``) or NPT entangled (``p > p_c'``).

Ground truth: 0 where ``p <= p_c`` and 1 where ``p > p_c``, both with provenance ``construction``;
``fully_separable = -1``, ``pptes = False``. Cost: one Haar vector, ``n_cuts`` reduced spectra.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.boundary_separable import BoundarySeparableFamily
    >>> fam = BoundarySeparableFamily(BoundarySeparableFamily.Params(cut="1|23"))
    >>> fam.generate(2, np.random.default_rng(0)).ground_truth[:, 0].tolist()
    [0, 0]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED, SEPARABLE
from qeframe.quantum.cuts import bipartitions, check_cut_name, resolve_cut
from qeframe.quantum.ops import partial_trace, pure_density
from qeframe.quantum.random import haar_state

from ._common import draw_cuts
from ._ppt import FilterParams, filter_batch


class BoundarySeparableParams(FilterParams):
    """Parameters of ``boundary-separable`` (plus ``kappa`` and ``local_randomize``)."""

    cut: str | None = Field(
        default=None, description="The cut put on its PPT boundary; None: random per state."
    )
    gap_range: tuple[float, float] = Field(
        default=(1e-6, 1e-2), description="Relative gap g below the threshold, log-uniform in (low, high)."
    )

    @field_validator("cut")
    @classmethod
    def _cut(cls, value: str | None) -> str | None:
        return None if value is None else check_cut_name(value)

    @field_validator("gap_range")
    @classmethod
    def _gap(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 < low <= high < 1.0:
            raise ValueError(f"gap_range must satisfy 0 < low <= high < 1, got {list(value)}")
        return value


def ppt_thresholds(psi: np.ndarray) -> np.ndarray:
    """``p_c = 1/(1 + d s_1 s_2)`` per state and cut: ``psi`` ``(N, d)`` -> ``(N, n_cuts)`` float64."""
    n = psi.shape[1].bit_length() - 1
    rho = pure_density(psi)
    out = np.empty((psi.shape[0], len(bipartitions(n))))
    for cut in bipartitions(n):  # loop over cuts, batched over states
        eig = np.linalg.eigvalsh(partial_trace(rho, cut.side_a))
        s1s2 = np.sqrt(np.clip(eig[:, -1], 0, None) * np.clip(eig[:, -2], 0, None))
        out[:, cut.index] = 1.0 / (1.0 + psi.shape[1] * s1s2)
    return out


class BoundarySeparableFamily(StateFamily):
    """Filtered pure+white-noise states at a cut's PPT (= separability) threshold; exact labels per cut."""

    name = "boundary-separable"
    description = "filtered pseudo-pure states at one cut's PPT threshold: separable there (Vidal-Tarrach)"
    Params = BoundarySeparableParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        p_ = self.params
        d = 2**n_qubits
        psi = haar_state(d, count, rng)
        thresholds = ppt_thresholds(psi)
        cuts = draw_cuts(rng, count, n_qubits, resolve_cut(p_.cut, n_qubits))
        low, high = p_.gap_range
        gap = np.exp(rng.uniform(np.log(low), np.log(high), count))
        p = thresholds[np.arange(count), cuts] * (1.0 - gap)
        sigma = p[:, None, None] * pure_density(psi) + ((1.0 - p) / d)[:, None, None] * np.eye(d)
        truth = np.where(p[:, None] <= thresholds, SEPARABLE, ENTANGLED).astype(np.int8)
        batch = StateBatch.build(sigma, truth, "construction", pure=False, fully_separable=-1, pptes=False)
        return filter_batch(batch, p_.kappa, rng)


@hookimpl
def qeframe_register_families(register):
    register(BoundarySeparableFamily)
