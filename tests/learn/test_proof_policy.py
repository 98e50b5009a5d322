"""The policy ``prediction.ppt_entangled = "proof"``: on a PPT cut only a verified proof answers
"entangled"; where the model alone would, the answer is unknown (docs/beyond-ppt.md, section 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import train_plugins
from hypothesis import example, given, settings
from hypothesis import strategies as st
from qeframe_plugins.labelers import negativity
from train_plugins import synthetic_arrays

from qeframe.config.specs import EvaluationSpec, PredictionSpec, parse_registry
from qeframe.errors import QeframeError, SpecError
from qeframe.evaluation.evaluate import GATED_ROW, evaluate
from qeframe.evaluation.metrics import PROOF_ROW
from qeframe.evaluation.tables import comparison_tables, results_markdown
from qeframe.learn.prediction import (
    PPT_ENTANGLED_POLICIES,
    Calibration,
    PredictionConfig,
    check_policy,
    fit_prediction,
    load_prediction,
    predict,
    proof_policy,
    write_prediction,
)
from qeframe.plugin.labels import provenance_code
from qeframe.quantum.ops import pure_density
from qeframe.quantum.random import haar_state

GHZ = pure_density((np.eye(8)[0] + np.eye(8)[7])[None] / np.sqrt(2))[0]


def test_proof_policy_withholds_exactly_the_unproved_entangled_answers():
    answer = np.array([[1, 1, 0], [-1, 1, 1]], np.int8)
    proved = np.array([[True, False, False], [False, False, True]])
    out = proof_policy(answer, proved)
    assert out.tolist() == [[1, -1, 0], [-1, -1, 1]]
    assert answer.tolist() == [[1, 1, 0], [-1, 1, 1]]  # a copy: the input is unchanged
    assert out.dtype == np.int8


def test_policy_is_validated_with_the_key_and_the_allowed_values():
    assert PPT_ENTANGLED_POLICIES == ("model", "proof")
    assert check_policy("proof") == "proof"
    with pytest.raises(QeframeError, match=r"prediction\.ppt_entangled = 'maybe'.*allowed: model, proof"):
        check_policy("maybe")
    base = {
        "datasets": {
            "d": {"seed": 1, "labeler": "negativity", "families": [{"family": "circuit", "count": 1}]}
        },
        "experiments": {"e": {"train": "d", "model": {"backbone": "cnn"}}},
    }
    assert parse_registry(base).experiment("e").prediction.ppt_entangled == "model"
    base["experiments"]["e"]["prediction"] = {"ppt_entangled": "proof", "proofs": ["aligned_witness"]}
    assert parse_registry(base).experiment("e").prediction.ppt_entangled == "proof"
    base["experiments"]["e"]["prediction"] = {"proof_search": "some"}
    with pytest.raises(SpecError, match=r"experiments\.e\.prediction\.proof_search.*'screened' or 'all'"):
        parse_registry(base)
    base["experiments"]["e"]["prediction"] = {"ppt_entangled": "always"}
    with pytest.raises(SpecError, match=r"experiments\.e\.prediction\.ppt_entangled.*'model' or 'proof'"):
        parse_registry(base)


def test_prediction_json_round_trip_of_the_policy_and_a_damaged_value(tmp_path):
    config = PredictionConfig.uncalibrated(3)
    assert config.ppt_entangled == "model"
    config.ppt_entangled = "proof"
    write_prediction(tmp_path, config)
    again = load_prediction(tmp_path, 3)
    assert again.ppt_entangled == "proof" and "only with a proof" in again.describe()
    data = json.loads((tmp_path / "prediction.json").read_text())
    del data["ppt_entangled"]  # a file written before the policy existed: the model decides
    (tmp_path / "prediction.json").write_text(json.dumps(data))
    assert load_prediction(tmp_path, 3).ppt_entangled == "model"
    assert load_prediction(tmp_path, 3).proof_search == "screened"
    data["proof_search"] = "everywhere"
    (tmp_path / "prediction.json").write_text(json.dumps(data))
    with pytest.raises(QeframeError, match=r"damaged.*proof_search.*allowed: screened, all"):
        load_prediction(tmp_path, 3)
    data["proof_search"] = "all"
    data["ppt_entangled"] = "sometimes"
    (tmp_path / "prediction.json").write_text(json.dumps(data))
    with pytest.raises(QeframeError, match=r"damaged.*ppt_entangled.*allowed: model, proof"):
        load_prediction(tmp_path, 3)


def test_fit_prediction_records_the_declared_policy():
    arrays = synthetic_arrays("toy", 40, seed=2)
    config = fit_prediction(PredictionSpec(ppt_entangled="proof"), [np.zeros((40, 3))], [arrays])
    assert config.ppt_entangled == "proof"
    assert fit_prediction(PredictionSpec(), [np.zeros((40, 3))], [arrays]).ppt_entangled == "model"


def _separable_mixtures(seed: int, n_states: int, terms: int) -> np.ndarray:
    """``(n_states, 8, 8)`` random mixtures of ``terms`` product states of three qubits."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_states, 8, 8), complex)
    for _ in range(terms):
        q = [haar_state(2, n_states, rng) for _ in range(3)]  # (n_states, 2) each
        psi = np.einsum("ni,nj,nk->nijk", *q).reshape(n_states, 8)
        out += rng.random(n_states)[:, None, None] * np.einsum("ni,nj->nij", psi, psi.conj())
    return out / np.trace(out, axis1=1, axis2=2).real[:, None, None]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    terms=st.integers(1, 12),
    a=st.floats(0.1, 5.0),
    b=st.floats(-5.0, 5.0),
    t_ent=st.floats(0.01, 0.99),
)
@example(seed=0, terms=1, a=0.109375, b=-1.0, t_ent=0.9375)  # logit 30 gives p = 0.91 < t_ent here
def test_under_the_proof_policy_no_separable_state_is_called_entangled(seed, terms, a, b, t_ent):
    """A model that says "entangled" (logit +30, or more where the calibration needs it) on every cut of separable mixtures of product states,
    behind any calibration and threshold, with the proof stages on: the policy ``model`` calls them
    entangled, the policy ``proof`` never does (no proof of entanglement of a separable cut exists)."""
    rho = _separable_mixtures(seed, 6, terms)
    config = PredictionConfig(
        gate="ppt",
        calibration=Calibration("platt", [a] * 3, [b] * 3, [False] * 3),
        t_separable=float(np.nextafter(t_ent, -1)),
        t_entangled=t_ent,
        calibrated=True,
        proofs=("witness", "realignment"),
        ppt_entangled="proof",
    )
    # a logit whose calibrated p reaches t_ent for this draw (at least +30): the model says "entangled"
    z = max(30.0, (np.log(t_ent / (1 - t_ent)) - b) / a + 1.0)
    out = predict(config, np.full((6, 3), z), rho)
    assert not out.npt.any()
    assert not (out.answer == 1).any()
    assert set(np.unique(out.answer)) <= {-1}  # the model's "entangled" became unknown
    assert (out.answer_for("model") == 1).all()  # the same output under the policy "model"
    assert all(p is None for row in out.proof() for p in row)


class _SaysEntangled(torch.nn.Module):
    """An adversarial model: logit +30 on every cut of every state."""

    def forward(self, x):
        return torch.full((x.shape[0], 3), 30.0)


def test_evaluation_shows_both_policies_as_rows_with_fpr_zero_under_proof():
    """Products (separable, PPT) and noisy GHZ (NPT) with proved labels: the model-gated row calls every
    separable PPT cut entangled (FPR 1), the proof-gated row none (FPR 0, abstention 1); both answer
    the NPT cuts entangled."""
    arrays = synthetic_arrays("toy", 60, seed=3)
    arrays.provenance = np.full(arrays.labels.shape, provenance_code("construction"), np.uint8)
    config = PredictionConfig.uncalibrated(3)
    config.ppt_entangled = "proof"  # the declared policy does not change which rows are shown
    results = evaluate(
        [arrays], model=_SaysEntangled(), evaluation=EvaluationSpec(baselines=[]), prediction=config
    )
    block = results["toy"]
    assert list(block["correct"]) == ["model", GATED_ROW, PROOF_ROW, "ppt"]
    det = block["ppt_detection"]
    assert det[GATED_ROW]["fpr"] == 1.0 and det[PROOF_ROW]["fpr"] == 0.0
    assert det[PROOF_ROW]["abstention"] == 1.0 and det["ppt"]["fpr"] == 0.0
    assert block["npt_cuts"]["correct"][PROOF_ROW]["mean"] == 1.0
    md = results_markdown(results)
    assert "| gated-proof |" in md and "only with a proof" in md
    tables = comparison_tables({"A": results})
    assert [r[0] for r in tables[0].rows] == ["A", "A (gated)", "A (gated, proofs only)", "ppt (baseline)"]
    fpr = next(t for t in tables if t.title.startswith("False positives"))
    assert fpr.rows[2] == ["A (gated, proofs only)", "0.00"]


@pytest.fixture
def trained_run(qeframe_registry, tmp_path):
    registry = qeframe_registry(train_plugins, negativity, entry_points=False)
    return train_plugins.tiny_trained_run(registry, tmp_path / "runs")


def test_classify_under_the_proof_policy(trained_run, tmp_path, qeframe_cli):
    """A run whose prediction.json says ``ppt_entangled = "proof"`` and whose thresholds call every PPT
    cut entangled: ``classify`` answers NPT cuts entangled with proof ``npt``, every other cut unknown."""
    rho = np.stack([GHZ, np.eye(8) / 8, pure_density(np.eye(8)[[3]])[0]]).astype(complex)
    path = tmp_path / "user.npy"
    np.save(path, rho)
    config = PredictionConfig.uncalibrated(3, threshold=0.0)  # the model says entangled everywhere
    config.t_entangled = 0.0
    config.ppt_entangled = "proof"
    write_prediction(trained_run, config)
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["answers"][0] == ["entangled"] * 3 and payload["proof"][0] == ["npt"] * 3
    assert payload["answers"][1] == ["unknown"] * 3 and payload["answers"][2] == ["unknown"] * 3
    assert payload["entangled"][1:] == [[0, 0, 0], [0, 0, 0]]
