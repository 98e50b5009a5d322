"""qeframe: a plugin framework for learning to detect per-bipartition quantum entanglement.

Conventions shared by every part of qeframe (see ``docs/concepts.md``):

* Qubit order is big-endian (textbook): qubit 1 is the leftmost Kronecker factor. qiskit is
  little-endian; :mod:`qeframe.quantum.qiskit_interop` is the one place that converts.
* Cuts (bipartitions) are ordered by :func:`qeframe.quantum.cuts.bipartitions` and named with the
  smaller side first: ``1|23``, ``2|13``, ``3|12`` for three qubits.
* Labels are int8 per cut: 1 entangled, 0 separable, -1 unknown, each with a provenance code.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("qeframe")

__all__ = ["__version__", "hookimpl"]
