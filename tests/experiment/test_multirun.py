"""``qeframe run A B --jobs N``: several experiments as child processes, and the comparison table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import test_end_to_end_builtin as e2e

from qeframe.evaluation.tables import comparison_tables
from qeframe.experiment.jobs import Job, child_environment, run_jobs

TN_EXPERIMENT = """
[experiments.e2e-tn]
train = "e2e-train"
validation = ["e2e-val"]
test = ["e2e-test"]
model = { backbone = "tensor_network", params = {} }
evaluation = { baselines = ["ppt", "ccnr"] }
[experiments.e2e-tn.training]
epochs = 1
batch_size = 64
"""


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "registry.toml").write_text(e2e.REGISTRY + TN_EXPERIMENT)
    return tmp_path


def _common(workdir: Path) -> list:
    return [
        "--registry", workdir / "registry.toml",
        "--data-dir", workdir / "data",
        "--runs-dir", workdir / "runs",
        "--device", "cpu",
    ]  # fmt: skip


def test_two_experiments_run_side_by_side_and_are_compared(workdir, qeframe_cli):
    code, out, err = qeframe_cli(
        "run", "e2e-siamese", "e2e-tn", *_common(workdir), "--epochs", "1", "--jobs", "2", "--json"
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["jobs"] == 2 and [r["experiment"] for r in payload["runs"]] == ["e2e-siamese", "e2e-tn"]
    for record in payload["runs"]:
        assert record["status"] == "done" and record["returncode"] == 0 and record["wall_s"] > 0
        run = Path(record["run"])
        assert run.parent == workdir / "runs" / record["experiment"]
        assert (run / "results.json").is_file()
        mean = payload["model_mean"][record["experiment"]]["e2e-test"]
        assert set(mean) == {"paper", "correct"} and 0.0 <= mean["paper"] <= 1.0
        # the child ran one epoch (--epochs is passed on)
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    log_dir = Path(payload["log_dir"])
    assert {p.name for p in log_dir.iterdir()} == {
        "e2e-siamese.log", "e2e-siamese.json", "e2e-tn.log", "e2e-tn.json", "summary.json", "summary.md",
    }  # fmt: skip
    # the children's logs carry one line per epoch (--progress), their stdout the JSON result
    assert "epoch 1:" in (log_dir / "e2e-tn.log").read_text()
    assert json.loads((log_dir / "e2e-tn.json").read_text())["run"] == payload["runs"][1]["run"]
    summary = (log_dir / "summary.md").read_text()
    assert "convention 'paper'" in summary and "convention 'correct'" in summary
    assert "| ppt (baseline) |" in summary and "| ccnr (baseline) |" in summary
    assert json.loads((log_dir / "summary.json").read_text())["runs"] == payload["runs"]


def test_several_experiments_print_a_comparison_table(workdir, qeframe_cli):
    code, out, err = qeframe_cli("run", "e2e-tn", "e2e-siamese", *_common(workdir), "--epochs", "1")
    assert code == 0, err
    flat = " ".join(out.split())  # rich wraps long titles in a narrow terminal
    assert "(baseline)" in flat and "e2e-tn" in flat and "convention" in flat
    assert "started e2e-tn" in err and "finished e2e-siamese" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resume", "runs/x"], "--resume continues one run"),
        (["--distributed"], "--distributed trains one experiment"),
    ],
)
def test_one_run_options_refuse_several_experiments(workdir, qeframe_cli, extra, message):
    code, _, err = qeframe_cli("run", "e2e-tn", "e2e-siamese", *_common(workdir), *extra)
    assert code != 0 and message in err and "Traceback" not in err


def test_bad_experiment_lists_fail_before_anything_is_built(workdir, qeframe_cli):
    code, _, err = qeframe_cli("run", "e2e-tn", "e2e-tn", *_common(workdir))
    assert code != 0 and "named more than once: e2e-tn" in err
    code, _, err = qeframe_cli("run", "e2e-tn", "no-such-experiment", *_common(workdir))
    assert code != 0 and "no-such-experiment" in err and "Traceback" not in err
    assert not (workdir / "data").exists() and not (workdir / "runs").exists()


def _python_job(tmp_path: Path, name: str, code: str) -> Job:
    return Job(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", tmp_path / f"{name}.json")


def test_run_jobs_keeps_going_after_a_failure_and_respects_the_limit(tmp_path):
    ok = "import json; print(json.dumps({'run': 'somewhere'}))"
    jobs = [
        _python_job(tmp_path, "fails", "import sys; sys.stderr.write('boom: bad input\\n'); sys.exit(3)"),
        _python_job(tmp_path, "works", ok),
        _python_job(tmp_path, "no-json", "print('not json')"),
    ]
    events: list[tuple[str, str]] = []
    run_jobs(jobs, 1, poll_s=0.01, on_change=lambda j: events.append((j.experiment, j.status)))
    failed, works, no_json = jobs
    assert (failed.status, failed.returncode, failed.error) == ("failed", 3, "boom: bad input")
    assert (works.status, works.run) == ("done", "somewhere")
    assert no_json.status == "failed" and no_json.returncode == 0 and no_json.error == "exit status 0"
    # one at a time: each job starts after the previous one ended
    assert events == [
        ("fails", "running"), ("fails", "failed"),
        ("works", "running"), ("works", "done"),
        ("no-json", "running"), ("no-json", "failed"),
    ]  # fmt: skip
    assert works.started >= failed.ended and no_json.started >= works.ended
    with pytest.raises(ValueError):
        run_jobs([], 0)


def test_child_environment_splits_the_cores_unless_set():
    assert child_environment(2, {})["OMP_NUM_THREADS"] == str(
        max(1, (__import__("os").cpu_count() or 1) // 2)
    )
    assert child_environment(2, {"OMP_NUM_THREADS": "7"})["OMP_NUM_THREADS"] == "7"


def _results(datasets: dict[str, tuple[float, float]]) -> dict:
    """A results.json-like dict: dataset -> (model mean, ppt mean), same under both conventions."""
    return {
        d: {c: {"model": {"mean": m}, "ppt": {"mean": p}} for c in ("paper", "correct")}
        for d, (m, p) in datasets.items()
    }


def test_comparison_tables_take_the_union_of_datasets():
    tables = comparison_tables(
        {"a": _results({"pure": (0.9, 1.0)}), "b": _results({"pure": (0.8, 1.0), "upb": (0.5, 0.0)})}
    )
    assert [t.title for t in tables] == [
        "Mean per-cut accuracy (%) of each run, convention 'paper'",
        "Mean per-cut accuracy (%) of each run, convention 'correct'",
    ]
    assert tables[0].columns == ["run", "pure", "upb"]
    assert tables[0].rows == [
        ["a", "90.00", "—"],
        ["b", "80.00", "50.00"],
        ["ppt (baseline)", "100.00", "0.00"],
    ]


def test_child_command_passes_the_overrides(tmp_path):
    from qeframe.experiment.jobs import child_command

    paths = {"registry": tmp_path / "r.toml", "data_dir": tmp_path / "d", "runs_dir": tmp_path / "r"}
    plain = child_command("x", device="cpu", **paths)
    assert "--epochs" not in plain and "--compile" not in plain
    both = child_command("x", device="cpu", epochs=3, compile=True, **paths)
    assert both[both.index("--epochs") + 1] == "3" and both[-1] == "--compile"
