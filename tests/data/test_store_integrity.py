"""What a store reader checks (issue 14 items 2 and 6): the files against the manifest's hashes on every
read path, free text out of the store's identity (store format 3), and the migration of older stores:
format 2 and 3 stores whose families' rows store format 4 left unchanged are migrated by a manifest
rewrite, the others are rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.labelers import negativity
from store_plugins import ToyProduct, fails
from typer.testing import CliRunner

from qeframe import hookimpl
from qeframe.cli.base import app
from qeframe.config.specs import DatasetSpec
from qeframe.data.format import STORE_FORMAT
from qeframe.data.reader import open_dataset, store_status
from qeframe.data.store import ensure_dataset
from qeframe.data.verify import check_store, forget_verified
from qeframe.errors import StoreError

REGISTRY = """
[datasets.small]
n_qubits = 2
seed = 3
split = "test"
labeler = "negativity"
description = "two families"

[[datasets.small.families]]
family = "toy-product"
count = 300
tag = "products"

[[datasets.small.families]]
family = "toy-product"
count = 200
params = { local_randomize = true }
"""


class ToyPlugin:
    @hookimpl
    def qeframe_register_families(self, register):
        register(ToyProduct)


@pytest.fixture
def env(tmp_path, qeframe_registry, monkeypatch):
    """A tmp working directory holding registry.toml and a built store data/small/ (300 + 200 states,
    shard size 128: four data files)."""
    qeframe_registry(ToyPlugin(), negativity, entry_points=False)
    (tmp_path / "registry.toml").write_text(REGISTRY)
    monkeypatch.chdir(tmp_path)

    invoke("data", "build", "small", "--no-progress", "--shard-size", "128", "--workers", "1")
    forget_verified()
    return tmp_path


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def registry_file():
    from qeframe.config.specs import load_registry_file

    return load_registry_file(Path("registry.toml"))


def zero_bytes(path: Path, offset: int, count: int = 64) -> None:
    """Overwrite ``count`` bytes of ``path`` at ``offset`` from the end with zeros, in place."""
    with open(path, "r+b") as f:
        f.seek(-offset, 2)
        f.write(bytes(count))


def test_untouched_store_passes_every_reader(env, capsys):
    out = json.loads(invoke("data", "verify", "--json").stdout)
    assert [(r["dataset"], r["states"], r["status"]) for r in out] == [("small", 500, "ok")]
    assert json.loads(invoke("data", "verify", "small", "--json").stdout)[0]["status"] == "ok"
    ds = open_dataset("small", data_dir=Path("data"))
    assert ds.manifest["format"] == STORE_FORMAT == 4
    assert [len(f["hashes"]) for f in ds.manifest["shards"]] == [len(ds.manifest["arrays"])] * 4
    assert ds.verify()
    out = json.loads(invoke("data", "build", "small", "--no-progress", "--json").stdout)
    assert out[0]["status"] == "up to date"
    invoke("data", "info", "small")
    invoke("data", "export", "small", "--out", "small.npz")
    ensure_dataset("small", registry_file(), data_dir=Path("data"), progress=False)


def test_a_corrupted_byte_is_refused_by_every_reader_path(env, capsys):
    """64 bytes of a stored rho.npy zeroed on disk: info, build (up-to-date check), export, verify,
    open_dataset and ensure_dataset (what `run` uses) all refuse in one line that names the file and
    both hashes; build --force repairs the store."""
    target = env / "data" / "small" / "shard-00002" / "rho.npy"
    zero_bytes(target, 200)
    for args in (
        ("data", "info", "small"),
        ("data", "build", "small", "--no-progress"),
        ("data", "export", "small", "--out", "x.npz"),
        ("data", "verify", "small"),
        ("data", "verify"),
    ):
        forget_verified()
        err = fails(capsys, *args)
        assert "dataset 'small' is corrupt" in err and str(Path("data/small/shard-00002/rho.npy")) in err, (
            args
        )
        assert "its manifest says" in err and "qeframe data build small --force" in err
    assert not (env / "x.npz").exists()
    with pytest.raises(StoreError, match="shard-00002/rho.npy has sha256 [0-9a-f]{64}, its manifest says"):
        open_dataset("small", data_dir=Path("data"))
    with pytest.raises(StoreError, match="is corrupt"):
        ensure_dataset("small", registry_file(), data_dir=Path("data"), progress=False)
    result = CliRunner().invoke(app, ["data", "verify", "--json"])
    assert result.exit_code != 0
    out = json.loads(result.stdout)
    assert out[0]["status"].startswith("corrupt: ") and "shard-00002" in out[0]["status"]
    invoke("data", "build", "small", "--no-progress", "--force", "--shard-size", "128", "--workers", "1")
    assert json.loads(invoke("data", "verify", "small", "--json").stdout)[0]["status"] == "ok"


@pytest.mark.parametrize("array", ["labels", "provenance", "evidence", "entry", "meta.pure"])
def test_every_array_is_checked(env, array):
    """One flipped bit in the last byte of any array of any file is found, and only there."""
    path = env / "data" / "small" / "shard-00003" / f"{array}.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    manifest = json.loads((env / "data" / "small" / "manifest.json").read_text())
    damage = check_store(env / "data" / "small", manifest)
    assert [(d.path.parent.name, d.path.name) for d in damage] == [("shard-00003", f"{array}.npy")]
    assert damage[0].expected == manifest["shards"][3]["hashes"][array] != damage[0].actual


def test_a_missing_or_truncated_file_is_named(env, capsys):
    path = env / "data" / "small" / "shard-00001" / "labels.npy"
    path.write_bytes(path.read_bytes()[:-10])
    err = fails(capsys, "data", "verify", "small")
    assert "shard-00001/labels.npy has sha256" in err
    (env / "data" / "small" / "shard-00003" / "evidence.npy").unlink()
    forget_verified()
    assert "shard-00001/labels.npy" in fails(capsys, "data", "info", "small")


def test_verification_is_cached_per_unchanged_store(env, monkeypatch):
    from qeframe.data import verify

    calls = []
    real = verify.data_sha256
    monkeypatch.setattr(verify, "data_sha256", lambda p: calls.append(p) or real(p))
    open_dataset("small", data_dir=Path("data"))
    first = len(calls)
    assert first == 4 * 10  # 4 files x 10 arrays
    open_dataset("small", data_dir=Path("data"))
    assert len(calls) == first  # cached: same files, same sizes and mtimes
    path = env / "data" / "small" / "shard-00000" / "labels.npy"
    path.write_bytes(path.read_bytes())  # rewritten: a new mtime
    open_dataset("small", data_dir=Path("data"))
    assert len(calls) == first + 4 * 10


def test_verify_without_stores_and_unknown_names(env, capsys, tmp_path):
    assert "no dataset stores in" in fails(capsys, "data", "verify", "--data-dir", str(tmp_path / "none"))
    assert "dataset 'nope' is not built" in fails(capsys, "data", "verify", "nope")


# --------------------------------------------------------------------------------------------------
# Free text out of the identity (store format 3)


def spec_with(**changes) -> DatasetSpec:
    base = {
        "n_qubits": 2,
        "seed": 3,
        "labeler": "negativity",
        "description": "x",
        "families": [{"family": "toy-product", "count": 10, "tag": "a"}],
    }
    return DatasetSpec.model_validate({**base, **changes})


def test_identity_hash_ignores_free_text_only():
    a = spec_with()
    assert spec_with(description="typo fixed").identity_hash() == a.identity_hash()
    assert spec_with(families=[{"family": "toy-product", "count": 10}]).identity_hash() == a.identity_hash()
    assert spec_with(description="typo fixed").spec_hash() != a.spec_hash()  # the record keeps it
    for other in (
        spec_with(seed=4),
        spec_with(split="test"),
        spec_with(n_qubits=3),
        spec_with(labeler="ppt"),
        spec_with(families=[{"family": "toy-product", "count": 11, "tag": "a"}]),
        spec_with(families=[{"family": "toy-product", "count": 10, "tag": "a", "params": {"x": 1}}]),
    ):
        assert other.identity_hash() != a.identity_hash()


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=40), st.one_of(st.none(), st.text(min_size=1, max_size=10)))
def test_identity_hash_property(description, tag):
    a = spec_with()
    b = spec_with(description=description, families=[{"family": "toy-product", "count": 10, "tag": tag}])
    assert a.identity_hash() == b.identity_hash()


def test_a_description_or_tag_fix_refreshes_the_manifest_without_a_rebuild(env):
    store = env / "data" / "small"
    before = {p: p.stat().st_mtime_ns for p in store.glob("shard-*/*.npy")}
    old = json.loads((store / "manifest.json").read_text())
    (env / "registry.toml").write_text(
        REGISTRY.replace('"two families"', '"two families, typo fixed"').replace('"products"', '"product"')
    )
    spec = registry_file().dataset("small")
    assert store_status("small", spec, data_dir=Path("data")) == "built"
    out = json.loads(invoke("data", "build", "small", "--no-progress", "--json").stdout)
    assert out[0]["status"] == "up to date" and out[0]["content hash"] == old["content_hash"][:16]
    assert {p: p.stat().st_mtime_ns for p in store.glob("shard-*/*.npy")} == before
    new = json.loads((store / "manifest.json").read_text())
    assert new["description"] == "two families, typo fixed" and new["spec_hash"] == spec.spec_hash()
    assert [f["label"] for f in new["families"]] == ["product", "toy-product"]
    assert new["content_hash"] == old["content_hash"] and new["identity_hash"] == old["identity_hash"]
    assert set(open_dataset("small", data_dir=Path("data")).family) == {"product", "toy-product"}
    # ensure_dataset (what `run` calls) refreshes as well
    (env / "registry.toml").write_text(REGISTRY.replace('"two families"', '"again"'))
    ds = ensure_dataset("small", registry_file(), data_dir=Path("data"), progress=False)
    assert ds.manifest["description"] == "again" and ds.content_hash == old["content_hash"]


def test_a_real_spec_change_still_rebuilds(env):
    (env / "registry.toml").write_text(REGISTRY.replace("seed = 3", "seed = 5"))
    assert store_status("small", registry_file().dataset("small"), data_dir=Path("data")) == "stale"
    out = json.loads(invoke("data", "build", "small", "--no-progress", "--json").stdout)
    assert out[0]["status"] == "built"


# --------------------------------------------------------------------------------------------------
# Stores of formats 2 and 3

BUILTIN_REGISTRY = """
[datasets.small]
n_qubits = 3
seed = 3
split = "test"
labeler = "negativity"
description = "built-in families whose rows store format 4 left unchanged"
families = [
  { family = "haar", count = 150, tag = "products", params = { kind = "separable" } },
  { family = "product", count = 100, params = { kind = "biseparable", source = "circuit", terms = [2, 4] } },
]

[datasets.changed]
n_qubits = 3
seed = 4
split = "test"
labeler = "negativity"
families = [
  { family = "haar", count = 100 },
  { family = "cut-separable", count = 100 },
]
"""


@pytest.fixture
def builtin_env(tmp_path, qeframe_registry, monkeypatch):
    """A tmp working directory with the built-in plugins (entry points) and the stores data/small/
    (families unchanged by format 4) and data/changed/ (with cut-separable, whose rows changed)."""
    qeframe_registry(entry_points=True)
    (tmp_path / "registry.toml").write_text(BUILTIN_REGISTRY)
    monkeypatch.chdir(tmp_path)
    invoke("data", "build", "small", "changed", "--no-progress", "--shard-size", "64", "--workers", "1")
    forget_verified()
    return tmp_path


def make_format_2(store: Path) -> dict:
    """Rewrite the manifest of a current store as format 2 wrote it (no identity, no per-file hashes)."""
    manifest = json.loads((store / "manifest.json").read_text())
    old = {k: v for k, v in manifest.items() if k != "identity_hash"}
    old["format"] = 2
    old["shards"] = [{"name": f["name"], "rows": f["rows"]} for f in manifest["shards"]]
    (store / "manifest.json").write_text(json.dumps(old))
    return manifest


def make_format_3(store: Path) -> dict:
    """Label the manifest of a current store as format 3 (its keys are those of format 4)."""
    manifest = json.loads((store / "manifest.json").read_text())
    (store / "manifest.json").write_text(json.dumps({**manifest, "format": 3}))
    return manifest


@pytest.mark.parametrize("make_old", [make_format_2, make_format_3])
def test_old_store_of_unchanged_families_names_what_to_do_and_migrates(builtin_env, capsys, make_old):
    store = builtin_env / "data" / "small"
    current = make_old(store)
    fmt = json.loads((store / "manifest.json").read_text())["format"]
    before = {p: p.stat().st_mtime_ns for p in store.glob("shard-*/*.npy")}
    for args in (("data", "info", "small"), ("data", "export", "small", "--out", "x.npz")):
        err = fails(capsys, *args)
        assert f"was built with store format {fmt}, this qeframe reads format {STORE_FORMAT}" in err
        assert "its arrays are still valid: run `qeframe data migrate small`" in err
    assert store_status("small", registry_file().dataset("small"), data_dir=Path("data")) == "stale"
    out = json.loads(invoke("data", "migrate", "small", "--json").stdout)
    assert out == [{"dataset": "small", "status": "migrated", "seconds": out[0]["seconds"]}]
    migrated = json.loads((store / "manifest.json").read_text())
    assert migrated["format"] == STORE_FORMAT and migrated["migrated"]["from_format"] == fmt
    assert {k: v for k, v in migrated.items() if k != "migrated"} == current
    assert {p: p.stat().st_mtime_ns for p in store.glob("shard-*/*.npy")} == before
    assert json.loads(invoke("data", "migrate", "small", "--json").stdout)[0]["status"] == "up to date"
    invoke("data", "info", "small")


@pytest.mark.parametrize("make_old", [make_format_2, make_format_3])
def test_build_migrates_an_old_store_of_the_same_spec(builtin_env, make_old):
    store = builtin_env / "data" / "small"
    current = make_old(store)
    out = json.loads(invoke("data", "build", "small", "--no-progress", "--json").stdout)
    assert out[0]["status"] == "migrated" and out[0]["content hash"] == current["content_hash"][:16]
    assert json.loads((store / "manifest.json").read_text())["shards"] == current["shards"]


def test_old_store_with_a_changed_family_is_rebuilt(builtin_env, capsys):
    """cut-separable drew normalised Gaussians before format 4: its format-3 rows are not this
    format's, so the store is not migrated: every reader says rebuild, and a build rebuilds it."""
    store = builtin_env / "data" / "changed"
    old = make_format_3(store)
    old["content_hash"] = "0" * 64  # stands for the format-3 rows, which differ
    (store / "manifest.json").write_text(json.dumps({**old, "format": 3}))
    for args in (("data", "info", "changed"), ("data", "migrate", "changed")):
        err = fails(capsys, *args)
        assert (
            "was built with store format 3" in err and "rebuild it with `qeframe data build changed`" in err
        )
        assert f"format {STORE_FORMAT} draws other states for cut-separable" in err
    out = json.loads(invoke("data", "build", "changed", "--no-progress", "--json").stdout)
    assert out[0]["status"] == "built"
    assert json.loads((store / "manifest.json").read_text())["format"] == STORE_FORMAT


def test_old_store_of_a_third_party_family_is_rebuilt(env, capsys):
    """toy-product is not built in: it may draw with qeframe.quantum.random.haar_state (it does), which
    format 4 changed, so its format-3 store is not migrated."""
    store = env / "data" / "small"
    make_format_3(store)
    err = fails(capsys, "data", "migrate", "small")
    assert "family 'toy-product' comes from another distribution" in err
    assert "qeframe.quantum.random.haar_state" in err and "rebuild it with `qeframe data build small`" in err


def test_a_corrupt_format_2_store_is_not_migrated(builtin_env, capsys):
    store = builtin_env / "data" / "small"
    make_format_2(store)
    zero_bytes(store / "shard-00001" / "rho.npy", 100)
    err = fails(capsys, "data", "migrate", "small")
    assert "dataset 'small' is corrupt: the rho rows in" in err and "qeframe data build small --force" in err
    assert json.loads((store / "manifest.json").read_text())["format"] == 2


def test_format_1_store_cannot_be_migrated(builtin_env, capsys):
    store = builtin_env / "data" / "small"
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["format"] = 1
    (store / "manifest.json").write_text(json.dumps(manifest))
    err = fails(capsys, "data", "migrate", "small")
    assert "store format 1" in err and "other random streams" in err
    assert "rebuild it with `qeframe data build small`" in err
    assert "rebuild it with `qeframe data build small`" in fails(capsys, "data", "info", "small")


# --------------------------------------------------------------------------------------------------
# Run folders: the experiment hash takes the datasets' identities


def test_experiment_hash_ignores_the_free_text_of_its_datasets():
    from qeframe.config.specs import parse_registry
    from qeframe.learn.runs import experiment_spec_hash, resume_spec_hash

    def registry(description: str, tag: str, seed: int = 1):
        ds = {"labeler": "negativity", "description": description, "seed": seed}
        return parse_registry(
            {
                "datasets": {
                    "a": {**ds, "families": [{"family": "f", "count": 4, "tag": tag}]},
                    "v": {**ds, "families": [{"family": "f", "count": 4}]},
                },
                "experiments": {"e": {"train": "a", "validation": ["v"], "model": {"backbone": "cnn"}}},
            }
        )

    a, b = registry("x", "t"), registry("typo fixed", "u")
    assert experiment_spec_hash(a.experiments["e"], a.datasets) == experiment_spec_hash(
        b.experiments["e"], b.datasets
    )
    c = registry("x", "t", seed=2)
    assert experiment_spec_hash(c.experiments["e"], c.datasets) != experiment_spec_hash(
        a.experiments["e"], a.datasets
    )
    legacy_a = experiment_spec_hash(a.experiments["e"], a.datasets, legacy=True)
    assert legacy_a != experiment_spec_hash(b.experiments["e"], b.datasets, legacy=True)
    # a run recorded under the old hash goes on under it; anything else gets the current hash
    assert resume_spec_hash(legacy_a, a.experiments["e"], a.datasets) == legacy_a
    current = experiment_spec_hash(a.experiments["e"], a.datasets)
    assert resume_spec_hash(legacy_a, b.experiments["e"], b.datasets) == current
    assert resume_spec_hash("0" * 64, a.experiments["e"], a.datasets) == current
    assert resume_spec_hash(None, a.experiments["e"], a.datasets) == current


def test_pretrained_runs_record_the_legacy_hash_of_todays_registry():
    """The shipped run folders were recorded before store format 3: their spec hash is the legacy
    hash of the registry's experiment, which `run --resume` keeps; `classify` does not read it."""
    from qeframe.config.specs import load_registry_file
    from qeframe.learn.runs import experiment_spec_hash, resume_spec_hash

    root = Path(__file__).resolve().parents[2]
    rf = load_registry_file(root / "registry.toml")
    runs = sorted(p for p in (root / "pretrained").iterdir() if p.is_dir())
    assert runs
    for run in runs:
        record = json.loads((run / "spec.json").read_text())
        experiment = rf.experiments[record["experiment"]]
        assert experiment_spec_hash(experiment, rf.datasets, legacy=True) == record["spec_hash"], run.name
        assert resume_spec_hash(record["spec_hash"], experiment, rf.datasets) == record["spec_hash"]
