"""Templates and inheritance in ``registry.toml``, expanded into plain entries before validation.

Configuration is data: TOML -> dict -> :func:`expand_registry` -> pydantic models
(:func:`qeframe.config.specs.parse_registry`). The expansion only rewrites dicts, and what it returns is
what the file would say with every entry written out in full. A dataset's spec hash (so its store,
and every run trained on it) therefore does not depend on whether its entry uses templates.

The keys, in the order they act on an entry (:data:`REFERENCE` is the user documentation; it is
rendered into ``docs/registry-reference.md``):

``extends = "NAME"``
    start from the expanded entry ``NAME`` of the same kind: a template
    (``[templates.datasets.NAME]``, ``[templates.experiments.NAME]``: partial entries that are
    never built, listed or validated on their own) or another entry. The entry's own keys are
    merged on top: tables key by key, recursively; arrays and all other values are replaced.
``{ include = "NAME", scale = ... }`` (an item of ``families`` or ``families_extra``)
    the expanded ``families`` of dataset or template ``NAME``, optionally scaled.
``scale`` (datasets)
    multiplies every family ``count`` (inherited or written): ``count * scale`` rounded to the
    nearest integer, halves up, in exact rational arithmetic (:func:`scale_count`).
``override.TAG = { ... }`` (datasets)
    merged into the family entry whose tag (or, without a tag, family name) is ``TAG``, after
    ``scale``: a ``count`` written here is taken as written.
``families_extra = [ ... ]`` (datasets)
    family entries appended last (neither scaled nor overridden by this entry).

Every error is a :class:`~qeframe.errors.SpecError` of one line that names the key path, e.g.
``datasets.quickstart-test-pure.extends: unknown dataset or template 'paper-test-pur'
(did you mean 'paper-test-pure'?); defined: ...``.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Collection, Mapping
from fractions import Fraction
from typing import Any

from qeframe.errors import SpecError

#: the kinds of entries, as top-level tables of ``registry.toml`` and of ``[templates]``
KINDS = ("datasets", "experiments")
#: keys consumed by the expansion (never seen by pydantic), per kind
EXPANSION_KEYS: dict[str, tuple[str, ...]] = {
    "datasets": ("extends", "scale", "override", "families_extra"),
    "experiments": ("extends",),
}
#: keys of a ``{ include = NAME }`` item of ``families`` / ``families_extra``
INCLUDE_KEYS = ("include", "scale")

_SINGULAR = {"datasets": "dataset", "experiments": "experiment"}

REFERENCE = """\
## Templates and inheritance

Entries can inherit from other entries and from templates, so a family list or a training block
is written once. The expansion happens before validation and produces exactly the entries one
would write out in full: a dataset's spec hash (and so its store and every run trained on it)
is the same whichever way its entry is written. Store manifests and run folders record the
expanded specs; `load_registry_file("registry.toml").dataset("NAME").model_dump()` (in
`qeframe.config.specs`) shows one.

| key | where | meaning |
|---|---|---|
| `[templates.datasets.NAME]`, `[templates.experiments.NAME]` | top level | a partial entry to extend; never built, listed or validated on its own; names differ from entry names |
| `extends = "NAME"` | any dataset, experiment or template | start from the expanded entry `NAME` of the same kind (template or entry); this entry's keys are merged on top: tables key by key (recursively, `params` included), arrays and other values replaced |
| `scale = 0.05` or `scale = "1/28"` | dataset | multiply every family `count` (inherited or written) by the factor: `count * scale` rounded to the nearest integer, halves up, in exact rational arithmetic (a number counts as the decimal it is written as: `0.1` is exactly 1/10); a count that would round to 0 is an error |
| `override.TAG = { ... }` | dataset | merge these family keys (`family`, `count`, `tag`, `params`) into the family whose `tag` (or, without a tag, family name) is `TAG`; applied after `scale`, so a `count` here is taken as written |
| `families_extra = [ ... ]` | dataset | family entries appended after all others, neither scaled nor overridden |
| `{ include = "NAME", scale = ... }` | an item of `families` or `families_extra` | the expanded `families` of dataset or template `NAME`, optionally scaled (same rounding) |

Order for one entry: `extends` -> own keys merged -> `scale` -> `override` -> `families_extra`. A
scale acts on the counts as inherited, so to take 1/28 of Table I extend the unscaled template,
not an already-scaled set (rounding twice can differ by one). An entry cannot delete an inherited
key; extend a template that lacks it. A short entry can be one line of a `[datasets]` or
`[experiments]` table (`NAME = { extends = "...", seed = 7 }`, as in `registry.toml`); TOML
allows each of these two tables once per file. Errors are one line naming the key path, e.g.
`datasets.quickstart-test-pure.extends: unknown dataset or template 'paper-test-pur' (did you mean
'paper-test-pure'?); defined: ...`, `datasets.a.extends: cycle a -> b -> a`,
`datasets.x.scale: expected a positive number or a fraction like "1/28", got -1`.

### How to add a dataset or an experiment

A test set twin at 1/20 of an existing one, with its own seed (give every dataset its own seed:
the same families under the same seed draw the same states):

```toml
[datasets.quickstart-test-upb]
extends = "paper-test-upb"   # labeler, split, families, description from there
scale = "1/20"               # 10000 -> 500 states
seed = 113
```

A training set from the Table I template, with one family changed and one appended:

```toml
[datasets.my-train]
extends = "table-i"          # [templates.datasets.table-i] in registry.toml
scale = 0.01
seed = 9001
labeler = "verified"
description = "Table I at 1/100, verified labels, plus 500 Horodecki states"
override.mixed-entangled-eq7.params.keep = "npt_all"
families_extra = [
  { family = "horodecki", count = 500, tag = "horodecki", params = { local_randomize = true } },
]
```

An experiment that differs from `quickstart` in the model's parameters and the training length,
trained on the set above:

```toml
[experiments.my-quickstart-wide]
extends = "quickstart"
train = "my-train"
description = "quickstart's Siamese CNN at the paper's width, 5 epochs, on my-train"
model.params.ratio = 16.0        # merged: the backbone stays "cnn", batch norm stays on
training.epochs = 5              # merged: lr, batch size, symmetries stay
```

`qeframe data build my-train` builds the set and `qeframe run my-quickstart-wide` trains on it.
"""


def scale_count(count: int, factor: Fraction) -> int:
    """``count * factor`` rounded to the nearest integer, halves up (exact: no float rounding)."""
    return math.floor(count * factor + Fraction(1, 2))


def parse_scale(key: str, value: Any) -> Fraction:
    """A positive scale factor as an exact fraction: an integer, a float read as the decimal it is
    written as (``0.1`` is 1/10, not the binary double nearest to it), or a string ``"p/q"`` or
    ``"0.05"``. ``key`` is the key path named in the error."""
    factor: Fraction | None = None
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            factor = Fraction(value)
        elif isinstance(value, float) and math.isfinite(value):
            factor = Fraction(repr(value))
        elif isinstance(value, str):
            factor = Fraction(value.strip())  # "1/28", "0.05", "3"; "inf", "nan", "1/0" raise
    except (ValueError, ZeroDivisionError):
        factor = None
    if factor is None or factor <= 0:
        raise SpecError(f'{key}: expected a positive number or a fraction like "1/28", got {value!r}')
    return factor


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: tables merge key by key, recursively; any other value of ``top``
    (array, string, number, a table over a non-table) replaces the inherited one. Inputs are
    not modified."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_registry(data: Any, fields: Mapping[str, Collection[str]]) -> Any:
    """``registry.toml`` data with every template key resolved and ``[templates]`` removed.

    ``fields`` names the keys a plain entry may have: ``fields["datasets"]``,
    ``fields["experiments"]`` and ``fields["families"]`` (the pydantic fields of the dataset,
    experiment and family-entry models); an entry with another key is an error that lists the
    allowed ones. Entries come out in file order. Data that is not shaped like a registry (a
    non-table where a table belongs) is passed on for pydantic to report, except where the
    expansion needs it (a target of ``extends``).
    """
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    templates = out.pop("templates", {})
    if not isinstance(templates, Mapping):
        raise SpecError(
            "templates: expected a table of [templates.datasets.NAME] / [templates.experiments.NAME]"
        )
    for key in templates:
        if key not in KINDS:
            raise SpecError(f"templates.{key}: unknown key; allowed: {', '.join(KINDS)}")
    for kind in KINDS:
        kind_templates = templates.get(kind, {})
        if not isinstance(kind_templates, Mapping):
            raise SpecError(f"templates.{kind}: expected a table of [templates.{kind}.NAME] entries")
        entries = out.get(kind, {})
        if not isinstance(entries, Mapping):
            continue  # pydantic names the key
        expander = _Expander(kind, entries, kind_templates, fields)
        for name in kind_templates:  # errors in unused templates surface too
            expander.resolve((True, name))
        if kind in out:
            out[kind] = {
                name: expander.resolve((False, name)) if isinstance(entry, Mapping) else entry
                for name, entry in entries.items()
            }
    return out


class _Expander:
    """Resolves the entries and templates of one kind, each once, with cycle detection.

    An entry is addressed by ``(is_template, name)``; templates and entries share no names.
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, Any],
        templates: Mapping[str, Any],
        fields: Mapping[str, Collection[str]],
    ):
        self.kind = kind
        self.singular = _SINGULAR[kind]
        self.entries = entries
        self.templates = templates
        self.allowed = sorted({*fields[kind], *EXPANSION_KEYS[kind]})
        self.family_fields = sorted(fields["families"])
        self.done: dict[tuple[bool, str], dict[str, Any]] = {}
        self.stack: list[tuple[bool, str]] = []
        for name in templates:
            if name in entries:
                raise SpecError(
                    f"templates.{kind}.{name}: a {self.singular} has the same name; give the template "
                    "its own name so that `extends` is unambiguous"
                )

    def path(self, key: tuple[bool, str]) -> str:
        template, name = key
        return f"templates.{self.kind}.{name}" if template else f"{self.kind}.{name}"

    # ------------------------------------------------------------------ references

    def follow(self, where: str, target: Any) -> dict[str, Any]:
        """The expanded entry that ``target`` (written at key path ``where``) names."""
        if not isinstance(target, str):
            raise SpecError(f"{where}: expected the name of a {self.singular} or template, got {target!r}")
        if target in self.templates:
            key = (True, target)
        elif target in self.entries:
            key = (False, target)
        else:
            names = sorted({*self.entries, *self.templates})
            close = difflib.get_close_matches(target, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                f"{where}: unknown {self.singular} or template {target!r}{hint}; "
                f"defined: {', '.join(names) or 'none'}"
            )
        if key in self.stack:
            cycle = [name for _, name in self.stack[self.stack.index(key) :]] + [target]
            raise SpecError(f"{where}: cycle {' -> '.join(cycle)}")
        return self.resolve(key)

    def resolve(self, key: tuple[bool, str]) -> dict[str, Any]:
        """The expanded entry ``key``; computed once."""
        if key in self.done:
            return self.done[key]
        path = self.path(key)
        raw = (self.templates if key[0] else self.entries)[key[1]]
        if not isinstance(raw, Mapping):
            raise SpecError(f"{path}: expected a table")
        for name in raw:
            if name not in self.allowed:
                raise SpecError(f"{path}.{name}: unknown key; allowed: {', '.join(self.allowed)}")
        self.stack.append(key)
        try:
            base = self.follow(f"{path}.extends", raw["extends"]) if "extends" in raw else {}
            own = {k: v for k, v in raw.items() if k not in EXPANSION_KEYS[self.kind]}
            if "families" in own:
                own["families"] = self.families(f"{path}.families", own["families"])
            entry = merge(base, own)
            if self.kind == "datasets":
                self.dataset_keys(path, raw, entry)
        finally:
            self.stack.pop()
        self.done[key] = entry
        return entry

    # ------------------------------------------------------------------ dataset keys

    def families(self, where: str, items: Any) -> Any:
        """A ``families`` array with every ``{ include = NAME }`` item replaced by NAME's families."""
        if not isinstance(items, list):
            return items  # pydantic names the key
        out: list[Any] = []
        for i, item in enumerate(items):
            if not (isinstance(item, Mapping) and "include" in item):
                out.append(copy.deepcopy(item))
                continue
            for name in item:
                if name not in INCLUDE_KEYS:
                    raise SpecError(f"{where}[{i}].{name}: unknown key; allowed: {', '.join(INCLUDE_KEYS)}")
            source = self.follow(f"{where}[{i}].include", item["include"])
            included = source.get("families")
            if not isinstance(included, list):
                raise SpecError(f"{where}[{i}].include: {item['include']!r} has no families")
            included = copy.deepcopy(included)
            if "scale" in item:
                scaled = self.scale(f"{where}[{i}].scale", item["scale"], included)
                self.check_counts(f"{where}[{i}].scale", item["scale"], included, scaled)
            out.extend(included)
        return out

    @staticmethod
    def scale(where: str, value: Any, families: list[Any]) -> list[int]:
        """Scale the positive integer counts of ``families`` in place; the indices scaled (any
        other count is left for pydantic to report)."""
        factor = parse_scale(where, value)
        scaled = []
        for i, family in enumerate(families):
            count = family.get("count") if isinstance(family, Mapping) else None
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                family["count"] = scale_count(count, factor)
                scaled.append(i)
        return scaled

    @staticmethod
    def check_counts(where: str, value: Any, families: list[Any], scaled: list[int]) -> None:
        """No count that ``scale`` (written at ``where``) produced may be 0."""
        for i in scaled:
            family = families[i]
            if family["count"] < 1:
                label = family.get("tag") or family.get("family")
                raise SpecError(
                    f"{where}: {value!r} leaves {label!r} (families[{i}]) with 0 states; "
                    f"use a larger scale or set its count with override.{label}.count"
                )

    def dataset_keys(self, path: str, raw: Mapping[str, Any], entry: dict[str, Any]) -> None:
        """Apply ``scale``, ``override`` and ``families_extra`` of ``raw`` to ``entry`` in place."""
        families = entry.get("families")
        scaled: list[int] = []
        if "scale" in raw:
            if not isinstance(families, list):
                raise SpecError(f"{path}.scale: the entry has no families to scale")
            scaled = self.scale(f"{path}.scale", raw["scale"], families)
        if "override" in raw:
            if not isinstance(families, list):
                raise SpecError(f"{path}.override: the entry has no families to override")
            recounted = self.override(f"{path}.override", raw["override"], families)
            scaled = [i for i in scaled if i not in recounted]
        if scaled:
            self.check_counts(f"{path}.scale", raw["scale"], families, scaled)
        if "families_extra" in raw:
            extra = raw["families_extra"]
            if not isinstance(extra, list):
                raise SpecError(f"{path}.families_extra: expected an array of family entries")
            if families is None:
                families = entry["families"] = []
            elif not isinstance(families, list):
                raise SpecError(
                    f"{path}.families_extra: `families` is not an array, so nothing can be appended"
                )
            families.extend(self.families(f"{path}.families_extra", extra))

    def override(self, where: str, table: Any, families: list[Any]) -> set[int]:
        """Merge ``override.TAG`` tables into the families with that label; the indices whose
        ``count`` an override set."""
        if not isinstance(table, Mapping):
            raise SpecError(f"{where}: expected a table: override.TAG = {{ key = value, ... }}")
        labels = [(f.get("tag") or f.get("family")) if isinstance(f, Mapping) else None for f in families]
        known = [str(label) for label in labels if label is not None]
        recounted = set()
        for tag, changes in table.items():
            hits = [i for i, label in enumerate(labels) if label == tag]
            if not hits:
                close = difflib.get_close_matches(tag, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SpecError(f"{where}.{tag}: no family has this tag{hint}; tags: {', '.join(known)}")
            if len(hits) > 1:
                raise SpecError(
                    f"{where}.{tag}: {len(hits)} families have this tag (families{hits}); give them distinct tags"
                )
            if not isinstance(changes, Mapping):
                raise SpecError(
                    f"{where}.{tag}: expected a table of family keys ({', '.join(self.family_fields)})"
                )
            for name in changes:
                if name not in self.family_fields:
                    raise SpecError(
                        f"{where}.{tag}.{name}: unknown key; allowed: {', '.join(self.family_fields)}"
                    )
            families[hits[0]] = merge(families[hits[0]], changes)
            if "count" in changes:
                recounted.add(hits[0])
        return recounted
