"""validate_density_matrices: every check, its name, the first offending index, and the message."""

from __future__ import annotations

import numpy as np
import pytest

from qeframe.errors import InvalidDensityMatrixError, QeframeError
from qeframe.quantum.random import haar_state
from qeframe.quantum.validation import DEFAULT_ATOL, validate_density_matrices


def valid_batch(n: int = 3, count: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = 2**n
    psi = haar_state(d, count * 3, rng).reshape(count, 3, d)
    w = rng.dirichlet(np.ones(3), size=count)
    return np.einsum("nk,nki,nkj->nij", w, psi, psi.conj())


def expect_error(rho, check: str, index: int | None, **kwargs) -> InvalidDensityMatrixError:
    with pytest.raises(InvalidDensityMatrixError) as info:
        validate_density_matrices(rho, **kwargs)
    err = info.value
    assert isinstance(err, QeframeError) and isinstance(err, ValueError)
    assert err.check == check
    assert err.index == index
    message = str(err)
    assert "\n" not in message
    assert check in message
    if index is not None:
        assert f"matrix {index}" in message
    return err


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_valid_batch_passes_as_complex128(n):
    rho = valid_batch(n)
    out = validate_density_matrices(rho, n_qubits=n)
    assert out.dtype == np.complex128 and out.shape == rho.shape
    np.testing.assert_array_equal(out, rho)


def test_single_matrix_and_real_input_are_accepted():
    out = validate_density_matrices(np.eye(4) / 4)
    assert out.shape == (1, 4, 4) and out.dtype == np.complex128
    out = validate_density_matrices(np.eye(8, dtype=np.float32)[None] / 8)
    assert out.dtype == np.complex128
    # a pure state (eigenvalues exactly 0) and a PSD matrix within atol pass
    psi = haar_state(8, 1, np.random.default_rng(1))[0]
    validate_density_matrices(np.outer(psi, psi.conj()))


@pytest.mark.parametrize(
    "shape",
    [(4,), (2, 4, 4, 4), (3, 4, 2), (0, 4, 4), (2, 3, 3), (1, 1, 1), (6, 6), (12, 12)],
)
def test_wrong_shapes(shape):
    expect_error(np.zeros(shape, dtype=complex), "shape", None)


def test_wrong_n_qubits_names_both_sizes():
    err = expect_error(valid_batch(2), "shape", None, n_qubits=3)
    assert "2 qubits" in str(err) and "expected 3" in str(err)


def test_non_numeric_dtype():
    expect_error(np.full((1, 2, 2), "x"), "shape", None)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, complex(0, np.nan)])
def test_not_finite(value):
    rho = valid_batch()
    rho[4, 1, 2] = value
    rho[5, 0, 0] = value
    expect_error(rho, "finite", 4)


def test_not_hermitian():
    rho = valid_batch()
    rho[2, 0, 1] += 1e-3
    rho[3, 1, 0] += 0.1j
    err = expect_error(rho, "hermitian", 2)
    assert "0.001" in str(err)


def test_hermiticity_within_atol_passes():
    rho = valid_batch()
    rho[2, 0, 1] += 0.5 * DEFAULT_ATOL
    validate_density_matrices(rho)


@pytest.mark.parametrize("trace", [0.5, 1.001, 1 + 1e-6])
def test_trace_not_one(trace):
    rho = valid_batch()
    rho[1] *= trace
    rho[3] *= 2
    err = expect_error(rho, "trace", 1)
    assert "trace" in str(err)


def test_trace_with_imaginary_part():
    rho = valid_batch()
    rho[0, 0, 0] += 1e-3j  # also not Hermitian: the Hermiticity check comes first
    expect_error(rho, "hermitian", 0)


def test_negative_eigenvalue():
    rng = np.random.default_rng(3)
    rho = valid_batch(count=10)
    # trace 1, Hermitian, but one eigenvalue -0.01 (matrix 6) / -0.2 (matrix 8)
    for i, neg in ((6, -0.01), (8, -0.2)):
        u = np.linalg.qr(rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8)))[0]
        lam = np.full(8, (1 - neg) / 7)
        lam[0] = neg
        rho[i] = (u * lam) @ u.conj().T
    err = expect_error(rho, "psd", 6)
    assert "-0.01" in str(err)


def test_negative_eigenvalue_within_atol_passes():
    lam = np.array([-0.5 * DEFAULT_ATOL, 0.25, 0.25, 0.5 + 0.5 * DEFAULT_ATOL])
    validate_density_matrices(np.diag(lam)[None])
    lam = np.array([-10 * DEFAULT_ATOL, 0.25, 0.25, 0.5 + 10 * DEFAULT_ATOL])
    expect_error(np.diag(lam)[None], "psd", 0)


def test_checks_run_in_order():
    """A batch failing several checks reports the first check in the documented order."""
    rho = valid_batch(count=4)
    rho[3, 0, 0] = np.nan  # finite
    rho[0] *= 2  # trace
    rho[1, 0, 1] += 1  # hermitian
    expect_error(rho, "finite", 3)
    rho[3, 0, 0] = 0.1
    expect_error(rho, "hermitian", 1)


def test_custom_atol():
    rho = valid_batch()
    rho[0] *= 1 + 1e-5
    expect_error(rho, "trace", 0)
    validate_density_matrices(rho, atol=1e-4)
