"""The cnn and tensor_network Backbone plugins: shapes, the paper configuration, exactness, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qeframe_plugins.backbones.cnn import CNNParams, conv_channels, spatial_sizes

from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.registry import Registry
from qeframe.quantum import ops, ppt
from qeframe.quantum import random as nprandom
from qeframe.quantum.cuts import bipartitions, n_cuts
from qeframe.quantum.torch_ops import to_model_input

BACKBONES = ("cnn", "tensor_network")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load()


def random_mixed(n: int, count: int, seed: int, rank: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = 2**n
    g = rng.standard_normal((count, d, rank)) + 1j * rng.standard_normal((count, d, rank))
    rho = g @ g.conj().transpose(0, 2, 1)
    return rho / np.trace(rho, axis1=1, axis2=2)[:, None, None]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -------------------------------------------------------------------------- common contract


def test_registered(registry):
    assert set(BACKBONES) <= set(registry.names("backbone"))
    with pytest.raises(SpecError):
        registry.create("backbone", "cnn", {"kernel": 2})
    with pytest.raises(SpecError):
        registry.create("backbone", "tensor_network", {"bond_dim": 0})


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("n", (2, 3, 4))
def test_output_shape(registry, name, n):
    model = registry.create("backbone", name, {}).build(n)
    x = to_model_input(torch.from_numpy(random_mixed(n, 3, seed=n)), dtype=torch.float32)
    out = model(x)
    assert out.shape == (3, n_cuts(n)) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out64 = model.double()(x.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", BACKBONES)
def test_wrong_input_shape_is_a_clear_error(registry, name):
    model = registry.create("backbone", name, {}).build(3)
    with pytest.raises(QeframeError, match=r"expected input \(B, 2, 8, 8\)"):
        model(torch.zeros(2, 2, 4, 4))


@pytest.mark.parametrize("name", BACKBONES)
def test_deterministic_init(registry, name):
    backbone = registry.create("backbone", name, {})
    torch.manual_seed(0)
    a = backbone.build(3).state_dict()
    torch.manual_seed(0)
    b = backbone.build(3).state_dict()
    torch.manual_seed(1)
    c = backbone.build(3).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", BACKBONES)
def test_gradients_reach_every_parameter(registry, name):
    torch.manual_seed(0)
    model = registry.create("backbone", name, {}).build(3)
    x = to_model_input(torch.from_numpy(random_mixed(3, 8, seed=1)), dtype=torch.float32)
    model(x).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", BACKBONES)
def test_models_stack_under_vmap(registry, name):
    """Several members evaluated at once with torch.func (stacked weights), as an ensemble may be."""
    from torch.func import functional_call, stack_module_state, vmap

    backbone = registry.create("backbone", name, {})
    torch.manual_seed(0)
    models = [backbone.build(3) for _ in range(2)]
    params, buffers = stack_module_state(models)
    xs = torch.stack(  # each member its own batch, as when members train together
        [to_model_input(torch.from_numpy(random_mixed(3, 4, seed=s)), dtype=torch.float32) for s in (2, 3)]
    )

    def member(p, b, inputs):
        return functional_call(models[0], (p, b), (inputs,))

    stacked = vmap(member)(params, buffers, xs)
    for k, model in enumerate(models):
        torch.testing.assert_close(stacked[k], model(xs[k]), atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------- cnn


def test_cnn_paper_configuration(registry):
    params = CNNParams()
    assert conv_channels(params) == [32, 128, 256]  # c_i = floor(r_i c_{i-1}), r = 16, 4, 2
    assert spatial_sizes(params, 8) == [7, 6, 5]
    assert spatial_sizes(params, 4) == [3, 2, 1]
    assert spatial_sizes(params, 16) == [15, 14, 13]
    model = registry.create("backbone", "cnn", {}).build(3)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (2, 32, (2, 2), (1, 1), (0, 0)),
        (32, 128, (2, 2), (1, 1), (0, 0)),
        (128, 256, (2, 2), (1, 1), (0, 0)),
    ]
    assert [(m.in_features, m.out_features) for m in linears] == [(6400, 128)] + [(128, 128)] * 4 + [(128, 3)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) == 3 + 5
    assert not any(isinstance(m, (torch.nn.Dropout, torch.nn.BatchNorm2d)) for m in model.modules())
    conv = 2 * 32 * 4 + 32 + 32 * 128 * 4 + 128 + 128 * 256 * 4 + 256
    fc = 6400 * 128 + 128 + 4 * (128 * 128 + 128) + 128 * 3 + 3
    assert n_params(model) == conv + fc == 1_033_891


@pytest.mark.parametrize(("n", "expected"), [(2, 247_201), (4, 5_752_999)])
def test_cnn_parameter_counts_other_sizes(registry, n, expected):
    assert n_params(registry.create("backbone", "cnn", {}).build(n)) == expected


def test_cnn_kernel_limits(registry):
    # the paper: with 3 layers and no padding the largest kernel for 8x8 inputs is 3x3
    registry.create("backbone", "cnn", {"kernel_size": 3}).build(3)
    with pytest.raises(QeframeError, match="do not fit a 8x8 input"):
        registry.create("backbone", "cnn", {"kernel_size": 4}).build(3)
    with pytest.raises(QeframeError, match="do not fit a 4x4 input"):
        registry.create("backbone", "cnn", {"kernel_size": 3}).build(2)
    with pytest.raises(QeframeError, match="kernel_size or fewer conv_layers"):
        registry.create("backbone", "cnn", {"conv_layers": 4, "pooling": "max"}).build(2)


def test_cnn_options(registry):
    params = {
        "dropout": 0.5,
        "batch_norm": True,
        "pooling": "avg",
        "activation": "leaky_relu",
        "ratio_type": "constant",
        "ratio": 2.0,
    }
    model = registry.create("backbone", "cnn", params).build(3)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 4
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 3
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [4, 8, 16]
    assert model(torch.zeros(4, 2, 8, 8)).shape == (4, 3)  # 8 -> 6 -> 4 -> 2 with pooling
    assert conv_channels(CNNParams(ratio_type="square", ratio=2.0)) == [4, 16, 256]


# -------------------------------------------------------------------------- tensor network


def _site_pattern(kind: str) -> torch.Tensor:
    """``(4, 4)`` two-copy pattern on one qubit's ``(i, j)`` legs: trace ``d(i,j)d(i',j')`` or swap ``d(i,j')d(j,i')``."""
    t = torch.zeros(2, 2, 2, 2)
    for a in range(2):
        for b in range(2):
            if kind == "trace":
                t[a, a, b, b] = 1.0
            else:
                t[a, b, b, a] = 1.0
    return t.reshape(4, 4)


def purity_cores(n: int) -> list[torch.Tensor]:
    """MPO cores whose feature ``m`` is ``tr(rho_A^2)`` for side A of cut ``m`` (bond dim 1 per cut)."""
    m = n_cuts(n)
    side = [set(c.side_a) for c in bipartitions(n)]
    channel = torch.tensor([[1.0, 0.0], [0.0, -1.0]])  # Re(z w) = Re z Re w - Im z Im w
    cores = []
    for q in range(n):
        core = torch.zeros((m, 4, 4, m))
        for cut in range(m):
            core[cut, :, :, cut] = _site_pattern("swap" if q in side[cut] else "trace")
        if q == 0:
            # one copy's site-1 index is (c, i, j): put the channel weight in front
            diagonal = torch.einsum("stmm->stm", core.permute(1, 2, 0, 3))  # no left bond at site 1
            first = torch.einsum("cd,sty->csdty", channel, diagonal).reshape(8, 8, m)
            cores.append(first)
        else:
            cores.append(core)
    return cores


@pytest.mark.parametrize("n", (2, 3, 4))
def test_tensor_network_represents_reduced_purities_exactly(registry, n):
    """Two copies, bond dimension n_cuts: the MPO computes tr(rho_A^2) for every cut exactly."""
    m = n_cuts(n)
    model = registry.create("backbone", "tensor_network", {"bond_dim": m, "features": m}).build(n).double()
    with torch.no_grad():
        for param, core in zip(model.cores, purity_cores(n)):
            assert param.shape == core.shape
            param.copy_(core)
    rho = random_mixed(n, 6, seed=20 + n, rank=3)
    with torch.no_grad():
        got = model.mpo_features(to_model_input(torch.from_numpy(rho))).numpy()
    expected = np.stack([ops.purity(ops.partial_trace(rho, c.side_a)) for c in bipartitions(n)], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize(("copies", "n"), [(1, 2), (1, 4), (2, 2), (2, 4), (3, 2), (3, 3)])
def test_tensor_network_unperturbed_init_is_normalised(registry, copies, n):
    """With init_noise = 0 every feature is (tr rho)^K = 1 for density matrices, for every n."""
    params = {"copies": copies, "init_noise": 0.0, "bond_dim": 4, "features": 5}
    model = registry.create("backbone", "tensor_network", params).build(n).double()
    x = to_model_input(torch.from_numpy(random_mixed(n, 4, seed=n, rank=3)))
    torch.testing.assert_close(model.mpo_features(x), torch.ones(4, 5, dtype=torch.float64))
    assert model(x).shape == (4, n_cuts(n))


def test_tensor_network_contracts_in_float32_under_autocast(registry):
    model = registry.create("backbone", "tensor_network", {}).build(3)
    x = to_model_input(torch.from_numpy(random_mixed(3, 4, seed=0)), dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = model.mpo_features(x)
        logits = model(x)
    assert features.dtype == torch.float32 and logits.shape == (4, 3)
    torch.testing.assert_close(features, model.mpo_features(x))


def test_tensor_network_refuses_oversized_contractions(registry):
    registry.create("backbone", "tensor_network", {"copies": 3}).build(3)
    with pytest.raises(QeframeError, match="fewer copies or a smaller bond_dim"):
        registry.create("backbone", "tensor_network", {"copies": 3}).build(4)
    with pytest.raises(QeframeError, match="need at least 2 qubits"):
        registry.create("backbone", "tensor_network", {}).build(1)


def test_tensor_network_parameter_count(registry):
    params = {"bond_dim": 16, "features": 32, "head_layers": 1, "head_width": 64}
    model = registry.create("backbone", "tensor_network", params).build(3)
    cores = 8 * 8 * 16 + 16 * 4 * 4 * 16 + 16 * 4 * 4 * 32
    head = 32 * 64 + 64 + 64 * 3 + 3
    assert n_params(model) == cores + head == 15_619


# -------------------------------------------------------------------------- learning


def pure_state_task(count: int, rng: np.random.Generator, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure states with negativity labels: a third Haar (all cuts entangled), a third
    ``|a> ⊗ |psi>`` with a Haar ``(n-1)``-qubit ``psi`` under a random qubit permutation (one cut
    separable), a third full products (all cuts separable)."""
    k = count // 3
    haar = ops.pure_density(nprandom.haar_state(2**n, k, rng))
    bisep = ops.pure_density(
        ops.batch_kron(nprandom.haar_state(2, k, rng), nprandom.haar_state(2 ** (n - 1), k, rng))
    )
    bisep = ops.permute_qubits_batch(bisep, nprandom.random_permutations(k, n, rng))
    prod = ops.pure_density(ops.batch_kron(*[nprandom.haar_state(2, count - 2 * k, rng) for _ in range(n)]))
    rho = np.concatenate([haar, bisep, prod])[rng.permutation(count)]
    labels = (ppt.negativities(rho) > 1e-8).astype(np.float32)
    return to_model_input(torch.from_numpy(rho), dtype=torch.float32), torch.from_numpy(labels)


def train_and_score(
    model: torch.nn.Module, train: tuple, test: tuple, epochs: int, batch: int = 64
) -> np.ndarray:
    """Adam (lr 1e-3) on BCE-with-logits; returns the per-cut test accuracy."""
    x, y = train
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return ((model(test[0]) > 0).float() == test[1]).float().mean(0).numpy()


def _task(n_train: int, n_test: int = 1500):
    rng = np.random.default_rng(0)
    train = pure_state_task(n_train, rng)
    test = pure_state_task(n_test, rng)
    chance = max(test[1].mean().item(), 1 - test[1].mean().item())  # majority guess over all cuts
    return train, test, chance


def test_tensor_network_learns_quickly(registry):
    train, test, chance = _task(1500, 600)
    torch.manual_seed(0)
    acc = train_and_score(registry.create("backbone", "tensor_network", {}).build(3), train, test, epochs=3)
    assert chance < 0.6
    assert acc.mean() > 0.75, acc


@pytest.mark.slow
def test_tensor_network_learns_pure_state_entanglement(registry):
    train, test, chance = _task(3000)
    torch.manual_seed(0)
    acc = train_and_score(registry.create("backbone", "tensor_network", {}).build(3), train, test, epochs=10)
    print(f"tensor_network per-cut accuracy {acc.round(3)} mean {acc.mean():.3f} (majority {chance:.3f})")
    assert acc.mean() > 0.93, acc


@pytest.mark.slow
def test_cnn_learns_pure_state_entanglement(registry):
    train, test, chance = _task(3000)
    torch.manual_seed(0)
    acc = train_and_score(registry.create("backbone", "cnn", {}).build(3), train, test, epochs=12)
    print(f"cnn per-cut accuracy {acc.round(3)} mean {acc.mean():.3f} (majority {chance:.3f})")
    assert acc.mean() > chance + 0.15, acc
