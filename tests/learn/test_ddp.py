"""Data-parallel training (torchrun / DDP, gloo on the CPU) gives the single-process results.

* fast: :func:`shard_bounds`; the rank shares of a global batch's loss add up to the single-process
  loss and gradient (simulated in one process, with unknown labels, a symmetry term, uneven and
  empty parts); environment and option errors; ``qeframe run --distributed`` in a group of one.
* slow (processes): 2 gloo processes through :class:`~qeframe.learn.train.Trainer` (train 1 epoch,
  resume, train the 2nd) against one process; ``torchrun --nproc_per_node=2 ... qeframe run``
  against ``qeframe run``: the same files in the run folder, weights, metrics and results.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import train_plugins
from hypothesis import given
from hypothesis import strategies as st
from qeframe_plugins.labelers import negativity
from train_plugins import REGISTRY_TOML, synthetic_arrays

from qeframe.config.specs import ModelSpec, SymmetryLoss, TrainingSpec
from qeframe.errors import QeframeError
from qeframe.learn.arrays import model_input
from qeframe.learn.distributed import (
    distributed_device,
    init_distributed,
    shard_bounds,
    shutdown,
    torchrun_env,
    wants_distributed,
)
from qeframe.learn.runs import RunDir, load_tensors
from qeframe.learn.train import Trainer
from qeframe.plugin.registry import Registry

TESTS = Path(__file__).resolve().parents[1]  # tests/: train_plugins for the launcher
VENV_BIN = Path(sys.executable).parent
WEIGHT_ATOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _registry() -> Registry:
    return Registry.load(
        entry_points=False, plugins=[("train-plugins", train_plugins), ("negativity", negativity)]
    )


def _trainer(registry, *, epochs=2, distributed=None, symmetry_fraction=1.0, view_bce_weight=0.0) -> Trainer:
    training = TrainingSpec(
        epochs=epochs,
        batch_size=32,
        lr=1e-2,
        seed=5,
        symmetries=[SymmetryLoss(name="test-permutation", start_epoch=0, weight=0.5)],
        symmetry_fraction=symmetry_fraction,
        view_bce_weight=view_bce_weight,
    )
    return Trainer(
        ModelSpec(backbone="test-mlp", params={"hidden": 16}),
        training,
        3,
        registry=registry,
        device="cpu",
        spec_hash="d" * 64,
        distributed=distributed,
    )


def _data():
    # 91 samples in batches of 32: 32, 32, 27 -> parts 16/16, 16/16, 14/13; 30 % unknown labels
    return synthetic_arrays("train", 91, seed=0, unknown=0.3), synthetic_arrays(
        "val", 25, seed=1, unknown=0.2
    )


# --------------------------------------------------------------------------------------------------
# fast


@given(total=st.integers(0, 500), world=st.integers(1, 17))
def test_shard_bounds_cover_in_order_with_balanced_sizes(total, world):
    parts = [shard_bounds(total, world, r) for r in range(world)]
    assert parts[0][0] == 0 and parts[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_bounds_rejects_bad_rank():
    with pytest.raises(ValueError):
        shard_bounds(10, 2, 2)


@pytest.mark.parametrize(
    "batch, world, fraction, view_bce",
    [
        (27, 2, 1.0, 0.0),
        (10, 3, 1.0, 0.0),
        (2, 3, 1.0, 0.0),
        (27, 2, 0.3, 0.0),
        (27, 3, 0.5, 0.0),
        (27, 2, 1.0, 0.7),
        (27, 3, 0.5, 0.7),
    ],
)
def test_rank_shares_add_up_to_the_single_process_loss_and_gradient(batch, world, fraction, view_bce):
    """What DDP computes — the average over ranks of ``world`` x (rank share) gradients — is the
    gradient of the global batch's loss; the shares of every term add up to the global value.
    (2, 3): one rank has an empty part; with a symmetry fraction < 1 the views cover the first
    rows of the global batch, so some ranks have no view rows. With ``view_bce_weight`` the BCE on
    the views is split the same way."""
    reg = _registry()
    trainer = _trainer(reg, symmetry_fraction=fraction, view_bce_weight=view_bce)
    data = synthetic_arrays("train", batch, seed=3, unknown=0.4)
    x, y = model_input(data.rho), torch.tensor(data.labels)
    state = trainer.symmetry_generator.get_state()

    def grads_of(loss):
        trainer.model.zero_grad(set_to_none=True)
        loss.backward()
        return [p.grad.clone() for p in trainer.model.parameters()]

    total, terms, logits = trainer.batch_loss(x, y, 0)
    expected = grads_of(total)
    summed = [torch.zeros_like(g) for g in expected]
    shares: dict[str, float] = {}
    rows = []
    for rank in range(world):
        trainer.symmetry_generator.set_state(state)  # every rank draws the same views
        part = shard_bounds(batch, world, rank)
        t, ts, lg = trainer.batch_loss(x, y, 0, part=part)
        assert lg.shape == (part[1] - part[0], 3)
        rows.append(lg.detach())
        for s, g in zip(summed, grads_of(t * world)):
            s += g / world
        for k, v in ts.items():
            shares[k] = shares.get(k, 0.0) + float(v.detach())
    assert terms["sym:test-permutation"].item() > 0  # the symmetry term is really there
    assert ("bce:views" in terms) == (view_bce > 0)
    for k, v in terms.items():
        assert shares[k] == pytest.approx(float(v.detach()), rel=1e-6, abs=1e-7), k
    for g, e in zip(summed, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(torch.cat(rows), logits.detach())


def test_environment_detection_and_errors(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert torchrun_env() is None and not wants_distributed(False) and wants_distributed(True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(QeframeError, match="RANK, LOCAL_RANK missing"):
        torchrun_env()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_env() == (1, 2, 1) and wants_distributed(False)  # torchrun with K > 1: automatic
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(QeframeError, match="inconsistent"):
        torchrun_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(QeframeError, match="not integers"):
        torchrun_env()
    assert distributed_device("cpu", 3) == torch.device("cpu")
    with pytest.raises(QeframeError, match="cuda:N|use auto, cuda or cpu"):
        distributed_device("cuda:1", 0)
    if not torch.cuda.is_available():
        assert distributed_device("auto", 1) == torch.device("cpu")
        with pytest.raises(QeframeError, match="CUDA is not available"):
            distributed_device("cuda", 0)


@pytest.fixture
def toy_registry(qeframe_registry, tmp_path) -> Path:
    qeframe_registry(train_plugins, negativity, entry_points=False)
    path = tmp_path / "registry.toml"
    path.write_text(REGISTRY_TOML.format(backbone="test-mlp"))
    return path


def test_run_distributed_outside_torchrun_is_a_one_line_error(
    toy_registry, tmp_path, qeframe_cli, monkeypatch
):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    code, _, err = qeframe_cli(
        "run", "toy", "--registry", toy_registry, "--runs-dir", tmp_path / "runs", "--distributed"
    )
    assert code == 2 and "torchrun --nproc_per_node=K" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def _assert_same_losses(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for term, value in a.items():
        assert b[term] == (None if value is None else pytest.approx(value, rel=1e-5)), term


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*"))


def _only_run(runs: Path) -> Path:
    (run,) = list((runs / "toy").iterdir())
    return run


def _assert_same_run(single: Path, parallel: Path, world: int) -> None:
    """Same files, weights within float tolerance, same metrics and results."""
    assert _files(single) == _files(parallel)
    a = load_tensors(single / "checkpoints" / "best.safetensors")
    b = load_tensors(parallel / "checkpoints" / "best.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=WEIGHT_ATOL)
    ma = [json.loads(line) for line in (single / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(line) for line in (parallel / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in ma] == [r["epoch"] for r in mb] == [1, 2]
    for ra, rb in zip(ma, mb):
        assert rb["samples"] == ra["samples"] and rb["weights"] == ra["weights"]
        assert rb["validation_accuracy"] == ra["validation_accuracy"]
        assert rb["selected_epoch"] == ra["selected_epoch"]
        assert rb["train_accuracy"] == pytest.approx(ra["train_accuracy"], abs=1e-9)
        _assert_same_losses(ra["loss"], rb["loss"])
    results_a = json.loads((single / "results.json").read_text())
    results_b = json.loads((parallel / "results.json").read_text())
    assert results_b == results_a
    plugins = json.loads((parallel / "plugins.json").read_text())
    assert plugins["distributed"] == {"world_size": world, "backend": "gloo"}
    assert json.loads((single / "plugins.json").read_text())["distributed"] is None


def test_run_distributed_group_of_one_writes_the_same_run(toy_registry, tmp_path, qeframe_cli, monkeypatch):
    """``--distributed`` in a gloo group of one process (the whole DDP code path, in this process)."""
    data = tmp_path / "data"
    common = ["--registry", toy_registry, "--data-dir", data, "--device", "cpu", "--json"]
    code, _, err = qeframe_cli("run", "toy", *common, "--runs-dir", tmp_path / "single")
    assert code == 0, err
    env = {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for k, v in {**env, "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(k, v)
    code, out, err = qeframe_cli("run", "toy", *common, "--runs-dir", tmp_path / "ddp", "--distributed")
    assert code == 0, err
    assert not torch.distributed.is_initialized()  # the group is left at the end
    assert json.loads(out)["run"] == str(_only_run(tmp_path / "ddp"))
    _assert_same_run(_only_run(tmp_path / "single"), _only_run(tmp_path / "ddp"), world=1)


# --------------------------------------------------------------------------------------------------
# slow: real processes


def _trainer_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank: train 1 epoch into a run folder, then resume in a new trainer for the 2nd epoch."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    ctx, _device = init_distributed("cpu", timeout_s=120)
    try:
        reg = _registry()
        train, val = _data()
        run = RunDir.create(Path(out) / "runs", "ddp", "d" * 64) if ctx.is_main else None
        run = RunDir(Path(ctx.broadcast_object(str(run.path) if run else None)))
        _trainer(reg, epochs=1, distributed=ctx).fit(train, [val], run=run)
        second = _trainer(reg, epochs=2, distributed=ctx)
        assert second.resume(run) == 1
        result = second.fit(train, [val], run=run)
        weights = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
        gathered = ctx.all_gather_object(weights)
        if ctx.is_main:
            assert all(torch.equal(g[k], weights[k]) for g in gathered for k in weights)  # ranks agree
            torch.save(weights, Path(out) / "weights.pt")
            (Path(out) / "result.json").write_text(
                json.dumps({"run": str(run.path), "best_epoch": result.best_epoch, "history": result.history})
            )
    finally:
        shutdown(ctx)


@pytest.mark.slow
def test_two_gloo_processes_with_resume_match_one_process(tmp_path):
    torch.multiprocessing.spawn(_trainer_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    train, val = _data()
    single = _trainer(_registry()).fit(train, [val])
    got = json.loads((tmp_path / "result.json").read_text())
    weights = torch.load(tmp_path / "weights.pt")
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(weights[k], v, rtol=0, atol=WEIGHT_ATOL)
    assert got["best_epoch"] == single.best_epoch
    assert [r["epoch"] for r in got["history"]] == [1, 2]
    for ra, rb in zip(single.history, got["history"]):
        assert rb["samples"] == ra["samples"] == 91
        assert rb["validation_accuracy"] == ra["validation_accuracy"]
        assert rb["train_accuracy"] == pytest.approx(ra["train_accuracy"], abs=1e-9)
        _assert_same_losses(ra["loss"], rb["loss"])
    # the checkpoint holds every rank's torch RNG state (dropout streams resume exactly)
    run = Path(got["run"])
    state = load_tensors(run / "checkpoints" / "epoch-0002.state.safetensors")
    assert {"rng.torch", "rng.torch.rank0", "rng.torch.rank1"} <= set(state)
    assert not torch.equal(state["rng.torch.rank0"], state["rng.torch.rank1"])
    assert json.loads((run / "checkpoints" / "epoch-0002.json").read_text())["world_size"] == 2
    assert (run / "checkpoints" / "best.json").is_file()


_LAUNCHER = """\
import sys
sys.path.insert(0, {tests!r})
import train_plugins
from qeframe_plugins.labelers import negativity
from qeframe.plugin.registry import Registry, set_registry
set_registry(Registry.load(entry_points=False, plugins=[("train-plugins", train_plugins), ("negativity", negativity)]))
from qeframe.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_torchrun_two_processes_write_the_single_process_run(tmp_path):
    """``torchrun --nproc_per_node=2`` of ``qeframe run`` (test plugins registered by a launcher
    script): rank 0 builds the datasets, the run folder equals the single-process one."""
    launcher = tmp_path / "launcher.py"
    launcher.write_text(_LAUNCHER.format(tests=str(TESTS)))
    registry = tmp_path / "registry.toml"
    registry.write_text(REGISTRY_TOML.format(backbone="test-mlp"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)

    def qeframe_run(prefix: list[str], name: str) -> subprocess.CompletedProcess:
        args = ["run", "toy", "--registry", registry, "--device", "cpu", "--json"]
        args += ["--data-dir", tmp_path / f"data-{name}", "--runs-dir", tmp_path / name]
        return subprocess.run(
            [*prefix, str(launcher), *map(str, args)],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )

    single = qeframe_run([sys.executable], "single")
    assert single.returncode == 0, single.stderr
    torchrun = [str(VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node=2"]
    ddp = qeframe_run(torchrun, "ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    payload = json.loads(ddp.stdout)  # rank 0 alone prints
    run = _only_run(tmp_path / "ddp")
    assert Path(payload["run"]).resolve() == run.resolve()
    assert len(list((tmp_path / "ddp" / "toy").iterdir())) == 1  # one run folder, not one per rank
    _assert_same_run(_only_run(tmp_path / "single"), run, world=2)
    np.testing.assert_array_equal(
        sorted(p.name for p in (tmp_path / "data-ddp").iterdir()),
        sorted(p.name for p in (tmp_path / "data-single").iterdir()),
    )
