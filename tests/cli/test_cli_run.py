"""``qeframe run`` end to end with test plugins, ``--resume``, and ``qeframe classify`` (and its errors)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import train_plugins
from train_plugins import REGISTRY_TOML


@pytest.fixture
def trained_run(registry, tmp_path) -> Path:
    """A run folder with one epoch of a tiny model (made by the trainer directly)."""
    return train_plugins.tiny_trained_run(registry, tmp_path / "runs")


def test_run_end_to_end_resume_and_classify(registry, tmp_path, qeframe_cli):
    reg_file = tmp_path / "registry.toml"
    reg_file.write_text(REGISTRY_TOML.format(backbone="test-mlp"))
    data, runs = tmp_path / "data", tmp_path / "runs"
    common = ["--registry", reg_file, "--data-dir", data, "--runs-dir", runs, "--device", "cpu"]
    code, out, err = qeframe_cli("run", "toy", *common)
    assert code == 0, err
    assert "Mean per-cut accuracy (%), convention 'paper'" in out
    (run,) = list((runs / "toy").iterdir())
    for name in ("spec.json", "plugins.json", "metrics.jsonl", "results.json", "results.md"):
        assert (run / name).is_file(), name
    assert {p.name for p in (run / "plots").iterdir()} == {
        "training.png",
        "accuracy_paper.png",
        "accuracy_correct.png",
    }
    assert (run / "checkpoints" / "best.json").is_file()
    plugins = json.loads((run / "plugins.json").read_text())
    assert plugins["device"] == "cpu" and plugins["components"]["backbone"]["name"] == "test-mlp"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert (
        metrics[0]["weights"]["sym:test-permutation"] == 0.0
        and metrics[1]["weights"]["sym:test-permutation"] == 0.5
    )
    results = json.loads((run / "results.json").read_text())
    block = results["toy-test"]
    assert set(block) >= {"paper", "correct", "families", "ppt_cuts", "npt_cuts"}
    assert list(block["paper"]) == ["model", "gated", "gated-proof", "ppt"] and list(block["families"]) == ["product", "ghz"]
    # the gated row never contradicts the NPT proof: exact on NPT cuts whatever the model says
    assert block["npt_cuts"]["correct"]["gated"]["mean"] == 1.0
    prediction = json.loads((run / "prediction.json").read_text())
    assert prediction["gate"] == "ppt" and prediction["calibrated"] is False
    assert len(block["correct"]["model"]["per_cut"]) == 3 and sum(block["correct"]["ppt"]["counts"]) == 180
    assert block["correct"]["ppt"]["mean"] == 1.0  # product states PPT, noisy GHZ NPT
    assert "convention 'correct'" in (run / "results.md").read_text()

    # resume with more epochs continues the same run
    code, out, err = qeframe_cli("run", "toy", *common, "--resume", run, "--epochs", "3", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["run"] == str(run) and "toy-test" in payload["results"]
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert len(list((runs / "toy").iterdir())) == 1
    # --resume alone: the run folder's spec.json names its experiment
    code, out, err = qeframe_cli("run", *common, "--resume", run, "--epochs", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["run"] == str(run)
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]

    # classify with the trained run
    rng = np.random.default_rng(0)
    rho = train_plugins.toy_batch("ghz", 4, rng).rho
    np.save(tmp_path / "states.npy", rho)
    out_csv = tmp_path / "p.csv"
    code, out, err = qeframe_cli(
        "classify", tmp_path / "states.npy", "--run", run, "--out", out_csv, "--json"
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["cuts"] == ["1|23", "2|13", "3|12"] and len(payload["probabilities"]) == 4
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][:4] == ["index", "1|23", "2|13", "3|12"] and len(rows) == 5
    assert rows[0][4:] == [f"{k} {c}" for k in ("answer", "proof") for c in ("1|23", "2|13", "3|12")]
    assert all(r[7:] == ["npt"] * 3 and r[4:7] == ["entangled"] * 3 for r in rows[1:])  # GHZ-like: NPT
    np.savez(tmp_path / "states.npz", rho=rho)
    code, out, err = qeframe_cli("classify", tmp_path / "states.npz", "--run", run)
    assert code == 0, err
    assert "P(entangled)" in out


def test_run_rejects_unknown_backbone_before_building_data(registry, tmp_path, qeframe_cli):
    reg_file = tmp_path / "registry.toml"
    reg_file.write_text(REGISTRY_TOML.format(backbone="no-such-net"))
    code, _out, err = qeframe_cli(
        "run",
        "toy",
        "--registry",
        reg_file,
        "--data-dir",
        tmp_path / "data",
        "--runs-dir",
        tmp_path / "runs",
    )
    assert code == 2
    assert "experiments.toy.model.backbone: unknown backbone 'no-such-net'" in err and "test-mlp" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_run_unknown_experiment(registry, tmp_path, qeframe_cli):
    reg_file = tmp_path / "registry.toml"
    reg_file.write_text(REGISTRY_TOML.format(backbone="test-mlp"))
    code, _, err = qeframe_cli("run", "nope", "--registry", reg_file)
    assert code == 2 and "unknown experiment 'nope'; defined: toy" in err


def test_classify_errors(trained_run, tmp_path, qeframe_cli):
    good = tmp_path / "good.npy"
    np.save(good, np.eye(8)[None] / 8)

    def error(*args):
        code, out, err = qeframe_cli("classify", *args)
        assert code == 2, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        return err

    assert "run folder" in error(good, "--run", tmp_path / "missing") and "not found" in error(
        good, "--run", tmp_path / "missing"
    )
    empty = tmp_path / "runs" / "exp" / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    assert "has no checkpoint" in error(good, "--run", empty)
    assert "not found" in error(tmp_path / "nope.npy", "--run", trained_run)
    (tmp_path / "x.txt").write_text("1")
    assert "expected .npy or .npz" in error(tmp_path / "x.txt", "--run", trained_run)
    np.savez(tmp_path / "x.npz", states=np.eye(8)[None] / 8)
    assert "no array 'rho'" in error(tmp_path / "x.npz", "--run", trained_run)
    bad = np.stack([np.eye(8) / 8, np.eye(8) / 4])
    np.save(tmp_path / "bad.npy", bad)
    err = error(tmp_path / "bad.npy", "--run", trained_run)
    assert "trace check failed for matrix 1" in err
    np.save(tmp_path / "two.npy", np.eye(4)[None] / 4)
    assert "expected 3" in error(tmp_path / "two.npy", "--run", trained_run)
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    assert "cannot read" in error(tmp_path / "obj.npy", "--run", trained_run)
    assert "expected .json or .csv" in error(good, "--run", trained_run, "--out", tmp_path / "o.xlsx")


def test_classify_missing_checkpoint_file(trained_run, tmp_path, qeframe_cli):
    for p in (trained_run / "checkpoints").glob("*.safetensors"):
        p.unlink()
    good = tmp_path / "good.npy"
    np.save(good, np.eye(8)[None] / 8)
    code, _, err = qeframe_cli("classify", good, "--run", trained_run)
    assert code == 2 and ("missing" in err or "no checkpoint" in err)


def test_epochs_and_compile_overrides_reach_the_training_spec():
    from qeframe.config.specs import load_registry_file
    from qeframe.experiment import check_experiment as _check_experiment
    from qeframe.plugin.registry import Registry

    registry_file = load_registry_file(Path(__file__).parents[2] / "registry.toml")
    reg = Registry.load()
    spec, names, n = _check_experiment("quickstart", registry_file, reg, None)
    assert not spec.training.compile and n == 3 and names[0] == spec.train
    spec, _, _ = _check_experiment("quickstart", registry_file, reg, 2, compile=True)
    assert spec.training.compile and spec.training.epochs == 2


def test_run_needs_an_experiment_or_a_run_that_names_one(tmp_path, qeframe_cli):
    code, _, err = qeframe_cli("run", "--registry", tmp_path / "registry.toml")
    assert code == 2 and "name an experiment to run (or continue one with --resume RUN_DIR)" in err
    bare = tmp_path / "runs" / "toy" / "20260101T000000Z-abcdef12"
    (bare / "checkpoints").mkdir(parents=True)  # killed before spec.json was written
    code, _, err = qeframe_cli("run", "--resume", bare)
    assert code == 2 and "has no spec.json to tell its experiment; name it" in err
    code, _, err = qeframe_cli("run", "--resume", tmp_path / "nowhere")
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1
