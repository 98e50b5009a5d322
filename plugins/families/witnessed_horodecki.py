"""``witnessed-horodecki``: noisy, filtered Horodecki states certified PPT-entangled by one verified witness.

Definition. For ``b0`` drawn from ``b_values``: ``rho0 = rho_{b0}`` (P. Horodecki's
``2 x 2**(n-1)`` edge state, :mod:`.horodecki`) and ``W`` its LKCH witness for the cut ``1|2..n``
(:func:`qeframe.quantum.witness.lkch_witness`; Lewenstein, Kraus, Cirac, Horodecki, PRA 62,
052310 (2000)), *verified block-positive* on load by :func:`qeframe.quantum.witness.verify_block_positive`
(a grid-plus-concavity proof). Then

    rho = F ((1 - q) rho0 + q sigma) F^† / tr(.),

with noise ``sigma`` fully separable: ``white`` (``1/d``), ``product`` (one Haar-random pure
product state), ``separable`` (a random mixture of 2..d pure product states) or ``range-product``
(one pure product state ``|e>|f>`` *in the range* of ``rho0``: ``e`` Haar on the qubit, ``f`` a null
vector of the ``(D-1) x D`` system ``<k_i|e, f> = 0`` over the kernel vectors ``k_i`` of ``rho0``,
which always has one), and ``F`` random invertible local filters (``kappa``). With
``range-product`` the range of the state stays that of ``rho0`` while ``|e*>|f>`` is not in the
range of ``rho0^{T_1}`` (``rho0`` is an edge state), so the birank is ``(D+1, D+2)`` — for three
qubits ``(5, 6)``, the other type of extremal/edge 2 x 4 PPT entangled states besides ``(5, 5)``
(Augusiak, Grabowski, Kuś, Lewenstein, Opt. Commun. 283, 805 (2010)); and the tolerated noise weight
is large (``q`` up to ~0.49 at ``b0 = 0.35``, against ~1 % for white noise) because
``<e,f|P|e,f> = 0`` in the LKCH witness. The birank is a description; the label rests on the witness.

Certificate (exact, one witness reused for every state of one ``b0``). ``W`` is block-positive
and ``sigma`` separable, so ``tr(W sigma) >= 0``; ``tr(W rho0) = -eps < 0``. The noise weight is
drawn uniformly in ``(0, reach q_max)`` with

    q_max = (eps - margin) / (eps + tr(W sigma)),   margin = margin_rel * eps,

so that ``tr(W ((1-q) rho0 + q sigma)) <= -margin < 0`` (checked per state). For the filter,
``W' = F^{-†} W F^{-1}`` is block-positive too and ``tr(W' rho) = tr(W (...)) / tr(F ... F^†) < 0``:
the state is entangled across ``1|2..n``. It is also PPT there (``rho0`` is PPT, ``sigma`` is
separable, and the filter keeps PPT), so these are **PPT-entangled cuts with a witness proof**;
with white noise the states have full rank, unlike the rank-``D+1`` edge states.

Ground truth: cut ``1|2..n`` entangled (1, provenance ``witness``); every other cut entangled
(1, ``npt``) where the batched NPT test finds it NPT, else unknown (-1). ``pptes = True``,
``fully_separable = 0``. The witnesses cost ~0.5 s each once per process; per state the cost
is a noise draw, one trace, one NPT test and the filter.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.witnessed_horodecki import WitnessedHorodeckiFamily
    >>> fam = WitnessedHorodeckiFamily(WitnessedHorodeckiFamily.Params(b_values=(0.3,)))
    >>> batch = fam.generate(2, np.random.default_rng(0))
    >>> batch.ground_truth[:, 0].tolist()
    [1, 1]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED, UNKNOWN, provenance_code
from qeframe.quantum.ops import pure_density
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import haar_state
from qeframe.quantum.witness import DEFAULT_RESOLUTION, witness_values

from ._common import mix_vectors, random_counts, random_weights
from ._ppt import FilterParams, filter_batch, horodecki_witness, product_vectors
from .horodecki import horodecki_states

NOISE_KINDS = ("white", "product", "separable", "range-product")


def check_b_values(value: tuple[float, ...]) -> tuple[float, ...]:
    """Validate the ``b0`` values of witnessed mixtures: each in the open interval ``(0, 1)``."""
    if any(not 0.0 < b < 1.0 for b in value):
        raise ValueError(f"every b0 must lie in (0, 1), got {list(value)}")
    return value


class WitnessedHorodeckiParams(FilterParams):
    """Parameters of ``witnessed-horodecki`` (plus ``kappa`` and ``local_randomize``)."""

    b_values: tuple[float, ...] = Field(
        default=(0.2, 0.3, 0.4, 0.5),
        min_length=1,
        description="The b0 of the Horodecki states (one witness each).",
    )
    noise: Literal["white", "product", "separable", "range-product"] = Field(
        default="white",
        description="Separable noise: white (1/d), a pure product state, a product mixture, or a product "
        "state in the range of rho_b0.",
    )
    reach: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Noise weight uniform in (0, reach * q_max); 1 = up to the witness limit.",
    )
    margin_rel: float = Field(
        default=0.01, gt=0, lt=1, description="Required tr(W rho) <= -margin_rel * eps (safety margin)."
    )
    resolution: int = Field(
        default=DEFAULT_RESOLUTION,
        ge=16,
        le=1024,
        description="Bloch-grid rings of the witness verification.",
    )

    @field_validator("b_values")
    @classmethod
    def _check_b(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return check_b_values(value)


def separable_noise(kind: str, count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` fully separable noise states ``(count, 2**n, 2**n)`` of one kind (see the module docstring)."""
    d = 2**n
    if kind == "white":
        return np.broadcast_to(np.eye(d, dtype=np.complex128) / d, (count, d, d)).copy()
    if kind == "product":
        return pure_density(product_vectors(count, n, rng))
    k = random_counts(rng, count, (2, d))
    weights, _ = random_weights(rng, k)
    return mix_vectors(product_vectors(int(k.sum()), n, rng), weights, k)


def range_product_vectors(rho0: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Product vectors ``e ⊗ f`` in the range of ``rho0`` ``(d, d)`` (qubit first): ``(N, d)`` complex128.

    ``e`` ``(N, 2)`` unit qubit vectors. ``f`` ``(d/2,)`` is the right-singular vector of the smallest
    singular value of ``A(e)_{ij} = sum_a conj(k_i[a, j]) e_a`` (``k_i`` the kernel vectors of ``rho0``,
    reshaped ``(2, d/2)``), so ``<k_i|e, f> = 0`` for all ``i``; when ``rho0`` has at most ``d/2 - 1``
    kernel vectors (the Horodecki states: exactly that many) such an ``f`` exists for every ``e``.
    """
    w, v = np.linalg.eigh(rho0)
    kern = v[:, w <= 1e-12 * max(float(w[-1]), 1.0)].T.reshape(-1, 2, rho0.shape[0] // 2)
    a = np.einsum("iaj,na->nij", kern.conj(), e)
    f = np.linalg.svd(a)[2][:, -1, :].conj()
    return np.einsum("na,nj->naj", e, f).reshape(len(e), -1)


def witnessed_mixtures(
    count: int, p: WitnessedHorodeckiParams, n_qubits: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` unfiltered states ``(1 - q) rho_{b0} + q sigma`` ``(count, d, d)``, each with
    ``tr(W_{b0} rho) <= -margin_rel * eps`` for the verified LKCH witness ``W_{b0}`` of the cut ``1|2..n``.

    ``b0`` uniform over ``p.b_values``, noise ``sigma`` of kind ``p.noise`` and weight ``q`` as in the
    module docstring; raises :class:`QeframeError` if a state escaped its witness (internal error).
    """
    d = 2**n_qubits
    which = rng.integers(len(p.b_values), size=count)
    rho = np.empty((count, d, d), dtype=np.complex128)
    value = np.empty(count)
    if p.noise == "range-product":  # depends on b0: completed per witness below
        e = haar_state(2, count, rng)
        sigma = np.empty((count, d, d), dtype=np.complex128)
    else:
        sigma = separable_noise(p.noise, count, n_qubits, rng)
    u = 1.0 - rng.random(count)  # (0, 1]
    for k, b0 in enumerate(p.b_values):  # loop over the few witnesses, batched over states
        idx = np.flatnonzero(which == k)
        if idx.size == 0:
            continue
        wit = horodecki_witness(float(b0), n_qubits, p.resolution)
        rho0 = horodecki_states([b0], n_qubits)[0]
        if p.noise == "range-product":
            sigma[idx] = pure_density(range_product_vectors(rho0, e[idx]))
        eps = -float(witness_values(wit.matrix, rho0[None])[0])
        w_sigma = np.maximum(witness_values(wit.matrix, sigma[idx]), 0.0)
        margin = p.margin_rel * eps
        q = p.reach * u[idx] * (eps - margin) / (eps + w_sigma)
        rho[idx] = (1.0 - q)[:, None, None] * rho0 + q[:, None, None] * sigma[idx]
        value[idx] = witness_values(wit.matrix, rho[idx]) / margin
    if not (value <= -1.0 + 1e-9).all():
        raise QeframeError("witnessed-horodecki: a state escaped its witness (internal error)")
    return rho


class WitnessedHorodeckiFamily(StateFamily):
    """Horodecki states + separable noise + local filters, PPT-entangled on 1|rest by a verified witness."""

    name = "witnessed-horodecki"
    description = "noisy filtered Horodecki states, PPT-entangled on one cut by a verified LKCH witness"
    Params = WitnessedHorodeckiParams

    qubit_range = (3, None)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        p = self.params
        rho = witnessed_mixtures(count, p, n_qubits, rng)
        npt = npt_mask(rho, workers=1)
        truth = np.where(npt, ENTANGLED, UNKNOWN).astype(np.int8)
        prov = np.where(npt, provenance_code("npt"), provenance_code("unknown")).astype(np.uint8)
        truth[:, 0], prov[:, 0] = ENTANGLED, provenance_code("witness")
        batch = StateBatch.build(rho, truth, prov, pure=False, fully_separable=0, pptes=True)
        return filter_batch(batch, p.kappa, rng)


@hookimpl
def qeframe_register_families(register):
    register(WitnessedHorodeckiFamily)
