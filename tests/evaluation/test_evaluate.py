"""Evaluation: the two label conventions, the PPT baseline row, PPT/NPT-cut accuracies, tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import train_plugins
from train_plugins import synthetic_arrays

from qeframe import hookimpl
from qeframe.config.specs import EvaluationSpec
from qeframe.evaluation.evaluate import evaluate
from qeframe.evaluation.metrics import CONVENTIONS, accuracy_block, evaluate_arrays, truth_labels
from qeframe.evaluation.tables import print_results, results_markdown
from qeframe.learn.arrays import DatasetArrays
from qeframe.plugin.interfaces import KINDS
from qeframe.plugin.registry import Registry
from qeframe.quantum.ops import batch_kron, pure_density
from qeframe.quantum.ppt import npt_mask


def _shifts_upb_state() -> np.ndarray:
    """The 3-qubit 'Shifts' UPB bound-entangled state (Bennett et al. 1999): (I - P_UPB) / 4.

    PPT on every cut and separable across every single cut, yet entangled."""
    zero, one = np.array([1, 0], complex), np.array([0, 1], complex)
    plus, minus = (zero + one) / np.sqrt(2), (zero - one) / np.sqrt(2)
    vecs = [(zero, one, plus), (one, plus, zero), (plus, zero, one), (minus, minus, minus)]
    psi = np.stack([np.kron(np.kron(a, b), c) for a, b, c in vecs])
    return (np.eye(8) - pure_density(psi).sum(0)) / 4


def _hand_made() -> DatasetArrays:
    zero = np.array([[1, 0]], complex)
    product = pure_density(batch_kron(zero, zero, zero))[0]
    ghz = np.zeros(8, complex)
    ghz[[0, 7]] = 1 / np.sqrt(2)
    upb = _shifts_upb_state()
    rho = np.stack([product, pure_density(ghz[None])[0], upb, upb, np.eye(8) / 8])
    ground_truth = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0], [-1, -1, -1]], np.int8)
    labels = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0], [0, -1, 0]], np.int8)
    return DatasetArrays(
        name="hand",
        rho=rho,
        labels=labels,
        ground_truth=ground_truth,
        family=np.array(["pure", "pure", "upb", "upb", "noise"]),
        pptes=np.array([False, False, True, True, False]),
    )


def test_upb_state_is_ppt_on_every_cut():
    assert not npt_mask(_shifts_upb_state()[None]).any()


def test_truth_conventions():
    arrays = _hand_made()
    correct = truth_labels(arrays, "correct")
    paper = truth_labels(arrays, "paper")
    assert correct[2:4].tolist() == [[0, 0, 0]] * 2  # UPB: separable across every cut
    assert paper[2:4].tolist() == [[1, 1, 1]] * 2  # the paper calls every cut entangled
    assert correct[4].tolist() == [0, -1, 0] == paper[4].tolist()  # unknown truth falls back to the label
    assert (correct[:2] == paper[:2]).all()


def test_conventions_and_ppt_row_on_hand_made_batch():
    arrays = _hand_made()
    model = np.array([[0, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1], [0, 0, 0]], np.int8)  # calls UPB entangled
    npt = npt_mask(arrays.rho)
    assert npt.tolist() == [[False] * 3, [True] * 3, [False] * 3, [False] * 3, [False] * 3]
    block = evaluate_arrays(arrays, {"model": model, "ppt": npt.astype(np.int8)}, npt)
    # counts: the unknown pair (sample 4, cut 2|13) is excluded under both conventions
    for conv in CONVENTIONS:
        assert block[conv]["model"]["counts"] == [5, 4, 5]
        assert block[conv]["model"]["excluded"] == [0, 1, 0]
    # `correct`: the model is wrong on the 2 UPB samples, PPT is right everywhere
    assert block["correct"]["model"]["per_cut"] == pytest.approx([3 / 5, 2 / 4, 3 / 5])
    assert block["correct"]["ppt"]["per_cut"] == pytest.approx([1.0, 1.0, 1.0])
    # `paper`: UPB counts as entangled -> the model is right, PPT misses both UPB states
    assert block["paper"]["model"]["per_cut"] == pytest.approx([1.0, 1.0, 1.0])
    assert block["paper"]["ppt"]["per_cut"] == pytest.approx([3 / 5, 2 / 4, 3 / 5])
    assert block["paper"]["ppt"]["mean"] == pytest.approx(np.mean([0.6, 0.5, 0.6]))
    # per family
    assert block["families"]["upb"]["paper"]["ppt"]["mean"] == 0.0
    assert block["families"]["upb"]["correct"]["ppt"]["mean"] == 1.0
    assert block["families"]["pure"]["correct"]["model"]["counts"] == [2, 2, 2]
    assert list(block["families"]) == ["pure", "upb", "noise"]
    # NPT cuts: only the GHZ state; PPT cuts: the other 4 samples
    assert block["npt_cuts"]["paper"]["ppt"]["counts"] == [1, 1, 1]
    assert block["npt_cuts"]["paper"]["ppt"]["mean"] == 1.0
    assert block["ppt_cuts"]["paper"]["ppt"]["counts"] == [4, 3, 4]
    assert block["ppt_cuts"]["correct"]["ppt"]["mean"] == 1.0
    json.dumps(block, allow_nan=False)


def test_accuracy_block_without_counted_pairs():
    out = accuracy_block(np.zeros((2, 3), np.int8), np.full((2, 3), -1, np.int8))
    assert out == {"per_cut": [None, None, None], "mean": None, "counts": [0, 0, 0], "excluded": [2, 2, 2]}
    # a baseline's "no answer" (-1) counts as wrong
    out = accuracy_block(np.array([[-1, 1, 0]], np.int8), np.array([[1, 1, 0]], np.int8))
    assert out["per_cut"] == [0.0, 1.0, 1.0]


def _baseline_plugin():
    base = KINDS["baseline"]

    class Always(base):  # type: ignore[misc, valid-type]
        name = "test-always"
        description = "test-only: every cut entangled"

        def predict(self, rho):
            return np.ones((rho.shape[0], 3), np.int8)

    class Plugin:
        @hookimpl
        def qeframe_register_baselines(self, register):
            register(Always)

    return Plugin()


@pytest.mark.skipif("baseline" not in KINDS, reason="no baseline plugin kind")
def test_evaluate_with_model_and_baselines():
    reg = Registry.load(entry_points=False, plugins=[("tp", train_plugins), ("b", _baseline_plugin())])
    arrays = synthetic_arrays("toy", 40, seed=0)
    torch.manual_seed(0)
    model = reg.create("backbone", "test-mlp", {}).build(3)
    results = evaluate(
        [arrays, _hand_made()],
        model=model,
        evaluation=EvaluationSpec(baselines=["ppt", "test-always"]),
        registry=reg,
    )
    assert list(results) == ["toy", "hand"]
    for block in results.values():
        for conv in CONVENTIONS:
            assert list(block[conv]) == ["model", "ppt", "test-always"]
    # the toy set: product states are PPT, noisy GHZ states NPT -> the PPT row is exact
    assert results["toy"]["correct"]["ppt"]["mean"] == 1.0
    assert results["toy"]["correct"]["test-always"]["mean"] == pytest.approx(0.5)
    json.dumps(results, allow_nan=False)
    md = results_markdown(results, "Results")
    assert "convention 'paper'" in md and "convention 'correct'" in md
    assert "1\\|23" in md  # cut names escaped inside markdown tables
    # test sets and their families are rows, predictors are columns
    assert "| test dataset | model | ppt | test-always |" in md
    assert "\n| hand |" in md and "\n| ↳ upb |" in md and "\n| toy |" in md


def test_ppt_row_always_present_and_tables_print():
    from rich.console import Console

    results = evaluate([_hand_made()], evaluation=EvaluationSpec(baselines=[]))
    assert list(results["hand"]["paper"]) == ["ppt"]
    console = Console(record=True, width=200)
    print_results(results, console)
    text = console.export_text()
    assert "Mean per-cut accuracy (%), convention 'paper'" in text and "ppt" in text


def test_label_certainty_counts_proved_labels_and_reaches_the_tables():
    from qeframe.evaluation.metrics import evaluate_arrays, label_certainty
    from qeframe.evaluation.tables import results_markdown
    from qeframe.plugin.labels import provenance_code

    codes = np.array(
        [
            [provenance_code("npt"), provenance_code("rank"), provenance_code("ppt-assumed-separable")],
            [provenance_code("construction"), provenance_code("unknown"), provenance_code("dps2")],
        ],
        np.uint8,
    )
    cert = label_certainty(codes)
    assert cert["proved_share"] == pytest.approx(4 / 6)
    assert cert["proved_share_per_cut"] == [1.0, 0.5, 0.5]
    assert cert["by_provenance"] == {
        "unknown": 1,
        "construction": 1,
        "npt": 1,
        "ppt-assumed-separable": 1,
        "rank": 1,
        "dps2": 1,
    }

    rho = np.repeat(np.eye(8, dtype=complex)[None] / 8, 2, axis=0)
    arrays = DatasetArrays("t", rho, np.zeros((2, 3), np.int8), provenance=codes)
    block = evaluate_arrays(arrays, {"ppt": np.zeros((2, 3), np.int8)})
    assert block["label_certainty"]["proved_share"] == pytest.approx(4 / 6)
    text = results_markdown({"t": block})
    assert "How the test labels are known" in text and "| t | 66.67 |" in text
    # without provenance (e.g. arrays made in memory) the table is simply absent
    plain = evaluate_arrays(
        DatasetArrays("u", rho, np.zeros((2, 3), np.int8)), {"ppt": np.zeros((2, 3), np.int8)}
    )
    assert "label_certainty" not in plain


def test_paper_convention_labels_are_not_facts_under_the_correct_convention():
    """The max-rank reduced states are called entangled by the paper's convention only: the
    `correct` truth treats such labels as unknown, the `paper` truth keeps them."""
    from types import SimpleNamespace

    from qeframe.evaluation.metrics import truth_labels
    from qeframe.plugin.labels import provenance_code

    guess, npt = provenance_code("paper-convention"), provenance_code("npt")
    rho = np.repeat(np.eye(8, dtype=complex)[None] / 8, 2, axis=0)
    store_like = SimpleNamespace(
        name="t",
        rho=rho,
        labels=np.array([[1, 1, 1], [1, 0, 0]], np.int8),
        provenance=np.array([[guess, guess, npt], [npt, npt, npt]], np.uint8),
        ground_truth=np.array([[1, 1, 1], [-1, -1, -1]], np.int8),
        ground_truth_provenance=np.array([[guess, guess, npt], [0, 0, 0]], np.uint8),
        family=np.array(["max-rank", "other"]),
        meta={"pptes": np.array([True, False])},
        cuts=["1|23", "2|13", "3|12"],
    )
    arrays = DatasetArrays.from_dataset(store_like)
    assert arrays.ground_truth.tolist() == [[-1, -1, 1], [-1, -1, -1]]
    assert truth_labels(arrays, "correct").tolist() == [[-1, -1, 1], [1, 0, 0]]
    assert truth_labels(arrays, "paper").tolist() == [[1, 1, 1], [1, 0, 0]]
