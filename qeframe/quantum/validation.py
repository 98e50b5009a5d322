"""Validation of user-supplied density matrices, with errors that name the check and the index."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qeframe.errors import InvalidDensityMatrixError
from qeframe.quantum.ppt import _not_positive_definite

#: Absolute tolerance of the Hermiticity, trace and positivity checks (matrices of trace 1).
DEFAULT_ATOL = 1e-8


def validate_density_matrices(
    rho: np.ndarray, n_qubits: int | None = None, atol: float = DEFAULT_ATOL
) -> np.ndarray:
    """Check that ``rho`` is a batch of density matrices and return it as ``(N, d, d)`` complex128.

    Checks, in order, each over the whole batch (vectorised):

    1. ``shape``: ``(N, d, d)`` or ``(d, d)`` with ``d = 2**n`` (and ``n == n_qubits`` if given), N >= 1;
    2. ``finite``: no NaN or infinity;
    3. ``hermitian``: ``max |rho - rho^†| <= atol``;
    4. ``trace``: ``|tr rho - 1| <= atol``;
    5. ``psd``: smallest eigenvalue of the Hermitian part ``>= -atol`` (tested for the whole batch
       with the batched Cholesky of :mod:`qeframe.quantum.ppt`, which answers
       ``lambda_min < -atol`` exactly up to rounding; the eigenvalue in the message comes from
       ``eigvalsh`` of the offending matrix).

    Raises :class:`~qeframe.errors.InvalidDensityMatrixError` whose ``check`` and ``index`` (the
    first offending matrix) are set and whose message names both.
    """
    arr = np.asarray(rho)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[0] == 0:
        raise InvalidDensityMatrixError(
            "shape", f"shape check failed: expected (N, 2**n, 2**n) with N >= 1, got {np.shape(rho)}"
        )
    d = arr.shape[1]
    n = d.bit_length() - 1
    if d < 2 or 2**n != d:
        raise InvalidDensityMatrixError("shape", f"shape check failed: matrix size {d} is not 2**n")
    if n_qubits is not None and n != n_qubits:
        raise InvalidDensityMatrixError(
            "shape",
            f"shape check failed: {d}x{d} matrices are {n} qubits, expected {n_qubits} ({2**n_qubits}x{2**n_qubits})",
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidDensityMatrixError("shape", f"shape check failed: dtype {arr.dtype} is not numeric")
    arr = arr.astype(np.complex128, copy=False)

    def fail(check: str, bad: np.ndarray, detail: Callable[[int], str]) -> None:
        index = int(np.flatnonzero(bad)[0])
        raise InvalidDensityMatrixError(
            check, f"{check} check failed for matrix {index}: {detail(index)}", index
        )

    finite = np.isfinite(arr).all(axis=(1, 2))
    if not finite.all():
        fail("finite", ~finite, lambda i: "contains NaN or infinity")
    herm = np.abs(arr - arr.conj().transpose(0, 2, 1)).max(axis=(1, 2))
    if (herm > atol).any():
        fail("hermitian", herm > atol, lambda i: f"max |rho - rho^dagger| = {herm[i]:.3g} > {atol:g}")
    trace = np.trace(arr, axis1=1, axis2=2)
    bad_trace = np.abs(trace - 1.0) > atol
    if bad_trace.any():
        fail("trace", bad_trace, lambda i: f"trace = {trace[i]:.6g}, expected 1 within {atol:g}")
    herm_part = 0.5 * (arr + arr.conj().transpose(0, 2, 1))
    not_psd = _not_positive_definite(herm_part, atol)  # lambda_min(herm_part) < -atol
    if not_psd.any():
        fail(
            "psd",
            not_psd,
            lambda i: f"smallest eigenvalue {np.linalg.eigvalsh(herm_part[i])[0]:.3g} < -{atol:g}",
        )
    return arr
