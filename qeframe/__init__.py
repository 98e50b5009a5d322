"""qeframe: a plugin framework for learning to detect per-bipartition quantum entanglement.

Conventions shared by every part of qeframe (see ``docs/concepts.md``):

* Qubit order is big-endian (textbook): qubit 1 is the leftmost Kronecker factor. qiskit is
  little-endian; :mod:`qeframe.quantum.qiskit_interop` is the one place that converts.
* Cuts (bipartitions) are ordered by :func:`qeframe.quantum.cuts.bipartitions` and named with the
  smaller side first: ``1|23``, ``2|13``, ``3|12`` for three qubits.
* Labels are int8 per cut: 1 entangled, 0 separable, -1 unknown, each with a provenance code.

The notebook API: ``qeframe.load(run_or_pretrained_name)`` returns a :class:`~qeframe.detector.Detector`
whose ``predict(states)`` answers per cut; ``qeframe.run_experiment(name)`` and
``qeframe.run_many(names, jobs=N)`` train, evaluate and write run folders as ``qeframe run`` does
(``docs/python-api.md``). These names are imported on first use (PEP 562), so ``import qeframe``
stays as light as the ``hookimpl`` marker needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from qeframe.detector import DetectionResult, Detector, load
    from qeframe.experiment import run_experiment, run_many

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("qeframe")

#: Public names imported from their module on first access: name -> module.
_LAZY = {
    "load": "detector",
    "Detector": "detector",
    "DetectionResult": "detector",
    "run_experiment": "experiment",
    "run_many": "experiment",
}

__all__ = ["DetectionResult", "Detector", "__version__", "hookimpl", "load", "run_experiment", "run_many"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qeframe' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
