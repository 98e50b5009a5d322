"""``embedded`` family: a few-qubit PPT-entangled source tensored with product qubits (n-qubit PPTES).

Construction. A ``k``-qubit state ``rho_C`` from ``source`` (``horodecki``: P. Horodecki's
``2 x 2**(k-1)`` PPT entangled state, ``k >= 3``; ``upb``: the Shifts-UPB bound entangled state,
``k = 3``; ``acin``: the Acín-Bruß-Lewenstein-Sanpera edge states, ``k = 3``) on qubits ``1..k``,
tensored with ``n - k`` single-qubit states on qubits ``k+1..n``::

    rho = rho_C ⊗ sigma_{k+1} ⊗ … ⊗ sigma_n

``sigma_q`` are Haar-random pure qubit states (``product = "pure"``, the A3 recipe) or mixtures
``p |a><a| + (1 - p) |b><b|`` of two of them with ``p`` uniform in ``[0, 1)`` (``"mixed"``). With
``local_randomize`` (recommended) random local unitaries and a random qubit permutation spread
the core over the register (:func:`qeframe.quantum.random.locally_randomize`).

Per-cut ground truth (exact). For a cut ``A|B`` of the ``n`` qubits let ``A_C = A ∩ C`` and
``B_C = B ∩ C`` (``C = {1..k}``).

* If ``A_C`` or ``B_C`` is empty, ``rho`` is separable across ``A|B`` (``rho_C`` sits on one side
  and the rest is a product): 0, provenance ``construction``.
* Otherwise ``rho`` is separable across ``A|B`` **iff** ``rho_C`` is separable across
  ``A_C|B_C``: "if" because appending the product factors ``sigma_q`` to each side is a local
  operation; "only if" because tracing out the product qubits is a local operation on each side
  (LOCC maps separable states to separable states; R. F. Werner, Phys. Rev. A 40, 4277 (1989)).
  So the cut gets the source's label on ``A_C|B_C`` with its provenance (``analytic`` for all
  three sources). The same argument holds for PPT: ``rho^{T_A} = rho_C^{T_{A_C}} ⊗ (⊗_q sigma_q^{(T)})``
  and the transposed one-qubit factors are positive, so a PPT cut of the core is a PPT cut of
  ``rho`` — ``horodecki`` gives PPT-entangled cuts (those splitting the core as
  ``{core qubit 1} | {the other core qubits}``), ``upb``/``acin`` give bound entangled states that
  are separable across every cut but not fully separable.

``fully_separable`` is 0 (the core is not fully separable), ``pptes`` true, ``pure`` false.
Output ``rho`` ``(count, 2**n, 2**n)`` complex128, big-endian, cuts in
:func:`qeframe.quantum.cuts.bipartitions` order.

Example::

    >>> import numpy as np
    >>> fam = EmbeddedFamily(EmbeddedFamily.Params(source="horodecki"))
    >>> batch = fam.sample(2, np.random.default_rng(0), n_qubits=4)
    >>> batch.ground_truth[0].tolist()   # cuts 1|234, 2|134, 3|124, 4|123, 12|34, 13|24, 14|23
    [1, 1, 1, 0, 1, 1, 1]
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.quantum.cuts import _side_to_index, bipartitions, n_cuts
from qeframe.quantum.ops import batch_kron
from qeframe.quantum.random import haar_state

from ._common import CONSTRUCTION
from .acin import AcinFamily
from .horodecki import HorodeckiFamily
from .upb import UPBFamily

_SOURCES: dict[str, type[StateFamily]] = {"horodecki": HorodeckiFamily, "upb": UPBFamily, "acin": AcinFamily}


class EmbeddedParams(FamilyParams):
    """Parameters of ``embedded`` (plus ``local_randomize``)."""

    source: Literal["horodecki", "upb", "acin"] = Field(
        default="horodecki", description="PPT-entangled source family on the core qubits (its default params)"
    )
    core_qubits: int = Field(default=3, ge=3, le=8, description="qubits k of the source state (upb, acin: 3)")
    product: Literal["pure", "mixed"] = Field(
        default="pure", description="the added qubits: Haar pure states, or mixtures of two of them"
    )

    @model_validator(mode="after")
    def _check_core(self) -> EmbeddedParams:
        if not _SOURCES[self.source].supports(self.core_qubits):
            raise ValueError(f"source {self.source!r} does not support core_qubits = {self.core_qubits}")
        return self


@cache
def core_cut_table(n_qubits: int, core_qubits: int) -> np.ndarray:
    """For each cut of ``n`` qubits, the index of the cut it induces on qubits ``0..k-1``, or -1.

    ``(n_cuts(n),)`` ``int64``; -1 where the core lies on one side. A loop over cuts, not states.
    """
    core = set(range(core_qubits))
    table = _side_to_index(core_qubits)
    out = np.full(n_cuts(n_qubits), -1, np.int64)
    for cut in bipartitions(n_qubits):
        part = frozenset(q for q in cut.side_a if q in core)
        if part and part != frozenset(core):
            out[cut.index] = table[part]
    return out


class EmbeddedFamily(StateFamily):
    """A 3-qubit (or k-qubit) PPT-entangled state tensored with product qubits; labels the construction proves."""

    name = "embedded"
    description = (
        "PPT-entangled source (horodecki, upb, acin) on k qubits tensored with n-k product qubits; "
        "per-cut labels of the core"
    )
    Params = EmbeddedParams
    #: the smallest core has 3 qubits (``core_qubits`` larger than ``n`` is refused when sampling)
    qubit_range = (3, None)

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        """``count`` states; the core is drawn by the source family with its default parameters."""
        from qeframe.errors import QeframeError

        k = self.params.core_qubits
        if n_qubits < k:
            raise QeframeError(
                f"family 'embedded': core_qubits = {k} does not fit {n_qubits} qubits (need n >= {k})"
            )
        source = _SOURCES[self.params.source]()
        core = source.sample(count, rng, k)
        rho = core.rho
        for _ in range(n_qubits - k):
            a = haar_state(2, count, rng)
            sigma = np.einsum("ni,nj->nij", a, a.conj())
            if self.params.product == "mixed":
                b = haar_state(2, count, rng)
                p = rng.random(count)[:, None, None]
                sigma = p * sigma + (1.0 - p) * np.einsum("ni,nj->nij", b, b.conj())
            rho = batch_kron(rho, sigma)
        table = core_cut_table(n_qubits, k)
        inside = table >= 0
        truth = np.zeros((count, n_cuts(n_qubits)), np.int8)
        prov = np.full(truth.shape, CONSTRUCTION, np.uint8)
        truth[:, inside] = core.ground_truth[:, table[inside]]
        prov[:, inside] = core.ground_truth_provenance[:, table[inside]]
        return StateBatch(
            rho=np.ascontiguousarray(rho, dtype=np.complex128),
            ground_truth=truth,
            ground_truth_provenance=prov,
            meta={
                "pure": np.zeros(count, bool),
                "fully_separable": np.zeros(count, np.int8),
                "pptes": np.ones(count, bool),
            },
        )


@hookimpl
def qeframe_register_families(register):
    """Register :class:`EmbeddedFamily`."""
    register(EmbeddedFamily)
