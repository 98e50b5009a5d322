"""pytest fixtures for qeframe and its plugin authors (installed as the ``pytest11`` plugin ``qeframe``).

``qeframe_registry`` gives a factory for an isolated registry that contains the installed plugins
plus any test-only plugins you pass, and makes it the process-wide registry for the test::

    def test_my_family(qeframe_registry):
        reg = qeframe_registry(MyPlugin())          # MyPlugin implements qeframe_register_families
        fam = reg.create("family", "mine", {})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .registry import Registry, set_registry


@pytest.fixture
def qeframe_registry() -> Iterator[Callable[..., Registry]]:
    from . import registry as registry_module

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
