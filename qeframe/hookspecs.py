"""The pluggy hook specifications of qeframe — the one door every plugin goes through.

A plugin is any importable module or object that implements some of these hooks with
:data:`qeframe.hookimpl`. Built-in plugins and third-party plugins are found the same way:
through entry points in the ``qeframe`` group (read with :mod:`importlib.metadata`).

Each hook receives a ``register`` callback and calls it once per component class::

    from qeframe import hookimpl

    @hookimpl
    def qeframe_register_families(register):
        register(HorodeckiFamily)

A plugin never mutates global state; the registry records which distribution registered what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "qeframe"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

Register = Callable[[type[Any]], None]


@hookspec
def qeframe_register_families(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.StateFamily` subclasses (generators of density matrices)."""


@hookspec
def qeframe_register_labelers(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.Labeler` subclasses (per-cut labels with provenance)."""


@hookspec
def qeframe_register_symmetries(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.Symmetry` subclasses (random entanglement-preserving maps)."""


@hookspec
def qeframe_register_backbones(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.Backbone` subclasses (torch models: states -> per-cut logits)."""


@hookspec
def qeframe_register_routers(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.Router` subclasses (map states to ensemble domains)."""


@hookspec
def qeframe_register_baselines(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.Baseline` subclasses (classical criteria as predictors)."""


@hookspec
def qeframe_register_executors(register: Register) -> None:
    """Register :class:`qeframe.plugin.interfaces.Executor` subclasses (run the shards of a dataset build)."""
