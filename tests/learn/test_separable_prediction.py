"""``prediction.separable_proofs``: a PPT cut with an exact proof of separability is answered
"separable" with the proof named, whatever the model says (docs/beyond-ppt.md, section 11)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import train_plugins
from ppt_states import filtered_product_mixture, mixtures
from qeframe_plugins.families.horodecki import horodecki_states
from qeframe_plugins.labelers import negativity
from train_plugins import synthetic_arrays

from qeframe.config.specs import PredictionSpec, parse_registry
from qeframe.errors import QeframeError, SpecError
from qeframe.learn.prediction import (
    Calibration,
    PredictionConfig,
    answers_from_probabilities,
    fit_prediction,
    load_prediction,
    predict,
    write_prediction,
)
from qeframe.learn.prediction import config as prediction_config
from qeframe.quantum.ops import pure_density
from qeframe.quantum.random import haar_unitary
from qeframe.quantum.separable_proofs import SEPARABLE_STAGES

GHZ = pure_density((np.eye(8)[0] + np.eye(8)[7])[None] / np.sqrt(2))[0]
#: Noisy GHZ with tr(rho^2) = 1/8 + 0.01 * 7/8 < 1/7: inside the separable ball, not a product.
BALL_STATE = 0.9 * np.eye(8) / 8 + 0.1 * GHZ


def _with_spectrum(e: np.ndarray, seed: int) -> np.ndarray:
    u = haar_unitary(8, 1, np.random.default_rng(seed))[0]
    return (u * e) @ u.conj().T


def _states() -> np.ndarray:
    """GHZ (NPT everywhere), 10 % GHZ in white noise (ball), an absolutely separable spectrum outside the ball
    (``spectrum``), a rank-2 separable mixture (``rank``), P. Horodecki's state at ``b = 0.5``
    (PPT-entangled on ``1 | 23``): ``(5, 8, 8)``."""
    spectrum = _with_spectrum(np.array([0.28] + [0.72 / 7] * 7), 4)
    return np.stack(
        [GHZ, BALL_STATE, spectrum, filtered_product_mixture(5, 1, 2, 3.0)[0], horodecki_states([0.5])[0]]
    ).astype(complex)


def _config(**kw) -> PredictionConfig:
    config = PredictionConfig(
        gate="ppt",
        calibration=Calibration("platt", [1.0] * 3, [0.0] * 3, [False] * 3),
        t_separable=0.2,
        t_entangled=0.8,
        calibrated=True,
    )
    for key, value in kw.items():
        setattr(config, key, value)
    return config


@pytest.mark.parametrize("policy", ["model", "proof"])
@pytest.mark.parametrize("logit", [30.0, 0.0, -30.0])
def test_proved_separable_cuts_are_separable_whatever_the_model_says(policy, logit):
    rho = _states()
    config = _config(
        separable_proofs=SEPARABLE_STAGES, proofs=("witness", "realignment"), ppt_entangled=policy
    )
    out = predict(config, np.full((5, 3), logit), rho)
    proof = out.proof()
    assert proof[0] == ["npt"] * 3 and out.answer[0].tolist() == [1, 1, 1]
    assert proof[1] == ["ball"] * 3 and proof[2] == ["spectrum"] * 3
    assert set(proof[3]) <= {"rank", "pure", "support"} and None not in proof[3]
    for i in (1, 2, 3):
        assert out.answer[i].tolist() == [0, 0, 0] and out.probability[i].tolist() == [0.0] * 3
        assert out.answer_for("model")[i].tolist() == [0, 0, 0] == out.answer_for("proof")[i].tolist()
    assert out.separable_mask()[1:4].all() and not out.separable_mask()[[0, 4]].any()
    # Horodecki: the PPT cut is proved entangled by the LKCH witness, never separable
    assert proof[4][0] == "witness" and out.answer[4, 0] == 1
    assert out.separable[4].tolist() == [None] * 3


def test_without_separable_proofs_the_prediction_is_the_models():
    """The default (no stages): no separable proof, the answers are the calibrated model's behind the
    gate exactly as before; with the stages on, only the proved cuts change."""
    rng = np.random.default_rng(7)
    rho = np.concatenate([_states(), mixtures(3, 40, rng, rank=6)])
    logits = rng.normal(0, 3, (len(rho), 3))
    config = _config(proofs=("realignment",))
    assert config.separable_proofs == ()
    out = predict(config, logits, rho)
    assert out.separable is None and not out.separable_mask().any()
    expected = answers_from_probabilities(config.calibration.apply(logits), 0.2, 0.8)
    expected[out.npt | out.proved.astype(bool)] = 1
    assert np.array_equal(out.answer, expected) and out.answer.dtype == np.int8
    on = predict(_config(proofs=("realignment",), separable_proofs=SEPARABLE_STAGES), logits, rho)
    sep = on.separable_mask()
    assert sep.sum() >= 9 and not (sep & out.npt).any()
    assert np.array_equal(on.answer[~sep], out.answer[~sep])
    assert np.array_equal(on.probability[~sep], out.probability[~sep])
    assert (on.answer[sep] == 0).all()


def test_a_cut_proved_both_ways_is_a_contradiction(monkeypatch):
    def says_entangled(rho, proofs, mask, **kw):
        out = np.full(mask.shape, None, dtype=object)
        out[mask] = "witness"
        return out

    monkeypatch.setattr(prediction_config, "proof_stages", says_entangled)
    config = _config(proofs=("witness",), separable_proofs=("ball",))
    with pytest.raises(
        QeframeError,
        match=r"^contradiction: cut 1\|23 of state 1 is proved entangled \(witness\) "
        r"and separable \(ball\); 3 such cut\(s\)$",
    ):
        predict(config, np.zeros((2, 3)), np.stack([GHZ, BALL_STATE]))
    predict(_config(proofs=("witness",)), np.zeros((2, 3)), np.stack([GHZ, BALL_STATE]))  # no stage: no check


def test_separable_proofs_are_validated_with_the_key_and_the_allowed_values(tmp_path):
    base = {
        "datasets": {
            "d": {"seed": 1, "labeler": "negativity", "families": [{"family": "circuit", "count": 1}]}
        },
        "experiments": {"e": {"train": "d", "model": {"backbone": "cnn"}}},
    }
    assert parse_registry(base).experiment("e").prediction.separable_proofs == []
    base["experiments"]["e"]["prediction"] = {"separable_proofs": ["rank", "ball"]}
    assert parse_registry(base).experiment("e").prediction.separable_proofs == ["rank", "ball"]
    base["experiments"]["e"]["prediction"] = {"separable_proofs": ["pure"]}
    with pytest.raises(
        SpecError, match=r"experiments\.e\.prediction\.separable_proofs.*'rank', 'product'"
    ) as info:
        parse_registry(base)
    assert "\n" not in str(info.value)
    config = PredictionConfig.uncalibrated(3)
    config.separable_proofs = ("rank", "pure")
    with pytest.raises(QeframeError, match=r"prediction\.separable_proofs: unknown stage\(s\) \['pure'\]"):
        predict(config, np.zeros((1, 3)), np.eye(8)[None] / 8)
    write_prediction(tmp_path, PredictionConfig.uncalibrated(3))
    data = json.loads((tmp_path / "prediction.json").read_text())
    data["separable_proofs"] = ["ball", "magic"]
    (tmp_path / "prediction.json").write_text(json.dumps(data))
    with pytest.raises(
        QeframeError, match=r"damaged.*prediction\.separable_proofs.*allowed: rank, product, ball"
    ):
        load_prediction(tmp_path, 3)


def test_prediction_json_round_trip_and_fit(tmp_path):
    config = PredictionConfig.uncalibrated(3)
    config.separable_proofs = ("rank", "spectrum")
    write_prediction(tmp_path, config)
    again = load_prediction(tmp_path, 3)
    assert again.separable_proofs == ("rank", "spectrum")
    assert "separability proofs rank, spectrum" in again.describe()
    data = json.loads((tmp_path / "prediction.json").read_text())
    del data["separable_proofs"]  # a file written before the stages existed: none
    (tmp_path / "prediction.json").write_text(json.dumps(data))
    assert load_prediction(tmp_path, 3).separable_proofs == ()
    arrays = synthetic_arrays("toy", 40, seed=2)
    spec = PredictionSpec(separable_proofs=["ball", "product"])
    assert fit_prediction(spec, [np.zeros((40, 3))], [arrays]).separable_proofs == ("ball", "product")
    assert fit_prediction(PredictionSpec(), [np.zeros((40, 3))], [arrays]).separable_proofs == ()


@pytest.fixture
def trained_run(qeframe_registry, tmp_path):
    registry = qeframe_registry(train_plugins, negativity, entry_points=False)
    return train_plugins.tiny_trained_run(registry, tmp_path / "runs")


def test_classify_names_the_separable_proof(trained_run, tmp_path, qeframe_cli):
    """Thresholds that call every PPT cut entangled, the proofs-first policy and the separable stages:
    ``classify`` answers a noisy GHZ inside the ball separable with proof ``ball`` on every cut, GHZ entangled (``npt``)."""
    path = tmp_path / "user.npy"
    np.save(path, np.stack([GHZ, BALL_STATE]).astype(complex))
    config = PredictionConfig.uncalibrated(3, threshold=0.0)
    config.t_entangled = 0.0
    config.ppt_entangled = "proof"
    config.separable_proofs = SEPARABLE_STAGES
    write_prediction(trained_run, config)
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["answers"][0] == ["entangled"] * 3 and payload["proof"][0] == ["npt"] * 3
    assert payload["answers"][1] == ["separable"] * 3 and payload["proof"][1] == ["ball"] * 3
    code, out, err = qeframe_cli("classify", path, "--run", trained_run, "--device", "cpu")
    assert code == 0, err
    assert "S ball" in out and "proved separable" in out


def test_without_the_gate_the_separable_proofs_still_run_on_ppt_cuts_only():
    """``gate = "none"``: no cut is answered entangled by ``npt``, but the rank rules (valid on PPT cuts
    only) never run on an NPT cut: a GHZ state (rank 1, NPT everywhere) gets no ``pure`` proof."""
    config = _config(gate="none", separable_proofs=SEPARABLE_STAGES)
    out = predict(config, np.full((2, 3), 30.0), np.stack([GHZ, BALL_STATE]))
    assert not out.npt.any()
    assert out.proof() == [[None] * 3, ["ball"] * 3]
    assert out.answer.tolist() == [[1, 1, 1], [0, 0, 0]]
