"""Sharded dataset builds: the shard plan, shard stores, the merge's bit-identity and its refusals.

Test-only plugins: a Ginibre family (truth unknown), product states (separable), a labeler that drops
about 3/4 of 2-qubit Ginibre states and one that drops everything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qeframe_plugins.executors.local import LocalExecutor
from qeframe_plugins.labelers import negativity
from store_plugins import ToyPlugin, fails  # test-only plugins and helpers shared by the store tests
from typer.testing import CliRunner

import qeframe.data.merge as merge_module
from qeframe.cli.base import app
from qeframe.config.specs import DatasetSpec
from qeframe.data.build import MAX_OVERSAMPLING, block_rows
from qeframe.data.merge import build_sharded, merge_shards
from qeframe.data.plan import ShardPlan, ShardSchedule
from qeframe.data.reader import open_dataset, store_status
from qeframe.data.shards import (
    build_shard,
    find_shards,
    open_shard,
    parse_shard,
    shard_dir_name,
)
from qeframe.data.store import build_dataset
from qeframe.data.writer import store_lock
from qeframe.errors import QeframeError, SpecError, StoreError
from qeframe.plugin.registry import Registry


def toy_registry() -> Registry:
    from qeframe_plugins.executors import local

    return Registry.load(
        entry_points=False, plugins=[("toy", ToyPlugin()), ("negativity", negativity), ("local", local)]
    )


@pytest.fixture
def reg() -> Registry:
    return toy_registry()


def keeping_spec(**overrides) -> DatasetSpec:
    """5 planned blocks: ginibre 0, 1 (2048 + 952), product 0 (1500), ginibre-local 0, 1 (2048 + 2)."""
    data = {
        "n_qubits": 2,
        "seed": 7,
        "labeler": "negativity",
        "families": [
            {"family": "toy-ginibre", "count": 3000},
            {"family": "toy-product", "count": 1500, "tag": "product"},
            {
                "family": "toy-ginibre",
                "count": 2050,
                "tag": "randomized",
                "params": {"local_randomize": True},
            },
        ],
    }
    data.update(overrides)
    return DatasetSpec.model_validate(data)


def dropping_spec(**overrides) -> DatasetSpec:
    """A labeler that keeps ~1/4: entry 0 needs ~4 extra blocks beyond its 3 planned ones."""
    data = {
        "n_qubits": 2,
        "seed": 11,
        "labeler": "toy-drop-entangled",
        "families": [
            {"family": "toy-ginibre", "count": 4500},
            {"family": "toy-product", "count": 700, "tag": "product"},
            {"family": "toy-ginibre", "count": 300, "tag": "small"},
        ],
    }
    data.update(overrides)
    return DatasetSpec.model_validate(data)


def build_all(name, spec, n, data_dir, reg, **kwargs) -> list[dict]:
    return [
        build_shard(name, spec, i, n, data_dir=data_dir, registry=reg, workers=1, progress=False, **kwargs)
        for i in range(n)
    ]


def assert_same_store(merged, single) -> None:
    """Bit-identical rows and the same manifest but for the name and the build record."""
    assert merged.content_hash == single.content_hash
    for name in ("rho", "labels", "provenance", "evidence", "ground_truth", "entry"):
        assert np.array_equal(merged.array(name), single.array(name), equal_nan=True), name
    skip = {"build", "name"}
    assert {k: v for k, v in merged.manifest.items() if k not in skip} == {
        k: v for k, v in single.manifest.items() if k not in skip
    }
    assert merged.verify()


# --------------------------------------------------------------------------------------------------
# The plan


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    block_size=st.integers(1, 9),
    n_shards=st.integers(1, 7),
)
def test_planned_blocks_are_split_round_robin_and_exactly_once(counts, block_size, n_shards):
    plan = ShardPlan(tuple(counts), block_size, n_shards)
    planned = [(e, b) for e in range(len(counts)) for b in range(plan.planned(e))]
    for g, (e, b) in enumerate(planned):  # rule 1: global index g goes to shard g mod N
        assert plan.owner(e, b) == g % n_shards
    owned = [(e, b) for k in range(n_shards) for e in range(len(counts)) for b in plan.planned_blocks(k, e)]
    assert sorted(owned) == planned  # a partition
    for e in range(len(counts)):
        owners = [k for k in range(n_shards) if plan.position(k, e) is not None]
        assert len(owners) == plan.owners(e) == min(n_shards, plan.planned(e))
        # rule 2: extras cycle through the owners of planned blocks 0 .. m-1, in that order
        extras = {}
        for k in owners:
            for t in range(3):
                b = plan.extra_block(k, e, t)
                assert plan.owner(e, b) == k and b >= plan.planned(e)
                extras[b] = k
        first = sorted(extras)[: plan.owners(e)]
        assert [extras[b] for b in first] == [plan.owner(e, b) for b in range(plan.owners(e))]
        assert sorted(extras) == list(range(plan.planned(e), plan.planned(e) + 3 * plan.owners(e)))


def test_extras_wanted_closed_form():
    plan = ShardPlan((1000,), 100, 2)
    assert plan.extras_wanted(0, 100, 100) == 0  # nothing dropped
    # K = 400 of G = 1000: r_lo = (400 - 60) / 1000 = 0.34; extras = ceil(1000 * 0.66 / 34) = 20
    assert plan.extras_wanted(0, 400, 1000) == 20
    assert plan.extras_wanted(0, 0, 1000) == int(np.ceil(1000 * (1 - 1e-3) / (1e-3 * 100)))
    assert plan.budget(0) == -(-(MAX_OVERSAMPLING * 1000 + 400) // 2) + 100


def test_schedule_without_drops_is_the_planned_blocks():
    plan = ShardPlan((5000, 100, 4096), 2048, 2)
    sched = ShardSchedule(plan, 1)
    seen = []
    while (task := sched.next()) is not None:
        e, b, size = task
        assert size == block_rows(plan.counts[e], b, 2048)
        sched.observe(e, b, size, size)
        seen.append((e, b))
    # planned blocks 8, 1, 8 (global 0-7, 8, 9-16); shard 1 holds the odd global indices
    assert seen == [(0, 1), (0, 3), (0, 5), (0, 7), (2, 0), (2, 2), (2, 4), (2, 6)]
    with pytest.raises(ValueError):
        ShardSchedule(plan, 0).observe(0, 2, 904, 904)  # not the next block
    with pytest.raises(QeframeError):
        ShardSchedule(plan, 2)


def test_extras_of_a_small_dropping_entry_spread_over_the_shards():
    """An entry of 2 000 states (one block of B = 2048 up to format 1) with 5 % kept: its 8 planned
    blocks give it 4 owners, so 4 shards share its ~40 blocks instead of one shard computing all."""
    plan = ShardPlan((2000,), 2048, 4)
    assert plan.planned(0) == 8 and plan.owners(0) == 4
    generated, kept = [], []
    for k in range(4):
        sched = ShardSchedule(plan, k)
        g = c = 0
        while (task := sched.next()) is not None:
            e, b, size = task
            sched.observe(e, b, size, size // 20)
            g, c = g + size, c + size // 20
        generated.append(g)
        kept.append(c)
    assert min(generated) > 0 and max(generated) <= 1.5 * min(generated)
    assert sum(kept) >= 2000  # together they cover the entry (the merge computes nothing)


def test_schedule_asks_for_extras_after_drops_and_stops():
    plan = ShardPlan((100,), 50, 1)
    sched = ShardSchedule(plan, 0)
    sched.observe(0, 0, 50, 25)
    sched.observe(0, 1, 50, 25)
    assert sched.next() == (0, 2, 50)  # half kept: extras wanted
    while (task := sched.next()) is not None:
        sched.observe(*task[:2], task[2], 25)
    n_extra = sched.entries[0].next_extra
    kept, generated = sched.entries[0].kept, sched.entries[0].generated
    assert n_extra == plan.extras_wanted(0, kept, generated) and 2 <= n_extra <= 8
    assert sched.lookahead(5) == []


# --------------------------------------------------------------------------------------------------
# Shard stores and the merge


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_merge_is_bit_identical_to_a_single_build(tmp_path, reg, n_shards):
    spec = keeping_spec()
    single = build_dataset("toy", spec, data_dir=tmp_path / "one", registry=reg, workers=1, progress=False)
    manifests = build_all("toy", spec, n_shards, tmp_path / "many", reg)
    assert sum(m["n_rows"] for m in manifests) == len(single)  # no dropping: exactly the planned blocks
    merged = merge_shards("toy", spec, data_dir=tmp_path / "many", registry=reg, workers=1, progress=False)
    assert_same_store(merged, single)
    assert merged.manifest["build"]["merge_generated_blocks"] == 0
    assert [s["shard"] for s in merged.manifest["build"]["merged_from"]] == [
        f"{i}/{n_shards}" for i in range(n_shards)
    ]
    assert store_status("toy", spec, data_dir=tmp_path / "many") == "built"


@pytest.mark.parametrize("n_shards", [2, 3])
def test_merge_with_a_dropping_labeler_is_bit_identical(tmp_path, reg, n_shards):
    spec = dropping_spec()
    single = build_dataset("toy", spec, data_dir=tmp_path / "one", registry=reg, workers=1, progress=False)
    manifests = build_all("toy", spec, n_shards, tmp_path / "many", reg)
    merged = merge_shards("toy", spec, data_dir=tmp_path / "many", registry=reg, workers=1, progress=False)
    assert_same_store(merged, single)
    assert merged.manifest["families"][0]["generated"] > 2 * 4500  # extras were needed
    assert merged.manifest["build"]["merge_generated_blocks"] == 0  # ... and the shards had them
    single_generated = sum(f["generated"] for f in single.manifest["families"])
    shard_generated = sum(m["generated"] for m in manifests)
    assert single_generated <= shard_generated <= single_generated + 2 * n_shards * 2048  # little waste
    for m in manifests:  # the manifest lists whole blocks and per-array hashes
        assert m["kind"] == "shard" and m["shard"]["count"] == n_shards and m["spec_hash"] == spec.spec_hash()
        assert sum(b["kept"] for b in m["blocks"]) == m["n_rows"] and set(m["array_hashes"]) >= {
            "rho",
            "labels",
        }


def test_merge_computes_the_extras_the_shards_lack(tmp_path, reg, monkeypatch):
    """Shards that computed no extras at all: the merge computes them, in order, and still matches."""
    spec = dropping_spec()
    single = build_dataset("toy", spec, data_dir=tmp_path / "one", registry=reg, workers=1, progress=False)
    with monkeypatch.context() as m:
        m.setattr(ShardPlan, "extras_wanted", lambda self, entry, kept, generated: 0)
        build_all("toy", spec, 2, tmp_path / "many", reg)
    merged = merge_shards("toy", spec, data_dir=tmp_path / "many", registry=reg, workers=2, progress=False)
    assert_same_store(merged, single)
    assert merged.manifest["build"]["merge_generated_blocks"] >= 4


def test_shard_content_does_not_depend_on_workers_or_file_size(tmp_path, reg):
    spec = dropping_spec()
    a = build_shard("toy", spec, 0, 2, data_dir=tmp_path / "a", registry=reg, workers=1, progress=False)
    b = build_shard(
        "toy", spec, 0, 2, data_dir=tmp_path / "b", registry=reg, workers=2, shard_size=700, progress=False
    )
    assert a["content_hash"] == b["content_hash"] and a["blocks"][-1]["block"] == b["blocks"][-1]["block"]
    assert len(b["shards"]) > len(a["shards"]) == 1
    for rec in b["blocks"]:  # whole blocks per file
        info = json.loads((tmp_path / "b" / a["name"] / rec["file"] / "shard.json").read_text())
        assert any(s["block"] == rec["block"] and s["entry"] == rec["entry"] for s in info["sources"])
    assert open_shard(tmp_path / "b" / a["name"]).verify()


def test_complete_shard_is_reused_unless_forced(tmp_path, reg):
    spec = keeping_spec()
    first = build_shard("toy", spec, 1, 2, data_dir=tmp_path, registry=reg, progress=False)
    again = build_shard("toy", spec, 1, 2, data_dir=tmp_path, registry=reg, progress=False)
    assert again == first
    forced = build_shard("toy", spec, 1, 2, data_dir=tmp_path, registry=reg, progress=False, force=True)
    assert forced["content_hash"] == first["content_hash"] and forced["build"] != first["build"]


class _Interrupt(BaseException):
    pass


def test_interrupted_shard_resumes_to_the_same_content(tmp_path, reg, monkeypatch):
    spec = dropping_spec()
    clean = build_shard(
        "toy", spec, 0, 2, data_dir=tmp_path / "clean", registry=reg, workers=1, progress=False
    )
    from qeframe.data import writer

    real_commit = writer.FileWriter.commit
    calls = {"n": 0}

    def commit_then_die(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Interrupt
        return real_commit(self)

    monkeypatch.setattr(writer.FileWriter, "commit", commit_then_die)
    with pytest.raises(_Interrupt):
        build_shard(
            "toy", spec, 0, 2, data_dir=tmp_path, registry=reg, workers=1, shard_size=500, progress=False
        )
    monkeypatch.setattr(writer.FileWriter, "commit", real_commit)
    path = tmp_path / shard_dir_name("toy", 0, 2)
    assert not (path / "manifest.json").exists() and (path / "build.json").exists()
    with pytest.raises(StoreError, match="incomplete"):
        open_shard(path)
    resumed = build_shard(
        "toy", spec, 0, 2, data_dir=tmp_path, registry=reg, workers=1, shard_size=500, progress=False
    )
    assert resumed["build"]["resumed_blocks"] >= 2
    assert resumed["content_hash"] == clean["content_hash"]
    assert resumed["blocks"] == [
        {**b, "file": r["file"], "row": r["row"]} for b, r in zip(clean["blocks"], resumed["blocks"])
    ]


def test_labeler_that_keeps_nothing_fails_the_merge_like_a_build(tmp_path, reg):
    spec = keeping_spec(labeler="toy-drop-all", families=[{"family": "toy-ginibre", "count": 10}])
    with pytest.raises(SpecError) as single:
        build_dataset("z", spec, data_dir=tmp_path / "one", registry=reg, workers=1, progress=False)
    build_all("z", spec, 2, tmp_path / "many", reg)  # shard 1 owns nothing; shard 0 gives up at its budget
    with pytest.raises(SpecError) as merged:
        merge_shards("z", spec, data_dir=tmp_path / "many", registry=reg, workers=1, progress=False)
    assert str(merged.value) == str(single.value)
    with pytest.raises(StoreError):
        open_dataset("z", data_dir=tmp_path / "many")


def test_sharded_build_through_the_local_executor(tmp_path, reg):
    spec = dropping_spec()
    single = build_dataset("toy", spec, data_dir=tmp_path / "one", registry=reg, workers=1, progress=False)
    ds = build_sharded(
        "toy",
        spec,
        3,
        LocalExecutor(LocalExecutor.Params(workers=2)),
        data_dir=tmp_path / "x",
        registry=reg,
        progress=False,
        clean=True,
    )
    assert_same_store(ds, single)
    b = ds.manifest["build"]
    assert b["executor"] == "local" and b["n_shards"] == 3 and len(b["shard_tasks"]) == 3
    assert len({t["pid"] for t in b["shard_tasks"]}) >= 1
    assert not list((tmp_path / "x").glob("toy.shard-*"))  # clean
    # an up-to-date store is kept as it is
    again = build_sharded("toy", spec, 3, data_dir=tmp_path / "x", registry=reg, progress=False)
    assert again.manifest == ds.manifest


# --------------------------------------------------------------------------------------------------
# Refusals: nothing merged


def test_missing_shard_is_an_error_and_nothing_is_written(tmp_path, reg):
    spec = keeping_spec()
    build_shard("toy", spec, 0, 3, data_dir=tmp_path, registry=reg, progress=False)
    build_shard("toy", spec, 2, 3, data_dir=tmp_path, registry=reg, progress=False)
    with pytest.raises(StoreError, match=r"shard 1/3 missing .*--shard 1/3"):
        merge_shards("toy", spec, data_dir=tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "toy").exists()
    with pytest.raises(StoreError, match="no shards of dataset 'other'"):
        merge_shards("other", spec, data_dir=tmp_path, registry=reg, progress=False)


def test_shards_of_another_spec_are_refused(tmp_path, reg):
    spec = keeping_spec()
    build_shard("toy", spec, 0, 2, data_dir=tmp_path, registry=reg, progress=False)
    build_shard("toy", keeping_spec(seed=8), 1, 2, data_dir=tmp_path, registry=reg, progress=False)
    with pytest.raises(StoreError, match=r"shard 1/2 .* another spec") as info:
        merge_shards("toy", spec, data_dir=tmp_path, registry=reg, progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "toy").exists()


def test_mixed_layouts_duplicates_and_incomplete_shards_are_refused(tmp_path, reg):
    spec = keeping_spec()
    build_all("toy", spec, 2, tmp_path, reg)
    build_shard("toy", spec, 0, 3, data_dir=tmp_path, registry=reg, progress=False)
    with pytest.raises(StoreError, match="different layouts"):
        merge_shards("toy", spec, data_dir=tmp_path, registry=reg, progress=False)
    shutil.rmtree(tmp_path / shard_dir_name("toy", 0, 3))

    copy = tmp_path / "elsewhere" / shard_dir_name("toy", 1, 2)
    shutil.copytree(tmp_path / shard_dir_name("toy", 1, 2), copy)
    with pytest.raises(StoreError, match="found twice"):
        merge_shards("toy", spec, data_dir=tmp_path, sources=[tmp_path, copy], registry=reg, progress=False)

    (tmp_path / shard_dir_name("toy", 1, 2) / "manifest.json").unlink()
    with pytest.raises(StoreError, match=r"incomplete .*--shard 1/2"):
        merge_shards("toy", spec, data_dir=tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "toy").exists()


def test_damaged_shard_is_refused(tmp_path, reg):
    spec = keeping_spec()
    manifests = build_all("toy", spec, 2, tmp_path, reg)
    rho = tmp_path / manifests[1]["name"] / "shard-00000" / "rho.npy"
    data = bytearray(rho.read_bytes())
    data[-3] ^= 0xFF
    rho.write_bytes(bytes(data))
    with pytest.raises(
        StoreError,
        match=r"shard 1/2 of dataset 'toy' is corrupt: .*shard-00000/rho.npy has sha256 [0-9a-f]{64}, its manifest says [0-9a-f]{64}; rebuild it with `qeframe data build toy --shard 1/2 --force`",
    ):
        merge_shards("toy", spec, data_dir=tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "toy").exists()


def test_shard_being_built_elsewhere_is_refused(tmp_path, reg):
    spec = keeping_spec()
    path = tmp_path / shard_dir_name("toy", 0, 2)
    path.mkdir(parents=True)
    with store_lock(path, "x"), pytest.raises(StoreError, match="being built by another process"):
        build_shard("toy", spec, 0, 2, data_dir=tmp_path, registry=reg, progress=False)


def test_bad_shard_arguments():
    assert parse_shard("1/4") == (1, 4) and parse_shard(" 0 / 1 ") == (0, 1)
    for bad, match in [
        ("3/2", "index must be 0 .. 1"),
        ("2/2", "index must be 0 .. 1"),
        ("0/0", "at least 1"),
        ("1", "use INDEX/COUNT"),
        ("-1/2", "use INDEX/COUNT"),
        ("a/b", "use INDEX/COUNT"),
        ("1/2/3", "use INDEX/COUNT"),
    ]:
        with pytest.raises(QeframeError, match=match):
            parse_shard(bad)


def test_a_shard_store_is_not_a_dataset(tmp_path, reg):
    m = build_shard("toy", keeping_spec(), 0, 2, data_dir=tmp_path, registry=reg, progress=False)
    with pytest.raises(StoreError, match=r"is shard 0/2 of dataset 'toy'.*qeframe data merge toy"):
        open_dataset(m["name"], data_dir=tmp_path)
    assert find_shards("toy", data_dir=tmp_path) == [tmp_path / m["name"]]


# --------------------------------------------------------------------------------------------------
# Command line


REGISTRY = """
[datasets.small]
n_qubits = 2
seed = 3
labeler = "toy-drop-entangled"

[[datasets.small.families]]
family = "toy-ginibre"
count = 1500

[[datasets.small.families]]
family = "toy-product"
count = 400
"""


@pytest.fixture
def env(tmp_path, qeframe_registry, monkeypatch):
    from qeframe_plugins.executors import local

    qeframe_registry(ToyPlugin(), negativity, local, entry_points=False)
    (tmp_path / "registry.toml").write_text(REGISTRY)
    monkeypatch.chdir(tmp_path)

    return tmp_path


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result


def test_cli_shards_then_merge_equals_a_single_build(env, tmp_path_factory):
    single = invoke("data", "build", "small", "--no-progress", "--json", "--data-dir", "single")
    # two "machines": each builds its shard into its own folder, the folders are gathered for the merge
    a = invoke("data", "build", "small", "--shard", "0/2", "--no-progress", "--json", "--data-dir", "m0")
    b = invoke("data", "build", "small", "--shard", "1/2", "--no-progress", "--json", "--data-dir", "m1")
    assert a[0]["dataset"] == "small [shard 0/2]" and a[0]["status"] == "built"
    assert b[0]["states"] > 0
    again = invoke("data", "build", "small", "--shard", "1/2", "--no-progress", "--json", "--data-dir", "m1")
    assert again[0]["status"] == "up to date"
    listing = {r["dataset"]: r for r in invoke("data", "list", "--json", "--data-dir", "m0")}
    assert listing["small.shard-0-of-2"]["store"] == "shard 0/2 of small"
    assert listing["small"]["store"] == "missing"
    merged = invoke(
        "data",
        "merge",
        "small",
        "--from",
        "m0",
        "--from",
        str(env / "m1" / "small.shard-1-of-2"),
        "--data-dir",
        "merged",
        "--no-progress",
        "--json",
    )
    assert merged[0]["content hash"] == single[0]["content hash"] and merged[0]["shards"] == 2
    assert merged[0]["states"] == 1900 and merged[0]["blocks computed"] == 0
    full = json.loads((env / "merged" / "small" / "manifest.json").read_text())
    assert full["content_hash"].startswith(single[0]["content hash"])
    info = invoke("data", "info", "small", "--data-dir", "merged", "--json")
    assert info["n_samples"] == 1900


def test_cli_all_shards_through_an_executor(env):
    single = invoke("data", "build", "small", "--no-progress", "--json", "--data-dir", "single")
    out = invoke(
        "data",
        "build",
        "small",
        "--shards",
        "3",
        "--executor",
        "local",
        "--executor-param",
        "workers=2",
        "--no-progress",
        "--json",
        "--clean",
    )
    assert out[0]["status"] == "built (3 shards, local)"
    assert out[0]["content hash"] == single[0]["content hash"]
    assert not list((env / "data").glob("small.shard-*"))
    again = invoke("data", "build", "small", "--shards", "3", "--no-progress", "--json")
    assert again[0]["status"] == "up to date"


def test_cli_shard_errors_are_one_line(env, capsys):
    assert "invalid shard 3/2: the index must be 0 .. 1" in fails(
        capsys, "data", "build", "small", "--shard", "3/2"
    )
    assert "the number of shards must be at least 1" in fails(
        capsys, "data", "build", "small", "--shard", "0/0"
    )
    assert "use INDEX/COUNT" in fails(capsys, "data", "build", "small", "--shard", "half")
    assert "give one or the other" in fails(
        capsys, "data", "build", "small", "--shard", "0/2", "--shards", "2"
    )
    assert "give --shards N" in fails(capsys, "data", "build", "small", "--executor", "local")
    assert "--shards must be at least 1" in fails(capsys, "data", "build", "small", "--shards", "0")
    assert "unknown executor 'nope'; available: local" in fails(
        capsys, "data", "build", "small", "--shards", "2", "--executor", "nope"
    )
    assert "use KEY=VALUE" in fails(
        capsys, "data", "build", "small", "--shards", "2", "--executor-param", "workers"
    )
    assert "no shards of dataset 'small'" in fails(capsys, "data", "merge", "small")
    invoke("data", "build", "small", "--shard", "1/2", "--no-progress")
    err = fails(capsys, "data", "merge", "small", "--no-progress")
    assert "shard 0/2 missing" in err and "qeframe data build small --shard 0/2" in err
    assert not (env / "data" / "small").exists()
    (env / "registry.toml").write_text(REGISTRY.replace("seed = 3", "seed = 4"))
    invoke("data", "build", "small", "--shard", "0/2", "--no-progress")
    err = fails(capsys, "data", "merge", "small", "--no-progress")
    assert "shard 1/2" in err and "another spec" in err
    assert not (env / "data" / "small").exists()
    assert "is shard 0/2 of dataset 'small'" in fails(capsys, "data", "info", "small.shard-0-of-2")


def test_task_registry_is_restored(tmp_path, reg):
    assert merge_module._TASK_REGISTRY is None
    build_sharded("toy", keeping_spec(), 2, data_dir=tmp_path, registry=reg, progress=False)
    assert merge_module._TASK_REGISTRY is None
    assert Path(tmp_path / "toy" / "manifest.json").is_file()


def test_merge_waits_for_no_shard_being_built(tmp_path, reg):
    spec = keeping_spec()
    manifests = build_all("toy", spec, 2, tmp_path, reg)
    with (
        store_lock(tmp_path / manifests[0]["name"], "x"),
        pytest.raises(StoreError, match="another process"),
    ):
        merge_shards("toy", spec, data_dir=tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "toy").exists()


def test_read_only_shards_can_be_merged(tmp_path, reg, monkeypatch):
    """A shard folder whose lock file cannot be created (a read-only copy) is merged without a lock."""
    spec = keeping_spec()
    single = build_dataset("toy", spec, data_dir=tmp_path / "one", registry=reg, workers=1, progress=False)
    build_all("toy", spec, 2, tmp_path / "ro", reg)
    real_lock = merge_module.store_lock

    def lock(path, label):
        if ".shard-" in Path(path).name:
            raise PermissionError(13, "Read-only file system")
        return real_lock(path, label)

    monkeypatch.setattr(merge_module, "store_lock", lock)
    merged = merge_shards("toy", spec, data_dir=tmp_path / "ro", registry=reg, progress=False)
    assert merged.content_hash == single.content_hash
