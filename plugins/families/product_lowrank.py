"""``product-lowrank``: low-rank fully separable mixtures, on the PPT boundary of every cut.

Definition. ``rho = sum_{i=1}^{k} p_i |a_i^1 ... a_i^n><a_i^1 ... a_i^n|`` with ``k`` uniform in the
inclusive range ``terms`` (default ``2..4``), Haar-random single-qubit vectors ``|a_i^q>`` and weights
``p_i`` uniform then normalised (as in the authors' mixtures).

Facts (exact). The explicit decomposition makes ``rho`` fully separable, hence separable and PPT
on every cut. ``rank rho <= k`` and ``rank rho^{T_A} <= k`` (the partial transpose of each term is
the projector on ``|(a_i^A)^*, a_i^B>``), so for ``k < 2**n`` every partial transpose has a zero
eigenvalue: the states lie **on the boundary of the PPT set** — the smallest perturbation along
an NPT direction makes them NPT — which is where a learned detector is most tempted to say
"entangled".

Ground truth: separable (0) on every cut, provenance ``construction``; ``fully_separable = 1``,
``pptes = False``.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.product_lowrank import ProductLowRankFamily
    >>> batch = ProductLowRankFamily().generate(3, np.random.default_rng(0))
    >>> batch.ground_truth.tolist()
    [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily

from ._common import check_int_range, mix_vectors, random_counts, random_weights
from ._ppt import product_vectors


class ProductLowRankParams(FamilyParams):
    """Parameters of ``product-lowrank`` (plus ``local_randomize``)."""

    terms: tuple[int, int] = Field(
        default=(2, 4), description="Inclusive range of the number k of product terms."
    )

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: tuple[int, int]) -> tuple[int, int]:
        return check_int_range(value, "terms", 1)


class ProductLowRankFamily(StateFamily):
    """Mixtures of k Haar-random pure product states (k small): fully separable, PPT-boundary."""

    name = "product-lowrank"
    description = "low-rank mixtures of k pure product states: separable, on the PPT boundary of every cut"
    Params = ProductLowRankParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        k = random_counts(rng, count, self.params.terms)
        weights, _ = random_weights(rng, k)
        rho = mix_vectors(product_vectors(int(k.sum()), n_qubits, rng), weights, k)
        rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))
        return StateBatch.build(rho, 0, "construction", pure=k == 1, fully_separable=1, pptes=False)


@hookimpl
def qeframe_register_families(register):
    register(ProductLowRankFamily)
