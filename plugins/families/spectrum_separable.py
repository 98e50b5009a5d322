"""``spectrum-separable``: states separable from their spectrum alone (Johnston's qubit-qudit condition).

Definition. A random spectrum ``mu`` (uniform on the simplex) is mixed towards the maximally mixed
state, ``lambda(t) = (1 - t) mu + t / d``, and ``rho = U diag(lambda(t)) U^†`` with ``U`` Haar-random on
the whole ``d = 2**n`` space. ``t`` is put just past the absolute-separability boundary:
``t = t* + spread * u * (1 - t*)`` (``u`` uniform in ``(0, 1]``), ``t*`` the smallest ``t`` with
margin ``<= 0`` (batched bisection; the margin decreases in ``t``).

Theorem (N. Johnston, Phys. Rev. A 88, 062330 (2013)). A state of ``C^2 ⊗ C^N`` with eigenvalues
``lambda_1 >= ... >= lambda_{2N}`` is separable for every choice of eigenbasis iff
``lambda_1 <= lambda_{2N-1} + 2 sqrt(lambda_{2N-2} lambda_{2N})``
(:func:`qeframe.quantum.witness.absolute_separability_margin`). The spectrum is the same across
every cut, so for ``n`` qubits every ``1 | rest`` cut is separable — for three qubits, every cut.
With ``spread`` small the states sit next to the boundary of the absolutely separable set, where
a slightly less mixed spectrum admits eigenbases that make the state NPT.

Ground truth: 0 (``spectrum``) on every single-qubit cut, -1 on the others (``n >= 4``);
``fully_separable = -1``, ``pptes = False``.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.spectrum_separable import SpectrumSeparableFamily
    >>> SpectrumSeparableFamily().generate(2, np.random.default_rng(0)).ground_truth.tolist()
    [[0, 0, 0], [0, 0, 0]]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import SEPARABLE, UNKNOWN, provenance_code
from qeframe.quantum.cuts import bipartitions
from qeframe.quantum.random import haar_unitary
from qeframe.quantum.witness import absolute_separability_margin

#: Bisection steps for ``t*`` (interval length 2**-60).
_STEPS = 60
#: ``t`` is kept at least this far past ``t*``, so the margin is negative beyond rounding.
_MIN_PUSH = 1e-9


class SpectrumSeparableParams(FamilyParams):
    """Parameters of ``spectrum-separable`` (plus ``local_randomize``)."""

    spread: float = Field(
        default=0.2, ge=0, le=1, description="How far past the boundary: t = t* + spread * u * (1 - t*)."
    )


def boundary_mixing(mu: np.ndarray, dims: tuple[int, int]) -> np.ndarray:
    """``t*`` per spectrum: the smallest ``t`` in ``[0, 1]`` with Johnston margin ``<= 0``.

    ``mu`` ``(N, d)`` ascending spectra; returns ``(N,)`` (an upper end of a ``2**-60`` bracket).
    """
    d = mu.shape[1]
    lo, hi = np.zeros(mu.shape[0]), np.ones(mu.shape[0])
    ok0 = absolute_separability_margin(mu, dims) <= 0
    for _ in range(_STEPS):
        mid = 0.5 * (lo + hi)
        lam = (1 - mid)[:, None] * mu + mid[:, None] / d
        sep = absolute_separability_margin(lam, dims) <= 0
        hi = np.where(sep, mid, hi)
        lo = np.where(sep, lo, mid)
    return np.where(ok0, 0.0, hi)


class SpectrumSeparableFamily(StateFamily):
    """Random eigenbasis, spectrum just inside Johnston's absolutely separable set: separable on 1|rest cuts."""

    name = "spectrum-separable"
    description = (
        "absolutely separable spectra near the boundary, random eigenbasis: separable on every 1|rest cut"
    )
    Params = SpectrumSeparableParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        d = 2**n_qubits
        dims = (2, d // 2)
        mu = np.sort(-np.log(1.0 - rng.random((count, d))), axis=1)
        mu /= mu.sum(axis=1, keepdims=True)
        t_star = boundary_mixing(mu, dims)
        u = 1.0 - rng.random(count)
        t = np.minimum(t_star + np.maximum(self.params.spread * u * (1 - t_star), _MIN_PUSH), 1.0)
        lam = (1 - t)[:, None] * mu + t[:, None] / d
        unitary = haar_unitary(d, count, rng)
        rho = np.einsum("nij,nj,nkj->nik", unitary, lam, unitary.conj())
        rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))
        single = np.array([len(c.side_a) == 1 for c in bipartitions(n_qubits)])
        truth = np.where(single, SEPARABLE, UNKNOWN).astype(np.int8)
        prov = np.where(single, provenance_code("spectrum"), provenance_code("unknown")).astype(np.uint8)
        return StateBatch.build(
            rho,
            np.broadcast_to(truth, (count, truth.size)),
            np.broadcast_to(prov, (count, prov.size)),
            pure=False,
            fully_separable=-1,
            pptes=False,
        )


@hookimpl
def qeframe_register_families(register):
    register(SpectrumSeparableFamily)
