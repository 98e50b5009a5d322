"""The plugin registry: lookup errors, conflicts, broken plugins, blocking, params, and the CLI.

Test-only plugins are tiny classes registered through ``Registry.load(entry_points=False,
plugins=[...])`` or the ``qeframe_registry`` fixture of :mod:`qeframe.testing`; entry points are
simulated by monkeypatching ``importlib.metadata.entry_points`` as seen by :mod:`qeframe.plugin.registry`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import Field
from qeframe_plugins.labelers import negativity as negativity_plugin
from typer.testing import CliRunner

from qeframe import hookimpl
from qeframe.cli.base import app
from qeframe.errors import PluginConflictError, QeframeError, SpecError, UnknownComponentError
from qeframe.plugin import registry as registry_module
from qeframe.plugin.interfaces import LabelBatch, Labeler, Params, StateBatch, StateFamily
from qeframe.plugin.registry import Registry, get_registry

# ------------------------------------------------------------------------------ test plugins


class ToyParams(Params):
    threshold: float = Field(default=0.5, gt=0, description="must be positive")
    mode: Literal["fast", "exact"] = "fast"


class ToyLabeler(Labeler):
    """Labels every cut as unknown."""

    name = "toy"
    description = "a test labeler"
    Params = ToyParams

    def label(self, batch: StateBatch) -> LabelBatch:
        shape = batch.ground_truth.shape
        return LabelBatch(np.ones(len(batch), bool), np.full(shape, -1, np.int8), np.zeros(shape, np.uint8))


class ToyFamily(StateFamily):
    """Maximally mixed states."""

    name = "toy-mixed"

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        d = 2**n_qubits
        return StateBatch.build(np.broadcast_to(np.eye(d) / d, (count, d, d)), -1, "unknown", pure=False)


class ToyPlugin:
    @hookimpl
    def qeframe_register_labelers(self, register):
        register(ToyLabeler)


class FamilyPlugin:
    @hookimpl
    def qeframe_register_families(self, register):
        register(ToyFamily)


class SameNamePlugin:
    """Registers another labeler called ``toy``."""

    @hookimpl
    def qeframe_register_labelers(self, register):
        register(type("OtherToy", (ToyLabeler,), {"__doc__": "another toy"}))


class ExplodingPlugin:
    @hookimpl
    def qeframe_register_labelers(self, register):
        raise RuntimeError("boom while registering")


class MisspelledHookPlugin:
    @hookimpl
    def qeframe_register_familes(self, register):  # typo: no such hook
        register(ToyFamily)


class WrongArgumentPlugin:
    @hookimpl
    def qeframe_register_families(self, callback):  # the hook's argument is called `register`
        callback(ToyFamily)


class NotAComponentPlugin:
    @hookimpl
    def qeframe_register_families(self, register):
        register(ToyLabeler)  # a labeler registered as a family


class FakeDist:
    def __init__(self, name: str, version: str):
        self.name = name
        self.version = version


class FakeEntryPoint:
    """Quacks like :class:`importlib.metadata.EntryPoint` (name, value, group, dist, load)."""

    def __init__(
        self, name: str, dist: str, version: str, target: Any = None, error: Exception | None = None
    ):
        self.name = name
        self.value = f"{dist.replace('-', '_')}.plugin"
        self.group = registry_module.ENTRY_POINT_GROUP
        self.dist = FakeDist(dist, version)
        self._target = target
        self._error = error
        self.loaded = False

    def load(self) -> Any:
        self.loaded = True
        if self._error is not None:
            raise self._error
        return self._target


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points by the given fakes (only for the ``qeframe`` group)."""

    def install(*eps: FakeEntryPoint) -> list[FakeEntryPoint]:
        def entry_points(*, group: str | None = None, **kwargs):
            assert group == registry_module.ENTRY_POINT_GROUP
            return list(eps)

        monkeypatch.setattr(registry_module.importlib_metadata, "entry_points", entry_points)
        return list(eps)

    monkeypatch.delenv("QEFRAME_DISABLE_PLUGINS", raising=False)
    return install


# ------------------------------------------------------------------------------ lookup
def test_lookup_and_create(qeframe_registry):
    reg = qeframe_registry(ToyPlugin(), FamilyPlugin(), entry_points=False)
    assert get_registry() is reg  # the fixture installs it process-wide
    assert reg.get("labeler", "toy") is ToyLabeler
    info = reg.info("labeler", "toy")
    assert info.description == "a test labeler" and info.distribution == "<local>"
    assert reg.info("family", "toy-mixed").description == "Maximally mixed states."  # from the docstring
    assert reg.names("labeler") == ["toy"]
    assert [c.name for c in reg.components(pattern="toy*")] == ["toy-mixed", "toy"]  # kind order, then name
    labeler = reg.create("labeler", "toy", {"threshold": 2.0, "mode": "exact"})
    assert isinstance(labeler, ToyLabeler) and labeler.params.threshold == 2.0
    family = reg.create("family", "toy-mixed", {"local_randomize": True})
    batch = family.generate(3, np.random.default_rng(0), n_qubits=2)
    assert batch.rho.shape == (3, 4, 4)
    assert reg.broken == []


def test_unknown_name_lists_available(qeframe_registry):
    reg = qeframe_registry(ToyPlugin(), negativity_plugin, entry_points=False)
    with pytest.raises(UnknownComponentError) as info:
        reg.get("labeler", "negativty")
    message = str(info.value)
    assert "negativty" in message and "negativity" in message and "toy" in message
    assert isinstance(info.value, QeframeError) and isinstance(info.value, KeyError)
    with pytest.raises(UnknownComponentError, match="none installed"):
        reg.create("router", "anything")
    with pytest.raises(UnknownComponentError, match="allowed: family, labeler"):
        reg.get("labelers", "toy")


def test_same_kind_and_name_conflict_names_both():
    with pytest.raises(PluginConflictError) as info:
        Registry.load(
            entry_points=False, plugins=[("first-plugin", ToyPlugin()), ("second-plugin", SameNamePlugin())]
        )
    message = str(info.value)
    assert "labeler 'toy'" in message
    assert message.index("first-plugin") < message.index("second-plugin")  # registration order
    assert "QEFRAME_DISABLE_PLUGINS" in message


def test_conflict_between_distributions_names_both(fake_entry_points):
    fake_entry_points(
        FakeEntryPoint("labeler.toy", "qeframe-toy", "1.2", ToyPlugin()),
        FakeEntryPoint("labeler.toy2", "qeframe-other", "0.3", SameNamePlugin()),
    )
    with pytest.raises(PluginConflictError) as info:
        Registry.load()
    message = str(info.value)
    assert "qeframe-toy 1.2" in message and "qeframe-other 0.3" in message
    # blocking one of them resolves the conflict
    reg = Registry.load(disabled=["qeframe-other"])
    assert reg.info("labeler", "toy").distribution == "qeframe-toy"


def test_same_name_in_different_kinds_is_fine():
    class FamilyNamedToy(ToyFamily):
        name = "toy"

    class P:
        @hookimpl
        def qeframe_register_families(self, register):
            register(FamilyNamedToy)

    reg = Registry.load(entry_points=False, plugins=[("a", ToyPlugin()), ("b", P())])
    assert reg.get("family", "toy") is FamilyNamedToy and reg.get("labeler", "toy") is ToyLabeler


# ------------------------------------------------------------------------------ broken plugins
@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (ExplodingPlugin(), "RuntimeError: boom while registering"),
        (MisspelledHookPlugin(), "qeframe_register_familes"),
        (WrongArgumentPlugin(), "callback"),
        (NotAComponentPlugin(), "not a subclass of StateFamily"),
    ],
    ids=["hook-raises", "misspelled-hook", "wrong-argument", "wrong-kind"],
)
def test_broken_plugin_is_reported_and_others_keep_working(plugin, expected):
    reg = Registry.load(
        entry_points=False, plugins=[("good", ToyPlugin()), ("bad", plugin), ("fam", FamilyPlugin())]
    )
    assert [b.plugin for b in reg.broken] == ["bad"]
    assert expected in reg.broken[0].error
    assert reg.get("labeler", "toy") is ToyLabeler
    assert reg.get("family", "toy-mixed") is ToyFamily
    # a broken plugin is not recorded as loaded
    assert sorted(reg.plugin_versions()) == ["fam", "good"]


class HalfBrokenPlugin:
    """Registers a family, then fails in its labeler hook."""

    @hookimpl
    def qeframe_register_families(self, register):
        register(ToyFamily)

    @hookimpl
    def qeframe_register_labelers(self, register):
        register(ToyLabeler)
        raise ValueError("second hook fails")


def test_plugin_failing_halfway_contributes_nothing():
    reg = Registry.load(
        entry_points=False, plugins=[("half", HalfBrokenPlugin()), ("good", SameNamePlugin())]
    )
    assert [(b.plugin, b.error) for b in reg.broken] == [("half", "ValueError: second hook fails")]
    assert reg.names("family") == []  # withdrawn although its own hook succeeded
    assert reg.get("labeler", "toy").__name__ == "OtherToy"  # no conflict with the withdrawn one
    assert list(reg.plugin_versions()) == ["good"]


def test_entry_point_that_fails_to_import_is_reported(fake_entry_points):
    eps = fake_entry_points(
        FakeEntryPoint("labeler.toy", "qeframe-toy", "1.0", ToyPlugin()),
        FakeEntryPoint(
            "family.broken", "qeframe-broken", "0.9", error=ImportError("No module named 'scipyy'")
        ),
        FakeEntryPoint("family.toy", "qeframe-toy", "1.0", FamilyPlugin()),
    )
    reg = Registry.load()
    assert all(ep.loaded for ep in eps)
    (broken,) = reg.broken
    assert (broken.plugin, broken.distribution, broken.version) == ("family.broken", "qeframe-broken", "0.9")
    assert broken.error == "ImportError: No module named 'scipyy'"
    assert reg.names("labeler") == ["toy"] and reg.names("family") == ["toy-mixed"]
    assert reg.info("labeler", "toy").version == "1.0"
    assert reg.plugin_versions() == {
        "family.toy": {"distribution": "qeframe-toy", "version": "1.0"},
        "labeler.toy": {"distribution": "qeframe-toy", "version": "1.0"},
    }


def test_disable_plugins_by_entry_point_or_distribution(fake_entry_points, monkeypatch):
    def eps():
        return fake_entry_points(
            FakeEntryPoint("labeler.toy", "qeframe-toy", "1.0", ToyPlugin()),
            FakeEntryPoint("family.toy", "qeframe-fam", "1.0", FamilyPlugin()),
            FakeEntryPoint("family.broken", "qeframe-broken", "0.9", error=ImportError("nope")),
        )

    points = eps()
    monkeypatch.setenv("QEFRAME_DISABLE_PLUGINS", " family.broken , qeframe-fam")
    reg = Registry.load()
    assert reg.broken == []
    assert reg.names("labeler") == ["toy"] and reg.names("family") == []
    assert not points[1].loaded and not points[2].loaded  # blocked ones are never imported
    monkeypatch.setenv("QEFRAME_DISABLE_PLUGINS", "labeler.toy")
    points = eps()
    reg = Registry.load()
    assert reg.names("labeler") == [] and reg.names("family") == ["toy-mixed"]
    assert [b.plugin for b in reg.broken] == ["family.broken"]
    # an explicit `disabled` overrides the environment
    reg = Registry.load(disabled=[])
    assert reg.names("labeler") == ["toy"]


def test_trace_switch_prints_hook_calls(fake_entry_points, monkeypatch, capsys):
    fake_entry_points(FakeEntryPoint("labeler.toy", "qeframe-toy", "1.0", ToyPlugin()))
    monkeypatch.setenv("QEFRAME_TRACE_PLUGINS", "1")
    Registry.load()
    assert "qeframe_register_labelers" in capsys.readouterr().err


# ------------------------------------------------------------------------------ params
@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"threshold": -1}, "labeler.toy.params.threshold: Input should be greater than 0"),
        ({"mode": "slow"}, "labeler.toy.params.mode: Input should be 'fast' or 'exact'"),
        ({"treshold": 1}, "labeler.toy.params.treshold: unknown key"),
        ({"threshold": "high"}, "labeler.toy.params.threshold:"),
    ],
)
def test_create_with_bad_params_names_the_key(params, fragment):
    reg = Registry.load(entry_points=False, plugins=[("toy", ToyPlugin())])
    with pytest.raises(SpecError) as info:
        reg.create("labeler", "toy", params)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_create_uses_the_registry_toml_key():
    reg = Registry.load(entry_points=False, plugins=[("toy", ToyPlugin())])
    with pytest.raises(SpecError, match=r"^datasets\.train\.labeler\.params\.threshold: .*; "):
        reg.create("labeler", "toy", {"threshold": 0, "extra": 1}, key="datasets.train.labeler.params")


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli_registry(qeframe_registry):
    """negativity (the real built-in module) + a toy labeler + a plugin whose hook raises."""
    return qeframe_registry(negativity_plugin, ToyPlugin(), ExplodingPlugin(), entry_points=False)


def test_cli_plugins_table(cli_registry, monkeypatch):
    from qeframe.cli import base as cli

    monkeypatch.setattr(cli.console, "width", 250)
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "negativity" in result.output and "toy" in result.output
    assert "broken plugins" in result.output
    assert "RuntimeError: boom while registering" in result.output


def test_cli_plugins_table_prints_brackets_literally(qeframe_registry, monkeypatch):
    """Descriptions are data, not rich markup: an install hint like qeframe[ray] survives."""
    from qeframe import hookimpl
    from qeframe.cli import base as cli

    class Hinted(ToyLabeler):
        name = "hinted"
        description = "needs extras: pip install 'qeframe[ray]'"

    class HintedPlugin:
        @hookimpl
        def qeframe_register_labelers(self, register):
            register(Hinted)

    qeframe_registry(HintedPlugin(), entry_points=False)
    monkeypatch.setattr(cli.console, "width", 250)
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "pip install 'qeframe[ray]'" in result.output


def test_cli_plugins_json(cli_registry):
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    by_name = {(p["kind"], p["name"]): p for p in data["plugins"]}
    assert ("labeler", "negativity") in by_name and ("labeler", "toy") in by_name
    assert by_name[("labeler", "negativity")]["description"].startswith("NPT cut -> entangled")
    (broken,) = data["broken"]
    assert broken["plugin"].endswith("ExplodingPlugin")
    assert broken["error"] == "RuntimeError: boom while registering"


def test_cli_help_lists_plugins_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "plugins" in result.output


def _installed_entry_point_names() -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group=registry_module.ENTRY_POINT_GROUP)]


def test_installed_script_lists_negativity():
    """The real `qeframe` script with the real entry points, every plugin but the negativity
    labeler blocked through QEFRAME_DISABLE_PLUGINS (keeps the test fast and independent of
    plugins under construction)."""
    script = Path(sys.executable).with_name("qeframe")
    if not script.exists():
        pytest.skip("the qeframe script is not installed next to this interpreter")
    names = _installed_entry_point_names()
    assert "labeler.negativity" in names
    env = dict(os.environ, QEFRAME_DISABLE_PLUGINS=",".join(n for n in names if n != "labeler.negativity"))
    env.pop("QEFRAME_TRACE_PLUGINS", None)
    proc = subprocess.run(
        [str(script), "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(p["kind"], p["name"]) for p in data["plugins"]] == [("labeler", "negativity")]
    assert data["plugins"][0]["distribution"] == "qeframe"
    assert data["broken"] == []
