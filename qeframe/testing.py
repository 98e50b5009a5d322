"""pytest fixtures for qeframe and its plugin authors (installed as the ``pytest11`` plugin ``qeframe``).

``qeframe_registry`` gives a factory for an isolated registry that contains the installed plugins
plus any test-only plugins you pass, and makes it the process-wide registry for the test::

    def test_my_family(qeframe_registry):
        reg = qeframe_registry(MyPlugin())          # MyPlugin implements qeframe_register_families
        fam = reg.create("family", "mine", {})

``qeframe_cli`` runs a ``qeframe`` command in the test's process, as the console script would, and
returns its exit status and captured output::

    def test_my_family_is_listed(qeframe_cli):
        code, out, err = qeframe_cli("plugins", "--json")
        assert code == 0 and '"mine"' in out
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qeframe.plugin.registry import Registry, set_registry


@pytest.fixture
def qeframe_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``invoke(*args) -> (exit status, stdout, stderr)`` of ``qeframe ARGS`` run in this process.

    Arguments are converted with ``str`` (paths welcome). The exit status is 0 when the command
    returns, else the status it exits with (2 for a user error, whose stderr is one line).
    """
    from qeframe.cli import main

    def invoke(*args: Any) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def qeframe_registry() -> Iterator[Callable[..., Registry]]:
    from qeframe.plugin import registry as registry_module

    previous = registry_module._DEFAULT  # restore exactly what was there, without loading plugins

    def make(*plugins: Any, entry_points: bool = True) -> Registry:
        reg = Registry.load(
            entry_points=entry_points,
            plugins=[(f"test-plugin-{i}-{type(p).__name__}", p) for i, p in enumerate(plugins)],
        )
        set_registry(reg)
        return reg

    yield make
    set_registry(previous)
