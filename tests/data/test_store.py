"""Dataset store: determinism across workers and shard sizes, resuming after kill -9, safety, export.

Test-only plugins (tiny families and labelers) are defined here; the real families are tested with
their own modules. ``subprocess`` builds import this file by path to get the same plugins.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from qeframe_plugins.labelers import negativity
from store_plugins import ToyPlugin  # test-only plugins shared by the store and shard tests

from qeframe.config.specs import DatasetSpec, parse_registry
from qeframe.data.build import block_rows, block_seed, block_size_for, iter_pieces
from qeframe.data.export import export_npz
from qeframe.data.format import STORE_FORMAT
from qeframe.data.reader import open_dataset, store_status
from qeframe.data.store import build_dataset, ensure_dataset
from qeframe.data.writer import FileWriter, store_lock
from qeframe.errors import SpecError, StoreError, UnknownComponentError
from qeframe.plugin.interfaces import StateBatch
from qeframe.plugin.labels import PROVENANCE, provenance_code
from qeframe.plugin.registry import Registry
from qeframe.quantum.cuts import cut_names


def toy_registry() -> Registry:
    return Registry.load(entry_points=False, plugins=[("toy", ToyPlugin()), ("negativity", negativity)])


def make_spec(**overrides) -> DatasetSpec:
    data = {
        "n_qubits": 2,
        "seed": 7,
        "labeler": "negativity",
        "families": [
            {"family": "toy-ginibre", "count": 3000, "params": {"local_randomize": True}},
            {"family": "toy-product", "count": 1500, "tag": "product"},
        ],
    }
    data.update(overrides)
    return DatasetSpec.model_validate(data)


@pytest.fixture
def reg() -> Registry:
    return toy_registry()


# --------------------------------------------------------------------------------------------------
# Blocks and seeds


def test_block_seed_is_the_spawn_tree():
    tree = np.random.SeedSequence(11).spawn(3)[2].spawn(5)[4]
    assert np.array_equal(tree.generate_state(4), block_seed(11, 2, 4).generate_state(4))


def test_block_rows_cover_count_exactly_then_full_blocks():
    # 5000 states: max(ceil(5000 / 2048), min(8, ceil(5000 / 256))) = 8 planned blocks of 625
    assert [block_rows(5000, b, 2048) for b in range(10)] == [625] * 8 + [2048, 2048]
    assert [block_rows(2000, b, 2048) for b in range(8)] == [250] * 8
    assert [block_rows(20001, b, 2048) for b in range(11)] == [2001] + [2000] * 9 + [2048]
    assert [block_rows(300, b, 2048) for b in range(3)] == [150, 150, 2048]
    assert block_rows(100, 0, 2048) == 100 and block_rows(100, 1, 2048) == 2048
    assert block_size_for(3) == 2048 and block_size_for(4) == 512 and block_size_for(5) == 128


# --------------------------------------------------------------------------------------------------
# Build and read


def test_build_contents_and_manifest(tmp_path, reg):
    spec = make_spec()
    ds = build_dataset(
        "toy", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
    )
    n = 4500
    assert len(ds) == n and ds.n_qubits == 2 and ds.cuts == cut_names(2)
    assert ds.rho.shape == (n, 4, 4) and ds.rho.dtype == np.complex128
    assert ds.labels.shape == (n, 1) and ds.labels.dtype == np.int8
    assert ds.provenance.dtype == np.uint8 and ds.ground_truth.dtype == np.int8
    assert ds.evidence is not None and ds.evidence.dtype == np.float64
    assert list(ds.family[:3]) == ["toy-ginibre"] * 3 and list(ds.family[-3:]) == ["product"] * 3
    # physics sanity: unit trace, Hermitian; product states PPT-pure and separable by construction
    assert np.allclose(np.trace(ds.rho, axis1=1, axis2=2), 1)
    assert np.allclose(ds.rho, ds.rho.conj().transpose(0, 2, 1))
    prod = ds.family == "product"
    assert (ds.labels[prod] == 0).all() and (ds.provenance[prod] == provenance_code("pure-ppt")).all()
    assert (ds.ground_truth[prod] == 0).all() and (ds.ground_truth[~prod] == -1).all()
    assert ds.meta["pure"][prod].all() and not ds.meta["pure"][~prod].any()
    assert (ds.meta["fully_separable"][prod] == 1).all()
    # the labels are the negativity labeler's
    again = negativity.NegativityLabeler().label(
        StateBatch.build(np.asarray(ds.rho), -1, "unknown", pure=False)
    )
    assert np.array_equal(again.labels, ds.labels)
    m = ds.manifest
    assert m["complete"] is True and list(m)[-1] == "complete"
    assert m["spec_hash"] == spec.spec_hash() and m["seed"] == 7 and m["block_size"] == 2048
    assert [f["count"] for f in m["families"]] == [3000, 1500]
    assert [f["label"] for f in m["families"]] == ["toy-ginibre", "product"]
    bal = m["label_balance"]["1|2"]
    assert bal["entangled"] == int((ds.labels == 1).sum()) and bal["separable"] == int((ds.labels == 0).sum())
    assert sum(m["provenance_counts"]["1|2"].values()) == n
    assert m["provenance_counts"]["1|2"]["pure-ppt"] == 1500
    assert "toy" in m["plugins"] and m["labeler"]["name"] == "negativity"
    assert len(m["shards"]) == 5 and [s["rows"] for s in m["shards"]] == [1000] * 4 + [500]
    assert not (tmp_path / "toy" / "build.json").exists()


def test_content_hash_is_over_the_concatenated_arrays(tmp_path, reg):
    ds = build_dataset(
        "toy", make_spec(), data_dir=tmp_path, registry=reg, workers=1, shard_size=700, progress=False
    )
    assert (
        hashlib.sha256(np.ascontiguousarray(ds.rho).tobytes()).hexdigest()
        == ds.manifest["array_hashes"]["rho"]
    )
    assert hashlib.sha256(ds.labels.tobytes()).hexdigest() == ds.manifest["array_hashes"]["labels"]
    assert ds.verify()


def test_single_shard_is_memory_mapped_and_read_only(tmp_path, reg):
    ds = build_dataset("toy", make_spec(), data_dir=tmp_path, registry=reg, workers=1, progress=False)
    assert isinstance(ds.rho, np.memmap)
    with pytest.raises(ValueError):
        ds.labels[0, 0] = 1


@pytest.mark.parametrize("workers,shard_size", [(2, 16384), (2, 777), (1, 1000)])
def test_same_content_for_any_workers_and_shard_size(tmp_path, reg, workers, shard_size):
    spec = make_spec()
    ref = build_dataset(
        "ref", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=16384, progress=False
    )
    ds = build_dataset(
        "x", spec, data_dir=tmp_path, registry=reg, workers=workers, shard_size=shard_size, progress=False
    )
    assert ds.content_hash == ref.content_hash
    assert np.array_equal(ds.rho, ref.rho) and np.array_equal(ds.labels, ref.labels)


def test_seed_changes_content(tmp_path, reg):
    a = build_dataset("a", make_spec(), data_dir=tmp_path, registry=reg, workers=1, progress=False)
    b = build_dataset("b", make_spec(seed=8), data_dir=tmp_path, registry=reg, workers=1, progress=False)
    assert a.content_hash != b.content_hash


def test_dropping_labeler_keeps_generating_until_count(tmp_path, reg):
    spec = make_spec(labeler="toy-drop-entangled", families=[{"family": "toy-ginibre", "count": 2500}])
    one = build_dataset(
        "one", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=600, progress=False
    )
    two = build_dataset(
        "two", spec, data_dir=tmp_path, registry=reg, workers=2, shard_size=5000, progress=False
    )
    assert len(one) == 2500 and (one.labels == 0).all()
    assert one.content_hash == two.content_hash
    generated = one.manifest["families"][0]["generated"]
    assert generated > 2500 * 2  # about 3/4 of 2-qubit Ginibre states are NPT and were dropped
    assert one.evidence is None and not one.manifest["has_evidence"]


def test_labeler_that_keeps_nothing_is_an_error(tmp_path, reg):
    spec = make_spec(labeler="toy-drop-all", families=[{"family": "toy-ginibre", "count": 10}])
    with pytest.raises(SpecError, match=r"datasets\.z\.families\[0\].*kept 0 of"):
        build_dataset("z", spec, data_dir=tmp_path, registry=reg, workers=1, progress=False)
    with pytest.raises(StoreError):
        open_dataset("z", data_dir=tmp_path)


# --------------------------------------------------------------------------------------------------
# Interrupted builds


class _Interrupt(BaseException):
    pass


def _interrupt_after(monkeypatch, shards: int) -> None:
    """Make the build stop (as Ctrl-C would) once ``shards`` shards are committed."""
    original = FileWriter.commit
    done = []

    def commit(self):
        if len(done) == shards:
            raise _Interrupt
        done.append(1)
        return original(self)

    monkeypatch.setattr(FileWriter, "commit", commit)


@pytest.mark.parametrize("shards_before", [1, 3, 5])
def test_resume_after_interruption_gives_the_clean_hash(tmp_path, reg, monkeypatch, shards_before):
    spec = make_spec()
    clean = build_dataset(
        "clean", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=600, progress=False
    )
    with monkeypatch.context() as m:
        _interrupt_after(m, shards_before)
        with pytest.raises(_Interrupt):
            build_dataset(
                "x", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=600, progress=False
            )
    store = tmp_path / "x"
    assert not (store / "manifest.json").exists()
    assert sorted(p.name for p in store.iterdir() if p.name.startswith("shard-")) == [
        f"shard-{i:05d}" for i in range(shards_before)
    ]
    assert not [p for p in store.iterdir() if ".tmp" in p.name]
    assert store_status("x", spec, data_dir=tmp_path) == "partial"
    with pytest.raises(StoreError, match="incomplete"):
        open_dataset("x", data_dir=tmp_path)
    ds = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=2, shard_size=1000, progress=False)
    assert ds.manifest["build"]["resumed_rows"] == 600 * shards_before
    assert ds.content_hash == clean.content_hash
    assert ds.manifest["label_balance"] == clean.manifest["label_balance"]
    assert [f["generated"] for f in ds.manifest["families"]] == [
        f["generated"] for f in clean.manifest["families"]
    ]


def test_resume_with_a_dropping_labeler(tmp_path, reg, monkeypatch):
    spec = make_spec(
        labeler="toy-drop-entangled",
        families=[{"family": "toy-ginibre", "count": 1200}, {"family": "toy-product", "count": 900}],
    )
    clean = build_dataset(
        "clean", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=250, progress=False
    )
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)
        with pytest.raises(_Interrupt):
            build_dataset(
                "x", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=250, progress=False
            )
    ds = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=250, progress=False)
    assert ds.content_hash == clean.content_hash


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path[:0] = {tests!r}
    import test_store
    from qeframe.data.store import build_dataset
    spec = test_store.make_spec(families={families!r})
    build_dataset("x", spec, data_dir=Path({data!r}), registry=test_store.toy_registry(),
                  workers={workers}, shard_size=500, progress=False)
    """
)


def _start_build(data: Path, families: list, workers: int) -> subprocess.Popen:
    code = _KILL_SCRIPT.format(
        tests=[str(Path(__file__).parent), str(Path(__file__).parents[1])],
        families=families,
        data=str(data),
        workers=workers,
    )
    env = dict(os.environ, TOY_DELAY="0.15")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"build exited early ({proc.returncode}): {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the build")
        time.sleep(0.005)


def _kill_9(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc``; True if the signal is what ended it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_mid_build_then_resume_gives_the_clean_hash(tmp_path, reg):
    """Really SIGKILL a building process (twice), then finish: same content hash as a clean build."""
    families = [
        {"family": "toy-ginibre", "count": 5000, "params": {"local_randomize": True}},
        {"family": "toy-product", "count": 3000},
    ]
    spec = make_spec(families=families)
    store = tmp_path / "kill" / "x"

    def shards() -> int:
        return len(list(store.glob("shard-*"))) if store.is_dir() else 0

    proc = _start_build(tmp_path / "kill", families, workers=1)
    _wait_for(lambda: shards() >= 1, proc)
    assert _kill_9(proc)
    first = shards()
    assert 1 <= first < 16 and not (store / "manifest.json").exists()
    with pytest.raises(StoreError, match="incomplete"):
        open_dataset("x", data_dir=tmp_path / "kill")

    # resume in a pool of two workers, kill the parent again once it has made progress
    proc = _start_build(tmp_path / "kill", families, workers=2)
    _wait_for(lambda: shards() > first, proc)
    if _kill_9(proc):  # (on a very busy machine it may have finished first)
        assert not (store / "manifest.json").exists()

    # finish right away (the orphaned workers must not hold the store lock) ...
    ds = build_dataset(
        "x", spec, data_dir=tmp_path / "kill", registry=reg, workers=1, shard_size=500, progress=False
    )
    assert ds.manifest["build"]["resumed_rows"] > 0
    clean = build_dataset("x", spec, data_dir=tmp_path / "clean", registry=reg, workers=2, progress=False)
    assert ds.content_hash == clean.content_hash
    assert not [p for p in store.iterdir() if ".tmp" in p.name]
    # ... and they exit by themselves once their parent is gone
    _wait_until_gone(str(tmp_path / "kill"))


def _wait_until_gone(marker: str, timeout: float = 10.0) -> None:
    """Wait until no process has ``marker`` in its command line (Linux /proc; skipped elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for cmdline in proc.glob("[0-9]*/cmdline"):
            try:
                if marker.encode() in cmdline.read_bytes():
                    alive.append(cmdline.parent.name)
            except OSError:
                pass
        if not alive:
            return
        assert time.monotonic() < deadline, f"orphaned build workers still running: {alive}"
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------
# Spec changes, locking, write errors


def test_spec_change_rebuilds_never_mixes(tmp_path, reg, monkeypatch):
    a = build_dataset(
        "x", make_spec(), data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
    )
    hash_a = a.content_hash
    # an interrupted build of another spec leaves a partial store ...
    other = make_spec(seed=99)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(_Interrupt):
            build_dataset(
                "x", other, data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
            )
    assert not (tmp_path / "x" / "manifest.json").exists()  # the old complete manifest went first
    # ... which a build of the first spec does not reuse
    b = build_dataset(
        "x", make_spec(), data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
    )
    assert b.content_hash == hash_a and b.manifest["build"]["resumed_rows"] == 0
    assert len(list((tmp_path / "x").glob("shard-*"))) == 5


def test_partial_store_of_other_plugin_code_is_not_resumed(tmp_path, reg, monkeypatch):
    spec = make_spec()
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(_Interrupt):
            build_dataset(
                "x", spec, data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
            )
    other = Registry.load(entry_points=False, plugins=[("toy-v2", ToyPlugin()), ("negativity", negativity)])
    ds = build_dataset(
        "x", spec, data_dir=tmp_path, registry=other, workers=1, shard_size=1000, progress=False
    )
    assert ds.manifest["build"]["resumed_rows"] == 0
    assert ds.manifest["families"][0]["component"]["plugin"] == "toy-v2"


def test_complete_store_is_reused_unless_forced(tmp_path, reg):
    spec = make_spec()
    a = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=1, progress=False)
    b = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=1, progress=False)
    assert b.manifest["build"]["finished"] == a.manifest["build"]["finished"]
    assert store_status("x", spec, data_dir=tmp_path) == "built"
    assert store_status("x", make_spec(seed=1), data_dir=tmp_path) == "stale"
    c = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=1, progress=False, force=True)
    assert c.content_hash == a.content_hash


def test_ensure_dataset_builds_missing_and_stale(tmp_path, reg):
    raw = {"datasets": {"x": make_spec().model_dump(mode="json")}}
    ds = ensure_dataset("x", parse_registry(raw), data_dir=tmp_path, registry=reg, progress=False)
    again = ensure_dataset("x", parse_registry(raw), data_dir=tmp_path, registry=reg, progress=False)
    assert again.manifest["build"]["finished"] == ds.manifest["build"]["finished"]
    raw["datasets"]["x"]["seed"] = 123
    changed = ensure_dataset("x", parse_registry(raw), data_dir=tmp_path, registry=reg, progress=False)
    assert changed.manifest["seed"] == 123 and changed.content_hash != ds.content_hash
    with pytest.raises(SpecError, match="unknown dataset 'nope'; defined: x"):
        ensure_dataset("nope", parse_registry(raw), data_dir=tmp_path, registry=reg)


def test_store_being_built_elsewhere_is_refused(tmp_path, reg):
    (tmp_path / "x").mkdir()
    # flock is per open file description: a second open in this process conflicts as another process would
    with store_lock(tmp_path / "x", "x"), pytest.raises(StoreError, match="being built by another process"):
        build_dataset("x", make_spec(), data_dir=tmp_path, registry=reg, workers=1, progress=False)


def test_unwritable_data_dir_is_a_store_error(tmp_path, reg):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot write dataset store"):
        build_dataset("x", make_spec(), data_dir=blocker / "data", registry=reg, workers=1, progress=False)


def test_full_disk_is_a_store_error_and_nothing_claims_completeness(tmp_path, reg, monkeypatch):
    original = FileWriter.append
    calls = []

    def append(self, arrays, source):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, arrays, source)

    monkeypatch.setattr(FileWriter, "append", append)
    with pytest.raises(StoreError, match="No space left on device"):
        build_dataset(
            "x", make_spec(), data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
        )
    store = tmp_path / "x"
    assert not (store / "manifest.json").exists()
    assert not [p for p in store.iterdir() if ".tmp" in p.name]
    with pytest.raises(StoreError, match="incomplete"):
        open_dataset("x", data_dir=tmp_path)


def test_incomplete_manifest_is_not_opened(tmp_path, reg):
    ds = build_dataset("x", make_spec(), data_dir=tmp_path, registry=reg, workers=1, progress=False)
    manifest = json.loads((ds.path / "manifest.json").read_text())
    manifest["complete"] = False
    (ds.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="incomplete"):
        open_dataset("x", data_dir=tmp_path)
    with pytest.raises(StoreError, match="not built"):
        open_dataset("never", data_dir=tmp_path)


def test_store_of_an_older_format_is_named_and_rebuilt(tmp_path, reg):
    """A complete store of an older STORE_FORMAT (other random streams) is refused with a clear
    message, reported stale, and rebuilt by the next build."""
    spec = make_spec()
    ds = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=1, progress=False)
    manifest = json.loads((ds.path / "manifest.json").read_text())
    manifest["format"] = 1
    (ds.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        StoreError, match=rf"store format 1, this qeframe reads format {STORE_FORMAT} .*qeframe data build x"
    ):
        open_dataset("x", data_dir=tmp_path)
    assert store_status("x", spec, data_dir=tmp_path) == "stale"
    rebuilt = build_dataset("x", spec, data_dir=tmp_path, registry=reg, workers=1, progress=False)
    assert rebuilt.manifest["format"] == STORE_FORMAT and rebuilt.content_hash == ds.content_hash


# --------------------------------------------------------------------------------------------------
# Validation before generation


def test_unknown_family_lists_the_available_ones(tmp_path, reg):
    spec = make_spec(families=[{"family": "nope", "count": 10}])
    with pytest.raises(
        UnknownComponentError, match="unknown family 'nope'; available: toy-ginibre, toy-product"
    ):
        build_dataset("x", spec, data_dir=tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "x").exists()  # validated before anything was written


def test_unknown_labeler_lists_the_available_ones(tmp_path, reg):
    with pytest.raises(UnknownComponentError, match="unknown labeler 'nope'; available: negativity"):
        build_dataset("x", make_spec(labeler="nope"), data_dir=tmp_path, registry=reg, progress=False)


def test_bad_params_and_counts_name_the_key(tmp_path, reg):
    spec = make_spec(
        families=[
            {"family": "toy-product", "count": 5},
            {"family": "toy-ginibre", "count": 5, "params": {"rank": -1}},
        ]
    )
    with pytest.raises(SpecError, match=r"datasets\.x\.families\[1\]\.params\.rank"):
        build_dataset("x", spec, data_dir=tmp_path, registry=reg, progress=False)
    raw = make_spec().model_dump(mode="json")
    raw["families"][1]["count"] = 0
    with pytest.raises(SpecError, match=r"datasets\.x\.families\.1\.count"):
        parse_registry({"datasets": {"x": raw}})


# --------------------------------------------------------------------------------------------------
# Export


def test_export_npz(tmp_path, reg):
    ds = build_dataset(
        "x", make_spec(), data_dir=tmp_path, registry=reg, workers=1, shard_size=1000, progress=False
    )
    out = tmp_path / "out.npz"
    export_npz(ds, out)
    with np.load(out) as z:
        assert {
            "rho",
            "labels",
            "family",
            "cuts",
            "provenance",
            "ground_truth",
            "ground_truth_provenance",
            "evidence",
            "pure",
            "fully_separable",
            "pptes",
        } <= set(z.files)
        assert z["rho"].dtype == np.complex128 and np.array_equal(z["rho"], ds.rho)
        assert z["labels"].dtype == np.int8 and np.array_equal(z["labels"], ds.labels)
        assert list(z["cuts"]) == ["1|2"]
        assert np.array_equal(z["family"], ds.family)
        assert np.array_equal(z["provenance"], np.asarray(PROVENANCE)[ds.provenance])
        assert np.array_equal(z["ground_truth"], ds.ground_truth)
        assert np.array_equal(z["evidence"], ds.evidence)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_iter_pieces_skips_already_stored_rows(reg):
    """A cursor in the middle of a block yields exactly the rows after it."""
    from qeframe.data.build import Cursor, GenerationContext, make_executor

    spec = make_spec(families=[{"family": "toy-ginibre", "count": 5000}])
    ctx = GenerationContext(
        [reg.create("family", "toy-ginibre", {})],
        reg.create("labeler", "negativity"),  # type: ignore[list-item,arg-type]
        2,
        7,
        ["datasets.x.families[0]"],
    )
    ex = make_executor(ctx, 1)
    full = np.concatenate([p.arrays["rho"] for p in iter_pieces(ctx, [5000], ex, block_size=2048)])
    first = block_rows(5000, 0, 2048)  # 625: block 1 starts at that row
    tail = [p for p in iter_pieces(ctx, [5000], ex, block_size=2048, cursor=Cursor(0, 1, 100, first + 100))]
    assert tail[0].start == 100 and tail[0].block == 1
    assert np.array_equal(np.concatenate([p.arrays["rho"] for p in tail]), full[first + 100 :])
    assert spec.families[0].count == len(full)
