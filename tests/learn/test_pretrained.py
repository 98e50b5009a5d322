"""The pretrained run folders under ``pretrained/`` (full-size Siamese CNNs trained on an H100, and the
full-size PPT-gated permutation-equivariant model trained on 2 CPU cores) load with ``qeframe
classify`` and separate obviously entangled from product states."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED = sorted(p for p in (ROOT / "pretrained").iterdir() if p.is_dir())


def test_pretrained_models_are_shipped():
    assert [p.name for p in PRETRAINED] == [
        "paper-gated-pe",
        "paper-siamese-negativity",
        "paper-siamese-verified",
    ]


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """40 pure states with known per-cut truth: GHZ-class (entangled on every cut) and products."""
    from qeframe.plugin.registry import get_registry

    reg = get_registry()
    rng = np.random.default_rng(2026)
    ghz = reg.create("family", "circuit", {"kind": "ghz"}).generate(20, rng)
    product = reg.create("family", "circuit", {"kind": "separable"}).generate(20, rng)
    rho = np.concatenate([ghz.rho, product.rho])
    truth = np.concatenate([ghz.ground_truth, product.ground_truth])
    assert set(np.unique(truth)) == {0, 1}
    path = tmp_path_factory.mktemp("pretrained") / "states.npy"
    np.save(path, rho)
    return path, truth


@pytest.mark.parametrize("run", PRETRAINED, ids=[p.name for p in PRETRAINED])
def test_pretrained_model_classifies_clear_cases(run, states, qeframe_cli):
    path, truth = states
    code, out, err = qeframe_cli("classify", path, "--run", run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["cuts"] == ["1|23", "2|13", "3|12"]
    probabilities = np.asarray(payload["probabilities"])
    accuracy = ((probabilities > 0.5) == (truth == 1)).mean()
    assert accuracy >= 0.95, accuracy
    # the shipped results are the ones documented in docs/reproducing.md
    results = json.loads((run / "results.json").read_text())
    assert results["paper-test-pure"]["paper"]["model"]["mean"] > 0.98


def test_pretrained_gated_model_answers_with_proofs(states, qeframe_cli):
    """The shipped gated model is calibrated: three-valued answers, every NPT cut (all GHZ cuts)
    answered entangled with proof ``npt``, product states answered separable; the documented
    targets hold in its shipped results (correct convention: at least PPT on the paper's test sets,
    at least 95 % on Horodecki)."""
    path, truth = states
    run = ROOT / "pretrained" / "paper-gated-pe"
    code, out, err = qeframe_cli("classify", path, "--run", run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["calibrated"] is True
    answers = np.asarray(payload["answers"])
    proof = np.asarray(payload["proof"], dtype=object)
    entangled = truth == 1
    assert (answers[entangled] == "entangled").all()
    assert (proof[entangled] == "npt").all()
    assert (answers[~entangled] == "separable").all()
    results = json.loads((run / "results.json").read_text())
    for name in ("paper-test-pure", "paper-test-mixed", "paper-test-upb", "paper-test-acin"):
        block = results[name]["correct"]
        assert block["gated"]["mean"] >= block["ppt"]["mean"], name
    assert results["paper-test-horodecki"]["correct"]["gated"]["mean"] >= 0.95
