"""``qeframe data build|info|export|list`` with a temporary registry.toml and test-only families."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from qeframe_plugins.labelers import negativity
from store_plugins import ToyProduct, fails  # shared with the store and shard tests
from typer.testing import CliRunner

from qeframe import hookimpl
from qeframe.cli.base import app, main
from qeframe.plugin.interfaces import StateBatch, StateFamily


class ToyMixed(StateFamily):
    """Full-rank Ginibre mixed states (ground truth unknown)."""

    name = "toy-mixed"
    description = "test-only mixed states"

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        d = 2**n_qubits
        g = rng.standard_normal((count, d, d)) + 1j * rng.standard_normal((count, d, d))
        rho = g @ g.conj().transpose(0, 2, 1)
        return StateBatch.build(
            rho / np.trace(rho, axis1=1, axis2=2).real[:, None, None], -1, "unknown", pure=False
        )


class ToyPlugin:
    @hookimpl
    def qeframe_register_families(self, register):
        register(ToyProduct)
        register(ToyMixed)


REGISTRY = """
[datasets.small]
n_qubits = 2
seed = 3
split = "test"
labeler = { name = "negativity" }

[[datasets.small.families]]
family = "toy-product"
count = 300

[[datasets.small.families]]
family = "toy-mixed"
count = 500
tag = "mixed"
params = { local_randomize = true }

[datasets.three]
n_qubits = 3
seed = 4
labeler = "negativity"

[[datasets.three.families]]
family = "toy-mixed"
count = 200
"""


@pytest.fixture
def env(tmp_path, qeframe_registry, monkeypatch):
    """A tmp working directory holding registry.toml, with the toy plugins as the process registry."""
    qeframe_registry(ToyPlugin(), negativity, entry_points=False)
    (tmp_path / "registry.toml").write_text(REGISTRY)
    monkeypatch.chdir(tmp_path)

    return tmp_path


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_build_list_info_export(env):
    out = json.loads(invoke("data", "build", "small", "--no-progress", "--json", "--workers", "2").stdout)
    assert out[0]["dataset"] == "small" and out[0]["states"] == 800 and out[0]["status"] == "built"
    assert (env / "data" / "small" / "manifest.json").is_file()

    again = json.loads(invoke("data", "build", "small", "--no-progress", "--json").stdout)
    assert again[0]["status"] == "up to date" and again[0]["content hash"] == out[0]["content hash"]

    listing = {row["dataset"]: row for row in json.loads(invoke("data", "list", "--json").stdout)}
    assert listing["small"]["store"] == "built" and listing["three"]["store"] == "missing"
    assert listing["small"]["states"] == 800 and listing["small"]["split"] == "test"

    info = json.loads(invoke("data", "info", "small", "--json").stdout)
    assert [(f["label"], f["count"]) for f in info["families"]] == [("toy-product", 300), ("mixed", 500)]
    assert info["provenance_counts"]["1|2"]["pure-ppt"] >= 300
    assert sum(info["label_balance"]["1|2"].values()) == 800
    assert info["complete"] is True

    table = invoke("data", "info", "small").stdout
    assert "label balance per cut" in table and "mixed" in table and "pure-ppt" in table

    invoke("data", "export", "small", "--out", "small.npz")
    with np.load(env / "small.npz") as z:
        assert z["rho"].shape == (800, 4, 4) and z["labels"].shape == (800, 1)
        assert list(z["cuts"]) == ["1|2"] and set(z["family"]) == {"toy-product", "mixed"}
        assert set(z["provenance"][:300, 0]) == {"pure-ppt"}


def test_build_all_and_force(env):
    out = json.loads(
        invoke("data", "build", "--all", "--no-progress", "--json", "--shard-size", "128").stdout
    )
    assert sorted(r["dataset"] for r in out) == ["small", "three"]
    assert len(list((env / "data" / "small").glob("shard-*"))) == 7
    forced = json.loads(invoke("data", "build", "three", "--force", "--no-progress", "--json").stdout)
    assert forced[0]["status"] == "built"
    assert forced[0]["content hash"] == next(r for r in out if r["dataset"] == "three")["content hash"]


def test_custom_registry_and_data_dir(env, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "r.toml").write_text(REGISTRY)
    invoke(
        "data",
        "build",
        "three",
        "--registry",
        str(elsewhere / "r.toml"),
        "--data-dir",
        str(elsewhere / "d"),
        "--no-progress",
    )
    assert (elsewhere / "d" / "three" / "manifest.json").is_file()
    rows = json.loads(
        invoke(
            "data",
            "list",
            "--registry",
            str(elsewhere / "r.toml"),
            "--data-dir",
            str(elsewhere / "d"),
            "--json",
        ).stdout
    )
    assert {r["dataset"]: r["store"] for r in rows} == {"small": "missing", "three": "built"}


def test_user_errors_are_one_line_exit_2(env, capsys):
    assert "unknown dataset 'nope'; defined: small, three" in fails(capsys, "data", "build", "nope")
    assert "give dataset names or --all" in fails(capsys, "data", "build")
    assert "not built" in fails(capsys, "data", "info", "small")
    assert "not built" in fails(capsys, "data", "export", "small", "--out", "x.npz")
    assert "registry file 'missing.toml' not found" in fails(
        capsys, "data", "list", "--registry", "missing.toml"
    )

    (env / "registry.toml").write_text(
        REGISTRY.replace('family = "toy-mixed"\ncount = 200', 'family = "nope"\ncount = 5')
    )
    err = fails(capsys, "data", "build", "--all")
    assert "unknown family 'nope'; available: toy-mixed, toy-product" in err
    assert err.startswith("error: datasets.three.families[0].family: unknown family")  # the key path, as elsewhere
    assert not (env / "data" / "small").exists()  # every dataset is validated before any is built

    (env / "registry.toml").write_text(REGISTRY.replace("count = 300", "count = 0"))
    assert "datasets.small.families.0.count" in fails(capsys, "data", "build", "small")

    (env / "registry.toml").write_text(
        REGISTRY.replace("local_randomize = true", "local_randomize = true, rank = 2")
    )
    err = fails(capsys, "data", "build", "--all")
    assert "datasets.small.families[1].params.rank: unknown key" in err


def test_script_reports_an_incomplete_store_in_one_line(env):
    """The real command line (a subprocess) on a store whose build did not finish."""
    invoke("data", "build", "small", "--no-progress")
    (env / "data" / "small" / "manifest.json").unlink()
    cmd = [sys.executable, "-c", "from qeframe.cli import main; main()", "data", "info", "small"]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().startswith("error: dataset 'small'") and "incomplete" in res.stderr
    listing = {row["dataset"]: row for row in json.loads(invoke("data", "list", "--json").stdout)}
    assert listing["small"]["store"] == "missing"  # no build.json: a finished build's shards are not resumed


def test_interrupted_build_exits_130(env, capsys, monkeypatch):
    """Ctrl-C during a build is a failure for scripts (typer would otherwise report exit status 0)."""
    import qeframe.data.store

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(qeframe.data.store, "build_dataset", interrupted)
    with pytest.raises(SystemExit) as info:
        main(["data", "build", "small", "--no-progress"])
    assert info.value.code == 130 and "interrupted" in capsys.readouterr().err
