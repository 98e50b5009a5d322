"""Templates and inheritance in ``registry.toml`` (:mod:`qeframe.config.templates`).

* The repository's registry, rewritten with ``extends`` / ``scale`` / ``override`` /
  ``families_extra`` / ``include``, expands to exactly the specs (and spec hashes) of the
  written-out file it replaced: ``tests/fixtures/registry_hashes.json``, made from that file by
  ``tests/registry_snapshot.py``. So no store under ``data/`` and no run folder (``pretrained/``
  included) went stale.
* The expansion rules: merge, scale rounding (halves up, exact), overrides, appended entries,
  includes; every error is one line that names the key path.
"""

from __future__ import annotations

import json
import re
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_snapshot import registry_snapshot

from qeframe.config.specs import (
    DatasetSpec,
    ExperimentSpec,
    FamilyEntry,
    load_registry_file,
    parse_registry,
    validate_dataset_plugins,
)
from qeframe.config.templates import REFERENCE, expand_registry, merge, parse_scale, scale_count
from qeframe.errors import SpecError
from qeframe.learn.runs import experiment_spec_hash
from qeframe.learn.train import validate_experiment_plugins
from qeframe.plugin.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "registry_hashes.json").read_text(encoding="utf-8"))
REGISTRY = load_registry_file(ROOT / "registry.toml")
SNAPSHOT = registry_snapshot(REGISTRY)
FIELDS = {
    "datasets": DatasetSpec.model_fields,
    "experiments": ExperimentSpec.model_fields,
    "families": FamilyEntry.model_fields,
}


def expand(data: dict[str, Any]) -> dict[str, Any]:
    return expand_registry(data, FIELDS)


def fam(tag: str, count: int, **params: Any) -> dict[str, Any]:
    return {"family": "circuit", "count": count, "tag": tag, "params": params}


def error(data: dict[str, Any]) -> str:
    """The one-line message of the SpecError that expanding ``data`` raises."""
    with pytest.raises(SpecError) as info:
        expand(data)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ the repository's registry


@pytest.mark.parametrize("kind", ["datasets", "experiments"])
def test_registry_declares_every_entry_of_the_fixture(kind):
    assert sorted(SNAPSHOT[kind]) == sorted(FIXTURE[kind])


@pytest.mark.parametrize("name", sorted(FIXTURE["datasets"]))
def test_dataset_spec_and_hash_unchanged(name):
    """The expanded spec equals the written-out one field by field, so the store hash is the same."""
    assert SNAPSHOT["datasets"][name]["spec"] == FIXTURE["datasets"][name]["spec"]
    assert SNAPSHOT["datasets"][name]["spec_hash"] == FIXTURE["datasets"][name]["spec_hash"]


@pytest.mark.parametrize("name", sorted(FIXTURE["experiments"]))
def test_experiment_spec_and_hash_unchanged(name):
    assert SNAPSHOT["experiments"][name]["spec"] == FIXTURE["experiments"][name]["spec"]
    assert SNAPSHOT["experiments"][name]["spec_hash"] == FIXTURE["experiments"][name]["spec_hash"]


def test_fixture_hashes_follow_the_hash_rules():
    """The fixture's hashes are what the hash functions give for the fixture's own specs (if this
    fails, a hash rule changed: rewrite the fixture with tests/registry_snapshot.py on purpose)."""
    datasets = {n: DatasetSpec.model_validate(e["spec"]) for n, e in FIXTURE["datasets"].items()}
    for name, spec in datasets.items():
        assert spec.spec_hash() == FIXTURE["datasets"][name]["spec_hash"], name
    for name, entry in FIXTURE["experiments"].items():
        spec = ExperimentSpec.model_validate(entry["spec"])
        assert experiment_spec_hash(spec, datasets, legacy=True) == entry["spec_hash"], name


@pytest.mark.parametrize("run", sorted(p.name for p in (ROOT / "pretrained").iterdir() if p.is_dir()))
def test_pretrained_runs_match_the_registry(run):
    """Every shipped run folder records the spec hashes the registry gives today."""
    recorded = json.loads((ROOT / "pretrained" / run / "spec.json").read_text(encoding="utf-8"))
    name = recorded["experiment"]
    assert recorded["spec_hash"] == SNAPSHOT["experiments"][name]["spec_hash"]
    for dataset, entry in recorded["datasets"].items():
        assert entry["spec_hash"] == SNAPSHOT["datasets"][dataset]["spec_hash"], dataset


def test_registry_is_short_and_uses_every_feature():
    text = (ROOT / "registry.toml").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400  # 1321 lines written out (6870e3d)
    for key in (
        "extends =",
        "scale =",
        "override.",
        "families_extra =",
        "include =",
        "[templates.datasets.",
        "[templates.experiments.",
    ):
        assert key in text, key


def test_registry_dataset_seeds_are_distinct():
    """An entry that extends a dataset inherits its seed; each dataset must still set its own."""
    seeds: dict[int, str] = {}
    for name, spec in REGISTRY.datasets.items():
        assert spec.seed not in seeds, f"{name} and {seeds[spec.seed]} share seed {spec.seed}"
        seeds[spec.seed] = name


def test_table_one_template_scales_exactly_to_the_quickstart_counts():
    """1/28 and 1/280 of Table I round half up to the counts the quickstart sets always had."""
    table = [f["count"] for f in REGISTRY.datasets["paper-train-negativity"].model_dump()["families"]]
    small = [f.count for f in REGISTRY.datasets["quickstart-train"].families]
    tiny = [f.count for f in REGISTRY.datasets["quickstart-val"].families]
    assert small == [(2 * c + 28) // 56 for c in table]
    assert tiny == [(2 * c + 280) // 560 for c in table]
    assert small[:6] == [1429, 714, 929, 71, 71, 1071]


def reference_toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", REFERENCE, flags=re.DOTALL)


def test_reference_examples_expand_as_documented():
    """The "How to add a dataset or an experiment" examples of the reference page, added to the
    real registry, give what the page says."""
    blocks = [tomllib.loads(block) for block in reference_toml_blocks()]
    assert [list(b) for b in blocks] == [["datasets"], ["datasets"], ["experiments"]]
    data = tomllib.loads((ROOT / "registry.toml").read_text(encoding="utf-8"))
    assert set(blocks[0]["datasets"]) == {"quickstart-test-upb"}
    for block in blocks:  # the first replaces the one-line entry by the same entry as a table
        for kind, entries in block.items():
            data[kind].update(entries)
    registry = parse_registry(data)
    assert registry.datasets["quickstart-test-upb"] == REGISTRY.datasets["quickstart-test-upb"]
    mine = registry.datasets["my-train"]
    table = REGISTRY.datasets["paper-train-negativity"].families
    assert [f.count for f in mine.families[:-1]] == [scale_count(f.count, Fraction(1, 100)) for f in table]
    assert mine.families[20].params == {"base": "circuit", "base_kind": "entangled", "keep": "npt_all"}
    assert mine.families[-1].family == "horodecki" and mine.families[-1].count == 500
    assert mine.labeler.name == "verified" and mine.split == "train"
    experiment = registry.experiments["my-quickstart-wide"].model_dump()
    expected = REGISTRY.experiments["quickstart"].model_dump()
    expected["train"] = "my-train"
    expected["description"] = "quickstart's Siamese CNN at the paper's width, 5 epochs, on my-train"
    assert expected["model"]["params"]["ratio"] != 16.0
    expected["model"]["params"]["ratio"] = 16.0
    expected["training"]["epochs"] = 5
    assert experiment == expected
    plugins = Registry.load()
    validate_dataset_plugins("my-train", mine, plugins)
    validate_experiment_plugins("my-quickstart-wide", registry.experiments["my-quickstart-wide"], plugins)


# ------------------------------------------------------------------ merge and extends


def test_extends_merges_tables_and_replaces_other_values():
    data = {
        "templates": {
            "experiments": {
                "base": {
                    "model": {"backbone": "cnn", "params": {"batch_norm": True, "width": 8}},
                    "training": {"epochs": 20, "lr": 0.001, "symmetries": [{"name": "permutation"}]},
                    "test": ["a", "b"],
                }
            }
        },
        "experiments": {
            "x": {
                "extends": "base",
                "train": "t",
                "model": {"params": {"width": 16}},
                "training": {"epochs": 2, "symmetries": []},
                "test": ["c"],
            }
        },
    }
    out = expand(data)
    assert "templates" not in out
    assert out["experiments"] == {
        "x": {
            "model": {"backbone": "cnn", "params": {"batch_norm": True, "width": 16}},
            "training": {"epochs": 2, "lr": 0.001, "symmetries": []},
            "test": ["c"],
            "train": "t",
        }
    }


def test_a_string_replaces_an_inherited_table_and_back():
    data = {
        "datasets": {
            "a": {
                "seed": 1,
                "labeler": {"name": "certified", "params": {"sdp": False}},
                "families": [fam("x", 1)],
            },
            "b": {"extends": "a", "seed": 2, "labeler": "verified"},
            "c": {"extends": "b", "seed": 3, "labeler": {"name": "negativity"}},
        }
    }
    out = expand(data)["datasets"]
    assert out["b"]["labeler"] == "verified"
    assert out["c"]["labeler"] == {"name": "negativity"}


def test_extends_chains_through_templates_and_entries_in_any_order():
    data = {
        "datasets": {
            "late-child": {"extends": "mid", "seed": 3},
            "mid": {"extends": "root", "seed": 2, "description": "mid"},
        },
        "templates": {
            "datasets": {"root": {"split": "test", "labeler": "negativity", "families": [fam("x", 4)]}}
        },
    }
    out = expand(data)["datasets"]
    assert list(out) == ["late-child", "mid"]  # file order kept, templates dropped
    assert out["late-child"] == {
        "split": "test",
        "labeler": "negativity",
        "families": [fam("x", 4)],
        "seed": 3,
        "description": "mid",
    }


def test_expansion_does_not_modify_its_input():
    data = {
        "templates": {"datasets": {"t": {"families": [fam("x", 10, kind="a")], "labeler": "negativity"}}},
        "datasets": {
            "d": {"extends": "t", "seed": 1, "scale": "1/2", "override": {"x": {"params": {"kind": "b"}}}}
        },
    }
    before = json.dumps(data, sort_keys=True)
    first = expand(data)
    assert json.dumps(data, sort_keys=True) == before
    assert expand(data) == first
    assert first["datasets"]["d"]["families"] == [fam("x", 5, kind="b")]


def test_templates_are_not_validated_on_their_own():
    """A template may lack required keys (no seed, no labeler): only the entries are validated."""
    data = {
        "templates": {"datasets": {"t": {"families": [{"family": "circuit", "count": 10}]}}},
        "datasets": {"d": {"extends": "t", "seed": 1, "labeler": "negativity"}},
    }
    registry = parse_registry(data)
    assert list(registry.datasets) == ["d"]
    assert registry.datasets["d"].families[0].count == 10


def test_registry_without_template_keys_is_unchanged():
    """The written-out specs of the fixture are a fixed point of the expansion."""
    plain = {kind: {n: e["spec"] for n, e in FIXTURE[kind].items()} for kind in ("datasets", "experiments")}
    assert expand(plain) == plain


# ------------------------------------------------------------------ errors name the key path


def test_unknown_extends_target_names_the_key_and_the_choices():
    data = {
        "datasets": {
            "paper-test-pure": {"seed": 1, "families": [fam("x", 1)]},
            "quickstart-test-pure": {"extends": "paper-test-pur", "seed": 2},
        },
        "templates": {"datasets": {"table-i": {"split": "train"}}},
    }
    assert error(data) == (
        "datasets.quickstart-test-pure.extends: unknown dataset or template 'paper-test-pur' "
        "(did you mean 'paper-test-pure'?); defined: paper-test-pure, quickstart-test-pure, table-i"
    )


def test_extends_must_name_an_entry_of_the_same_kind():
    data = {"datasets": {"d": {"seed": 1}}, "experiments": {"e": {"extends": "d"}}}
    assert error(data).startswith("experiments.e.extends: unknown experiment or template 'd';")


def test_extends_must_be_a_name():
    data = {"datasets": {"d": {"extends": ["a"], "seed": 1}}}
    assert error(data) == "datasets.d.extends: expected the name of a dataset or template, got ['a']"


@pytest.mark.parametrize(
    "datasets,templates,message",
    [
        ({"a": {"extends": "a"}}, {}, "datasets.a.extends: cycle a -> a"),
        ({"a": {"extends": "b"}, "b": {"extends": "a"}}, {}, "datasets.b.extends: cycle a -> b -> a"),
        (
            {"a": {"extends": "t"}},
            {"t": {"extends": "u"}, "u": {"extends": "t"}},
            "templates.datasets.u.extends: cycle t -> u -> t",
        ),
        (
            {"a": {"families": [{"include": "b"}]}, "b": {"families_extra": [{"include": "a"}]}},
            {},
            "datasets.b.families_extra[0].include: cycle a -> b -> a",
        ),
    ],
)
def test_cycles_are_reported_with_their_path(datasets, templates, message):
    assert error({"datasets": datasets, "templates": {"datasets": templates}}) == message


def test_unknown_key_lists_the_allowed_keys():
    message = error({"datasets": {"d": {"seed": 1, "sede": 2}}})
    assert message.startswith("datasets.d.sede: unknown key; allowed: ")
    allowed = message.split("allowed: ")[1].split(", ")
    assert allowed == sorted({*DatasetSpec.model_fields, "extends", "scale", "override", "families_extra"})


def test_unknown_key_in_a_template_is_reported_even_when_unused():
    message = error({"templates": {"experiments": {"t": {"epochs": 3}}}})
    assert message.startswith(
        "templates.experiments.t.epochs: unknown key; allowed: description, evaluation, extends,"
    )


def test_dataset_keys_are_not_experiment_keys():
    message = error({"experiments": {"e": {"train": "d", "scale": 2}}})
    assert message.startswith("experiments.e.scale: unknown key; allowed: ")
    assert "extends" in message and "scale," not in message


@pytest.mark.parametrize(
    "templates,message",
    [
        ({"dataset": {}}, "templates.dataset: unknown key; allowed: datasets, experiments"),
        ({"datasets": []}, "templates.datasets: expected a table of [templates.datasets.NAME] entries"),
        (
            {"datasets": {"d": {"seed": 1}}},
            "templates.datasets.d: a dataset has the same name; give the template its own name so that `extends` is unambiguous",
        ),
        ({"datasets": {"t": "x"}}, "templates.datasets.t: expected a table"),
    ],
)
def test_bad_templates_table(templates, message):
    assert error({"templates": templates, "datasets": {"d": {"seed": 1}}}) == message


def test_errors_reach_the_user_as_spec_errors_through_parse_registry():
    with pytest.raises(
        SpecError, match=r"^datasets\.d\.extends: unknown dataset or template 'nope'; defined: d$"
    ):
        parse_registry({"datasets": {"d": {"extends": "nope", "seed": 1}}})


def test_malformed_registries_are_left_to_pydantic():
    with pytest.raises(SpecError, match=r"^datasets: Input should be a valid dictionary"):
        parse_registry({"datasets": 3})
    with pytest.raises(SpecError, match=r"^datasets\.d: Input should be a valid dictionary"):
        parse_registry({"datasets": {"d": "x"}})


def test_cli_prints_a_template_error_as_one_line(tmp_path, qeframe_cli):
    path = tmp_path / "registry.toml"
    path.write_text('[datasets.d]\nextends = "missing"\nseed = 1\n', encoding="utf-8")
    code, out, err = qeframe_cli("data", "list", "--registry", path)
    assert (code, out) == (2, "")
    assert err == "error: datasets.d.extends: unknown dataset or template 'missing'; defined: d\n"


# ------------------------------------------------------------------ scale


@pytest.mark.parametrize(
    "count,scale,expected",
    [
        (40000, "1/28", 1429),  # 1428.57
        (20000, "1/28", 714),  # 714.29
        (2000, "1/280", 7),  # 7.14
        (5, "1/2", 3),  # 2.5: halves round up (half-even would give 2)
        (7, "1/2", 4),  # 3.5
        (5, 0.3, 2),  # 1.5 exactly: 0.3 is read as 3/10, not as the double 0.29999999999999998890
        (25, 0.1, 3),  # 2.5
        (3, 2, 6),
        (10, "0.05", 1),  # 0.5
        (1, "3/2", 2),  # 1.5
    ],
)
def test_scale_rounds_half_up_exactly(count, scale, expected):
    data = {"datasets": {"d": {"seed": 1, "families": [fam("x", count)], "scale": scale}}}
    assert expand(data)["datasets"]["d"]["families"][0]["count"] == expected


@pytest.mark.parametrize(
    "value", [0, -1, "-1/2", "abc", "1/0", True, [1], {"a": 1}, float("nan"), float("inf"), "", 0.0]
)
def test_bad_scale_is_named_with_the_allowed_values(value):
    data = {"datasets": {"d": {"seed": 1, "families": [fam("x", 10)], "scale": value}}}
    assert (
        error(data)
        == f'datasets.d.scale: expected a positive number or a fraction like "1/28", got {value!r}'
    )


def test_scale_to_zero_states_is_an_error_unless_overridden():
    data = {"datasets": {"d": {"seed": 1, "families": [fam("big", 100), fam("ghz", 4)], "scale": "1/10"}}}
    assert error(data) == (
        "datasets.d.scale: '1/10' leaves 'ghz' (families[1]) with 0 states; "
        "use a larger scale or set its count with override.ghz.count"
    )
    data["datasets"]["d"]["override"] = {"ghz": {"count": 1}}
    assert [f["count"] for f in expand(data)["datasets"]["d"]["families"]] == [10, 1]


def test_scale_needs_families():
    assert (
        error({"datasets": {"d": {"seed": 1, "scale": 2}}})
        == "datasets.d.scale: the entry has no families to scale"
    )


def test_scale_acts_on_the_counts_as_inherited():
    """1/2 of 1/2 of 5 is 3 -> 2 (rounded twice), while 1/4 of 5 is 1: extend the unscaled template."""
    data = {
        "templates": {"datasets": {"t": {"families": [fam("x", 5), fam("y", 100)]}}},
        "datasets": {
            "half": {"extends": "t", "seed": 1, "scale": "1/2"},
            "half-of-half": {"extends": "half", "seed": 2, "scale": "1/2"},
            "quarter": {"extends": "t", "seed": 3, "scale": "1/4"},
        },
    }
    out = expand(data)["datasets"]
    assert [f["count"] for f in out["half"]["families"]] == [3, 50]
    assert [f["count"] for f in out["half-of-half"]["families"]] == [2, 25]
    assert [f["count"] for f in out["quarter"]["families"]] == [1, 25]


def test_invalid_counts_are_left_for_pydantic():
    data = {
        "datasets": {
            "d": {
                "seed": 1,
                "labeler": "negativity",
                "families": [fam("x", 10) | {"count": "ten"}],
                "scale": 2,
            }
        }
    }
    assert expand(data)["datasets"]["d"]["families"][0]["count"] == "ten"
    with pytest.raises(SpecError, match=r"datasets\.d\.families\.0\.count: Input should be a valid integer"):
        parse_registry(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=1, max_value=10**7),
    p=st.integers(min_value=1, max_value=1000),
    q=st.integers(min_value=1, max_value=1000),
)
def test_scale_count_is_round_half_up_of_the_exact_product(count, p, q):
    n = scale_count(count, Fraction(p, q))
    assert n == (2 * count * p + q) // (2 * q)  # floor(count p / q + 1/2) in integers
    assert abs(Fraction(n) - Fraction(count * p, q)) <= Fraction(1, 2)
    assert parse_scale("k", f"{p}/{q}") == Fraction(p, q)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_float_scale_is_the_decimal_it_is_written_as(x):
    assert parse_scale("k", x) == Fraction(repr(x))
    assert parse_scale("k", x) == parse_scale("k", tomllib.loads(f"s = {x!r}")["s"])


# ------------------------------------------------------------------ override, families_extra, include


def test_override_merges_into_the_tagged_family_after_scale():
    data = {
        "datasets": {
            "d": {
                "seed": 1,
                "families": [fam("a", 100, kind="x", keep="all"), fam("b", 100, kind="y")],
                "scale": "1/10",
                "override": {"a": {"params": {"keep": "npt_all"}}, "b": {"count": 7, "tag": "b2"}},
            }
        }
    }
    assert expand(data)["datasets"]["d"]["families"] == [
        fam("a", 10, kind="x", keep="npt_all"),
        {"family": "circuit", "count": 7, "tag": "b2", "params": {"kind": "y"}},
    ]


def test_override_by_family_name_when_untagged():
    data = {
        "datasets": {
            "d": {"seed": 1, "families": [{"family": "upb", "count": 5}], "override": {"upb": {"count": 6}}}
        }
    }
    assert expand(data)["datasets"]["d"]["families"] == [{"family": "upb", "count": 6}]


@pytest.mark.parametrize(
    "override,message",
    [
        (
            {"pure-ghs": {"count": 1}},
            "datasets.d.override.pure-ghs: no family has this tag (did you mean 'pure-ghz'?); tags: pure-ghz, pure-w, pure-w2",
        ),
        (
            {"pure-w": {"cont": 1}},
            "datasets.d.override.pure-w.cont: unknown key; allowed: count, family, params, tag",
        ),
        (
            {"pure-w": 3},
            "datasets.d.override.pure-w: expected a table of family keys (count, family, params, tag)",
        ),
    ],
)
def test_bad_override(override, message):
    data = {
        "datasets": {
            "d": {
                "seed": 1,
                "families": [fam("pure-ghz", 1), fam("pure-w", 1), fam("pure-w2", 1)],
                "override": override,
            }
        }
    }
    assert error(data) == message


def test_override_of_an_ambiguous_tag_is_an_error():
    data = {
        "datasets": {
            "d": {"seed": 1, "families": [fam("x", 1), fam("x", 2)], "override": {"x": {"count": 3}}}
        }
    }
    assert (
        error(data)
        == "datasets.d.override.x: 2 families have this tag (families[0, 1]); give them distinct tags"
    )


def test_override_must_be_a_table_with_families():
    assert error({"datasets": {"d": {"seed": 1, "families": [fam("x", 1)], "override": ["x"]}}}) == (
        "datasets.d.override: expected a table: override.TAG = { key = value, ... }"
    )
    assert error({"datasets": {"d": {"seed": 1, "override": {}}}}) == (
        "datasets.d.override: the entry has no families to override"
    )


def test_families_extra_is_appended_unscaled_and_not_overridden():
    data = {
        "templates": {"datasets": {"t": {"families": [fam("a", 100)]}}},
        "datasets": {
            "d": {
                "extends": "t",
                "seed": 1,
                "scale": "1/4",
                "override": {"a": {"params": {"k": 1}}},
                "families_extra": [fam("a2", 100), {"include": "t", "scale": "1/2"}],
            }
        },
    }
    assert expand(data)["datasets"]["d"]["families"] == [fam("a", 25, k=1), fam("a2", 100), fam("a", 50)]


def test_families_extra_needs_an_array_and_works_without_inherited_families():
    assert error({"datasets": {"d": {"seed": 1, "families_extra": fam("x", 1)}}}) == (
        "datasets.d.families_extra: expected an array of family entries"
    )
    assert expand({"datasets": {"d": {"seed": 1, "families_extra": [fam("x", 1)]}}})["datasets"]["d"][
        "families"
    ] == [fam("x", 1)]
    assert error({"datasets": {"d": {"seed": 1, "families": "x", "families_extra": [fam("x", 1)]}}}) == (
        "datasets.d.families_extra: `families` is not an array, so nothing can be appended"
    )


def test_include_inlines_the_expanded_families_of_another_entry():
    data = {
        "templates": {"datasets": {"t": {"families": [fam("a", 30)]}}},
        "datasets": {
            "small": {"extends": "t", "seed": 1, "scale": "1/3", "families_extra": [fam("b", 4)]},
            "both": {
                "seed": 2,
                "families": [{"include": "small"}, fam("c", 1), {"include": "t", "scale": 2}],
            },
        },
    }
    assert expand(data)["datasets"]["both"]["families"] == [
        fam("a", 10),
        fam("b", 4),
        fam("c", 1),
        fam("a", 60),
    ]


@pytest.mark.parametrize(
    "item,message",
    [
        ({"include": "t", "count": 3}, "datasets.d.families[0].count: unknown key; allowed: include, scale"),
        (
            {"include": "nope"},
            "datasets.d.families[0].include: unknown dataset or template 'nope'; defined: d, e, t",
        ),
        ({"include": "e"}, "datasets.d.families[0].include: 'e' has no families"),
        (
            {"include": "t", "scale": "x"},
            "datasets.d.families[0].scale: expected a positive number or a fraction like \"1/28\", got 'x'",
        ),
        (
            {"include": "t", "scale": "1/100"},
            "datasets.d.families[0].scale: '1/100' leaves 'a' (families[0]) with 0 states; use a larger scale or set its count with override.a.count",
        ),
    ],
)
def test_bad_include(item, message):
    data = {
        "templates": {"datasets": {"t": {"families": [fam("a", 30)]}}},
        "datasets": {"d": {"seed": 1, "families": [item]}, "e": {"seed": 2}},
    }
    assert error(data) == message


# ------------------------------------------------------------------ properties of the expansion

_keys = st.sampled_from(["a", "b", "c", "params", "training"])
_values = st.recursive(
    st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=3)),
    lambda inner: st.dictionaries(_keys, inner, max_size=3),
    max_leaves=6,
)
_tables = st.dictionaries(_keys, _values, max_size=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=_tables, top=_tables)
def test_merge_keeps_what_top_does_not_say_and_takes_what_it_says(base, top):
    out = merge(base, top)
    assert set(out) == set(base) | set(top)
    for key, value in out.items():
        if key not in top:
            assert value == base[key]
        elif isinstance(top[key], dict) and isinstance(base.get(key), dict):
            assert value == merge(base[key], top[key])
        else:
            assert value == top[key]
    assert merge(out, top) == out  # idempotent
    assert merge({}, top) == top and merge(base, {}) == base


_family = st.builds(
    fam,
    st.sampled_from(["a", "b", "c", "d"]),
    st.integers(min_value=1, max_value=10**6),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    families=st.lists(_family, min_size=1, max_size=6, unique_by=lambda f: f["tag"]),
    p=st.integers(min_value=1, max_value=50),
    q=st.integers(min_value=1, max_value=50),
    seed=st.integers(min_value=0, max_value=10),
)
def test_extends_with_scale_equals_the_entry_written_out(families, p, q, seed):
    """An entry that extends a template with a scale expands to the template's keys plus its own,
    with every count rounded half up; written out in full, it is a fixed point of the expansion."""
    scaled = [f | {"count": (2 * f["count"] * p + q) // (2 * q)} for f in families]
    if any(f["count"] < 1 for f in scaled):
        with pytest.raises(SpecError, match=r"^datasets\.d\.scale: .* with 0 states"):
            expand(
                {
                    "templates": {"datasets": {"t": {"families": families}}},
                    "datasets": {"d": {"extends": "t", "scale": f"{p}/{q}"}},
                }
            )
        return
    data = {
        "templates": {"datasets": {"t": {"split": "test", "labeler": "negativity", "families": families}}},
        "datasets": {"d": {"extends": "t", "seed": seed, "scale": f"{p}/{q}"}},
    }
    written_out = {"split": "test", "labeler": "negativity", "families": scaled, "seed": seed}
    assert expand(data)["datasets"]["d"] == written_out
    assert expand({"datasets": {"d": written_out}})["datasets"]["d"] == written_out
