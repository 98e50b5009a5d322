"""``verified`` labeler: the paper's "verified" strategy — keep only labels that are certain.

Per sample and cut, in this order:

1. **NPT** — ``lambda_min(rho^{T_A}) < -tol`` (:func:`qeframe.quantum.ppt.npt_mask`): entangled
   (1, provenance ``npt``; exact: NPT implies entangled). Evidence: ``lambda_min(rho^{T_A})``.
2. **Known by construction** — ``ground_truth != -1``: the family's label with its provenance
   (``construction``, ``analytic``, ... and ``paper-convention`` for the paper's max-rank
   reduced states, which the ``reduced`` family marks entangled).
3. **Pure** — ``tr rho^2 > 1 - PURE_TOL``: separable (0, ``pure-ppt``; exact: a pure state that
   is PPT across a cut has Schmidt rank 1 there, i.e. it is a product across it).
4. Otherwise the cut is **unknown** (a mixed PPT cut: separable or PPT entangled). With
   ``drop_unknown`` (default) the whole sample is dropped, as the paper drops mixed PPT states;
   without it the cut is labelled -1 (``unknown``).

Consistency: an NPT cut whose construction label is "separable" is a contradiction (NPT implies
entangled) and raises :class:`GroundTruthConflictError` naming the sample and cut — either the
family's ground truth is wrong or ``tol`` is below the numerical noise.

Evidence is ``lambda_min(rho^{T_A})`` on NPT cuts (computed by ``eigvalsh`` for those cuts only,
on all cores) and NaN elsewhere. It costs far more than the NPT test itself (about 4 µs per NPT cut
against 0.2 µs, ``docs/performance.md``).

Example::

    >>> import numpy as np
    >>> from qeframe.plugin.interfaces import StateBatch
    >>> from qeframe_plugins.labelers.verified import VerifiedLabeler
    >>> bell0 = np.zeros(8); bell0[[0, 6]] = 2 ** -0.5        # (|00> + |11>)/sqrt(2) |0>
    >>> batch = StateBatch.build(np.outer(bell0, bell0)[None], -1, "unknown", pure=True)
    >>> out = VerifiedLabeler().label(batch)
    >>> out.labels.tolist(), out.provenance.tolist()
    ([[1, 1, 0]], [[2, 2, 4]])
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from qeframe import hookimpl
from qeframe.errors import QeframeError
from qeframe.plugin.interfaces import DropRule, LabelBatch, Labeler, Params, StateBatch
from qeframe.plugin.labels import ENTANGLED, PROVENANCE, SEPARABLE, UNKNOWN, provenance_code
from qeframe.quantum.cuts import cut_names
from qeframe.quantum.ops import PURE_TOL, purity
from qeframe.quantum.ppt import PPT_TOL, npt_mask, pt_min_eigenvalues_where


class GroundTruthConflictError(QeframeError, ValueError):
    """A cut that is NPT (hence entangled) although its construction label says separable."""


class VerifiedParams(Params):
    tol: float = Field(default=PPT_TOL, gt=0, description="A cut is NPT when lambda_min(rho^T_A) < -tol.")
    drop_unknown: bool = Field(
        default=True, description="Drop samples with a cut of unknown status (else label it -1 'unknown')."
    )


def npt_evidence(rho: np.ndarray, npt: np.ndarray) -> np.ndarray:
    """``lambda_min(rho^{T_A})`` where ``npt`` ``(N, n_cuts)`` is True, NaN elsewhere: ``(N, n_cuts)`` float64.

    Eigenvalues only for the flagged (state, cut) pairs, in chunks of states on all cores
    (:func:`qeframe.quantum.ppt.pt_min_eigenvalues_where`; no loop over samples).
    """
    return pt_min_eigenvalues_where(rho, npt)


class VerifiedLabeler(Labeler):
    """Certain labels only: NPT -> 1, construction label, pure PPT -> 0; samples with unknown cuts dropped."""

    name = "verified"
    description = "certain labels only: NPT -> entangled, construction, pure PPT -> separable; drops unknown"
    Params = VerifiedParams

    def label(self, batch: StateBatch) -> LabelBatch:
        rho = batch.rho
        truth = batch.ground_truth
        npt = npt_mask(rho, tol=self.params.tol)  # (N, n_cuts)
        conflict = npt & (truth == SEPARABLE)
        if conflict.any():
            self._raise_conflict(batch, conflict)
        known = truth != UNKNOWN
        pure = (purity(rho) > 1.0 - PURE_TOL)[:, None]

        labels = np.full(truth.shape, UNKNOWN, dtype=np.int8)
        provenance = np.full(truth.shape, provenance_code("unknown"), dtype=np.uint8)
        pure_ppt = ~npt & ~known & pure
        labels[pure_ppt] = SEPARABLE
        provenance[pure_ppt] = provenance_code("pure-ppt")
        by_construction = ~npt & known
        labels[by_construction] = truth[by_construction]
        provenance[by_construction] = batch.ground_truth_provenance[by_construction]
        labels[npt] = ENTANGLED
        provenance[npt] = provenance_code("npt")

        if self.params.drop_unknown:
            keep = ~(labels == UNKNOWN).any(axis=1)
        else:
            keep = np.ones(len(batch), dtype=bool)
        evidence = npt_evidence(rho, npt & keep[:, None])[keep]
        return LabelBatch(keep=keep, labels=labels[keep], provenance=provenance[keep], evidence=evidence)

    def drop_rule(self) -> DropRule | None:
        """With ``drop_unknown``: a sample not NPT on a cut of unknown ground truth, and not pure, is
        dropped (step 4) — the :class:`~qeframe.plugin.interfaces.DropRule` with this ``tol``."""
        return DropRule(tol=self.params.tol) if self.params.drop_unknown else None

    def _raise_conflict(self, batch: StateBatch, conflict: np.ndarray) -> None:
        sample, cut = (int(i) for i in np.argwhere(conflict)[0])
        names = cut_names(batch.n_qubits)
        prov = PROVENANCE[int(batch.ground_truth_provenance[sample, cut])]
        raise GroundTruthConflictError(
            f"verified labeler: sample {sample} is NPT on cut {names[cut]} (lambda_min < -{self.params.tol:g}) "
            f"but its ground truth says separable (provenance {prov!r}); {int(conflict.sum())} such cut(s) "
            "in the batch — the family's ground truth is wrong or tol is below the numerical noise"
        )


@hookimpl
def qeframe_register_labelers(register):
    """Register :class:`VerifiedLabeler`."""
    register(VerifiedLabeler)
