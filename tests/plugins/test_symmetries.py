"""The local_unitary and permutation Symmetry plugins: the cut_map contract, physics, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.registry import Registry
from qeframe.quantum import ops, ppt
from qeframe.quantum import torch_ops as T
from qeframe.quantum.cuts import n_cuts

NS = (2, 3, 4)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


def random_mixed(n: int, count: int, seed: int, rank: int = 2) -> np.ndarray:
    """Low-rank random density matrices: generically entangled with different negativities per cut."""
    rng = np.random.default_rng(seed)
    d = 2**n
    g = rng.standard_normal((count, d, rank)) + 1j * rng.standard_normal((count, d, rank))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.trace(rho, axis1=1, axis2=2)[:, None, None]


def assert_density_preserved(rho: torch.Tensor, rho2: torch.Tensor, atol: float) -> None:
    assert rho2.shape == rho.shape and rho2.dtype == rho.dtype and rho2.device == rho.device
    a = rho2.to(torch.complex128)
    assert (a - a.mH).abs().max() < atol
    assert (torch.diagonal(a, dim1=1, dim2=2).sum(-1) - 1).abs().max() < atol
    # unitary conjugation keeps the spectrum
    torch.testing.assert_close(
        torch.linalg.eigvalsh(a), torch.linalg.eigvalsh(rho.to(torch.complex128)), atol=atol, rtol=0
    )


def assert_cut_map_contract(rho: np.ndarray, rho2: np.ndarray, cut_map: np.ndarray, atol: float) -> None:
    """``q(rho2)[b, cut_map[b, j]] == q(rho)[b, j]`` for the per-cut negativity q."""
    before = ppt.negativities(rho)
    after = ppt.negativities(rho2)
    np.testing.assert_allclose(np.take_along_axis(after, cut_map, axis=1), before, atol=atol)


def test_registered(registry):
    assert {"local_unitary", "permutation"} <= set(registry.names("symmetry"))
    with pytest.raises(SpecError):
        registry.create("symmetry", "permutation", {"bogus": 1})
    with pytest.raises(SpecError):
        registry.create("symmetry", "local_unitary", {"qubits": [0, 1]})  # 1-based
    with pytest.raises(SpecError):
        registry.create("symmetry", "local_unitary", {"qubits": [1, 1]})


# -------------------------------------------------------------------------- local_unitary


@pytest.mark.parametrize("n", NS)
def test_local_unitary_contract(registry, n):
    sym = registry.create("symmetry", "local_unitary", {})
    rho = random_mixed(n, 16, seed=n)
    t = torch.from_numpy(rho)
    rho2, cut_map = sym.apply(t, torch.Generator().manual_seed(0))
    assert cut_map.dtype == torch.long and cut_map.shape == (16, n_cuts(n))
    assert torch.equal(cut_map, torch.arange(n_cuts(n)).expand(16, -1))
    assert_density_preserved(t, rho2, 1e-12)
    assert_cut_map_contract(rho, rho2.numpy(), cut_map.numpy(), 1e-10)
    assert (rho2 - t).abs().max() > 1e-3  # it did something
    # the single-qubit marginals are rotated, their spectra kept
    for q in range(n):
        r1 = ops.partial_trace(rho, [q])
        r2 = ops.partial_trace(rho2.numpy(), [q])
        np.testing.assert_allclose(np.linalg.eigvalsh(r2), np.linalg.eigvalsh(r1), atol=1e-12)


def test_local_unitary_complex64(registry):
    sym = registry.create("symmetry", "local_unitary", {})
    rho = random_mixed(3, 8, seed=1)
    t = torch.from_numpy(rho).to(torch.complex64)
    rho2, cut_map = sym.apply(t, torch.Generator().manual_seed(0))
    assert rho2.dtype == torch.complex64
    assert_density_preserved(t, rho2, 1e-5)
    assert_cut_map_contract(rho, rho2.to(torch.complex128).numpy(), cut_map.numpy(), 1e-5)


def test_local_unitary_deterministic(registry):
    sym = registry.create("symmetry", "local_unitary", {})
    t = torch.from_numpy(random_mixed(3, 8, seed=2))
    a, _ = sym.apply(t, torch.Generator().manual_seed(7))
    b, _ = sym.apply(t, torch.Generator().manual_seed(7))
    c, _ = sym.apply(t, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the same unitaries as torch_ops draws from the same seed
    us = T.random_su2(8 * 3, torch.Generator().manual_seed(7)).reshape(8, 3, 2, 2)
    torch.testing.assert_close(a, T.apply_local_unitaries(t, us))


def test_local_unitary_subset(registry):
    sym = registry.create("symmetry", "local_unitary", {"qubits": [1]})
    rho = random_mixed(3, 6, seed=3)
    rho2, _ = sym.apply(torch.from_numpy(rho), torch.Generator().manual_seed(0))
    # qubits 2 and 3 are untouched: their joint marginal is unchanged
    np.testing.assert_allclose(
        ops.partial_trace(rho2.numpy(), [1, 2]), ops.partial_trace(rho, [1, 2]), atol=1e-13
    )
    assert np.abs(ops.partial_trace(rho2.numpy(), [0]) - ops.partial_trace(rho, [0])).max() > 1e-3
    too_far = registry.create("symmetry", "local_unitary", {"qubits": [4]})
    with pytest.raises(QeframeError, match="qubit 4"):
        too_far.apply(torch.from_numpy(rho))


def test_symmetries_reject_model_input(registry):
    x = torch.zeros(2, 2, 8, 8)
    for name in ("local_unitary", "permutation"):
        with pytest.raises(QeframeError, match="complex"):
            registry.create("symmetry", name, {}).apply(x)


# -------------------------------------------------------------------------- permutation


@pytest.mark.parametrize("n", NS)
def test_permutation_contract(registry, n):
    sym = registry.create("symmetry", "permutation", {})
    rho = random_mixed(n, 40, seed=10 + n)
    t = torch.from_numpy(rho)
    rho2, cut_map = sym.apply(t, torch.Generator().manual_seed(1))
    assert cut_map.dtype == torch.long and cut_map.shape == (40, n_cuts(n))
    assert torch.equal(torch.sort(cut_map, dim=1).values, torch.arange(n_cuts(n)).expand(40, -1))
    assert_density_preserved(t, rho2, 1e-12)
    assert_cut_map_contract(rho, rho2.numpy(), cut_map.numpy(), 1e-10)
    if n > 2:  # with 2 qubits every permutation keeps the only cut
        assert (cut_map != torch.arange(n_cuts(n))).any()


def test_permutation_matches_numpy_with_drawn_permutations(registry):
    sym = registry.create("symmetry", "permutation", {})
    rho = random_mixed(3, 30, seed=4)
    rho2, cut_map = sym.apply(torch.from_numpy(rho), torch.Generator().manual_seed(5))
    perms = sym.draw(30, 3, torch.Generator().manual_seed(5)).numpy()
    np.testing.assert_array_equal(rho2.numpy(), ops.permute_qubits_batch(rho, perms))
    from qeframe.quantum.cuts import cut_index_maps

    np.testing.assert_array_equal(cut_map.numpy(), cut_index_maps(perms))


def test_permutation_is_uniform_and_options(registry):
    sym = registry.create("symmetry", "permutation", {})
    perms = sym.draw(6000, 3, torch.Generator().manual_seed(0))
    counts = torch.bincount(T.permutation_ranks(perms), minlength=6).numpy()
    assert ((counts - 1000) ** 2 / 1000).sum() < 25  # chi-square with 5 dof
    no_id = registry.create("symmetry", "permutation", {"exclude_identity": True})
    ranks = T.permutation_ranks(no_id.draw(3000, 3, torch.Generator().manual_seed(0)))
    assert ranks.min() >= 1 and len(torch.unique(ranks)) == 5
    batchwise = registry.create("symmetry", "permutation", {"per_sample": False})
    rows = batchwise.draw(50, 4, torch.Generator().manual_seed(0))
    assert (rows == rows[0]).all()


def test_permutation_deterministic_and_complex64(registry):
    sym = registry.create("symmetry", "permutation", {})
    rho = random_mixed(4, 10, seed=6)
    t = torch.from_numpy(rho).to(torch.complex64)
    a, ma = sym.apply(t, torch.Generator().manual_seed(3))
    b, mb = sym.apply(t, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(ma, mb) and a.dtype == torch.complex64
    assert_cut_map_contract(rho, a.to(torch.complex128).numpy(), ma.numpy(), 1e-5)


def test_views_compose_like_the_siamese_trainer(registry):
    """LU then permutation: the consistency target ``p_view[b, cut_map[b, j]]`` lines up with ``p[b, j]``."""
    lu = registry.create("symmetry", "local_unitary", {})
    perm = registry.create("symmetry", "permutation", {"exclude_identity": True})
    rho = random_mixed(3, 20, seed=8)
    g = torch.Generator().manual_seed(0)
    r1, m1 = lu.apply(torch.from_numpy(rho), g)
    r2, m2 = perm.apply(r1, g)
    combined = torch.gather(m2, 1, m1)  # cut j -> m1[j] -> m2[m1[j]]
    assert_cut_map_contract(rho, r2.numpy(), combined.numpy(), 1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_symmetries_on_cuda(registry):
    rho = random_mixed(3, 16, seed=9)
    t = torch.from_numpy(rho).cuda()
    for name in ("local_unitary", "permutation"):
        sym = registry.create("symmetry", name, {})
        g = torch.Generator(device="cuda").manual_seed(0)
        rho2, cut_map = sym.apply(t, g)
        assert rho2.device.type == "cuda" and cut_map.device.type == "cuda"
        assert_cut_map_contract(rho, rho2.cpu().numpy(), cut_map.cpu().numpy(), 1e-10)
        # a CPU generator works for CUDA inputs and gives the CPU result
        cpu_result, _ = sym.apply(t.cpu(), torch.Generator().manual_seed(4))
        cuda_result, _ = sym.apply(t, torch.Generator().manual_seed(4))
        torch.testing.assert_close(cuda_result.cpu(), cpu_result)
