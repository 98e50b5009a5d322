"""Evaluation metrics (:mod:`qeframe.evaluation.metrics`): closed-form small cases and invariants.

Per-cut accuracy, the two label conventions, recall / false-positive rate / abstention on proved
PPT cuts, the calibration block (ECE and reliability bins) and the decompositions that tie the
blocks of one test set together (families and PPT/NPT cuts partition the counted pairs).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qeframe.evaluation import metrics
from qeframe.evaluation.metrics import (
    CONVENTIONS,
    accuracy_block,
    calibration_block,
    evaluate_arrays,
    ppt_detection,
    truth_labels,
)
from qeframe.learn.arrays import DatasetArrays
from qeframe.plugin.labels import PROOF_PROVENANCE, provenance_code

N_CUTS = 3
CODE = {name: provenance_code(name) for name in ("construction", "npt", "ppt-assumed-separable", "analytic")}


@st.composite
def _pairs(draw):
    """``(pred, truth, mask)``: ``(N, 3)`` int8, int8 and bool arrays of one shape."""
    shape = (draw(st.integers(1, 12)), N_CUTS)
    cell = st.sampled_from([-1, 0, 1])
    pred = draw(hnp.arrays(np.int8, shape, elements=cell))
    truth = draw(hnp.arrays(np.int8, shape, elements=cell))
    return pred, truth, draw(hnp.arrays(bool, shape))


def test_module_doctest():
    import doctest

    assert doctest.testmod(metrics).failed == 0


# ------------------------------------------------------------------------------------ accuracy


def test_accuracy_block_closed_form_with_mask():
    pred = np.array([[1, 0, 1], [0, 0, 1], [1, 1, -1], [0, 1, 0]], np.int8)
    truth = np.array([[1, 0, 0], [1, -1, 1], [1, 1, 1], [0, 0, -1]], np.int8)
    mask = np.array([[1, 1, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], bool)
    out = accuracy_block(pred, truth, mask)
    # cut 0: samples 0,1,2 counted (3 is masked) -> 1,0,1 right = 2/3
    # cut 1: samples 0,3 counted (1 unknown, 2 masked) -> right, wrong = 1/2
    # cut 2: samples 0,1,2 counted (3 unknown) -> wrong, right, wrong (-1 answer) = 1/3
    assert out["per_cut"] == pytest.approx([2 / 3, 1 / 2, 1 / 3])
    assert out["mean"] == pytest.approx((2 / 3 + 1 / 2 + 1 / 3) / 3)
    assert out["counts"] == [3, 2, 3]
    assert out["excluded"] == [0, 1, 1]


def test_accuracy_mean_skips_cuts_without_counted_pairs():
    pred = np.array([[1, 1, 1]], np.int8)
    truth = np.array([[1, -1, 0]], np.int8)
    out = accuracy_block(pred, truth)
    assert out["per_cut"] == [1.0, None, 0.0]
    assert out["mean"] == 0.5  # over the two cuts with a counted pair, not over three


@settings(max_examples=60, deadline=None)
@given(_pairs())
def test_accuracy_block_matches_a_direct_count(case):
    pred, truth, mask = case
    out = accuracy_block(pred, truth, mask)
    for j in range(N_CUTS):
        counted = [i for i in range(len(truth)) if mask[i, j] and truth[i, j] != -1]
        assert out["counts"][j] == len(counted)
        assert out["excluded"][j] == sum(1 for i in range(len(truth)) if mask[i, j] and truth[i, j] == -1)
        if counted:
            assert out["per_cut"][j] == pytest.approx(
                sum(pred[i, j] == truth[i, j] for i in counted) / len(counted)
            )
        else:
            assert out["per_cut"][j] is None
    assert [c + e for c, e in zip(out["counts"], out["excluded"])] == mask.sum(axis=0).tolist()
    valid = [a for a in out["per_cut"] if a is not None]
    assert (out["mean"] is None) == (not valid)
    if valid:
        assert 0.0 <= out["mean"] <= 1.0


@settings(max_examples=40, deadline=None)
@given(_pairs())
def test_the_truth_itself_scores_one_and_its_complement_zero(case):
    _, truth, mask = case
    perfect = accuracy_block(truth, truth, mask)
    assert all(a in (None, 1.0) for a in perfect["per_cut"])
    flipped = np.where(truth == -1, -1, 1 - truth).astype(np.int8)
    assert all(a in (None, 0.0) for a in accuracy_block(flipped, truth, mask)["per_cut"])


# --------------------------------------------------------------------------------- conventions


@st.composite
def _label_sets(draw):
    n = draw(st.integers(1, 10))
    shape = (n, N_CUTS)
    cell = st.sampled_from([-1, 0, 1])
    codes = st.sampled_from(
        [provenance_code(p) for p in ("construction", "npt", "paper-convention", "unknown")]
    )
    return {
        "labels": draw(hnp.arrays(np.int8, shape, elements=cell)),
        "ground_truth": draw(hnp.arrays(np.int8, shape, elements=cell)),
        "provenance": draw(hnp.arrays(np.uint8, shape, elements=codes)),
        "pptes": draw(hnp.arrays(bool, (n,))),
    }


@settings(max_examples=60, deadline=None)
@given(_label_sets())
def test_conventions_differ_only_where_documented(fields):
    arrays = DatasetArrays("t", np.zeros((len(fields["labels"]), 8, 8), complex), **fields)
    correct, paper = truth_labels(arrays, "correct"), truth_labels(arrays, "paper")
    base = np.where(arrays.ground_truth != -1, arrays.ground_truth, arrays.labels)
    stated = arrays.provenance == provenance_code("paper-convention")
    # correct: ground truth where known, else the label; labels that only state the paper's convention unknown
    assert (correct == np.where(stated, -1, base)).all()
    # paper: every cut of a PPT-entangled state entangled; elsewhere ground truth, else the label
    assert (paper[arrays.pptes] == 1).all()
    assert (paper[~arrays.pptes] == base[~arrays.pptes]).all()


def test_unknown_convention_is_refused():
    arrays = DatasetArrays("t", np.zeros((1, 8, 8), complex), np.zeros((1, 3), np.int8))
    with pytest.raises(ValueError, match="paper, correct"):
        truth_labels(arrays, "other")


# ------------------------------------------------------------------------------ PPT detection


def test_ppt_detection_closed_form():
    # 4 samples x 3 cuts; NPT: the whole first row; labels proved by construction/analytic except
    # one assumed-separable label (not a proof) and one unknown label.
    npt = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]], bool)
    labels = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0], [0, -1, 1]], np.int8)
    prov = np.full((4, 3), CODE["construction"], np.uint8)
    prov[2, 2] = CODE["ppt-assumed-separable"]
    prov[3, 2] = CODE["analytic"]
    pred = np.array([[1, 1, 1], [1, -1, 0], [1, 0, -1], [0, -1, 1]], np.int8)
    out = ppt_detection(pred, labels, prov, npt)
    # proved PPT entangled: (1,0) (1,1) (3,2) -> answered entangled at (1,0), (3,2)
    assert out["n_ppt_entangled"] == 3 and out["recall"] == pytest.approx(2 / 3)
    # proved PPT separable: (1,2) (2,0) (2,1) (3,0) -> entangled only at (2,0)
    assert out["n_ppt_separable"] == 4 and out["fpr"] == pytest.approx(1 / 4)
    # all 9 PPT cuts, unknown answers at (1,1) (2,2) (3,1)
    assert out["n_ppt"] == 9 and out["abstention"] == pytest.approx(3 / 9)
    by = out["by_provenance"]
    assert by["analytic"] == {
        "entangled": {"n": 1, "answered_entangled": 1.0, "answered_separable": 0.0, "answered_unknown": 0.0}
    }
    assert by["construction"]["entangled"]["n"] == 2 and by["construction"]["separable"]["n"] == 4
    assert "ppt-assumed-separable" not in by


def test_ppt_detection_without_provenance_has_no_recall_or_fpr():
    npt = np.zeros((2, 3), bool)
    out = ppt_detection(np.full((2, 3), -1, np.int8), np.ones((2, 3), np.int8), None, npt)
    assert out["recall"] is None and out["fpr"] is None and out["n_ppt_entangled"] == 0
    assert out["abstention"] == 1.0 and out["n_ppt"] == 6 and out["by_provenance"] == {}


@st.composite
def _detection_cases(draw):
    n = draw(st.integers(1, 10))
    shape = (n, N_CUTS)
    return (
        draw(hnp.arrays(np.int8, shape, elements=st.sampled_from([-1, 0, 1]))),
        draw(hnp.arrays(np.int8, shape, elements=st.sampled_from([-1, 0, 1]))),
        draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from(sorted(CODE.values())))),
        draw(hnp.arrays(bool, shape)),
    )


@settings(max_examples=60, deadline=None)
@given(_detection_cases())
def test_ppt_detection_invariants(case):
    pred, labels, prov, npt = case
    out = ppt_detection(pred, labels, prov, npt)
    assert out["n_ppt"] == int((~npt).sum())
    assert out["n_ppt_entangled"] + out["n_ppt_separable"] <= out["n_ppt"]
    for key, count in (("recall", "n_ppt_entangled"), ("fpr", "n_ppt_separable"), ("abstention", "n_ppt")):
        assert (out[key] is None) == (out[count] == 0)
        assert out[key] is None or 0.0 <= out[key] <= 1.0
    # the proof cells partition the proved PPT cuts, and their three answer shares add up to 1
    cells = [c for by_truth in out["by_provenance"].values() for c in by_truth.values()]
    assert sum(c["n"] for c in cells) == out["n_ppt_entangled"] + out["n_ppt_separable"]
    for c in cells:
        assert c["answered_entangled"] + c["answered_separable"] + c["answered_unknown"] == pytest.approx(1.0)
    assert set(out["by_provenance"]) <= set(PROOF_PROVENANCE)
    # the labels themselves, answered on every cut: recall 1, no false positive, no abstention
    oracle = ppt_detection(np.where(labels == -1, 0, labels).astype(np.int8), labels, prov, npt)
    assert (
        oracle["recall"] in (None, 1.0)
        and oracle["fpr"] in (None, 0.0)
        and oracle["abstention"] in (None, 0.0)
    )


# -------------------------------------------------------------------------------- calibration


def test_calibration_block_closed_form():
    # raw p = 1 everywhere (one bin: ECE = 1 - entangled share), calibrated p = 0.4 = the share (ECE 0)
    labels = np.array([[1, 0, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1]], np.int8)[:, :3]
    prov = np.full(labels.shape, CODE["construction"], np.uint8)
    prov[2] = CODE["ppt-assumed-separable"]  # not proved: left out
    npt = np.zeros(labels.shape, bool)
    npt[1, 2] = True  # NPT: left out
    # counted: row 0 (1, 0, 0), row 1 (1, 0) -> 5 cuts, 2 entangled
    raw = np.ones(labels.shape)
    calibrated = np.full(labels.shape, 0.4)
    out = calibration_block(labels, prov, raw, calibrated, npt)
    assert out["n"] == 5
    assert out["ece_raw"] == pytest.approx(1 - 2 / 5)
    assert out["ece_calibrated"] == pytest.approx(0.0, abs=1e-12)
    assert sum(out["reliability_raw"]["count"]) == 5 and out["reliability_raw"]["count"][-1] == 5
    assert out["reliability_calibrated"]["frequency"][6] == pytest.approx(2 / 5)  # 0.4 * 15 = 6


def test_calibration_block_without_proved_cuts():
    labels = np.ones((2, 3), np.int8)
    out = calibration_block(labels, None, np.full((2, 3), 0.7), np.full((2, 3), 0.6), np.zeros((2, 3), bool))
    assert out["n"] == 0 and out["ece_raw"] is None and out["ece_calibrated"] is None


# ------------------------------------------------------------------------ one test set's block


@st.composite
def _test_sets(draw):
    n = draw(st.integers(2, 10))
    shape = (n, N_CUTS)
    cell = st.sampled_from([-1, 0, 1])
    arrays = DatasetArrays(
        "t",
        np.zeros((n, 8, 8), complex),  # not read: the NPT mask is given
        labels=draw(hnp.arrays(np.int8, shape, elements=cell)),
        ground_truth=draw(hnp.arrays(np.int8, shape, elements=cell)),
        family=np.array(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))),
        pptes=draw(hnp.arrays(bool, (n,))),
        provenance=draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from(sorted(CODE.values())))),
    )
    preds = {
        "model": draw(hnp.arrays(np.int8, shape, elements=cell)),
        "ppt": draw(hnp.arrays(np.int8, shape, elements=cell)),
    }
    return arrays, preds, draw(hnp.arrays(bool, shape))


@settings(max_examples=40, deadline=None)
@given(_test_sets())
def test_families_and_cut_types_partition_the_counted_pairs(case):
    arrays, preds, npt = case
    block = evaluate_arrays(arrays, preds, npt)
    assert block["n_samples"] == len(arrays) and block["cuts"] == ["1|23", "2|13", "3|12"]
    assert list(block["families"]) == list(dict.fromkeys(arrays.family.tolist()))
    for conv in CONVENTIONS:
        for row in preds:
            whole = block[conv][row]
            parts = [block["families"][f][conv][row] for f in block["families"]]
            halves = [block[k][conv][row] for k in ("ppt_cuts", "npt_cuts")]
            for split in (parts, halves):
                for j in range(N_CUTS):
                    assert sum(p["counts"][j] for p in split) == whole["counts"][j]
                    assert sum(p["excluded"][j] for p in split) == whole["excluded"][j]
                    # right answers add up: accuracy x count over the parts = accuracy x count overall
                    right = sum((p["per_cut"][j] or 0.0) * p["counts"][j] for p in split)
                    assert right == pytest.approx((whole["per_cut"][j] or 0.0) * whole["counts"][j])
    assert set(block["ppt_detection"]) == set(preds)
    assert (
        block["label_certainty"]["by_provenance"] and 0.0 <= block["label_certainty"]["proved_share"] <= 1.0
    )
