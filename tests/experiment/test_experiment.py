"""The library face of ``qeframe run``: ``qeframe.run_experiment`` / ``run_many`` (the page
docs/python-api.md runs a whole tiny experiment; tests/cli/test_cli_run.py and test_multirun.py run
them through the command line)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from qeframe.errors import QeframeError
from qeframe.experiment import ExperimentResult, RunOptions, run_experiment, run_many


def test_run_experiment_and_run_many_are_lazy_top_level_names():
    code = (
        "import sys, qeframe\n"
        "assert {'run_experiment', 'run_many'} <= set(dir(qeframe)) and 'qeframe.experiment' not in sys.modules\n"
        "from qeframe import run_experiment, run_many\n"
        "assert run_experiment.__module__ == 'qeframe.experiment.single' and 'torch' not in sys.modules\n"
        "assert run_many.__module__ == 'qeframe.experiment.many'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_options_are_frozen_and_results_print_as_the_command_does(tmp_path):
    options = RunOptions(epochs=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.epochs = 4  # type: ignore[misc]
    single = ExperimentResult("e", tmp_path, {"t": {}}, "heading", selected_epoch=2)
    assert single.to_json() == {"run": str(tmp_path), "selected_epoch": 2, "results": {"t": {}}}
    ensemble = ExperimentResult("e", tmp_path, {}, "heading", members=[{"member": 0}])
    assert ensemble.to_json() == {"run": str(tmp_path), "members": [{"member": 0}], "results": {}}


def test_user_errors_before_anything_runs(tmp_path):
    with pytest.raises(QeframeError, match="name an experiment"):
        run_experiment()
    with pytest.raises(QeframeError, match="registry file .* not found"):
        run_experiment("x", registry=tmp_path / "missing.toml")
    with pytest.raises(QeframeError, match="named more than once: a"):
        run_many(["a", "b", "a"], registry=tmp_path / "missing.toml")
    with pytest.raises(QeframeError, match="jobs must be at least 1"):
        run_many(["a"], jobs=0)
