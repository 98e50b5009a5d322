"""``cut-separable``: mixtures ``sum_i p_i |a_i><a_i| ⊗ beta_i`` — separable on one cut, entangled parts inside.

Definition. For a cut ``A|B`` (``cut``, or uniformly random per state as in the authors' code):

    rho = sum_{i=1}^{k} p_i |a_i><a_i|_A ⊗ |b_i><b_i|_B,

``k`` uniform in ``terms`` (default ``2..8``), ``|a_i>`` Haar-random pure states of side ``A`` and
``|b_i>`` Haar-random pure states of side ``B`` (for three qubits: two-qubit states, entangled with
probability 1), weights uniform then normalised; the qubits are put in place with the cut's
permutation.

Facts. The decomposition is product across ``A|B``: ``rho`` is separable (hence PPT) there — for
``k > max(rank rho_A, rank rho_B)`` no rank criterion proves it, only the construction does. Across
the other cuts the ``|b_i>`` are entangled, so ``rho`` is generally NPT there; the family runs the
batched NPT test and labels those cuts entangled (``npt``); PPT ones stay unknown.

Ground truth: 0 (``construction``) on the decomposition's cut; 1 (``npt``) on NPT cuts; -1 elsewhere.
``fully_separable`` = 0 when some cut is NPT, else -1; ``pptes = False``.

Example::

    >>> import numpy as np
    >>> from qeframe_plugins.families.cut_separable import CutSeparableFamily
    >>> fam = CutSeparableFamily(CutSeparableFamily.Params(cut="1|23"))
    >>> fam.generate(2, np.random.default_rng(1)).ground_truth[:, 0].tolist()
    [0, 0]
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from qeframe import hookimpl
from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily
from qeframe.plugin.labels import ENTANGLED, SEPARABLE, UNKNOWN, provenance_code
from qeframe.quantum.cuts import check_cut_name, resolve_cut
from qeframe.quantum.ppt import npt_mask
from qeframe.quantum.random import haar_state

from ._common import (
    check_int_range,
    draw_cuts,
    kron_states,
    mix_vectors,
    place_bipartite,
    random_counts,
    random_weights,
)


class CutSeparableParams(FamilyParams):
    """Parameters of ``cut-separable`` (plus ``local_randomize``)."""

    terms: tuple[int, int] = Field(default=(2, 8), description="Inclusive range of the number k of terms.")
    cut: str | None = Field(
        default=None, description="The separable cut, e.g. '1|23'; None: random per state."
    )

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: tuple[int, int]) -> tuple[int, int]:
        return check_int_range(value, "terms", 1)

    @field_validator("cut")
    @classmethod
    def _cut(cls, value: str | None) -> str | None:
        return None if value is None else check_cut_name(value)


class CutSeparableFamily(StateFamily):
    """sum_i p_i |a_i><a_i| ⊗ |b_i><b_i| across one cut: separable there, NPT/unknown elsewhere."""

    name = "cut-separable"
    description = "mixtures of |a_i><a_i| (x) entangled |b_i><b_i| across one cut: separable on that cut"
    Params = CutSeparableParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        n, d = n_qubits, 2**n_qubits
        cuts = draw_cuts(rng, count, n, resolve_cut(self.params.cut, n))
        k = random_counts(rng, count, self.params.terms)

        def draw(index: np.ndarray, a: int) -> np.ndarray:
            kk = k[index]
            total = int(kk.sum())
            vec = kron_states(haar_state(2**a, total, rng), haar_state(2 ** (n - a), total, rng))
            weights, _ = random_weights(rng, kk)
            return mix_vectors(vec, weights, kk)

        rho = place_bipartite(cuts, n, draw, (count, d, d))
        rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))
        npt = npt_mask(rho, workers=1)
        truth = np.where(npt, ENTANGLED, UNKNOWN).astype(np.int8)
        prov = np.where(npt, provenance_code("npt"), provenance_code("unknown")).astype(np.uint8)
        rows = np.arange(count)
        truth[rows, cuts], prov[rows, cuts] = SEPARABLE, provenance_code("construction")
        fully = np.where(npt.any(axis=1), 0, -1).astype(np.int8)
        return StateBatch.build(rho, truth, prov, pure=k == 1, fully_separable=fully, pptes=False)


@hookimpl
def qeframe_register_families(register):
    register(CutSeparableFamily)
