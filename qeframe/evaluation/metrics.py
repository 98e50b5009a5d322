"""Evaluation metrics: per-cut accuracy under two label conventions, PPT-cut detection, calibration.

Pure functions on arrays (no model, no files, no printing): predictions, labels and masks are
``(N, m)`` arrays over ``N`` samples and the ``m = 2**(n-1) - 1`` cuts of
:func:`qeframe.quantum.cuts.bipartitions` (big-endian qubit order). Predictions and truths are int8
in {1 entangled, 0 separable, -1 unknown / no answer}; provenance codes are uint8 indices of
:data:`qeframe.plugin.labels.PROVENANCE`. :mod:`qeframe.evaluation.evaluate` runs the predictors and
calls these; :mod:`qeframe.evaluation.tables` renders what they return.

Two label conventions give the truth ``t[i, j]`` of sample ``i`` on cut ``j``:

* ``correct``: ``ground_truth[i, j]`` where it is known (!= -1), else the dataset's label
  ``labels[i, j]`` (for test sets labelled by negativity: NPT -> entangled, PPT -> separable).
  Pairs whose truth is still -1 are excluded from the accuracy and counted as ``excluded``.
* ``paper``: as ``correct``, but every cut of a sample with ``meta['pptes']`` (Horodecki, UPB, Acín
  states) counts as entangled. The paper (Pawłowski, Krawczyk, arXiv:2210.07410, Tables II and
  III) labels UPB and Acín states entangled on every cut even though they are separable across
  every single cut; this convention reproduces its tables.

Accuracy of a predictor on cut ``j``: ``#{i : pred[i, j] == t[i, j]} / #{i : t[i, j] != -1}``
(a prediction of -1, a baseline's "no answer", counts as wrong); the mean is the mean over cuts of
these accuracies (the paper's ``1/m sum_j (TP_j + TN_j) / n``).

Besides the per-dataset and per-family blocks, ``ppt_cuts`` and ``npt_cuts`` restrict the
accuracy to the (sample, cut) pairs whose partial transpose is positive, resp. not positive
(:func:`qeframe.quantum.ppt.npt_mask`; Peres, PRL 77, 1413 (1996)): on NPT cuts the truth is
"entangled" for sure, on PPT cuts telling separable from PPT-entangled is the hard part.

Predictor rows: ``model`` is the network alone, entangled where ``sigmoid(logit) >
evaluation.threshold``; ``gated`` is the same network behind the prediction layer
(:mod:`qeframe.learn.prediction`) under the policy ``ppt_entangled = "model"``: entangled with proof
on NPT cuts and on PPT cuts a proof stage verified, the calibrated three-valued answer on the other
PPT cuts; ``gated-proof`` is the same output under the policy ``"proof"``: "entangled" on a PPT cut
only with a proof, unknown where the model alone would say entangled. Both rows are shown whatever
policy the experiment declares (the declared one is what ``classify`` answers). "Unknown" (-1)
counts as wrong in the accuracies, like a baseline's "no answer". ``ppt`` and the other baselines
follow.

PPT-cut detection (:func:`ppt_detection`, for every row, when the test set says how its labels are
known): on the PPT cuts whose label is *proved* (:func:`qeframe.plugin.labels.certified_mask`, the
same set for every row), ``recall`` = share of the proved-entangled PPT cuts answered entangled,
``fpr`` = share of the proved-separable PPT cuts answered entangled, ``abstention`` = share of all
PPT cuts answered unknown (-1), with the counts behind each. These are convention-free: they read
proved labels only.

Calibration (:func:`calibration_block`): expected calibration error and reliability bins of the raw
and the calibrated ``P(entangled)`` on the proved PPT cuts, with
:func:`qeframe.learn.prediction.expected_calibration_error` (``B = 15`` equal-width bins,
``ECE = sum_b (n_b / n) |mean(y in b) - mean(p in b)|``; Naeini, Cooper, Hauskrecht, AAAI 2015;
Guo, Pleiss, Sun, Weinberger, ICML 2017) and :func:`qeframe.learn.prediction.reliability_bins`,
the implementations that also fit the calibration.

``results.json`` is ``{test dataset: block}`` with the blocks of :func:`evaluate_arrays`::

    {test_dataset: {
        "paper" | "correct": {row: {"per_cut": [...], "mean": x, "counts": [...], "excluded": [...]}},
        "families": {family: {convention: {row: {...}}}},
        "ppt_cuts" | "npt_cuts": {convention: {row: {...}}},
        "ppt_detection": {row: {"recall": x, "fpr": x, "abstention": x, "n_ppt_entangled": k,
                                "n_ppt_separable": k, "n_ppt": k, "by_provenance": {...}}},
        "label_certainty": {"proved_share": x, "proved_share_per_cut": [...], "by_provenance": {...}},
        "calibration": {"n": k, "ece_raw": x, "ece_calibrated": x, "reliability_raw": {...},
                        "reliability_calibrated": {...}},          # with a calibrated gated model only
        "cuts": [...], "n_samples": N}}

Example, a model that calls every cut of a GHZ state and of a product state entangled::

    >>> import numpy as np
    >>> pred = np.ones((2, 3), np.int8)
    >>> truth = np.array([[1, 1, 1], [0, 0, -1]], np.int8)
    >>> accuracy_block(pred, truth)
    {'per_cut': [0.5, 0.5, 1.0], 'mean': 0.6666666666666666, 'counts': [2, 2, 1], 'excluded': [0, 0, 1]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.plugin.labels import PROOF_PROVENANCE, PROVENANCE, certified_mask
from qeframe.quantum.ppt import npt_mask

if TYPE_CHECKING:
    from qeframe.learn.arrays import DatasetArrays

#: The label conventions, in the order every table shows them.
CONVENTIONS: tuple[str, ...] = ("paper", "correct")
#: Row (predictor) names that ``results.json`` uses for the network and the gated network.
MODEL_ROW = "model"
GATED_ROW = "gated"
#: The same gated model under the policy ``ppt_entangled = "proof"`` (only proofs say "entangled"
#: on a PPT cut; the model's unproved "entangled" is unknown).
PROOF_ROW = "gated-proof"
#: Rows that come from the model behind the prediction layer.
GATED_ROWS: tuple[str, ...] = (GATED_ROW, PROOF_ROW)
#: The always-present baseline: entangled iff the cut is NPT.
PPT_ROW = "ppt"
#: Answer codes and names (as in :mod:`qeframe.plugin.labels`).
ANSWERS: tuple[tuple[int, str], ...] = ((1, "entangled"), (0, "separable"), (-1, "unknown"))


def truth_labels(arrays: DatasetArrays, convention: str) -> np.ndarray:
    """The per-cut truth ``(N, m)`` int8 of a dataset under ``convention`` (module docstring).

    ``arrays`` is read for ``labels`` and ``ground_truth`` (``(N, m)`` int8), ``provenance``
    (``(N, m)`` uint8 or ``None``) and ``pptes`` (``(N,)`` bool); a
    :class:`~qeframe.learn.train.DatasetArrays` has them all. Under ``correct`` a label whose
    provenance is ``paper-convention`` (a statement of the paper's convention, not a fact) is
    unknown (-1).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    gt = np.asarray(arrays.ground_truth, np.int8)
    truth = np.where(gt != -1, gt, np.asarray(arrays.labels, np.int8)).astype(np.int8)
    if convention == "correct" and arrays.provenance is not None:
        # a label that only states the paper's convention (e.g. max-rank reduced states called
        # entangled) is not a fact: unknown under the correct convention
        truth[np.asarray(arrays.provenance) == PROVENANCE.index("paper-convention")] = -1
    if convention == "paper":
        truth[np.asarray(arrays.pptes, bool)] = 1
    return truth


def accuracy_block(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Any]:
    """Per-cut accuracy of ``pred`` against ``truth`` (both ``(N, m)`` int8) over the pairs in ``mask``
    (``(N, m)`` bool, default all).

    Returns ``{"per_cut": [m floats or None], "mean": float or None, "counts": [m ints],
    "excluded": [m ints]}``; ``counts`` are the pairs with known truth, ``excluded`` those with
    truth -1; a cut with no counted pair has accuracy ``None`` and is left out of the mean.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    inside = np.ones(truth.shape, bool) if mask is None else np.asarray(mask, bool)
    known = inside & (truth != -1)
    counts = known.sum(axis=0)
    correct = ((pred == truth) & known).sum(axis=0)
    per_cut = [float(c) / float(n) if n > 0 else None for c, n in zip(correct, counts)]
    valid = [a for a in per_cut if a is not None]
    return {
        "per_cut": per_cut,
        "mean": float(np.mean(valid)) if valid else None,
        "counts": [int(n) for n in counts],
        "excluded": [int(e) for e in (inside & (truth == -1)).sum(axis=0)],
    }


def label_certainty(provenance: np.ndarray) -> dict[str, Any]:
    """How the test labels are known, from their ``(N, m)`` uint8 provenance codes: the share of
    (sample, cut) labels that are proved (:data:`qeframe.plugin.labels.PROOF_PROVENANCE`), overall
    and per cut, and the count per provenance name."""
    provenance = np.asarray(provenance)
    proved_codes = [PROVENANCE.index(name) for name in PROOF_PROVENANCE]
    proved = np.isin(provenance, proved_codes)
    codes, counts = np.unique(provenance, return_counts=True)
    return {
        "proved_share": float(proved.mean()) if proved.size else None,
        "proved_share_per_cut": [float(x) for x in proved.mean(axis=0)] if proved.size else [],
        "by_provenance": {PROVENANCE[int(c)]: int(k) for c, k in zip(codes, counts)},
    }


def _rate(hits: np.ndarray, inside: np.ndarray) -> float | None:
    n = int(inside.sum())
    return float((hits & inside).sum()) / n if n else None


def ppt_detection(
    pred: np.ndarray, labels: np.ndarray, provenance: np.ndarray | None, npt: np.ndarray
) -> dict[str, Any]:
    """The three numbers of one predictor on the PPT cuts (``~npt``; module docstring).

    ``pred``, ``labels``: ``(N, m)`` int8; ``provenance``: ``(N, m)`` uint8 codes of ``labels``
    (``None``: nothing is proved, so recall and FPR are ``None``); ``npt``: ``(N, m)`` bool.
    Returns recall on proved-entangled PPT cuts, false-positive rate on proved-separable PPT cuts
    and abstention (answer -1) on all PPT cuts, their counts, and ``by_provenance``: per proof
    behind the label and per truth, ``n`` and the share answered entangled / separable / unknown.
    """
    pred = np.asarray(pred)
    ppt = ~np.asarray(npt, bool)
    proved = certified_mask(labels, provenance) & ppt
    labels = np.asarray(labels)
    ent, sep = proved & (labels == 1), proved & (labels == 0)
    by_provenance: dict[str, dict[str, Any]] = {}
    if proved.any():
        codes = np.asarray(provenance)
        for code in np.unique(codes[proved]):
            for truth, name in ((1, "entangled"), (0, "separable")):
                cell = proved & (codes == code) & (labels == truth)
                if cell.any():
                    by_provenance.setdefault(PROVENANCE[int(code)], {})[name] = {
                        "n": int(cell.sum()),
                        **{f"answered_{a}": _rate(pred == v, cell) for v, a in ANSWERS},
                    }
    return {
        "recall": _rate(pred == 1, ent),
        "fpr": _rate(pred == 1, sep),
        "abstention": _rate(pred == -1, ppt),
        "n_ppt_entangled": int(ent.sum()),
        "n_ppt_separable": int(sep.sum()),
        "n_ppt": int(ppt.sum()),
        "by_provenance": by_provenance,
    }


def calibration_block(
    labels: np.ndarray,
    provenance: np.ndarray | None,
    raw: np.ndarray,
    calibrated: np.ndarray,
    npt: np.ndarray,
) -> dict[str, Any]:
    """ECE and reliability bins of the raw and the calibrated ``P(entangled)`` on the proved PPT cuts.

    ``labels``: ``(N, m)`` int8; ``provenance``: ``(N, m)`` uint8 or ``None``; ``raw``,
    ``calibrated``: ``(N, m)`` float probabilities; ``npt``: ``(N, m)`` bool. Returns ``{"n": proved
    PPT cuts, "ece_raw", "ece_calibrated": float or None, "reliability_raw",
    "reliability_calibrated": bins}`` (module docstring).
    """
    from qeframe.learn.prediction import expected_calibration_error, reliability_bins

    mask = certified_mask(labels, provenance) & ~np.asarray(npt, bool)
    y = (np.asarray(labels)[mask] == 1).astype(int)
    raw, calibrated = np.asarray(raw)[mask], np.asarray(calibrated)[mask]
    return {
        "n": int(mask.sum()),
        "ece_raw": expected_calibration_error(raw, y),
        "ece_calibrated": expected_calibration_error(calibrated, y),
        "reliability_raw": reliability_bins(raw, y),
        "reliability_calibrated": reliability_bins(calibrated, y),
    }


def _ordered_unique(values: np.ndarray) -> list[str]:
    _, first = np.unique(values, return_index=True)
    return [str(values[i]) for i in sorted(first)]


def evaluate_arrays(
    arrays: DatasetArrays, predictions: Mapping[str, np.ndarray], npt: np.ndarray | None = None
) -> dict[str, Any]:
    """The results block of one test dataset for the given predictions ``{row: (N, m) int8}``.

    ``arrays`` is a :class:`~qeframe.learn.train.DatasetArrays` (``rho`` is read only when ``npt``
    is omitted); ``npt`` is its ``(N, m)`` bool NPT mask (computed with :func:`npt_mask` when
    omitted). Families are listed in the order of their first sample. Returns the block of
    ``results.json`` (module docstring) without ``calibration``.
    """
    if npt is None:
        npt = npt_mask(arrays.rho)
    truths = {c: truth_labels(arrays, c) for c in CONVENTIONS}
    block: dict[str, Any] = {"cuts": list(arrays.cuts), "n_samples": len(arrays)}
    for conv, truth in truths.items():
        block[conv] = {row: accuracy_block(pred, truth) for row, pred in predictions.items()}
    families: dict[str, Any] = {}
    family = np.asarray(arrays.family)
    for fam in _ordered_unique(family):
        rows = (family == fam)[:, None] & np.ones((1, arrays.n_cuts), bool)
        families[fam] = {
            conv: {row: accuracy_block(pred, truth, rows) for row, pred in predictions.items()}
            for conv, truth in truths.items()
        }
    block["families"] = families
    if arrays.provenance is not None:
        block["label_certainty"] = label_certainty(arrays.provenance)
        block["ppt_detection"] = {
            row: ppt_detection(pred, arrays.labels, arrays.provenance, npt)
            for row, pred in predictions.items()
        }
    for key, mask in (("ppt_cuts", ~npt), ("npt_cuts", npt)):
        block[key] = {
            conv: {row: accuracy_block(pred, truth, mask) for row, pred in predictions.items()}
            for conv, truth in truths.items()
        }
    return block
