"""The repository's registry.toml: every dataset and experiment validates against the installed
plugins, and the paper's data sets have the sizes of the paper (Table I and the Appendix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qeframe.config.specs import load_registry_file, validate_dataset_plugins
from qeframe.learn.train import validate_experiment_plugins
from qeframe.plugin.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry_file(ROOT / "registry.toml")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


@pytest.mark.parametrize("name", sorted(REGISTRY.datasets))
def test_dataset_validates(name, registry):
    validate_dataset_plugins(name, REGISTRY.datasets[name], registry)


@pytest.mark.parametrize("name", sorted(REGISTRY.experiments))
def test_experiment_validates(name, registry):
    validate_experiment_plugins(name, REGISTRY.experiments[name], registry)


def _total(name: str) -> int:
    return sum(entry.count for entry in REGISTRY.datasets[name].families)


def _group(name: str, prefix: str) -> int:
    return sum(e.count for e in REGISTRY.datasets[name].families if (e.tag or "").startswith(prefix))


@pytest.mark.parametrize("labeler", ["verified", "negativity"])
def test_paper_training_sets_have_table_one_sizes(labeler):
    name = f"paper-train-{labeler}"
    assert REGISTRY.datasets[name].labeler.name == labeler
    assert _group(name, "pure-separable") == 40_000
    assert _group(name, "pure-biseparable") == 20_000
    assert _group(name, "pure-") == 120_000
    assert _group(name, "mixed-separable") == 160_000
    assert _group(name, "mixed-biseparable") == 120_000
    assert _group(name, "mixed-entangled-eq7") == 100_000
    assert _group(name, "mixed-entangled-eq8") == 60_000
    extra = 20_000 if labeler == "verified" else 0  # the verified set's max-rank reduced states
    assert _group(name, "mixed-max-rank") == extra
    assert _total(name) == 560_000 + extra


def test_paper_validation_and_test_sets():
    assert _total("paper-val") == 56_000 and _total("paper-val-horodecki") == 10_000
    assert _total("paper-test-pure") == 30_000 and _total("paper-test-mixed") == 40_000
    for fam in ("horodecki", "upb", "acin"):
        spec = REGISTRY.datasets[f"paper-test-{fam}"]
        assert _total(f"paper-test-{fam}") == 10_000
        assert all(e.params.get("local_randomize") for e in spec.families)
    for name in ("paper-test-pure", "paper-test-mixed"):
        assert all(e.params.get("local_randomize") for e in REGISTRY.datasets[name].families)


def test_paper_experiments_exist_for_both_labelers():
    for model in ("cnn", "siamese", "ensemble"):
        for labeler in ("verified", "negativity"):
            exp = REGISTRY.experiments[f"paper-{model}-{labeler}"]
            assert exp.train == f"paper-train-{labeler}"
            assert exp.training.epochs == 20
            assert bool(exp.training.symmetries) == (model != "cnn")
            assert (exp.router is not None) == (model == "ensemble")
            assert "ppt" in exp.evaluation.baselines
    assert "quickstart" in REGISTRY.experiments


def test_quickstart_is_a_siamese_cnn_and_the_comparisons_keep_the_paper_recipe():
    """Issue 16: the README's main job stays the Siamese CNN (both consistency terms, the CNN
    backbone), and the backbone comparisons on its data keep the paper-width recipe it had."""
    quickstart = REGISTRY.experiments["quickstart"]
    assert quickstart.model.backbone == "cnn"
    assert {s.name for s in quickstart.training.symmetries} == {"local_unitary", "permutation"}
    assert all(s.weight > 0 for s in quickstart.training.symmetries)
    for name in ("quickstart-cnn", "quickstart-tn", "quickstart-pe", "quickstart-ensemble"):
        spec = REGISTRY.experiments[name]
        assert spec.train == quickstart.train and spec.test == quickstart.test, name
        assert spec.training.epochs == 10 and spec.training.view_bce_weight == 0.0, name
        assert "ratio" not in spec.model.params and "batch_norm" not in spec.model.params, name
