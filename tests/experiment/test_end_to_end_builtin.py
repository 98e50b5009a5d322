"""``qeframe run`` / ``classify`` end to end with the built-in plugins, on the CPU and (when there is
one) on a CUDA device: the paper's CNN with both Siamese views, and an autoencoder-routed ensemble.

The CUDA case is the smoke test a GPU session runs first (``benchmarks/device_paper_runs.sh``): it
covers bf16 autocast, symmetry sampling with a device generator, checkpoints written from device
tensors, resume, routed inference and evaluation, on tiny data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]

REGISTRY = """
[datasets.e2e-train]
n_qubits = 3
seed = 11
split = "train"
labeler = "negativity"
families = [
  { family = "circuit", count = 96, tag = "separable", params = { kind = "separable" } },
  { family = "haar", count = 96, tag = "entangled", params = { kind = "entangled" } },
  { family = "product", count = 64, tag = "mixed-separable", params = { kind = "separable", source = "haar" } },
]

[datasets.e2e-val]
n_qubits = 3
seed = 12
split = "validation"
labeler = "negativity"
families = [
  { family = "circuit", count = 32, tag = "separable", params = { kind = "separable" } },
  { family = "haar", count = 32, tag = "entangled", params = { kind = "entangled" } },
]

[datasets.e2e-test]
n_qubits = 3
seed = 13
split = "test"
labeler = "negativity"
families = [
  { family = "haar", count = 40, tag = "pure", params = { kind = "entangled" } },
  { family = "horodecki", count = 20, tag = "horodecki" },
]

[experiments.e2e-siamese]
train = "e2e-train"
validation = ["e2e-val"]
test = ["e2e-test"]
model = { backbone = "cnn", params = {} }
evaluation = { baselines = ["ppt"] }
[experiments.e2e-siamese.training]
epochs = 2
batch_size = 64
lr = 0.001
symmetries = [{ name = "local_unitary", weight = 0.5, start_epoch = 1 }, { name = "permutation", weight = 0.5, start_epoch = 1 }]

[experiments.e2e-ensemble]
train = "e2e-train"
validation = ["e2e-val"]
test = ["e2e-test"]
model = { backbone = "cnn", params = {} }
router = { name = "autoencoder", params = { epochs = 1, thresholds = [0.0, 0.01, 0.05, "inf"] }, min_domain_size = 32 }
evaluation = { baselines = ["ppt"] }
[experiments.e2e-ensemble.training]
epochs = 2
batch_size = 64
symmetries = [{ name = "local_unitary", weight = 0.5, start_epoch = 1 }]
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One registry and one data folder for every case (the datasets are built once)."""
    root = tmp_path_factory.mktemp("e2e")
    (root / "registry.toml").write_text(REGISTRY)
    return root


def _common(workdir: Path, device: str) -> list:
    return [
        "--registry", workdir / "registry.toml",
        "--data-dir", workdir / "data",
        "--runs-dir", workdir / f"runs-{device}",
        "--device", device,
    ]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
def test_siamese_cnn_runs_resumes_and_classifies(workdir, device, qeframe_cli):
    common = _common(workdir, device)
    code, out, err = qeframe_cli("run", "e2e-siamese", *common, "--epochs", "1", "--json")
    assert code == 0, err
    run = Path(json.loads(out)["run"])
    code, out, err = qeframe_cli("run", "e2e-siamese", *common, "--resume", run, "--json")
    assert code == 0, err
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    second = metrics[1]
    assert second["weights"]["sym:local_unitary"] == 0.5 and second["weights"]["sym:permutation"] == 0.5
    assert all(
        np.isfinite(second["loss"][k]) for k in ("total", "bce", "sym:local_unitary", "sym:permutation")
    )
    plugins = json.loads((run / "plugins.json").read_text())
    assert plugins["device"].startswith(device)
    config = json.loads((run / "checkpoints" / "best.json").read_text())
    assert config["precision"] == ("bf16" if device == "cuda" else "float32")
    results = json.loads((run / "results.json").read_text())["e2e-test"]
    assert results["paper"]["ppt"]["per_cut"] is not None
    # the model column is a real accuracy on the 60 x 3 test labels
    assert 0.0 <= results["paper"]["model"]["mean"] <= 1.0

    rho = np.load(workdir / "data" / "e2e-test" / "shard-00000" / "rho.npy", mmap_mode="r")[:5]
    np.save(workdir / f"states-{device}.npy", np.asarray(rho))
    code, out, err = qeframe_cli(
        "classify", workdir / f"states-{device}.npy", "--run", run, "--device", device, "--json"
    )
    assert code == 0, err
    probabilities = np.asarray(json.loads(out)["probabilities"])
    assert probabilities.shape == (5, 3) and ((probabilities >= 0) & (probabilities <= 1)).all()


@pytest.mark.parametrize("device", DEVICES)
def test_autoencoder_ensemble_runs(workdir, device, qeframe_cli):
    code, out, err = qeframe_cli("run", "e2e-ensemble", *_common(workdir, device), "--json")
    assert code == 0, err
    run = Path(json.loads(out)["run"])
    plan = json.loads((run / "ensemble" / "plan.json").read_text())
    assert len(set(plan["domain_to_member"])) >= 1 and sum(plan["train_counts"]) == 256
    assert (run / "plots" / "router_scores.png").is_file()
    results = json.loads((run / "results.json").read_text())["e2e-test"]
    assert 0.0 <= results["paper"]["model"]["mean"] <= 1.0
