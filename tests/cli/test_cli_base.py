"""``qeframe.cli.base.main``: the OpenMP defaults it sets before any command imports torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qeframe.cli.base import OMP_WAIT_POLICY_DEFAULT, main, openmp_defaults


def test_openmp_defaults_sets_passive_and_keeps_the_users_choice() -> None:
    env: dict[str, str] = {}
    openmp_defaults(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"} and OMP_WAIT_POLICY_DEFAULT == "PASSIVE"
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    openmp_defaults(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_main_sets_the_wait_policy_before_running_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "placeholder")  # so that teardown restores the original state
    monkeypatch.delenv("OMP_WAIT_POLICY")
    main(["--help"])  # prints the usage and returns
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_cli_package_does_not_load_torch_before_main_runs() -> None:
    """OpenMP reads OMP_WAIT_POLICY when torch loads it, so importing the CLI must not import torch."""
    code = "import sys, qeframe.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
