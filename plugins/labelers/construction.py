"""``construction`` labeler: the labels the family's construction knows, nothing more.

Per sample and cut: label = ``ground_truth`` and provenance = ``ground_truth_provenance`` of the
:class:`~qeframe.plugin.interfaces.StateBatch`; where the ground truth is unknown (-1) the provenance is
``unknown`` (code 0) whatever the family wrote. Every sample is kept; there is no numerical
evidence (NaN). Use it for test sets whose truth is analytic (the PPTES families) and to compare
other labelers against the construction.
"""

from __future__ import annotations

import numpy as np

from qeframe import hookimpl
from qeframe.plugin.interfaces import LabelBatch, Labeler, Params, StateBatch
from qeframe.plugin.labels import UNKNOWN, provenance_code


class ConstructionLabeler(Labeler):
    """Labels = the family's ground truth with its provenance; keeps every sample."""

    name = "construction"
    description = "the family's ground truth with its provenance (unknown stays -1); keeps every sample"
    Params = Params

    def label(self, batch: StateBatch) -> LabelBatch:
        labels = batch.ground_truth.astype(np.int8, copy=True)
        provenance = np.where(
            labels == UNKNOWN, provenance_code("unknown"), batch.ground_truth_provenance
        ).astype(np.uint8)
        return LabelBatch(
            keep=np.ones(len(batch), dtype=bool),
            labels=labels,
            provenance=provenance,
            evidence=np.full(labels.shape, np.nan),
        )


@hookimpl
def qeframe_register_labelers(register):
    """Register :class:`ConstructionLabeler`."""
    register(ConstructionLabeler)
