"""The prediction layer (:mod:`qeframe.learn.prediction`): the PPT gate and its tolerance, calibration,
abstention thresholds, ``prediction.json``, the gated row and the PPT-cut numbers of the
evaluation, and ``qeframe classify`` with three-valued answers and proofs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import train_plugins
from hypothesis import given, settings
from hypothesis import strategies as st
from train_plugins import synthetic_arrays

from qeframe.config.specs import EvaluationSpec, PredictionSpec, parse_registry
from qeframe.errors import QeframeError, SpecError
from qeframe.evaluation.evaluate import evaluate
from qeframe.evaluation.metrics import GATED_ROW, PROOF_ROW, evaluate_arrays, ppt_detection
from qeframe.evaluation.tables import comparison_tables
from qeframe.learn.arrays import DatasetArrays
from qeframe.learn.prediction import (
    Calibration,
    PredictionConfig,
    answers_from_probabilities,
    choose_thresholds,
    expected_calibration_error,
    fit_calibration,
    fit_prediction,
    load_prediction,
    ppt_gate,
    predict,
    write_prediction,
)
from qeframe.plugin.labels import (
    NOT_PROOF_PROVENANCE,
    PROOF_PROVENANCE,
    PROVENANCE,
    certified_mask,
    provenance_code,
)
from qeframe.quantum.ops import pure_density
from qeframe.quantum.ppt import (
    NPT_SAFETY,
    PPT_TOL,
    npt_mask,
    npt_rounding_bound,
    npt_tolerance,
    pt_min_eigenvalues,
)
from qeframe.quantum.random import haar_state

GHZ = pure_density((np.eye(8)[[0]] + np.eye(8)[[7]]) / np.sqrt(2))[0]


def _noisy_ghz(p: float) -> np.ndarray:
    """``(1-p) I/8 + p |GHZ><GHZ|``: every cut has ``lambda_min(rho^T_A) = (1-p)/8 - p/2``."""
    return (1 - p) * np.eye(8) / 8 + p * GHZ


def _p_for_lambda(lam: float) -> float:
    return (1 / 8 - lam) / (1 / 8 + 1 / 2)


# ------------------------------------------------------------------------------------- provenance


def test_every_provenance_is_either_a_proof_or_not():
    assert set(PROOF_PROVENANCE) | set(NOT_PROOF_PROVENANCE) == set(PROVENANCE)
    assert not set(PROOF_PROVENANCE) & set(NOT_PROOF_PROVENANCE)
    assert {"construction", "npt", "rank", "dps2"} <= set(PROOF_PROVENANCE)
    labels = np.array([[1, 0, -1, 0]], np.int8)
    prov = np.array(
        [
            [
                provenance_code("npt"),
                provenance_code("ppt-assumed-separable"),
                provenance_code("rank"),
                provenance_code("rank"),
            ]
        ],
        np.uint8,
    )
    assert certified_mask(labels, prov).tolist() == [[True, False, False, True]]
    assert not certified_mask(labels, None).any()


# ------------------------------------------------------------------------------------- tolerance


def test_npt_tolerance_is_the_shared_tolerance_and_far_above_rounding():
    for n in range(2, 11):
        d = 2**n
        assert npt_tolerance(d) == PPT_TOL
        assert NPT_SAFETY * npt_rounding_bound(d) < PPT_TOL
        assert npt_rounding_bound(d) == pytest.approx((d + 1) * np.finfo(float).eps / 2, rel=1e-6)
    assert npt_tolerance(8, trace=3.0) == pytest.approx(3 * PPT_TOL)
    with pytest.raises(ValueError):
        npt_tolerance(8, trace=0.0)


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_gate_tolerance_boundary(scale):
    """Just beyond -tol the cut is NPT, just inside it is not; scaling rho scales the tolerance."""
    tol = npt_tolerance(8)
    outside = _noisy_ghz(_p_for_lambda(-tol * (1 + 1e-3)))
    inside = _noisy_ghz(_p_for_lambda(-tol * (1 - 1e-3)))
    zero = _noisy_ghz(_p_for_lambda(0.0))
    rho = scale * np.stack([outside, inside, zero])
    lam = pt_min_eigenvalues(rho / scale)
    assert lam[0] == pytest.approx([-tol * 1.001] * 3, rel=1e-6)
    assert ppt_gate(rho).tolist() == [[True] * 3, [False] * 3, [False] * 3]
    # the gate uses the one NPT test (npt_mask) with the same tolerance as labels and the ppt baseline
    assert (ppt_gate(rho / scale) == npt_mask(rho / scale)).all()


def test_separable_states_at_the_ppt_boundary_are_never_gated(qeframe_registry):
    """States computed in float64 that are separable on a cut with lambda_min(rho^T_A) = 0
    exactly (rank-deficient products, separable states on the PPT boundary) are not flagged."""
    from qeframe.plugin.registry import get_registry

    reg = get_registry()
    rng = np.random.default_rng(7)
    batches = [
        reg.create("family", "circuit", {"kind": "separable", "local_randomize": True}).generate(100, rng)
    ]
    if "boundary-separable" in reg.names("family"):
        batches.append(
            reg.create("family", "boundary-separable", {"local_randomize": True}).generate(200, rng)
        )
    for batch in batches:
        separable = batch.ground_truth == 0
        assert separable.any()
        assert not ppt_gate(batch.rho)[separable].any()
        lam = pt_min_eigenvalues(batch.rho)[separable]
        assert lam.min() > -1e-13  # rounding only: far inside the tolerance


# ------------------------------------------------------------------------------------- the gate never contradicts NPT


def _random_states(seed: int, count: int) -> np.ndarray:
    """Random 3-qubit states of random rank (1..8), many NPT, some PPT on some cuts."""
    rng = np.random.default_rng(seed)
    rank = rng.integers(1, 9, size=count)
    out = []
    for r in rank:
        psi = haar_state(8, int(r), rng)
        w = rng.dirichlet(np.ones(int(r)))
        rho = (pure_density(psi) * w[:, None, None]).sum(0)
        mix = rng.uniform(0, 1)
        out.append((1 - mix) * rho + mix * np.eye(8) / 8)
    return np.stack(out)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    a=st.floats(-20, 20),
    b=st.floats(-50, 50),
    t_ent=st.floats(0.5, 1.0),
    logit=st.floats(-1e4, 1e4),
)
def test_gated_prediction_on_npt_cuts_is_always_entangled(seed, a, b, t_ent, logit):
    """Whatever the model says (here: one constant logit, e.g. "separable" everywhere) and whatever
    the calibration and thresholds, an NPT cut is answered entangled with proof npt."""
    rho = _random_states(seed, 12)
    config = PredictionConfig(
        gate="ppt",
        calibration=Calibration("platt", [a] * 3, [b] * 3, [False] * 3),
        t_separable=float(np.nextafter(t_ent, -1)),
        t_entangled=t_ent,
        calibrated=True,
    )
    out = predict(config, np.full((12, 3), logit), rho)
    lam = pt_min_eigenvalues(rho)
    clear_npt = lam < -2 * PPT_TOL
    assert clear_npt.any()
    assert (out.npt[clear_npt]).all() and not out.npt[lam > 0].any()
    assert (out.answer[out.npt] == 1).all() and (out.probability[out.npt] == 1.0).all()
    assert all(p == "npt" for row, m in zip(out.proof(), out.npt) for p, f in zip(row, m) if f)


class _SaysSeparable(torch.nn.Module):
    """An adversarial model: logit -30 (P(entangled) ~ 1e-13) on every cut of every state."""

    def forward(self, x):
        return torch.full((x.shape[0], 3), -30.0)


def test_evaluation_gated_row_is_exact_on_npt_cuts_with_an_adversarial_model():
    arrays = synthetic_arrays("toy", 60, seed=3)  # products (PPT) and noisy GHZ states (NPT)
    config = PredictionConfig.uncalibrated(3)
    results = evaluate(
        [arrays], model=_SaysSeparable(), evaluation=EvaluationSpec(baselines=[]), prediction=config
    )
    block = results["toy"]
    assert list(block["correct"]) == ["model", GATED_ROW, PROOF_ROW, "ppt"]
    assert block["npt_cuts"]["correct"][GATED_ROW]["mean"] == 1.0
    assert block["npt_cuts"]["correct"][PROOF_ROW]["mean"] == 1.0
    assert block["npt_cuts"]["correct"]["model"]["mean"] == 0.0
    assert block["correct"][GATED_ROW] == block["correct"]["ppt"]  # says separable on PPT cuts = the PPT test


# ------------------------------------------------------------------------------------- calibration


def _miscalibrated(seed: int, n: int = 4000, m: int = 3):
    """Logits of an over-confident, biased model: truth p = sigmoid(z), model logit = 3 z + 2."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, m))
    y = (rng.uniform(size=(n, m)) < 1 / (1 + np.exp(-z))).astype(np.int8)
    return 3 * z + 2, y


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_calibration_improves_ece_on_a_miscalibrated_model(method):
    logits, y = _miscalibrated(0)
    if method == "temperature":
        logits = logits - 2  # temperature cannot remove a bias: give it an unbiased, over-confident model
    mask = np.ones(y.shape, bool)
    raw = 1 / (1 + np.exp(-logits))
    before = expected_calibration_error(raw, y)
    cal = fit_calibration(logits, y, mask, method)
    assert not any(cal.pooled)
    after = expected_calibration_error(cal.apply(logits), y)
    assert before > 0.1 and after < 0.03, (before, after)
    # and on fresh data from the same model
    logits2, y2 = _miscalibrated(1)
    if method == "temperature":
        logits2 = logits2 - 2
    assert expected_calibration_error(cal.apply(logits2), y2) < 0.03
    if method == "platt":
        assert cal.a == pytest.approx([1 / 3] * 3, abs=0.05) and cal.b == pytest.approx([-2 / 3] * 3, abs=0.1)
    else:
        assert cal.b == [0.0] * 3 and cal.a == pytest.approx([1 / 3] * 3, abs=0.05)


def test_calibration_pools_cuts_with_too_few_examples_and_needs_both_classes():
    logits, y = _miscalibrated(2, n=600)
    mask = np.ones(y.shape, bool)
    mask[:, 2] = False
    mask[:5, 2] = True  # cut 3 has 5 examples: pooled parameters
    cal = fit_calibration(logits, y, mask, "platt", min_class_count=20)
    assert cal.pooled == [False, False, True]
    with pytest.raises(QeframeError, match="both classes are needed"):
        fit_calibration(logits, np.zeros_like(y), mask, "platt")


# ------------------------------------------------------------------------------------- thresholds


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_sep=st.integers(1, 400),
    n_ent=st.integers(1, 400),
    target_fpr=st.floats(0.001, 0.3),
    target_fnr=st.floats(0.001, 0.3),
    levels=st.sampled_from([0, 5, 50]),
)
def test_thresholds_meet_the_targets_on_the_data_they_were_fitted_on(
    seed, n_sep, n_ent, target_fpr, target_fnr, levels
):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.beta(2, 5, n_sep), rng.beta(5, 2, n_ent)])
    if levels:  # many ties
        p = np.round(p * levels) / levels
    y = np.concatenate([np.zeros(n_sep, int), np.ones(n_ent, int)])
    t_sep, t_ent = choose_thresholds(p, y, target_fpr, target_fnr)
    assert t_sep < t_ent
    answers = answers_from_probabilities(p, t_sep, t_ent)
    assert (answers[y == 0] == 1).mean() <= target_fpr + 1e-12
    assert (answers[y == 1] == 0).mean() <= target_fnr + 1e-12
    # tight: lowering t_ent to the next separable score below it would break the target
    below = np.sort(p[(y == 0) & (p < t_ent)])
    if below.size:
        assert ((p[y == 0] >= below[-1]).mean()) > target_fpr


def test_fit_prediction_on_proved_ppt_cuts_only():
    rng = np.random.default_rng(5)
    n = 400
    rho = np.repeat((np.eye(8) / 8)[None], n, axis=0).astype(complex)  # every cut PPT
    rho[: n // 4] = GHZ  # NPT cuts: never used for calibration, whatever their label
    truth = (rng.uniform(size=(n, 3)) < 0.4).astype(np.int8)
    logits = np.where(truth == 1, 2.0, -1.0) + rng.normal(0, 1.5, (n, 3)) + 3.0
    prov = np.full((n, 3), provenance_code("construction"), np.uint8)
    prov[n // 4 : n // 2] = provenance_code("ppt-assumed-separable")  # not proved: left out
    arrays = DatasetArrays("val", rho, truth, provenance=prov)
    config = fit_prediction(
        PredictionSpec(calibration="platt", target_fpr=0.02, target_fnr=0.1), [logits], [arrays]
    )
    used = n - n // 2
    assert config.calibrated and config.fit["n_ppt_entangled"] + config.fit["n_ppt_separable"] == 3 * used
    assert config.fit["fpr"] <= 0.02 and config.fit["fnr"] <= 0.1
    assert config.fit["ece_after"] < config.fit["ece_before"]
    # one class missing: uncalibrated, with the reason
    only = DatasetArrays("val", rho, np.zeros((n, 3), np.int8), provenance=prov)
    fallback = fit_prediction(PredictionSpec(calibration="platt"), [logits], [only])
    assert not fallback.calibrated and "both classes" in fallback.note


def test_prediction_json_round_trip_and_old_runs(tmp_path):
    config = PredictionConfig(
        "ppt",
        Calibration("platt", [0.5, 1, 2], [0.1, 0, -1], [False, True, False]),
        0.2,
        0.9,
        True,
        0.01,
        0.05,
    )
    write_prediction(tmp_path, config)
    back = load_prediction(tmp_path, 3)
    assert back.to_dict() == config.to_dict()
    with pytest.raises(QeframeError, match="calibration for 3 cuts, the model has 7"):
        load_prediction(tmp_path, 7)
    (tmp_path / "prediction.json").write_text("{not json")
    with pytest.raises(QeframeError, match="is damaged"):
        load_prediction(tmp_path, 3)
    old = load_prediction(tmp_path / "elsewhere", 3)
    assert not old.calibrated and old.gate == "ppt" and "no prediction.json" in old.note
    assert answers_from_probabilities(
        np.array([0.49, 0.5, 0.51]), old.t_separable, old.t_entangled
    ).tolist() == [
        0,
        0,
        1,
    ]  # two-valued at 0.5, as `model > threshold`


# ------------------------------------------------------------------------------------- evaluation numbers


def test_ppt_detection_numbers_by_hand():
    labels = np.array([[1, 0, 0], [1, 0, 1], [0, 0, -1]], np.int8)
    prov = np.full((3, 3), provenance_code("construction"), np.uint8)
    prov[2, 0] = provenance_code("ppt-assumed-separable")
    npt = np.zeros((3, 3), bool)
    npt[1, 2] = True  # an NPT cut is not a PPT cut
    pred = np.array([[1, 1, -1], [-1, 0, 1], [1, 0, -1]], np.int8)
    out = ppt_detection(pred, labels, prov, npt)
    by_provenance = out.pop("by_provenance")
    assert by_provenance == {
        "construction": {
            "entangled": {
                "n": 2,
                "answered_entangled": 0.5,
                "answered_separable": 0.0,
                "answered_unknown": 0.5,
            },
            "separable": {
                "n": 4,
                "answered_entangled": 0.25,
                "answered_separable": 0.5,
                "answered_unknown": 0.25,
            },
        }
    }
    # proved PPT-entangled: (0,0), (1,0) -> answered 1 once; proved separable PPT: (0,1) (0,2) (1,1) (2,1)
    assert out == {
        "recall": 0.5,
        "fpr": 0.25,
        "abstention": 3 / 8,
        "n_ppt_entangled": 2,
        "n_ppt_separable": 4,
        "n_ppt": 8,
    }


def test_results_and_comparison_tables_carry_the_gated_row_and_the_three_numbers():
    from qeframe.evaluation.tables import results_markdown

    arrays = synthetic_arrays("toy", 40, seed=1)
    arrays.provenance = np.full(arrays.labels.shape, provenance_code("construction"), np.uint8)
    pred = {"model": arrays.labels, GATED_ROW: arrays.labels, "ppt": npt_mask(arrays.rho).astype(np.int8)}
    block = evaluate_arrays(arrays, pred)
    assert set(block["ppt_detection"]) == {"model", GATED_ROW, "ppt"}
    md = results_markdown({"toy": block})
    for title in ("Recall on PPT-entangled cuts", "False positives on separable PPT cuts", "Abstention"):
        assert title in md
    assert "| test dataset | n proved entangled | model | gated | ppt |" in md
    assert "| test dataset | n PPT cuts | model | gated | ppt |" in md
    assert "by the proof behind the label" in md and "| toy | construction | separable |" in md
    tables = comparison_tables({"A": {"toy": block}, "B": {"toy": block}})
    titles = [t.title for t in tables]
    assert (
        sum("of each run" in t and ("Recall" in t or "False" in t or "Abstention" in t) for t in titles) == 3
    )
    first = tables[0]
    assert [r[0] for r in first.rows] == ["A", "A (gated)", "B", "B (gated)", "ppt (baseline)"]
    recall = next(t for t in tables if t.title.startswith("Recall"))
    assert [r[0] for r in recall.rows] == ["A", "A (gated)", "B", "B (gated)", "ppt (baseline)", "(n)"]


# ------------------------------------------------------------------------------------- classify


@pytest.fixture
def trained_run(registry, tmp_path):
    """A run folder with one epoch of a tiny model (made by the trainer directly)."""
    return train_plugins.tiny_trained_run(registry, tmp_path / "runs")


def _user_states(tmp_path):
    rho = np.stack([GHZ, np.eye(8) / 8, _noisy_ghz(0.1), pure_density(np.eye(8)[[3]])[0]]).astype(complex)
    path = tmp_path / "user.npy"
    np.save(path, rho)
    return path


def test_classify_json_schema_calibrated_and_old(trained_run, tmp_path, qeframe_cli):
    path = _user_states(tmp_path)
    # an old run: no prediction.json -> gate applied, flagged uncalibrated
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code == 0, err
    old = json.loads(out)
    assert old["calibrated"] is False and "uncalibrated" in old["note"]
    write_prediction(
        trained_run,
        PredictionConfig(
            "ppt", Calibration("platt", [1.0] * 3, [0.0] * 3, [False] * 3), 0.3, 0.7, True, 0.01, 0.05
        ),
    )
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) >= {
        "run",
        "cuts",
        "calibrated",
        "prediction",
        "thresholds",
        "probabilities",
        "model_probabilities",
        "answers",
        "proof",
        "entangled",
    }
    assert payload["calibrated"] is True and "note" not in payload
    assert payload["thresholds"] == {"separable": 0.3, "entangled": 0.7}
    probs = np.array(payload["probabilities"])
    assert probs.shape == (4, 3) and ((probs >= 0) & (probs <= 1)).all()
    assert payload["proof"][0] == ["npt"] * 3 and payload["answers"][0] == ["entangled"] * 3
    assert payload["proof"][1] == [None] * 3 and payload["proof"][3] == [None] * 3  # PPT: mixed, product
    for answers, proofs, row, raw in zip(
        payload["answers"], payload["proof"], probs, payload["model_probabilities"]
    ):
        for a, proof, p, r in zip(answers, proofs, row, raw):
            assert a in ("entangled", "separable", "unknown")
            if proof:
                assert p == 1.0 and a == "entangled"
            else:
                assert p == pytest.approx(r) and a == (
                    "entangled" if p >= 0.7 else "separable" if p <= 0.3 else "unknown"
                )
    assert payload["entangled"] == [[int(a == "entangled") for a in row] for row in payload["answers"]]
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu")
    assert code == 0 and "E npt" in out and "Answer and P(entangled)" in out
    # calibration data without separable PPT cuts: "never entangled" on PPT cuts, still valid JSON
    write_prediction(
        trained_run,
        PredictionConfig(
            "ppt", Calibration("platt", [1.0] * 3, [0.0] * 3, [True] * 3), 0.3, np.inf, True, 0.01, 0.05
        ),
    )
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["thresholds"]["entangled"] == "inf"
    assert all(
        a != "entangled"
        for row, proofs in zip(payload["answers"], payload["proof"])
        for a, pr in zip(row, proofs)
        if not pr
    )


def test_classify_bad_input_one_line_and_nothing_written(trained_run, tmp_path, qeframe_cli):
    target = tmp_path / "out.json"
    bad = tmp_path / "bad.npy"
    np.save(bad, np.stack([np.eye(8) / 8, -np.eye(8) / 8]))
    code, _out, err = qeframe_cli("classify", bad, "--run", trained_run, "--out", target)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "check failed for matrix 1" in err
    assert not target.exists()
    (trained_run / "prediction.json").write_text('{"format": "qeframe-prediction/1"}')
    code, _out, err = qeframe_cli("classify", _user_states(tmp_path), "--run", trained_run, "--out", target)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "prediction file" in err and "damaged" in err
    assert not target.exists()


# ------------------------------------------------------------------------------------- the spec


def test_prediction_spec_is_validated_with_the_key_in_the_error():
    base = {
        "datasets": {
            "d": {"seed": 1, "labeler": "negativity", "families": [{"family": "circuit", "count": 1}]}
        },
        "experiments": {"e": {"train": "d", "model": {"backbone": "cnn"}}},
    }
    spec = parse_registry(base).experiment("e")
    assert spec.prediction.gate == "ppt" and spec.prediction.calibration == "none"
    base["experiments"]["e"]["prediction"] = {"gate": "ppt", "calibration": "isotonic"}
    with pytest.raises(SpecError, match=r"experiments\.e\.prediction\.calibration"):
        parse_registry(base)
    base["experiments"]["e"]["prediction"] = {"target_fpr": 1.5}
    with pytest.raises(SpecError, match=r"experiments\.e\.prediction\.target_fpr"):
        parse_registry(base)
    base["experiments"]["e"]["prediction"] = {"calibrate_on": "nope"}
    with pytest.raises(SpecError, match=r"experiments\.e\.prediction\.calibrate_on: unknown dataset 'nope'"):
        parse_registry(base)


def test_run_with_a_bad_prediction_spec_fails_in_one_line_and_writes_nothing(registry, tmp_path, qeframe_cli):
    from train_plugins import REGISTRY_TOML

    reg_file = tmp_path / "registry.toml"
    text = REGISTRY_TOML.format(backbone="test-mlp").replace(
        'test = ["toy-test"]', 'test = ["toy-test"]\nprediction = {{ calibration = "platt", target_fpr = 0 }}'
    )
    reg_file.write_text(text.replace("{{", "{").replace("}}", "}"))
    data, runs = tmp_path / "data", tmp_path / "runs"
    code, _out, err = qeframe_cli(
        "run", "toy", "--registry", reg_file, "--data-dir", data, "--runs-dir", runs
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "experiments.toy.prediction.target_fpr" in err
    assert not data.exists() and not runs.exists()


def test_module_docstring_example():
    import doctest

    from qeframe.learn import prediction

    assert doctest.testmod(prediction).failed == 0


def test_classify_carries_proof_stage_names(trained_run, tmp_path, qeframe_cli):
    """``proofs = ["realignment"]`` in prediction.json: cuts proved by the FNF certificate are
    entangled with P = 1 and proof ``realignment`` (no gate here, so GHZ reaches the stage); an
    unknown stage name in the file is a one-line error."""
    path = _user_states(tmp_path)
    config = PredictionConfig.uncalibrated(3, gate="none")
    config.proofs = ("realignment",)
    write_prediction(trained_run, config)
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["proof"][0] == ["realignment"] * 3 and payload["answers"][0] == ["entangled"] * 3
    assert payload["probabilities"][0] == [1.0] * 3
    assert payload["proof"][1] == [None] * 3 and payload["proof"][3] == [None] * 3  # I/8, product: no proof
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu")
    assert code == 0 and "E realignment" in out
    data = json.loads((trained_run / "prediction.json").read_text())
    data["proofs"] = ["sdp"]
    (trained_run / "prediction.json").write_text(json.dumps(data))
    code, _out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code != 0 and "allowed: witness, realignment" in err and "Traceback" not in err
