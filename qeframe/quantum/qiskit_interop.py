"""The one place that converts between qeframe arrays and qiskit objects.

Qubit-order convention
----------------------
qeframe is **big-endian** (textbook order): qubit 1 (0-based index 0) is the *leftmost* Kronecker
factor, so the basis index of ``|b_0 b_1 ... b_{n-1}>`` is ``i = sum_k b_k 2**(n-1-k)``.
qiskit is **little-endian**: its qubit 0 is the *rightmost* factor, ``i_qiskit = sum_k b_k 2**k``.

The mapping used everywhere is **qeframe qubit k (0-based) <-> qiskit qubit k**: the same qubit
*labels*, so that a circuit written for qiskit qubit ``k`` acts on qeframe qubit ``k`` (qubit
``k+1`` in cut names). The Kronecker order is therefore reversed on conversion: the matrix handed
to qiskit is the qubit-reversed one, and basis index ``i`` here is the bit-reversal of index ``i``
there. For example ``qc.x(0)`` on ``|000>`` gives qiskit index 1 and qeframe index
``1 << (n-1) = 4`` (qubit 1 set, ``|100>``). Partial traces, partial transposes and qubit
permutations then correspond qubit by qubit: ``partial_trace(rho, keep=[0])`` here equals
``qiskit.quantum_info.partial_trace(to_qiskit(rho), [1, 2])`` (traced qubits 1, 2).

Conversions copy; the batch helpers loop over the (Python) qiskit objects, which is fine at this
boundary — the numerics themselves stay batched in :mod:`qeframe.quantum.ops`.

Example::

    >>> from qiskit import QuantumCircuit
    >>> from qeframe.quantum.qiskit_interop import from_qiskit
    >>> qc = QuantumCircuit(3); _ = qc.h(0); _ = qc.cx(0, 1); _ = qc.cx(1, 2)
    >>> psi = from_qiskit(qc)                 # GHZ: (|000> + |111>)/sqrt(2), shape (8,)
    >>> psi.round(3).real.tolist()
    [0.707, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.707]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.exceptions import QiskitError
from qiskit.quantum_info import DensityMatrix, Statevector

from qeframe.errors import QeframeError
from qeframe.quantum.ops import num_qubits

__all__ = [
    "from_qiskit",
    "from_qiskit_batch",
    "reverse_qubit_order",
    "to_qiskit",
    "to_qiskit_batch",
    "to_qiskit_statevector",
]


def reverse_qubit_order(a: np.ndarray, *, matrix: bool) -> np.ndarray:
    """Reverse the Kronecker order of the qubits (big-endian <-> little-endian).

    ``a``: state vectors ``(..., 2**n)`` (``matrix=False``) or matrices ``(..., 2**n, 2**n)``
    (``matrix=True``), any leading batch axes. Returns a new contiguous array of the same shape
    and dtype with ``out[..., rev(i), rev(j)] = a[..., i, j]``, ``rev`` reversing the ``n`` bits of
    a basis index. The map is its own inverse.
    """
    a = np.asarray(a)
    n_axes = 2 if matrix else 1
    if a.ndim < n_axes or (matrix and a.shape[-1] != a.shape[-2]):
        raise ValueError(f"expected {'(..., d, d)' if matrix else '(..., d)'} arrays, got shape {a.shape}")
    d = a.shape[-1]
    n = num_qubits(d)
    lead = a.shape[: a.ndim - n_axes]
    t = a.reshape(lead + (2,) * (n * n_axes))
    k = len(lead)
    axes = list(range(k))
    for block in range(n_axes):  # reverse the qubit axes of the row index (and column index)
        axes += [k + block * n + q for q in reversed(range(n))]
    return np.ascontiguousarray(t.transpose(axes).reshape(a.shape))


def to_qiskit(rho: np.ndarray) -> DensityMatrix:
    """One big-endian density matrix ``(2**n, 2**n)`` -> :class:`qiskit.quantum_info.DensityMatrix`
    acting on qiskit qubits ``0..n-1`` (qeframe qubit k = qiskit qubit k)."""
    rho = np.asarray(rho)
    if rho.ndim != 2:
        raise ValueError(f"to_qiskit takes one (d, d) matrix, got shape {rho.shape}; use to_qiskit_batch")
    return DensityMatrix(reverse_qubit_order(rho.astype(np.complex128, copy=False), matrix=True))


def to_qiskit_statevector(psi: np.ndarray) -> Statevector:
    """One big-endian state vector ``(2**n,)`` -> :class:`qiskit.quantum_info.Statevector`."""
    psi = np.asarray(psi)
    if psi.ndim != 1:
        raise ValueError(f"to_qiskit_statevector takes one (d,) vector, got shape {psi.shape}")
    return Statevector(reverse_qubit_order(psi.astype(np.complex128, copy=False), matrix=False))


def _simulate(circuit: QuantumCircuit, density: bool) -> Statevector | DensityMatrix:
    """Simulate ``circuit`` from ``|0...0>``; final measurements are dropped first."""
    if circuit.num_clbits:
        circuit = circuit.remove_final_measurements(inplace=False)
    if not density and any(inst.operation.name == "reset" for inst in circuit.data):
        # qiskit's Statevector applies a reset by *sampling* an outcome; refuse rather than guess
        raise QeframeError(
            f"circuit {circuit.name!r} contains a reset, which gives a mixed state; use density=True"
        )
    try:
        return DensityMatrix(circuit) if density else Statevector(circuit)
    except QiskitError as exc:  # mid-circuit measurements, classical control, ...
        hint = "" if density else " (circuits with resets need density=True)"
        raise QeframeError(f"cannot simulate circuit {circuit.name!r}: {exc}{hint}") from None


def from_qiskit(obj: DensityMatrix | Statevector | QuantumCircuit, *, density: bool = False) -> np.ndarray:
    """A qiskit state or circuit -> big-endian numpy ``complex128``.

    * :class:`~qiskit.quantum_info.DensityMatrix` -> ``(2**n, 2**n)`` matrix;
    * :class:`~qiskit.quantum_info.Statevector` -> ``(2**n,)`` vector;
    * :class:`~qiskit.QuantumCircuit` -> simulated from ``|0...0>`` (final measurements
      removed): a ``(2**n,)`` vector, or with ``density=True`` (needed for circuits with resets)
      a ``(2**n, 2**n)`` matrix.

    With ``density=True`` the result is always a density matrix (``|psi><psi|`` for pure input).
    Only qubit systems are accepted.
    """
    if isinstance(obj, QuantumCircuit):
        obj = _simulate(obj, density)
    if isinstance(obj, (DensityMatrix, Statevector)):
        if any(dim != 2 for dim in obj.dims()):
            raise QeframeError(f"only qubit states can be converted, got subsystem dimensions {obj.dims()}")
        data = np.asarray(obj.data, dtype=np.complex128)
        if isinstance(obj, DensityMatrix):
            return reverse_qubit_order(data, matrix=True)
        psi = reverse_qubit_order(data, matrix=False)
        return np.outer(psi, psi.conj()) if density else psi
    raise QeframeError(
        f"cannot convert {type(obj).__name__} from qiskit; expected DensityMatrix, Statevector or QuantumCircuit"
    )


def to_qiskit_batch(a: np.ndarray) -> list[DensityMatrix] | list[Statevector]:
    """A batch -> list of qiskit objects: ``(N, d, d)`` -> ``DensityMatrix`` list,
    ``(N, d)`` -> ``Statevector`` list (a 2-D array is read as N vectors)."""
    a = np.asarray(a)
    if a.ndim == 3:
        rev = reverse_qubit_order(a.astype(np.complex128, copy=False), matrix=True)
        return [DensityMatrix(m) for m in rev]
    if a.ndim == 2:
        rev = reverse_qubit_order(a.astype(np.complex128, copy=False), matrix=False)
        return [Statevector(v) for v in rev]
    raise ValueError(f"expected (N, d, d) density matrices or (N, d) state vectors, got shape {a.shape}")


def from_qiskit_batch(
    objs: Iterable[DensityMatrix | Statevector | QuantumCircuit] | Sequence[Any], *, density: bool = False
) -> np.ndarray:
    """:func:`from_qiskit` on every object, stacked: ``(N, d)`` vectors or ``(N, d, d)`` matrices.

    All results must have the same shape (mix states and density matrices with ``density=True``).
    """
    arrays = [from_qiskit(o, density=density) for o in objs]
    if not arrays:
        raise QeframeError("from_qiskit_batch got no objects")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise QeframeError(
            f"from_qiskit_batch got objects of different shapes {sorted(shapes)}; "
            "use density=True to mix state vectors and density matrices"
        )
    return np.stack(arrays)
