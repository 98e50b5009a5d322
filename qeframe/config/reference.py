"""Generate the ``registry.toml`` reference (``docs/registry-reference.md``) from the pydantic models.

The frame models of :mod:`qeframe.config.specs` and the ``Params`` model of every plugin that a
distribution provides are rendered as Markdown tables (key, type, default, constraints,
description); the templates and inheritance section is :data:`qeframe.config.templates.REFERENCE`.
``tests/config/test_reference.py`` regenerates the page and fails when the committed copy
is out of date; refresh it with ``qeframe reference --out docs/registry-reference.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from qeframe.config.specs import (
    ComponentRef,
    DatasetSpec,
    EvaluationSpec,
    ExperimentSpec,
    FamilyEntry,
    ModelSpec,
    PredictionSpec,
    RouterSpec,
    SymmetryLoss,
    TrainingSpec,
)
from qeframe.config.templates import REFERENCE as TEMPLATES_REFERENCE
from qeframe.plugin.registry import Registry

FRAME_MODELS: list[tuple[str, type[BaseModel]]] = [
    ("[datasets.NAME]", DatasetSpec),
    ("[[datasets.NAME.families]] (each entry of `families`)", FamilyEntry),
    ("datasets.NAME.labeler", ComponentRef),
    ("[experiments.NAME]", ExperimentSpec),
    ("experiments.NAME.model", ModelSpec),
    ("[experiments.NAME.training]", TrainingSpec),
    ("experiments.NAME.training.symmetries[]", SymmetryLoss),
    ("experiments.NAME.evaluation", EvaluationSpec),
    ("experiments.NAME.router", RouterSpec),
    ("experiments.NAME.prediction", PredictionSpec),
]

KIND_TITLES = {
    "family": ("State families", "datasets.NAME.families[].params (with `family = NAME`)"),
    "labeler": ("Labelers", "datasets.NAME.labeler.params (with `labeler = { name = NAME }`)"),
    "symmetry": ("Symmetries", "experiments.NAME.training.symmetries[].params"),
    "backbone": ("Backbones", "experiments.NAME.model.params (with `backbone = NAME`)"),
    "router": ("Routers", "experiments.NAME.router.params"),
    "baseline": ("Baselines", "experiments.NAME.evaluation.baselines (by name)"),
    "executor": (
        "Executors",
        "qeframe data build NAME --shards N --executor NAME --executor-param KEY=VALUE",
    ),
}


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or repr(annotation)
    for prefix in ("typing.", "pathlib.", "qeframe.config.specs.", "annotated_types."):
        text = text.replace(prefix, "")
    return text.replace("NoneType", "None").replace("|", "\\|")


def _constraints(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "min length")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined:
        if info.default_factory is not None:
            try:
                return f"`{info.default_factory()!r}`"
            except TypeError:
                return "(computed)"
        return "**required**"
    return f"`{info.default!r}`"


def model_table(model: type[BaseModel]) -> str:
    """A Markdown table of a pydantic model's fields."""
    rows = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {_constraints(info)} | {desc} |"
        )
    if len(rows) == 2:
        rows.append("| — | | | | no parameters |")
    return "\n".join(rows)


def registry_reference(registry: Registry, distribution: str = "qeframe") -> str:
    """The Markdown reference of ``registry.toml`` for the plugins of ``distribution``."""
    out = [
        "# `registry.toml` reference",
        "",
        (
            "Generated from the pydantic models by `qeframe reference` — do not edit by hand;"
            " `tests/config/test_reference.py` fails when this page is out of date."
        ),
        (
            "Every table forbids unknown keys; an invalid value is reported with its full key,"
            " e.g. `datasets.NAME.families[2].params.b`."
        ),
        "",
        "## The frame",
        "",
    ]
    for title, model in FRAME_MODELS:
        doc = (model.__doc__ or "").strip().splitlines()
        out += [f"### `{title}`", ""]
        if doc:
            out += [doc[0], ""]
        out += [model_table(model), ""]
    out += [TEMPLATES_REFERENCE.rstrip(), ""]
    out += ["## Plugin parameters", ""]
    for kind, (title, where) in KIND_TITLES.items():
        components = [c for c in registry.components(kind) if c.distribution == distribution]
        if not components:
            continue
        out += [f"### {title}", "", f"Where: `{where}`.", ""]
        for comp in components:
            out += [f"#### {kind} `{comp.name}`", "", comp.description, "", model_table(comp.cls.Params), ""]
    return "\n".join(out).rstrip() + "\n"
