"""qeframe.quantum.torch_ops against the numpy reference implementations (and qiskit, closed forms)."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qeframe.quantum import cuts, ops, ppt
from qeframe.quantum import random as nprandom
from qeframe.quantum import torch_ops as T

NS = (2, 3, 4)
DTYPES = (torch.complex64, torch.complex128)
TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def random_mixed(n: int, count: int, rng: np.random.Generator, rank: int = 2) -> np.ndarray:
    """Random density matrices of the given rank (normalised Wishart), complex128 ``(count, d, d)``."""
    d = 2**n
    g = rng.standard_normal((count, d, rank)) + 1j * rng.standard_normal((count, d, rank))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.trace(rho, axis1=1, axis2=2)[:, None, None]


# -------------------------------------------------------------------------- model input


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_input_round_trip(dtype):
    rho = torch.from_numpy(random_mixed(3, 4, np.random.default_rng(0))).to(dtype)
    x = T.to_model_input(rho)
    assert x.shape == (4, 2, 8, 8)
    assert x.dtype == (torch.float32 if dtype == torch.complex64 else torch.float64)
    assert torch.equal(x[:, 0], rho.real) and torch.equal(x[:, 1], rho.imag)
    back = T.from_model_input(x)
    assert back.dtype == dtype and torch.equal(back, rho)


def test_model_input_from_numpy_and_cast():
    rho = random_mixed(2, 3, np.random.default_rng(1))
    x = T.to_model_input(rho, dtype=torch.float32)
    assert x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 1].numpy(), rho.imag, atol=1e-7)
    with pytest.raises(ValueError):
        T.from_model_input(torch.zeros(3, 3, 4, 4))


# -------------------------------------------------------------------------- partial transpose


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_partial_transpose_matches_numpy(n, dtype):
    rng = np.random.default_rng(n)
    rho = random_mixed(n, 5, rng, rank=3)
    t = torch.from_numpy(rho).to(dtype)
    for size in range(n + 1):
        for qubits in [tuple(rng.choice(n, size, replace=False))]:
            got = T.partial_transpose(t, qubits).to(torch.complex128).numpy()
            np.testing.assert_allclose(got, ops.partial_transpose(rho, qubits), atol=TOL[dtype])
    # a single matrix stays unbatched
    single = T.partial_transpose(t[0], [0])
    assert single.shape == (2**n, 2**n)
    np.testing.assert_allclose(
        single.to(torch.complex128).numpy(), ops.partial_transpose(rho[0], [0]), atol=TOL[dtype]
    )


def test_partial_transpose_matches_qiskit():
    from qiskit.quantum_info import DensityMatrix

    rho = random_mixed(3, 1, np.random.default_rng(7), rank=4)[0]
    ours = T.partial_transpose(torch.from_numpy(rho), [0]).numpy()
    # qiskit numbers qubits from the right: our qubit 0 (leftmost factor) is qiskit's qubit 2
    theirs = DensityMatrix(rho).partial_transpose([2]).data
    np.testing.assert_allclose(ours, theirs, atol=1e-14)


@pytest.mark.parametrize("n", NS)
def test_negativities_match_numpy(n):
    rho = random_mixed(n, 6, np.random.default_rng(10 + n), rank=2)
    got = T.negativities(torch.from_numpy(rho)).numpy()
    np.testing.assert_allclose(got, ppt.negativities(rho), atol=1e-12)
    assert T.partial_transposes(torch.from_numpy(rho)).shape == (6, cuts.n_cuts(n), 2**n, 2**n)


def test_partial_transpose_rejects_bad_input():
    with pytest.raises(ValueError):
        T.partial_transpose(torch.zeros(2, 8, 8, dtype=torch.complex64), [3])
    with pytest.raises(ValueError):
        T.partial_transpose(torch.zeros(2, 8, 4, dtype=torch.complex64), [0])


# -------------------------------------------------------------------------- permutations


@pytest.mark.parametrize("n", NS)
def test_basis_permutation_matches_numpy(n):
    perms = nprandom.random_permutations(20, n, np.random.default_rng(n))
    got = T.basis_permutation(torch.from_numpy(perms)).numpy()
    np.testing.assert_array_equal(got, ops.basis_permutation(perms)[..., 0])


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_permute_qubits_per_sample_matches_numpy(n, dtype):
    rng = np.random.default_rng(20 + n)
    rho = random_mixed(n, 12, rng, rank=3)
    perms = nprandom.random_permutations(12, n, rng)
    got = T.permute_qubits(torch.from_numpy(rho).to(dtype), torch.from_numpy(perms))
    assert got.dtype == dtype
    expected = np.stack([ops.permute_qubits(r, p) for r, p in zip(rho, perms)])  # reference per matrix
    np.testing.assert_allclose(got.to(torch.complex128).numpy(), expected, atol=TOL[dtype])
    np.testing.assert_allclose(
        got.to(torch.complex128).numpy(), ops.permute_qubits_batch(rho, perms), atol=TOL[dtype]
    )


def test_permute_qubits_product_state_closed_form():
    rng = np.random.default_rng(3)
    a, b, c = (nprandom.haar_state(2, 1, rng) for _ in range(3))
    abc = ops.pure_density(ops.batch_kron(a, b, c))
    cab = ops.pure_density(ops.batch_kron(c, a, b))
    got = T.permute_qubits(torch.from_numpy(abc), [2, 0, 1])  # one permutation for the whole batch
    np.testing.assert_allclose(got.numpy(), cab, atol=1e-15)


def test_permute_qubits_rejects_non_permutations():
    rho = torch.zeros(2, 8, 8, dtype=torch.complex64)
    with pytest.raises(ValueError):
        T.permute_qubits(rho, torch.tensor([[0, 1, 1], [0, 1, 2]]))
    with pytest.raises(ValueError):
        T.permute_qubits(rho, torch.tensor([[0, 1], [1, 0]]))


@pytest.mark.parametrize("n", (2, 3, 4, 5))
def test_permutation_table(n):
    table, maps = T.permutation_table(n)
    assert table.shape == (math.factorial(n), n) and maps.shape == (math.factorial(n), cuts.n_cuts(n))
    np.testing.assert_array_equal(table.numpy(), np.array(list(permutations(range(n)))))
    np.testing.assert_array_equal(maps.numpy(), np.stack([cuts.cut_index_map(p) for p in table.numpy()]))
    np.testing.assert_array_equal(T.permutation_ranks(table).numpy(), np.arange(math.factorial(n)))
    assert T.permutation_table(n) is T.permutation_table(n, "cpu")  # cached


@pytest.mark.parametrize("n", NS)
def test_cut_index_maps_match_numpy(n):
    perms = nprandom.random_permutations(50, n, np.random.default_rng(30 + n))
    got = T.cut_index_maps(torch.from_numpy(perms))
    assert got.dtype == torch.long
    np.testing.assert_array_equal(got.numpy(), cuts.cut_index_maps(perms))


def test_cut_index_maps_fallback_beyond_table():
    n = T.MAX_TABLE_QUBITS + 1
    perms = nprandom.random_permutations(3, n, np.random.default_rng(0))
    np.testing.assert_array_equal(
        T.cut_index_maps(torch.from_numpy(perms)).numpy(), cuts.cut_index_maps(perms)
    )


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(4)), st.permutations(range(4)))
def test_permutations_and_cut_maps_compose(p1, p2):
    """Permuting by p1 then p2 is permuting by p1[p2]; the cut maps compose the same way."""
    rho = torch.from_numpy(random_mixed(4, 1, np.random.default_rng(0), rank=3))
    p1t, p2t = torch.tensor([p1]), torch.tensor([p2])
    twice = T.permute_qubits(T.permute_qubits(rho, p1t), p2t)
    once = T.permute_qubits(rho, p1t[:, p2t[0]])
    assert torch.equal(twice, once)
    m1, m2, m12 = T.cut_index_maps(p1t)[0], T.cut_index_maps(p2t)[0], T.cut_index_maps(p1t[:, p2t[0]])[0]
    assert torch.equal(m2[m1], m12)


def test_random_permutations_uniform_and_seeded():
    g = torch.Generator().manual_seed(5)
    perms = T.random_permutations(6000, 3, g)
    assert perms.shape == (6000, 3) and perms.dtype == torch.long
    counts = torch.bincount(T.permutation_ranks(perms), minlength=6).numpy()
    chi2 = ((counts - 1000) ** 2 / 1000).sum()
    assert chi2 < 25  # chi-square, 5 degrees of freedom: P(chi2 > 25) ~ 1e-4
    again = T.random_permutations(6000, 3, torch.Generator().manual_seed(5))
    assert torch.equal(perms, again)


# -------------------------------------------------------------------------- random unitaries


def _haar_moments(u: np.ndarray) -> dict[str, float]:
    tr = np.trace(u, axis1=1, axis2=2)
    return {
        "E|tr U|^2": float(np.mean(np.abs(tr) ** 2)),
        "|E tr U|": float(np.abs(np.mean(tr))),
        "|E U_00|": float(np.abs(np.mean(u[:, 0, 0]))),
        "E|U_00|^4": float(np.mean(np.abs(u[:, 0, 0]) ** 4)),
    }


@pytest.mark.parametrize("dim", (2, 4))
@pytest.mark.parametrize("dtype", DTYPES)
def test_haar_unitary(dim, dtype):
    u = T.haar_unitary(dim, 20000, torch.Generator().manual_seed(dim), dtype=dtype)
    assert u.shape == (20000, dim, dim) and u.dtype == dtype
    eye = torch.eye(dim, dtype=dtype)
    assert (u @ u.mH - eye).abs().max() < (1e-5 if dtype == torch.complex64 else 1e-12)
    ours = _haar_moments(u.to(torch.complex128).numpy())
    ref = _haar_moments(nprandom.haar_unitary(dim, 20000, np.random.default_rng(dim)))
    # closed forms for Haar U(d): E|tr U|^2 = 1, E tr U = 0, E U_00 = 0, E|U_00|^4 = 2/(d(d+1))
    exact = {"E|tr U|^2": 1.0, "|E tr U|": 0.0, "|E U_00|": 0.0, "E|U_00|^4": 2 / (dim * (dim + 1))}
    for key, value in exact.items():
        assert abs(ours[key] - value) < 0.04, (key, ours[key])
        assert abs(ours[key] - ref[key]) < 0.06, (key, ours[key], ref[key])


def test_haar_unitary_seeded_and_device_independent_draws():
    a = T.haar_unitary(2, 5, torch.Generator().manual_seed(1))
    b = T.haar_unitary(2, 5, torch.Generator().manual_seed(1), device="cpu")
    assert torch.equal(a, b)
    assert not torch.equal(a, T.haar_unitary(2, 5, torch.Generator().manual_seed(2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_su2(dtype):
    u = T.random_su2(20000, torch.Generator().manual_seed(0), dtype=dtype)
    assert u.shape == (20000, 2, 2) and u.dtype == dtype
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    assert (u @ u.mH - torch.eye(2, dtype=dtype)).abs().max() < tol
    assert (torch.linalg.det(u) - 1).abs().max() < tol
    m = _haar_moments(u.to(torch.complex128).numpy())
    # Haar SU(2): |U_00|^2 is uniform on [0, 1], so E|U_00|^4 = 1/3; E|tr U|^2 = 1
    assert abs(m["E|U_00|^4"] - 1 / 3) < 0.02 and abs(m["E|tr U|^2"] - 1) < 0.04 and m["|E U_00|"] < 0.02


# -------------------------------------------------------------------------- local unitaries


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_local_unitaries_matches_numpy(n, dtype):
    rng = np.random.default_rng(40 + n)
    rho = random_mixed(n, 7, rng, rank=3)
    us = nprandom.haar_unitary(2, 7 * n, rng).reshape(7, n, 2, 2)
    got = T.apply_local_unitaries(torch.from_numpy(rho).to(dtype), torch.from_numpy(us))
    assert got.dtype == dtype
    np.testing.assert_allclose(
        got.to(torch.complex128).numpy(), ops.apply_local_unitaries(rho, us), atol=TOL[dtype]
    )


def test_apply_local_unitaries_matches_kronecker_product():
    rng = np.random.default_rng(4)
    rho = random_mixed(3, 2, rng, rank=8)
    us = nprandom.haar_unitary(2, 6, rng).reshape(2, 3, 2, 2)
    u = ops.batch_kron(us[:, 0], us[:, 1], us[:, 2])
    got = T.apply_local_unitaries(torch.from_numpy(rho), torch.from_numpy(us)).numpy()
    np.testing.assert_allclose(got, u @ rho @ u.conj().transpose(0, 2, 1), atol=1e-14)


def test_apply_local_unitaries_on_a_subset():
    rng = np.random.default_rng(5)
    rho = random_mixed(3, 4, rng, rank=3)
    us = nprandom.haar_unitary(2, 4, rng).reshape(4, 1, 2, 2)
    full = np.tile(np.eye(2, dtype=complex), (4, 3, 1, 1))
    full[:, 1] = us[:, 0]
    got = T.apply_local_unitaries(torch.from_numpy(rho), torch.from_numpy(us), qubits=[1]).numpy()
    np.testing.assert_allclose(got, ops.apply_local_unitaries(rho, full), atol=1e-14)
    with pytest.raises(ValueError):
        T.apply_local_unitaries(torch.from_numpy(rho), torch.from_numpy(us))  # 1 unitary for 3 qubits


def test_random_local_unitaries_shape():
    us = T.random_local_unitaries(5, 3, torch.Generator().manual_seed(0), dtype=torch.complex64)
    assert us.shape == (5, 3, 2, 2) and us.dtype == torch.complex64


# -------------------------------------------------------------------------- devices


@cuda
def test_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    rho = torch.from_numpy(random_mixed(3, 8, rng, rank=2))
    perms = torch.from_numpy(nprandom.random_permutations(8, 3, rng))
    us = T.random_local_unitaries(8, 3, torch.Generator().manual_seed(0))
    dev = torch.device("cuda")
    torch.testing.assert_close(
        T.permute_qubits(rho.to(dev), perms.to(dev)).cpu(), T.permute_qubits(rho, perms)
    )
    torch.testing.assert_close(
        T.apply_local_unitaries(rho.to(dev), us.to(dev)).cpu(), T.apply_local_unitaries(rho, us)
    )
    assert torch.equal(T.cut_index_maps(perms.to(dev)).cpu(), T.cut_index_maps(perms))
    # a CPU generator gives the same draws whatever the target device
    a = T.haar_unitary(2, 4, torch.Generator().manual_seed(3), device=dev)
    b = T.haar_unitary(2, 4, torch.Generator().manual_seed(3))
    assert a.device.type == "cuda"
    torch.testing.assert_close(a.cpu(), b)
    g = torch.Generator(device=dev).manual_seed(1)
    assert T.random_permutations(4, 3, g, dev).device.type == "cuda"
