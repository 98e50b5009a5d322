"""The registry.toml reference page is generated from the pydantic models and must stay in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from qeframe.config.reference import FRAME_MODELS, registry_reference
from qeframe.plugin.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "registry-reference.md"


def test_reference_page_is_up_to_date():
    expected = registry_reference(Registry.load())
    assert PAGE.read_text(encoding="utf-8") == expected, (
        "docs/registry-reference.md is out of date: run `qeframe reference --out docs/registry-reference.md`"
    )


@pytest.mark.parametrize("title,model", FRAME_MODELS)
def test_every_frame_key_is_documented(title, model):
    text = PAGE.read_text(encoding="utf-8")
    for key in model.model_fields:
        assert f"| `{key}` |" in text, f"{title}: key {key!r} missing from the reference"


def test_every_builtin_plugin_has_a_section():
    text = PAGE.read_text(encoding="utf-8")
    for comp in Registry.load().components():
        if comp.distribution == "qeframe":
            assert f"{comp.kind} `{comp.name}`" in text


def test_reference_is_independent_of_third_party_plugins(qeframe_registry):
    from qeframe import hookimpl
    from qeframe.plugin.interfaces import FamilyParams, StateBatch, StateFamily

    class Extra(StateFamily):
        name = "extra-test-family"
        Params = FamilyParams

        def sample(self, count, rng, n_qubits=3) -> StateBatch:  # pragma: no cover - never sampled
            raise NotImplementedError

    class Plugin:
        @hookimpl
        def qeframe_register_families(self, register):
            register(Extra)

    reg = qeframe_registry(Plugin())
    assert "extra-test-family" not in registry_reference(reg)
    assert registry_reference(reg) == PAGE.read_text(encoding="utf-8")
