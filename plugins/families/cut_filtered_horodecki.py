"""``cut-filtered-horodecki``: Horodecki states under filters that are local for ONE cut only (held-out source).

Definition. Start from ``rho0``, P. Horodecki's ``2 x 2**(n-1)`` PPT entangled state ``rho_b``
(:mod:`.horodecki`; P. Horodecki, Phys. Lett. A 232, 333 (1997)), ``b`` uniform on the open
``b_range`` (``noise = "none"``), or a witnessed noisy mixture ``(1 - q) rho_{b0} + q sigma``
(``noise`` = ``white`` / ``product`` / ``separable`` / ``range-product``, ``b0`` from ``b_values``;
exactly the construction of :mod:`.witnessed_horodecki`, :func:`~.witnessed_horodecki.witnessed_mixtures`;
``range-product`` gives birank ``(5, 6)`` for three qubits, ``(6, 5)`` after the transpose).
With probability ``transpose`` replace it by its partial transpose ``rho0^{T_1}``. Then

    rho = M rho0 M^† / tr(M rho0 M^†),   M = F ⊗ G,

with ``F`` a random invertible single-qubit filter on qubit 1 (``U diag(1, s) V``, condition
number ``<= kappa``) and ``G`` a random invertible ``2**(n-1) x 2**(n-1)`` filter acting
*jointly* (entangling) on qubits ``2..n`` (``U diag(1, s_2, ..., s_D) V``, ``U, V`` Haar on
``C^D``, ``s_k`` log-uniform in ``[1/kappa_rest, 1]``). Unlike the filters of
``filtered-horodecki`` (a product over all qubits), ``M`` is local only for the cut ``1|2..n``.

Theorem (cut ``1|2..n``: PPT and entangled; exact).

* PPT: ``(M X M^†)^{T_1} = (F^* ⊗ G) X^{T_1} (F^* ⊗ G)^†`` for every ``X`` (a congruence), so by
  Sylvester's law of inertia (Horn & Johnson, *Matrix Analysis*, Thm. 4.5.8) ``rho^{T_1}`` has the
  same numbers of positive, zero and negative eigenvalues as ``rho0^{T_1}``, which is PSD: ``rho0``
  is PPT (``rho_b`` is; a mixture with separable noise is; and ``(rho0^{T_1})^{T_1} = rho0 >= 0``).
* Entangled: ``M`` and ``M^{-1}`` are local for the cut, so they map product decompositions across
  ``1|2..n`` to product decompositions (SLOCC; Dür, Vidal, Cirac, PRA 62, 062314 (2000)) and ``rho``
  is separable across the cut iff ``rho0`` is. ``rho_b`` is entangled (range criterion, Horodecki
  1997); a witnessed mixture is entangled because ``tr(W rho0) < 0`` for a *verified* block-positive
  ``W``; and the partial transpose ``T_1`` maps separable states to separable states
  (``sum p a ⊗ b -> sum p a^T ⊗ b``) and is an involution, so ``rho0^{T_1}`` is entangled iff
  ``rho0`` is. (Equivalently: ``W' = M^{-†} W^{(T_1)} M^{-1}`` is block-positive for the cut and
  ``tr(W' rho) < 0``.)

The other cuts are NOT preserved by ``M`` (``G`` entangles qubits ``2..n``): they are labelled by
the exact NPT test of the final state (1, provenance ``npt``) where it finds NPT, else unknown (-1).

Ground truth: cut ``1|2..n`` entangled (1, provenance ``construction`` for ``noise = "none"``,
``witness`` otherwise); ``pptes = True``, ``fully_separable = 0``. With ``local_randomize`` the
qubits are permuted afterwards, so the PPT cut moves to any ``k | rest``. No training dataset of
``registry.toml`` uses this family: it is a held-out source of PPT-entangled cuts (issue 13,
item 4). Cost per state: one ``d x d`` congruence, a ``D x D`` Haar pair and one batched NPT test.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.cut_filtered_horodecki import CutFilteredHorodeckiFamily
    >>> batch = CutFilteredHorodeckiFamily().generate(3, np.random.default_rng(0))
    >>> batch.ground_truth[:, 0].tolist(), batch.meta["pptes"].tolist()
    ([1, 1, 1], [True, True, True])
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED, UNKNOWN, provenance_code
from qeframe.quantum.ops import partial_transpose
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import haar_unitary, random_local_filters

from .horodecki import check_b_range, horodecki_states, open_uniform
from .witnessed_horodecki import WitnessedHorodeckiParams, witnessed_mixtures


class CutFilteredHorodeckiParams(WitnessedHorodeckiParams):
    """Parameters of ``cut-filtered-horodecki``: those of ``witnessed-horodecki`` (``b_values``,
    ``reach``, ``margin_rel``, ``resolution``, ``kappa`` for qubit 1, ``local_randomize``) with the
    extra noise kind ``none``, plus the joint filter, the transpose probability and ``b_range``."""

    kappa_rest: float = Field(
        default=4.0, ge=1.0, le=1e3, description="Max condition number of the joint filter G on qubits 2..n."
    )
    transpose: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Probability of using the partial transpose rho0^{T_1}."
    )
    noise: Literal["none", "white", "product", "separable", "range-product"] = Field(
        default="none",
        description="none: Horodecki edge states (b from b_range); else witnessed mixtures (b0 from b_values).",
    )
    b_range: tuple[float, float] = Field(
        default=(0.0, 1.0), description="Open interval (low, high), 0 <= low < high <= 1, for b (noise none)."
    )

    @field_validator("b_range")
    @classmethod
    def _check_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return check_b_range(value)


def random_joint_filters(count: int, dim: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` random invertible ``dim x dim`` filters ``(count, dim, dim)`` complex128.

    ``G = U diag(1, s_2, ..., s_dim) V``, ``U, V`` Haar on ``C^dim``, ``s_k`` log-uniform in
    ``[1/kappa, 1]``: spectral norm 1, condition number ``<= kappa`` (``kappa = 1``: unitaries).
    """
    u = haar_unitary(dim, count, rng)
    v = haar_unitary(dim, count, rng)
    s = np.exp(rng.uniform(-np.log(kappa), 0.0, (count, dim)))
    s[:, 0] = 1.0
    return (u * s[:, None, :]) @ v


def cut_local_congruence(rho: np.ndarray, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``M rho M^† / tr`` with ``M = f ⊗ g`` per sample: ``rho`` ``(N, d, d)``, ``f`` ``(N, a, a)``,
    ``g`` ``(N, d/a, d/a)``; Hermitian, trace 1. ``M`` is local for the cut (first ``log2 a`` qubits | rest).
    """
    n, a, b = rho.shape[0], f.shape[-1], g.shape[-1]
    m = np.einsum("nij,nkl->nikjl", f, g).reshape(n, a * b, a * b)
    out = m @ rho @ m.conj().transpose(0, 2, 1)
    out = 0.5 * (out + out.conj().transpose(0, 2, 1))
    return out / np.einsum("nii->n", out).real[:, None, None]


class CutFilteredHorodeckiFamily(StateFamily):
    """Horodecki states (or witnessed mixtures, or their partial transposes) under F ⊗ G_rest filters."""

    name = "cut-filtered-horodecki"
    description = "Horodecki PPT entangled states under a filter local only for their PPT cut (joint filter on the rest)"
    Params = CutFilteredHorodeckiParams

    qubit_range = (3, None)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        p = self.params
        if p.noise == "none":
            rho0 = horodecki_states(open_uniform(*p.b_range, count, rng), n_qubits)
        else:
            wp = WitnessedHorodeckiParams(
                **p.model_dump(include={"b_values", "noise", "reach", "margin_rel", "resolution"})
            )
            rho0 = witnessed_mixtures(count, wp, n_qubits, rng)
        flip = rng.random(count) < p.transpose
        if flip.any():
            rho0[flip] = partial_transpose(rho0[flip], [0])
        f = random_local_filters(count, 1, p.kappa, rng)[:, 0]
        g = random_joint_filters(count, 2 ** (n_qubits - 1), p.kappa_rest, rng)
        rho = cut_local_congruence(rho0, f, g)
        npt = npt_mask(rho, workers=1)
        truth = np.where(npt, ENTANGLED, UNKNOWN).astype(np.int8)
        prov = np.where(npt, provenance_code("npt"), provenance_code("unknown")).astype(np.uint8)
        truth[:, 0] = ENTANGLED
        prov[:, 0] = provenance_code("construction" if p.noise == "none" else "witness")
        return StateBatch.build(rho, truth, prov, pure=False, fully_separable=0, pptes=True)


@hookimpl
def qeframe_register_families(register):
    register(CutFilteredHorodeckiFamily)
