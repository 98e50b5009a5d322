"""Ensembles of per-domain models (``qeframe.learn.ensemble``): planning, dispatch, training, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import qeframe_plugins.routers.autoencoder as autoencoder_plugin
import qeframe_plugins.routers.pt_spectrum as pt_plugin
import torch
import train_plugins
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.labelers import negativity
from qeframe_plugins.routers.autoencoder import AutoencoderRouter
from qeframe_plugins.routers.pt_spectrum import PtSpectrumRouter
from train_plugins import synthetic_arrays

from qeframe.config.specs import ModelSpec, TrainingSpec, parse_registry
from qeframe.errors import QeframeError, SpecError
from qeframe.evaluation.evaluate import evaluate
from qeframe.experiment.ensemble import plot_router_scores
from qeframe.learn.arrays import model_input, predict_logits
from qeframe.learn.ensemble import (
    EnsembleModel,
    load_ensemble,
    member_domains,
    member_seed,
    plan_members,
    route_arrays,
    validate_router,
)
from qeframe.learn.ensemble_training import train_ensemble
from qeframe.learn.runs import RunDir

# noisy GHZ: lambda_min = -(1 - p)/2 + p/8 in [-0.5, -0.375]; product states: lambda_min = 0
GHZ_VS_PRODUCT = [float("-inf"), -0.1, float("inf")]
MODEL = ModelSpec(backbone="test-mlp", params={"hidden": 8})
TRAINING = TrainingSpec(epochs=2, batch_size=16, lr=0.05)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def registry(qeframe_registry):
    return qeframe_registry(train_plugins, negativity, pt_plugin, autoencoder_plugin, entry_points=False)


# ------------------------------------------------------------------------------------------------ planning


@pytest.mark.parametrize(
    ("counts", "min_size", "expected"),
    [
        ([500, 300, 400], 100, [0, 1, 2]),  # all large: one member each
        ([500, 10, 0, 0, 300, 0], 100, [0, 0, 0, 1, 1, 1]),  # 10 joins the nearer 500; empties split
        ([0, 0, 50, 0, 0], 10, [0, 0, 0, 0, 0]),  # one non-empty domain serves everything
        ([5, 5, 5], 100, [0, 0, 0]),  # everything small: one member
        ([100, 20, 100], 50, [0, 0, 1]),  # equally near: the neighbour with fewer samples, then the lower
        ([100, 20, 80], 50, [0, 1, 1]),
        ([1, 0, 0, 1], 1, [0, 0, 1, 1]),  # min 1: non-empty domains stay apart, empties go to the nearest
        ([0, 7, 0, 9, 0], 1, [0, 0, 0, 1, 1]),  # an empty domain between equals goes to the lower one
        ([60, 0, 0, 10, 70], 50, [0, 0, 1, 1, 1]),  # 10 is nearer to 70 than to 60
    ],
)
def test_plan_members_merges_small_domains_into_the_nearest_neighbour(counts, min_size, expected):
    assert plan_members(counts, min_size).tolist() == expected


def test_plan_members_rejects_an_empty_training_set():
    with pytest.raises(QeframeError, match="no training sample"):
        plan_members([0, 0, 0], 10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=12).filter(any), st.integers(1, 500))
def test_plan_members_properties(counts, min_size):
    d2m = plan_members(counts, min_size)
    counts = np.asarray(counts)
    n_members = int(d2m.max()) + 1
    assert d2m.shape == counts.shape and d2m[0] == 0
    assert np.all(np.diff(d2m) >= 0) and set(d2m.tolist()) == set(range(n_members))  # contiguous, in order
    per_member = np.bincount(d2m, weights=counts, minlength=n_members)
    assert per_member.sum() == counts.sum() and np.all(per_member > 0)  # every member gets training data
    if n_members > 1:
        assert np.all(per_member >= min_size)
    if min_size == 1:  # nothing to merge: one member per non-empty domain
        assert n_members == np.count_nonzero(counts)
    assert [d for doms in member_domains(d2m) for d in doms] == list(range(len(counts)))


def test_member_seeds_are_distinct_and_reproducible():
    seeds = [member_seed(0, j) for j in range(10)]
    assert len(set(seeds)) == 10 and seeds == [member_seed(0, j) for j in range(10)]
    assert all(0 <= s < 2**63 for s in seeds) and member_seed(1, 0) != seeds[0]


# ------------------------------------------------------------------------------------------------ dispatch


class _Constant(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.full((x.shape[0], 3), self.value) + 0 * self.dummy


def test_ensemble_model_sends_each_state_to_the_member_of_its_domain():
    arrays = synthetic_arrays("mix", 40, seed=1)  # product and noisy GHZ states, shuffled
    x = model_input(arrays.rho)
    router = PtSpectrumRouter(PtSpectrumRouter.Params(thresholds=[float("-inf"), -0.1, -1e-6, float("inf")]))
    router.fit(x)
    domains = router.route(x)
    assert set(domains.tolist()) == {0, 2}  # GHZ -> 0, product -> 2 (lambda_min ~ 0 >= -1e-6), 1 empty
    model = EnsembleModel(router, [_Constant(10.0), _Constant(20.0)], [1, 0, 0])
    expected = torch.where(domains == 0, 20.0, 10.0)
    assert torch.equal(model(x), expected[:, None].expand(-1, 3))
    assert torch.equal(predict_logits(model, x, batch_size=7), model(x))  # as evaluation calls it
    assert model(x[:0]).shape == (0, 3)
    is_ghz = arrays.family == "ghz"
    assert torch.equal(domains, torch.as_tensor(np.where(is_ghz, 0, 2)))
    with pytest.raises(QeframeError, match="3 domains"):
        EnsembleModel(router, [_Constant(0.0)], [0, 0])
    with pytest.raises(QeframeError, match="outside 0..1"):
        EnsembleModel(router, [_Constant(0.0), _Constant(1.0)], [0, 2, 1])


# ------------------------------------------------------------------------------------------------ training


def _router(thresholds=GHZ_VS_PRODUCT) -> PtSpectrumRouter:
    return PtSpectrumRouter(PtSpectrumRouter.Params(thresholds=thresholds))


def test_train_ensemble_on_a_tiny_problem_trains_one_member_per_domain(registry, tmp_path):
    train = synthetic_arrays("train", 160, seed=2)
    val = synthetic_arrays("val", 40, seed=3)
    test = synthetic_arrays("test", 60, seed=4)
    run = RunDir.create(tmp_path / "runs", "ens", "a" * 64)
    result = train_ensemble(
        train,
        [val],
        router=_router(),
        model_spec=MODEL,
        training=TRAINING,
        min_domain_size=16,
        registry=registry,
        device="cpu",
        run=run,
    )
    n_ghz = int((train.family == "ghz").sum())
    assert result.train_counts.tolist() == [n_ghz, 160 - n_ghz]
    assert result.domain_to_member.tolist() == [0, 1] and result.n_members == 2
    assert [m.n_train for m in result.members] == [n_ghz, 160 - n_ghz]
    assert [m.domains for m in result.members] == [[0], [1]]
    assert all(m.epochs_done == 2 and m.best_epoch >= 1 and m.n_validation["val"] > 0 for m in result.members)
    assert result.members[0].seed != result.members[1].seed

    # inference: each test state goes through the member of its domain
    x = model_input(test.rho)
    logits = predict_logits(result.model, x)
    member = result.model.member_index(x)
    for j, net in enumerate(result.model.members):
        rows = member == j
        assert torch.allclose(logits[rows], predict_logits(net, x[rows]))
    # each member sees one kind of state with constant labels: the ensemble gets everything right
    results = evaluate([test], model=result.model, registry=registry)
    assert results["test"]["correct"]["model"]["mean"] >= 0.95

    # files: router, plan, members, manifest; the loaded ensemble predicts the same
    edir = run.path / "ensemble"
    for name in ("router.safetensors", "router.json", "plan.json", "ensemble.json"):
        assert (edir / name).is_file(), name
    for j in range(2):
        assert (edir / f"member-{j:02d}" / "checkpoints" / "best.json").is_file()
        assert len((edir / f"member-{j:02d}" / "metrics.jsonl").read_text().splitlines()) == 2
    manifest = json.loads((edir / "ensemble.json").read_text())
    assert manifest["domain_to_member"] == [0, 1] and manifest["router"]["name"] == "pt_spectrum"
    assert manifest["router"]["edges"] == ["-inf", -0.1, "inf"] and manifest["n_qubits"] == 3
    loaded, doc = load_ensemble(run.path, registry)
    assert doc["cuts"] == ["1|23", "2|13", "3|12"]
    assert torch.equal(predict_logits(loaded, x), logits)

    # resume: the saved router, plan and finished members are reused, nothing is retrained
    again = train_ensemble(
        train,
        [val],
        router=_router([float("-inf"), 5.0, float("inf")]),
        model_spec=MODEL,
        training=TRAINING,
        min_domain_size=16,
        registry=registry,
        device="cpu",
        run=run,
        resume=True,
    )
    assert again.router.edges.tolist() == result.router.edges.tolist()
    assert [m.best_epoch for m in again.members] == [m.best_epoch for m in result.members]
    assert torch.equal(predict_logits(again.model, x), logits)
    assert len((edir / "member-00" / "metrics.jsonl").read_text().splitlines()) == 2


def test_small_and_empty_domains_are_merged_before_training(registry):
    train = synthetic_arrays("train", 100, seed=5)
    n_ghz = int((train.family == "ghz").sum())
    # domains: [-inf,-0.3) GHZ | [-0.3,-0.05) empty | [-0.05,0.5) product | [0.5,inf) empty
    router = _router([float("-inf"), -0.3, -0.05, 0.5, float("inf")])
    result = train_ensemble(
        train,
        router=router,
        model_spec=MODEL,
        training=TRAINING.model_copy(update={"epochs": 1}),
        min_domain_size=10,
        registry=registry,
        device="cpu",
    )
    assert result.train_counts.tolist() == [n_ghz, 0, 100 - n_ghz, 0]
    assert result.domain_to_member.tolist() == [0, 0, 1, 1]
    # a minimum above the product count merges the product domain into the GHZ member
    result = train_ensemble(
        train,
        router=_router([float("-inf"), -0.3, -0.05, 0.5, float("inf")]),
        model_spec=MODEL,
        training=TRAINING.model_copy(update={"epochs": 1}),
        min_domain_size=100 - n_ghz + 1,
        registry=registry,
        device="cpu",
    )
    assert result.domain_to_member.tolist() == [0, 0, 0, 0] and result.members[0].n_train == 100


def test_autoencoder_router_in_an_ensemble_learns_from_separable_training_states(registry):
    train = synthetic_arrays("train", 120, seed=6)
    router = AutoencoderRouter(AutoencoderRouter.Params(terms=2, fc_layers=0, epochs=1, batch_size=16))
    result = train_ensemble(
        train,
        router=router,
        model_spec=MODEL,
        training=TRAINING.model_copy(update={"epochs": 1}),
        min_domain_size=30,
        registry=registry,
        device="cpu",
    )
    assert router.n_train == int((train.labels == 0).all(axis=1).sum())
    assert result.train_counts.sum() == 120 and all(m.n_train >= 30 for m in result.members)
    assert route_arrays(router, train).shape == (120,)


def test_router_score_histogram_is_written(registry, tmp_path):
    test = synthetic_arrays("test", 40, seed=7)
    x = model_input(test.rho)
    pt = _router().fit(x)  # negative and zero scores: linear bins
    ae = AutoencoderRouter(AutoencoderRouter.Params(terms=2, fc_layers=0, epochs=1)).fit(
        x
    )  # positive: log bins
    for router in (pt, ae):
        path = plot_router_scores(router, [test], tmp_path / f"{router.name}.png", train=test)
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_router_names_the_registry_key(registry):
    data = {
        "datasets": {
            "d": {"seed": 1, "labeler": "negativity", "families": [{"family": "test-toy", "count": 4}]}
        },
        "experiments": {
            "e": {"train": "d", "model": {"backbone": "test-mlp"}, "router": {"name": "autoencoder"}}
        },
    }
    reg_file = parse_registry(data)
    assert validate_router("e", reg_file.experiment("e"), reg_file, registry) == []
    data["experiments"]["e"]["router"] = {"name": "pt_spectrum", "fit_on": "d"}
    reg_file = parse_registry(data)
    assert validate_router("e", reg_file.experiment("e"), reg_file, registry) == ["d"]
    data["experiments"]["e"]["router"] = {"name": "autoencoder", "fit_on": "nope"}
    reg_file = parse_registry(data)
    with pytest.raises(SpecError, match=r"experiments\.e\.router\.fit_on: unknown dataset 'nope'"):
        validate_router("e", reg_file.experiment("e"), reg_file, registry)
    data["experiments"]["e"]["router"] = {"name": "autoencoder", "params": {"thresholds": [1, 0]}}
    reg_file = parse_registry(data)
    with pytest.raises(SpecError, match=r"^experiments\.e\.router\.params\.thresholds: "):
        validate_router("e", reg_file.experiment("e"), reg_file, registry)
    data["experiments"]["e"]["router"] = {"name": "autoencoder", "min_domain_size": 0}
    with pytest.raises(SpecError, match=r"router\.min_domain_size"):
        parse_registry(data)


# ------------------------------------------------------------------------------------------------ qeframe run

REGISTRY_TOML = """
[datasets.toy-train]
seed = 1
labeler = "negativity"
families = [
  { family = "test-toy", count = 64, params = { kind = "product" } },
  { family = "test-toy", count = 64, params = { kind = "ghz", local_randomize = true } },
]

[datasets.toy-val]
seed = 2
split = "validation"
labeler = "negativity"
families = [
  { family = "test-toy", count = 16, params = { kind = "product" } },
  { family = "test-toy", count = 16, params = { kind = "ghz" } },
]

[datasets.toy-test]
seed = 3
split = "test"
labeler = "negativity"
families = [
  { family = "test-toy", count = 20, tag = "product", params = { kind = "product", local_randomize = true } },
  { family = "test-toy", count = 20, tag = "ghz", params = { kind = "ghz", local_randomize = true } },
]

[experiments.toy-ensemble]
train = "toy-train"
validation = ["toy-val"]
test = ["toy-test"]
model = { backbone = "test-mlp", params = { hidden = 8 } }
training = { epochs = 2, batch_size = 32, lr = 0.01 }
router = { name = "autoencoder", min_domain_size = 24, params = { terms = 2, fc_layers = 0, epochs = 2, batch_size = 16, lr = 0.01 } }
"""


@pytest.mark.slow
def test_qeframe_run_trains_and_evaluates_an_ensemble(registry, tmp_path, qeframe_cli):
    reg_file = tmp_path / "registry.toml"
    reg_file.write_text(REGISTRY_TOML)
    data, runs = tmp_path / "data", tmp_path / "runs"
    common = ["--registry", reg_file, "--data-dir", data, "--runs-dir", runs, "--device", "cpu"]
    code, out, err = qeframe_cli("run", "toy-ensemble", *common)
    assert code == 0, err
    assert "ensemble of" in out and "Mean per-cut accuracy (%), convention 'paper'" in out
    assert "fitting router 'autoencoder'" in err and "member 1/" in err
    (run,) = list((runs / "toy-ensemble").iterdir())
    manifest = json.loads((run / "ensemble" / "ensemble.json").read_text())
    n_members = len(manifest["members"])
    assert sum(m["n_train"] for m in manifest["members"]) == 128 and sum(manifest["train_counts"]) == 128
    assert set(manifest["test_routing"]["toy-test"]) == {"(all)", "product", "ghz"}
    assert sum(manifest["test_routing"]["toy-test"]["(all)"]) == 40
    plots = {p.name for p in (run / "plots").iterdir()}
    assert {"router_scores.png", "accuracy_paper.png", "accuracy_correct.png"} <= plots
    assert {f"training_member-{j:02d}.png" for j in range(n_members)} <= plots
    plugins = json.loads((run / "plugins.json").read_text())
    assert plugins["components"]["router"]["name"] == "autoencoder"
    results = json.loads((run / "results.json").read_text())
    assert list(results["toy-test"]["paper"]) == ["model", "gated", "gated-proof", "ppt"]
    assert results["toy-test"]["npt_cuts"]["correct"]["gated"]["mean"] == 1.0  # the gate wraps the ensemble
    assert json.loads((run / "prediction.json").read_text())["gate"] == "ppt"
    assert "ensemble of" in (run / "results.md").read_text()

    # resume reuses everything and reports the same results
    code, out, err = qeframe_cli("run", "toy-ensemble", *common, "--resume", run, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["run"] == str(run) and len(payload["members"]) == n_members
    assert payload["results"] == results

    # classify routes user matrices through the ensemble: same probabilities as the model in-process
    from qeframe.evaluation.evaluate import model_probabilities
    from qeframe.quantum.ops import pure_density
    from qeframe.quantum.random import haar_state

    rho = pure_density(haar_state(2 ** manifest["n_qubits"], 5, np.random.default_rng(3)))
    np.save(tmp_path / "user.npy", rho)
    code, out, err = qeframe_cli("classify", tmp_path / "user.npy", "--run", run, "--device", "cpu", "--json")
    assert code == 0, err
    classified = json.loads(out)
    model, _ = load_ensemble(run, device="cpu")
    expected = model_probabilities(model, rho, device=torch.device("cpu"), amp_dtype=None)
    np.testing.assert_allclose(np.array(classified["model_probabilities"]), expected, atol=1e-6)
    # Haar-random pure states are NPT on every cut: the gate answers, with its proof
    assert classified["proof"] == [["npt"] * 3] * 5 and classified["answers"] == [["entangled"] * 3] * 5
    assert np.array(classified["probabilities"]).tolist() == [[1.0] * 3] * 5
    assert classified["cuts"] == manifest["cuts"] and classified["epoch"] == "ensemble"

    # a bad router parameter fails before any dataset is built, naming the key
    reg_file.write_text(REGISTRY_TOML.replace("terms = 2", "terms = 0"))
    code, out, err = qeframe_cli("run", "toy-ensemble", *common)
    assert code != 0 and "experiments.toy-ensemble.router.params.terms" in err


def test_load_ensemble_of_a_run_without_one_is_a_clear_error(tmp_path):
    run = RunDir.create(tmp_path, "exp", "b" * 64)
    with pytest.raises(QeframeError, match="no finished ensemble"):
        load_ensemble(Path(run.path))
