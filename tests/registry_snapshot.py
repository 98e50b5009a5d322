"""The identity of every dataset and experiment of a ``registry.toml``, as JSON: the fixture
``tests/fixtures/registry_hashes.json`` that ``tests/config/test_templates.py`` compares the
repository's registry against.

For each dataset: its spec hash (:meth:`qeframe.config.specs.DatasetSpec.spec_hash`, the hash a store's
manifest records) and its validated spec (``model_dump(mode="json")``). For each experiment: its
spec hash as runs recorded it before store format 3 (:func:`qeframe.learn.runs.experiment_spec_hash`
with ``legacy=True``, which takes the datasets' spec hashes; from format 3 a run's hash takes their
identity hashes, free text left out) and its validated spec. The fixture was written from the registry.toml of main
before templates were introduced (commit 6870e3d), so the test proves that the rewrite with
``extends`` / ``scale`` / ``override`` / ``append`` changed no store and no run::

    .venv/bin/python tests/registry_snapshot.py registry.toml > tests/fixtures/registry_hashes.json

Rewrite the fixture only on purpose (a dataset or experiment that is meant to change, or a new
hash rule); the diff then shows which entries changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from qeframe.config.specs import RegistryFile, load_registry_file
from qeframe.learn.runs import experiment_spec_hash


def registry_snapshot(registry_file: RegistryFile) -> dict[str, Any]:
    """``{"datasets": {name: {"spec_hash", "spec"}}, "experiments": {name: {"spec_hash", "spec"}}}``."""
    datasets = registry_file.datasets
    return {
        "datasets": {
            name: {"spec_hash": spec.spec_hash(), "spec": spec.model_dump(mode="json")}
            for name, spec in sorted(datasets.items())
        },
        "experiments": {
            name: {"spec_hash": experiment_spec_hash(exp, datasets, legacy=True), "spec": exp.model_dump(mode="json")}
            for name, exp in sorted(registry_file.experiments.items())
        },
    }


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else Path("registry.toml")
    json.dump(registry_snapshot(load_registry_file(path)), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
